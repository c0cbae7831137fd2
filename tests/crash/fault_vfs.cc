#include "tests/crash/fault_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

namespace carnet::testing {

const char* AfterCrashName(AfterCrash how) {
  switch (how) {
    case AfterCrash::kLoseUnsynced:
      return "lose-unsynced";
    case AfterCrash::kKeepWritten:
      return "keep-written";
    case AfterCrash::kRandomSectors:
      return "random-sectors";
  }
  return "?";
}

// A write (bytes at offset) or a truncation (to offset) not yet covered by a sync.
struct FaultVfs::Pending {
  bool truncate = false;
  int64_t offset = 0;
  std::string bytes;
};

struct FaultVfs::FileState {
  std::string synced;  // the content as of the last successful sync
  std::vector<Pending> pending;
  int64_t sector = 4096;

  void Settle() {
    for (const Pending& p : pending) Apply(p, 0, p.bytes.size());
    pending.clear();
  }
  // Applies bytes [from, to) of a pending write, or a truncation.
  void Apply(const Pending& p, size_t from, size_t to) {
    if (p.truncate) {
      synced.resize(static_cast<size_t>(p.offset));
      return;
    }
    const size_t end = static_cast<size_t>(p.offset) + to;
    if (synced.size() < end) synced.resize(end, '\0');
    std::memcpy(synced.data() + p.offset + from, p.bytes.data() + from, to - from);
  }
};

// Our sqlite3_file, followed in the same allocation by the wrapped VFS's own.
struct FaultVfs::File {
  sqlite3_file base;
  FaultVfs* owner;
  FileState* state;  // null for files no crash concerns (temporary ones)
  sqlite3_file* real;
};

namespace {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteWholeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("fault vfs: cannot rewrite " + path);
}

}  // namespace

// The C callbacks: each checks the plan, then forwards to the wrapped VFS or file.
struct FaultVfsMethods {
  using File = FaultVfs::File;

  static FaultVfs* Owner(sqlite3_vfs* vfs) { return static_cast<FaultVfs*>(vfs->pAppData); }
  static File* Of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* Real(sqlite3_file* f) { return Of(f)->real; }

  // --- files ---

