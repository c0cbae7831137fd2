// A fault-injecting SQLite VFS for tests. It wraps the default VFS (unix), forwards every call
// to it, counts the I/O operations, and at the Nth one fails it (disk full, I/O error) or
// "crashes" the process.
//
// The crash model. For every file a power cut concerns (main database, WAL, rollback journal),
// the VFS keeps the content as of the last successful xSync and the writes and truncations made
// since. A crash makes the operation it happens at, and every later one, fail: the process is
// dead and does nothing more. Once its connections are closed, RestoreAfterCrash() rewrites each
// file as the disk holds it when the power returns: the last synced content, plus none, all, or a
// random subset of the unsynced writes cut at sector boundaries. See tests/crash/README.md for
// what is not modelled.
//
// Not thread-safe: one test thread drives it. Register one at a time (the name is fixed).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct sqlite3_vfs;

namespace carnet::testing {

// The operations a plan counts, as a bit mask.
enum FaultOp : unsigned {
  kFaultRead = 1,
  kFaultWrite = 2,
  kFaultTruncate = 4,
  kFaultSync = 8,
};
constexpr unsigned kFaultDurableOps = kFaultWrite | kFaultTruncate | kFaultSync;

enum class Fault {
  kNone,
  kCrash,     // the process dies at the Nth operation: it and everything after fail
  kDiskFull,  // the Nth operation fails with SQLITE_FULL
  kIoError,   // the Nth operation fails with SQLITE_IOERR_READ / _WRITE / _TRUNCATE / _FSYNC
};

struct FaultPlan {
  Fault fault = Fault::kNone;
  uint64_t at = 0;                     // 1-based, among the counted operations
  unsigned ops = kFaultDurableOps;     // which operations count
  bool persistent = false;  // disk full, I/O error: every counted operation from the Nth fails
};

// What the disk holds after a crash.
enum class AfterCrash {
  kLoseUnsynced,   // a power cut: every file as of its last successful sync
  kKeepWritten,    // the process was killed: the kernel had everything written
  kRandomSectors,  // a power cut on a disk that wrote some of the unsynced sectors, in any order
};

const char* AfterCrashName(AfterCrash how);

class FaultVfs {
 public:
  static constexpr const char* kName = "carnet-fault";

  FaultVfs();  // registers the VFS, not as the default
  ~FaultVfs();  // unregisters it; every connection through it must be closed
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  // Makes this VFS the one sqlite3_open_v2 uses when given no VFS name (as Store::Open does), or
  // gives that role back to the wrapped VFS.
  void SetDefault(bool on);

  // Counts from zero under `plan`. A crash still in force is not undone (RestoreAfterCrash).
  void Arm(const FaultPlan& plan);
  // Later operations succeed, unless the process has crashed.
  void Disarm();
  // A crash now, whatever the plan: a power cut just after the last call returned.
  void CrashNow();

  bool fired() const { return fired_; }      // the planned fault happened since Arm
  bool crashed() const { return crashed_; }
  uint64_t counted() const { return count_; }  // counted operations since Arm

  // After a crash, once every connection through this VFS is closed: puts every file as the disk
  // holds it when the power returns (`seed` draws the random subset), and ends the crash.
  void RestoreAfterCrash(AfterCrash how, uint64_t seed);
  // Forgets what it knows of files (between independent runs). No file may be open.
  void ForgetFiles();

 private:
  struct Pending;
  struct FileState;
  struct File;
  friend struct FaultVfsMethods;

  // SQLITE_OK to let an operation through, or the code it fails with.
  int Check(FaultOp op, int io_error);
  FileState* Track(const char* path, int flags);

  sqlite3_vfs* real_;
  std::unique_ptr<sqlite3_vfs> vfs_;
  FaultPlan plan_;
  uint64_t count_ = 0;
  bool fired_ = false;
  bool crashed_ = false;
  std::map<std::string, std::unique_ptr<FileState>> files_;  // by path
};

}  // namespace carnet::testing
