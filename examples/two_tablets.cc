// Two advisers' tablets work offline on the same people, then sync with each other directly.
//
// Amina's tablet creates a participant, an interview and a workshop session, and the two tablets
// exchange operations. Then both work offline and disagree: the participant's phase, her barriers
// to employment, notes on the interview (which Amina deletes while Bruno edits it), her attendance
// at the workshop, and her registration to it. The tablets exchange operations again; the program
// prints what each tablet holds and the conflicts kept for review, and exits 0 only if both
// tablets hold exactly the same state.
//
//   two_tablets            (stores in a temporary folder, removed at the end)
//
// Only the public API is used: carnet/store.h, carnet/schema.h, carnet/posix_env.h.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "carnet/posix_env.h"
#include "carnet/schema.h"
#include "carnet/store.h"

namespace {

using carnet::Stamp;
using carnet::Status;
using carnet::Store;

// The system clock, moved forward on demand: the story has minutes between its steps, so that
// "later" in the text is later for the clocks too. Both tablets share it, as two tablets whose
// clocks are right would.
class DemoEnv : public carnet::Env {
 public:
  void Advance(int minutes) { offset_ms_ += minutes * 60 * 1000; }

  int64_t NowMillis() override { return base_.NowMillis() + offset_ms_; }
  uint64_t RandomU64() override { return base_.RandomU64(); }
  void Log(carnet::LogLevel level, std::string_view message) override { base_.Log(level, message); }
  std::string DataDirectory() override { return base_.DataDirectory(); }
  void SleepForMillis(int64_t ms) override { base_.SleepForMillis(ms); }

 private:
  carnet::PosixEnv base_;
  int64_t offset_ms_ = 0;
};

// The folder of the two stores, removed however the program ends.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "carnet-two-tablets-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("two_tablets: cannot create a temporary folder");
      std::exit(2);
    }
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Thrown by Must(): the story cannot go on, and main() says why.
struct Failure {
  std::string message;
};

void Must(const Status& status, const std::string& what) {
  if (!status.ok()) throw Failure{what + " failed: " + status.ToString()};
}

template <typename T>
T Must(carnet::Result<T> result, const std::string& what) {
  Must(result.status(), what);
  return std::move(result.value());
}

struct Tablet {
  std::string device;
  std::unique_ptr<Store> store;
};

Tablet OpenTablet(DemoEnv* env, const TempFolder& folder, const std::string& device) {
  carnet::StoreOptions options;
  options.path = (folder.path() / (device + ".db")).string();
  options.device_id = device;
  options.env = env;
  return Tablet{device, Must(Store::Open(options), "opening " + device)};
}

// What a sync does, without a server in between: the operations one tablet has not had
// acknowledged yet go to the other, which merges them; the sender then drops them from its outbox.
void Send(Tablet& from, Tablet& to) {
  size_t sent = 0, applied = 0;
  for (;;) {
    std::vector<carnet::Operation> ops =
        Must(from.store->PendingOperations(0, 500), "reading " + from.device + "'s outbox");
    if (ops.empty()) break;
    carnet::ApplyStats stats = Must(to.store->ApplyRemote(ops), "merging on " + to.device);
    Must(from.store->AcknowledgeOperations(ops.back().seq), "acknowledging");
    sent += ops.size();
    applied += stats.applied;
  }
  std::printf("  %s -> %s: %zu operations sent, %zu changed something\n", from.device.c_str(),
              to.device.c_str(), sent, applied);
}

// --- Printing -----------------------------------------------------------------------------------