  static int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }

  static int Read(sqlite3_file* f, void* data, int amount, sqlite3_int64 offset) {
    if (int rc = Of(f)->owner->Check(kFaultRead, SQLITE_IOERR_READ)) return rc;
    return Real(f)->pMethods->xRead(Real(f), data, amount, offset);
  }

  static int Write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
    File* file = Of(f);
    if (int rc = file->owner->Check(kFaultWrite, SQLITE_IOERR_WRITE)) return rc;
    int rc = file->real->pMethods->xWrite(file->real, data, amount, offset);
    if (rc == SQLITE_OK && file->state != nullptr) {
      file->state->pending.push_back(
          {false, offset, std::string(static_cast<const char*>(data), amount)});
    }
    return rc;
  }

  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    File* file = Of(f);
    if (int rc = file->owner->Check(kFaultTruncate, SQLITE_IOERR_TRUNCATE)) return rc;
    int rc = file->real->pMethods->xTruncate(file->real, size);
    if (rc == SQLITE_OK && file->state != nullptr) {
      file->state->pending.push_back({true, size, {}});
    }
    return rc;
  }

  static int Sync(sqlite3_file* f, int flags) {
    File* file = Of(f);
    if (int rc = file->owner->Check(kFaultSync, SQLITE_IOERR_FSYNC)) return rc;
    int rc = file->real->pMethods->xSync(file->real, flags);
    if (rc == SQLITE_OK && file->state != nullptr) file->state->Settle();
    return rc;
  }

  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    if (Of(f)->owner->crashed_) return SQLITE_IOERR_FSTAT;
    return Real(f)->pMethods->xFileSize(Real(f), size);
  }

  // Locks keep working after a crash: the system releases a dead process's locks, and the
  // connections must close cleanly for RestoreAfterCrash.
  static int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
  static int Unlock(sqlite3_file* f, int level) {
    return Real(f)->pMethods->xUnlock(Real(f), level);
  }
  static int CheckReservedLock(sqlite3_file* f, int* out) {
    return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return Real(f)->pMethods->xFileControl(Real(f), op, arg);
  }
  static int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
  }

  // The WAL index lives in shared memory, which no crash keeps: SQLite rebuilds it from the WAL
  // when the first connection opens after a crash.
  static int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return Real(f)->pMethods->xShmMap(Real(f), page, size, extend, out);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
  static int ShmUnmap(sqlite3_file* f, int delete_flag) {
    return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag);
  }
  // No memory mapping: every read goes through xRead, where it is counted.
  static int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
    *out = nullptr;
    return SQLITE_OK;
  }
  static int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
    return Real(f)->pMethods->xUnfetch(Real(f), offset, p);
  }

  static const sqlite3_io_methods kIoMethods;

  // --- the VFS ---

  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags,
                  int* out_flags) {
    FaultVfs* owner = Owner(vfs);
    File* file = Of(f);
    file->base.pMethods = nullptr;
    if (owner->crashed_) return SQLITE_CANTOPEN;
    file->owner = owner;
    file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(File));
    int rc = owner->real_->xOpen(owner->real_, name, file->real, flags, out_flags);
    if (rc != SQLITE_OK) return rc;
    // Tracked once open: SQLite never truncates a file on opening, so what it holds is as before.
    file->state = owner->Track(name, flags);
    if (file->state != nullptr) file->state->sector = file->real->pMethods->xSectorSize(file->real);
    file->base.pMethods = &kIoMethods;
    return SQLITE_OK;
  }

  // Deleting is taken as durable at once (see README): SQLite deletes a WAL or journal only once
  // what it holds is synced elsewhere.
  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    FaultVfs* owner = Owner(vfs);
    if (owner->crashed_) return SQLITE_IOERR_DELETE;
    int rc = owner->real_->xDelete(owner->real_, name, sync_dir);
    if (rc == SQLITE_OK) owner->files_.erase(name);
    return rc;
  }

  static sqlite3_vfs* R(sqlite3_vfs* vfs) { return Owner(vfs)->real_; }
  static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    return R(vfs)->xAccess(R(vfs), name, flags, out);
  }
  static int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
    return R(vfs)->xFullPathname(R(vfs), name, n, out);
  }
  static void* DlOpen(sqlite3_vfs* vfs, const char* name) { return R(vfs)->xDlOpen(R(vfs), name); }
  static void DlError(sqlite3_vfs* vfs, int n, char* out) { R(vfs)->xDlError(R(vfs), n, out); }
  static void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
    return R(vfs)->xDlSym(R(vfs), handle, symbol);
  }
  static void DlClose(sqlite3_vfs* vfs, void* handle) { R(vfs)->xDlClose(R(vfs), handle); }
  static int Randomness(sqlite3_vfs* vfs, int n, char* out) {
    return R(vfs)->xRandomness(R(vfs), n, out);
  }
  static int Sleep(sqlite3_vfs* vfs, int micros) { return R(vfs)->xSleep(R(vfs), micros); }
  static int CurrentTime(sqlite3_vfs* vfs, double* out) {
    return R(vfs)->xCurrentTime(R(vfs), out);
  }
  static int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
    return R(vfs)->xGetLastError(R(vfs), n, out);
  }
  static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    return R(vfs)->xCurrentTimeInt64(R(vfs), out);
  }
  static int SetSystemCall(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr call) {
    return R(vfs)->xSetSystemCall(R(vfs), name, call);
  }
  static sqlite3_syscall_ptr GetSystemCall(sqlite3_vfs* vfs, const char* name) {
    return R(vfs)->xGetSystemCall(R(vfs), name);
  }
  static const char* NextSystemCall(sqlite3_vfs* vfs, const char* name) {
    return R(vfs)->xNextSystemCall(R(vfs), name);
  }
};

const sqlite3_io_methods FaultVfsMethods::kIoMethods = {
    3,
    &FaultVfsMethods::Close,
    &FaultVfsMethods::Read,
    &FaultVfsMethods::Write,
    &FaultVfsMethods::Truncate,
    &FaultVfsMethods::Sync,
    &FaultVfsMethods::FileSize,
    &FaultVfsMethods::Lock,
    &FaultVfsMethods::Unlock,
    &FaultVfsMethods::CheckReservedLock,
    &FaultVfsMethods::FileControl,
    &FaultVfsMethods::SectorSize,
    &FaultVfsMethods::DeviceCharacteristics,
    &FaultVfsMethods::ShmMap,
    &FaultVfsMethods::ShmLock,
    &FaultVfsMethods::ShmBarrier,
    &FaultVfsMethods::ShmUnmap,
    &FaultVfsMethods::Fetch,
    &FaultVfsMethods::Unfetch,
};

