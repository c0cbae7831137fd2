// The fault VFS itself: what a crash keeps, and which operation a plan fails. The crash and
// I/O-error loops are only as good as this model.
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "tests/crash/fault_vfs.h"
#include "tests/support/temp_dir.h"

using namespace carnet::testing;

namespace {

constexpr int kSector = 4096;

// One file opened through the fault VFS as a main database file.
class RawFile {
 public:
  explicit RawFile(const std::string& path)
      : vfs_(sqlite3_vfs_find(FaultVfs::kName)),
        name_(sqlite3_create_filename(path.c_str(), "", "", 0, nullptr)),
        file_(static_cast<sqlite3_file*>(std::calloc(1, vfs_->szOsFile))) {
    int out = 0;
    REQUIRE(vfs_->xOpen(vfs_, name_, file_,
                        SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        &out) == SQLITE_OK);
  }
  ~RawFile() {
    Close();
    std::free(file_);
    sqlite3_free_filename(name_);
  }
  int Write(const std::string& bytes, int64_t offset) {
    return file_->pMethods->xWrite(file_, bytes.data(), static_cast<int>(bytes.size()), offset);
  }
  int Sync() { return file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL); }
  int Truncate(int64_t size) { return file_->pMethods->xTruncate(file_, size); }
  void Close() {
    if (file_->pMethods != nullptr) file_->pMethods->xClose(file_);
    file_->pMethods = nullptr;
  }

 private:
  sqlite3_vfs* vfs_;
  sqlite3_filename name_;
  sqlite3_file* file_;
};

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The file after a synced write of 'a's over two sectors, then unsynced writes: 'b's over four
// sectors from the second, and a truncation to three and a half sectors.
std::string ContentAfterCrash(AfterCrash how, uint64_t seed) {
  FaultVfs vfs;
  TempDir dir;
  const std::string path = dir.File("file.db");
  {
    RawFile file(path);
    REQUIRE(file.Write(std::string(2 * kSector, 'a'), 0) == SQLITE_OK);
    REQUIRE(file.Sync() == SQLITE_OK);
    REQUIRE(file.Write(std::string(4 * kSector, 'b'), kSector) == SQLITE_OK);
    REQUIRE(file.Truncate(3 * kSector + kSector / 2) == SQLITE_OK);
    vfs.CrashNow();
    CHECK(file.Write("c", 0) == SQLITE_IOERR_WRITE);  // the process is dead
    CHECK(file.Sync() == SQLITE_IOERR_FSYNC);
  }
  vfs.RestoreAfterCrash(how, seed);
  return Contents(path);
}

}  // namespace

TEST_CASE("A power cut leaves each file as of its last successful sync", "[crash][vfs]") {
  CHECK(ContentAfterCrash(AfterCrash::kLoseUnsynced, 1) == std::string(2 * kSector, 'a'));
}

TEST_CASE("A killed process leaves everything it wrote", "[crash][vfs]") {
  CHECK(ContentAfterCrash(AfterCrash::kKeepWritten, 1) ==
        std::string(kSector, 'a') + std::string(2 * kSector + kSector / 2, 'b'));
}

TEST_CASE("A power cut may keep any subset of the unsynced sectors, each whole", "[crash][vfs]") {
  bool kept_some_lost_some = false;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::string content = ContentAfterCrash(AfterCrash::kRandomSectors, seed);
    INFO("seed " << seed);
    REQUIRE(content.size() >= 2 * kSector);
    int kept = 0, lost = 0;
    for (size_t at = 0; at < content.size(); at += kSector) {
      // Beyond the synced content, a sector not written reads as zeros (a hole).
      const std::string sector = content.substr(at, kSector);
      const bool old_content = sector == std::string(sector.size(), at < 2 * kSector ? 'a' : '\0');
      const bool new_content = sector == std::string(sector.size(), 'b');
      REQUIRE((old_content || new_content));
      if (at == 0) {
        CHECK(old_content);  // no unsynced write touched it
      } else {
        ++(new_content ? kept : lost);
      }
    }
    kept_some_lost_some = kept_some_lost_some || (kept > 0 && lost > 0);
  }
  CHECK(kept_some_lost_some);
}

TEST_CASE("A plan fails the nth counted operation, once or from then on", "[io][vfs]") {
  FaultVfs vfs;
  TempDir dir;
  RawFile file(dir.File("file.db"));
  vfs.Arm(FaultPlan{Fault::kDiskFull, 2, kFaultWrite, false});
  CHECK(file.Write("x", 0) == SQLITE_OK);
  CHECK(file.Sync() == SQLITE_OK);  // not counted
  CHECK(file.Write("x", 1) == SQLITE_FULL);
  CHECK(file.Write("x", 2) == SQLITE_OK);
  CHECK(vfs.fired());

  vfs.Arm(FaultPlan{Fault::kIoError, 1, kFaultSync, true});
  CHECK_FALSE(vfs.fired());
  CHECK(file.Write("x", 3) == SQLITE_OK);
  CHECK(file.Sync() == SQLITE_IOERR_FSYNC);
  CHECK(file.Sync() == SQLITE_IOERR_FSYNC);
  vfs.Disarm();
  CHECK(file.Sync() == SQLITE_OK);
  CHECK(vfs.counted() == 2);
}