std::string Who(const Stamp& stamp) {
  std::time_t seconds = static_cast<std::time_t>(carnet::HlcPhysicalMs(stamp.hlc) / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char time[16];
  std::strftime(time, sizeof time, "%H:%M UTC", &utc);
  return stamp.device + " at " + time;
}

// A record as the printout names it.
struct Shown {
  std::string collection, id, title;
};

// Prints records and conflicts, naming records instead of showing their 32-digit ids.
class Printer {
 public:
  // `shown`: the records to print, in order; `names`: how ids are shown in values.
  Printer(std::vector<Shown> shown, std::map<std::string, std::string> names)
      : shown_(std::move(shown)), names_(std::move(names)) {}

  void Show(const Tablet& tablet) const {
    std::printf("\n== What %s holds after the sync ==\n", tablet.device.c_str());
    for (const Shown& record : shown_) ShowRecord(*tablet.store, record);
    ShowConflicts(*tablet.store);
  }

 private:
  std::string Name(const std::optional<std::string>& value) const {
    if (!value) return "(cleared)";
    auto it = names_.find(*value);
    return it == names_.end() ? *value : it->second;
  }

  std::string Title(const std::string& id) const {
    for (const Shown& record : shown_) {
      if (record.id == id) return record.title;
    }
    return id;
  }

  void ShowRecord(Store& store, const Shown& shown) const {
    std::printf("  %s\n", shown.title.c_str());
    carnet::Result<carnet::Record> record = store.Get(shown.collection, shown.id);
    if (record.status().code() == carnet::StatusCode::kNotFound) {
      std::printf("    (deleted; the edits the deletion had not seen are among the conflicts)\n");
      return;
    }
    for (const auto& [name, field] : Must(std::move(record), "reading a record").fields) {
      ShowField(name, field);
    }
  }

  void ShowField(const std::string& name, const carnet::FieldValue& field) const {
    switch (field.kind) {
      case carnet::FieldKind::kRegister:
        std::printf("    %-12s %s%s\n", name.c_str(), Name(field.value).c_str(),
                    field.in_conflict ? "   (a concurrent value is kept for review)" : "");
        break;
      case carnet::FieldKind::kSet: {
        std::string elements;
        for (const std::string& e : field.elements) {
          elements += (elements.empty() ? "" : ", ") + Name(e);
        }
        std::printf("    %-12s {%s}\n", name.c_str(), elements.c_str());
        break;
      }
      case carnet::FieldKind::kLog:
        std::printf("    %-12s %zu entries\n", name.c_str(), field.entries.size());
        for (const carnet::LogEntry& entry : field.entries) {
          std::string text = entry.redacted ? "(redacted)" : "\"" + entry.text + "\"";
          std::printf("      %s: %s\n", Who(entry.stamp).c_str(), text.c_str());
        }
        break;
    }
  }

  void ShowConflicts(Store& store) const {
    std::vector<carnet::Conflict> conflicts = Must(store.Conflicts(), "listing conflicts");
    std::printf("  conflicts kept for review: %zu\n", conflicts.size());
    for (const carnet::Conflict& c : conflicts) {
      std::printf("    %s, %s\n", Title(c.record).c_str(), c.field.c_str());
      if (c.kind == carnet::ConflictKind::kConcurrentWrite) {
        std::printf("      in force:      \"%s\" by %s\n", Name(c.kept_value).c_str(),
                    Who(c.kept_stamp).c_str());
        std::printf("      also written:  \"%s\" by %s, concurrently\n",
                    Name(c.losing_value).c_str(), Who(c.losing_stamp).c_str());
      } else {
        std::printf("      deleted by %s\n", Who(c.kept_stamp).c_str());
        std::printf("      not seen:      \"%s\" by %s\n", Name(c.losing_value).c_str(),
                    Who(c.losing_stamp).c_str());
      }
    }
  }

  std::vector<Shown> shown_;
  std::map<std::string, std::string> names_;
};

// --- The story ----------------------------------------------------------------------------------

struct Ids {
  std::string participant, interview, workshop, attendance;
};

Ids CreateOnAmina(Tablet& amina) {
  Store& s = *amina.store;
  Ids ids{s.NewId(), s.NewId(), s.NewId(), ""};
  ids.attendance = carnet::AttendanceId(ids.workshop, ids.participant);
  Must(s.Put("participants", ids.participant,
             {{"first_name", "Sophie"},
              {"last_name", "Martin"},
              {"phase", "assessment"},
              {"status", "active"},
              {"referent", "amina"}}),
       "creating the participant");
  Must(s.Add("participants", ids.participant, "barriers", "mobility"), "adding a barrier");
  Must(s.Add("participants", ids.participant, "barriers", "childcare"), "adding a barrier");
  Must(s.Put("interviews", ids.interview,
             {{"participant", ids.participant},
              {"adviser", "amina"},
              {"date_time", "2026-03-02T09:30:00Z"},
              {"place", "office"},
              {"phase", "assessment"}}),
       "creating the interview");
  Must(s.Put("workshops", ids.workshop,
             {{"theme", "CV and interviews"},
              {"date_time", "2026-03-05T14:00:00Z"},
              {"place", "Maison de l'emploi"},
              {"facilitator", "amina"},
              {"capacity", "12"}}),
       "creating the workshop");
  // The line of the sign-in sheet, prepared with the session; its status is recorded on the day.
  Must(s.Put("attendance", ids.attendance,
             {{"session", ids.workshop}, {"participant", ids.participant}}),
       "preparing the attendance sheet");
  return ids;
}

// What one adviser does offline, on the records both tablets share.
struct OfflineWork {
  std::string phase;
  std::string barrier_added, barrier_removed;
  std::string note;
  std::string attendance;
};

void WorkOffline(Tablet& tablet, const Ids& ids, const OfflineWork& work) {
  Store& s = *tablet.store;
  Must(s.Set("participants", ids.participant, "phase", work.phase), "phase");
  Must(s.Remove("participants", ids.participant, "barriers", work.barrier_removed), "barrier");
  Must(s.Add("participants", ids.participant, "barriers", work.barrier_added), "barrier");
  Must(s.Append("interviews", ids.interview, "notes", work.note).status(), "note");
  Must(s.Add("workshops", ids.workshop, "registered", ids.participant), "registration");
  Must(s.Set("attendance", ids.attendance, "status", work.attendance), "attendance");
  std::printf("  %s: phase %s; barriers -%s +%s; a note on the interview;\n", tablet.device.c_str(),
              work.phase.c_str(), work.barrier_removed.c_str(), work.barrier_added.c_str());
  std::printf("  %*s  registers Sophie to the workshop; attendance %s\n",
              static_cast<int>(tablet.device.size()), "", work.attendance.c_str());
}

int Run(const TempFolder& folder) {
  DemoEnv env;
  Tablet amina = OpenTablet(&env, folder, "tablet-amina");
  Tablet bruno = OpenTablet(&env, folder, "tablet-bruno");

  std::printf("== 1. At the office: Amina creates the records; the tablets sync ==\n");
  Ids ids = CreateOnAmina(amina);
  Send(amina, bruno);
  Send(bruno, amina);

  std::printf("\n== 2. Offline: both advisers edit the same records ==\n");
  env.Advance(120);
  WorkOffline(bruno, ids,
              {"job_search", "childcare", "mobility", "Nursery place fell through.", "excused"});
  Must(bruno.store->Set("interviews", ids.interview, "place", "phone"), "interview place");
  std::printf("  tablet-bruno: corrects the interview's place to phone\n");
  env.Advance(30);
  WorkOffline(amina, ids,
              {"professional_project", "housing", "childcare",
               "Wants to train as a care assistant.", "present"});
  env.Advance(15);
  // Amina finds the interview was entered twice and deletes this copy.
  Must(amina.store->Delete("interviews", ids.interview), "deleting the interview");
  std::printf("  tablet-amina: deletes the interview, entered twice\n");

  std::printf("\n== 3. Back in range: the tablets exchange operations ==\n");
  Send(amina, bruno);
  Send(bruno, amina);

  Printer printer({{"participants", ids.participant, "participant Sophie Martin"},
                   {"interviews", ids.interview, "interview of 2 March with Sophie Martin"},
                   {"attendance", ids.attendance, "attendance of Sophie Martin at the workshop"},
                   {"workshops", ids.workshop, "workshop 'CV and interviews'"}},
                  {{ids.participant, "Sophie Martin"}, {ids.workshop, "CV and interviews"}});
  printer.Show(amina);
  printer.Show(bruno);
  std::printf(
      "\n== How the merge decided ==\n"
      "  phase, attendance status: the later write is in force; the other is kept as a conflict\n"
      "  barriers: Bruno removed mobility, Amina added housing; childcare stays because Bruno\n"
      "            added it again without seeing Amina remove it (an addition wins)\n"
      "  registration: both registered Sophie; she is listed once\n"
      "  interview: Amina deleted it; Bruno's edits, which she had not seen, are kept as "
      "conflicts\n");

  std::string dump_a = Must(amina.store->CanonicalDump(), "dumping tablet-amina");
  std::string dump_b = Must(bruno.store->CanonicalDump(), "dumping tablet-bruno");
  if (dump_a != dump_b) {
    std::fprintf(stderr,
                 "\nNOT CONVERGED: after exchanging every operation the two tablets hold different "
                 "states (their canonical dumps differ)\n");
    return 1;
  }
  std::printf("\nConverged: both tablets hold the same %zu entries (identical canonical dumps).\n",
              static_cast<size_t>(std::count(dump_a.begin(), dump_a.end(), '\n')));
  return 0;
}

}  // namespace

int main() {
  TempFolder folder;
  try {
    return Run(folder);
  } catch (const Failure& failure) {
    std::fprintf(stderr, "two_tablets: %s\n", failure.message.c_str());
    return 2;
  }
}