FaultVfs::FaultVfs() : real_(sqlite3_vfs_find(nullptr)), vfs_(std::make_unique<sqlite3_vfs>()) {
  if (real_ == nullptr || real_->iVersion < 3) throw std::runtime_error("no default SQLite VFS");
  using M = FaultVfsMethods;
  sqlite3_vfs& v = *vfs_;
  std::memset(&v, 0, sizeof(v));
  v.iVersion = 3;
  v.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
  v.mxPathname = real_->mxPathname;
  v.zName = kName;
  v.pAppData = this;
  v.xOpen = &M::Open;
  v.xDelete = &M::Delete;
  v.xAccess = &M::Access;
  v.xFullPathname = &M::FullPathname;
  v.xDlOpen = &M::DlOpen;
  v.xDlError = &M::DlError;
  v.xDlSym = &M::DlSym;
  v.xDlClose = &M::DlClose;
  v.xRandomness = &M::Randomness;
  v.xSleep = &M::Sleep;
  v.xCurrentTime = &M::CurrentTime;
  v.xGetLastError = &M::GetLastError;
  v.xCurrentTimeInt64 = &M::CurrentTimeInt64;
  v.xSetSystemCall = &M::SetSystemCall;
  v.xGetSystemCall = &M::GetSystemCall;
  v.xNextSystemCall = &M::NextSystemCall;
  if (sqlite3_vfs_register(vfs_.get(), 0) != SQLITE_OK) {
    throw std::runtime_error("cannot register the fault VFS");
  }
}

FaultVfs::~FaultVfs() {
  sqlite3_vfs_register(real_, 1);
  sqlite3_vfs_unregister(vfs_.get());
}

void FaultVfs::SetDefault(bool on) { sqlite3_vfs_register(on ? vfs_.get() : real_, 1); }

void FaultVfs::Arm(const FaultPlan& plan) {
  plan_ = plan;
  count_ = 0;
  fired_ = false;
}

void FaultVfs::Disarm() { plan_ = FaultPlan{}; }

void FaultVfs::CrashNow() { crashed_ = true; }

int FaultVfs::Check(FaultOp op, int io_error) {
  if (crashed_) return io_error;
  if (plan_.fault == Fault::kNone || (plan_.ops & op) == 0) return SQLITE_OK;
  ++count_;
  if (count_ < plan_.at || (count_ > plan_.at && !plan_.persistent)) return SQLITE_OK;
  fired_ = true;
  switch (plan_.fault) {
    case Fault::kNone:
      return SQLITE_OK;
    case Fault::kCrash:
      crashed_ = true;
      return io_error;
    case Fault::kDiskFull:
      return SQLITE_FULL;
    case Fault::kIoError:
      return io_error;
  }
  return SQLITE_OK;
}

FaultVfs::FileState* FaultVfs::Track(const char* path, int flags) {
  constexpr int kDurable =
      SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL;
  if (path == nullptr || (flags & kDurable) == 0) return nullptr;
  std::unique_ptr<FileState>& state = files_[path];
  if (!state) {
    // First sight of the file: what it holds now is taken as synced.
    state = std::make_unique<FileState>();
    state->synced = ReadWholeFile(path);
  }
  return state.get();
}

void FaultVfs::RestoreAfterCrash(AfterCrash how, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& [path, state] : files_) {
    for (const Pending& p : state->pending) {
      if (how == AfterCrash::kLoseUnsynced) break;
      const bool all = how == AfterCrash::kKeepWritten;
      if (p.truncate) {
        if (all || rng() % 2 == 0) state->Apply(p, 0, 0);
        continue;
      }
      // Each sector the write touches reaches the disk, or not, on its own.
      size_t from = 0;
      while (from < p.bytes.size()) {
        const int64_t at = p.offset + static_cast<int64_t>(from);
        const size_t to = std::min(p.bytes.size(),
                                   from + static_cast<size_t>(state->sector - at % state->sector));
        if (all || rng() % 2 == 0) state->Apply(p, from, to);
        from = to;
      }
    }
    state->pending.clear();
    WriteWholeFile(path, state->synced);
  }
  crashed_ = false;
  plan_ = FaultPlan{};
}

void FaultVfs::ForgetFiles() { files_.clear(); }

}  // namespace carnet::testing
