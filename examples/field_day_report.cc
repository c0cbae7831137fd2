// The field day's evening report: what converged, what is kept for review, and each tablet
// against the server's own dump of its scope.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "examples/field_day.h"
#include "examples/field_day_process.h"

namespace field_day {
namespace {

using carnet::Result;

std::string NameOf(const std::map<std::string, std::string>& names, const std::string& id) {
  auto it = names.find(id);
  return it == names.end() ? id : it->second;
}

std::string Joined(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "(none)" : out;
}

// A register as a tablet shows it, with a mark when concurrent values are kept for review.
std::string RegisterOf(carnet::Store& store, const std::string& collection, const std::string& id,
                       const std::string& field) {
  Result<carnet::Record> record = store.Get(collection, id);
  if (!record.ok()) return "(" + record.status().ToString() + ")";
  auto it = record->fields.find(field);
  if (it == record->fields.end() || !it->second.value) return "(none)";
  return *it->second.value + (it->second.in_conflict ? " (in conflict)" : "");
}

// Reads a fact on every tablet: one line when they agree, one per tablet when they do not.
bool Fact(const std::vector<Tablet*>& tablets, const std::string& label,
          const std::function<std::string(Tablet&)>& read) {
  std::vector<std::string> values;
  for (Tablet* t : tablets) values.push_back(read(*t));
  bool same = std::all_of(values.begin(), values.end(),
                          [&](const std::string& v) { return v == values.front(); });
  if (same) {
    std::printf("%s: %s\n", label.c_str(), values.front().c_str());
    return true;
  }
  std::printf("%s: DIFFERS between tablets\n", label.c_str());
  for (size_t i = 0; i < tablets.size(); ++i) {
    std::printf("  %s: %s\n", tablets[i]->device.c_str(), values[i].c_str());
  }
  return false;
}

std::vector<std::string> ConflictLines(carnet::Store& store,
                                       const std::map<std::string, std::string>& names) {
  Result<std::vector<carnet::Conflict>> conflicts = store.Conflicts();
  if (!conflicts.ok()) return {"(" + conflicts.status().ToString() + ")"};
  std::vector<std::string> lines;
  for (const carnet::Conflict& c : *conflicts) {
    std::string what = NameOf(names, c.record) + ", " + c.field + ": ";
    std::string losing = c.losing_value.value_or("(cleared)");
    if (c.kind == carnet::ConflictKind::kConcurrentWrite) {
      lines.push_back(what + c.kept_value.value_or("(cleared)") + " by " + c.kept_stamp.device +
                      " is in force; " + losing + " by " + c.losing_stamp.device + " kept");
    } else {
      lines.push_back(what + "deleted by " + c.kept_stamp.device + " while " +
                      c.losing_stamp.device + " wrote \"" + losing + "\"");
    }
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

size_t Lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

bool Report(const std::vector<Tablet*>& tablets, const Cast& cast, const std::string& server_binary,
            const std::string& store_spec, const std::string& log_path) {
  std::map<std::string, std::string> names = cast.names;
  for (const std::string& p : {cast.nadia, cast.julien, cast.sophie}) {
    names[carnet::AttendanceId(cast.workshop, p)] = "attendance of " + names[p];
  }

  std::printf("== What every tablet now shows\n");
  Fact(tablets, "participants", [&](Tablet& t) {
    Result<std::vector<carnet::Record>> all = t.store->List("participants");
    if (!all.ok()) return "(" + all.status().ToString() + ")";
    std::vector<std::string> found;
    for (const carnet::Record& r : *all) found.push_back(NameOf(names, r.id));
    return Joined(found);
  });
  Fact(tablets, "Nadia's phase",
       [&](Tablet& t) { return RegisterOf(*t.store, "participants", cast.nadia, "phase"); });
  Fact(tablets, NameOf(names, cast.interview), [&](Tablet& t) {
    Result<carnet::Record> record = t.store->Get("interviews", cast.interview);
    if (record.ok()) return std::string("present");
    if (record.status().code() != carnet::StatusCode::kNotFound) return record.status().ToString();
    Result<std::vector<carnet::Conflict>> conflicts = t.store->Conflicts();
    size_t edits =
        !conflicts.ok()
            ? 0
            : std::count_if(conflicts->begin(), conflicts->end(),
                            [&](const carnet::Conflict& c) { return c.record == cast.interview; });
    return "deleted, " + std::to_string(edits) + " edits made meanwhile kept for review";
  });
  Fact(tablets, NameOf(names, cast.visit), [&](Tablet& t) {
    Result<carnet::Record> record = t.store->Get("interviews", cast.visit);
    if (!record.ok()) return "(" + record.status().ToString() + ")";
    auto notes = record->fields.find("notes");
    size_t count = notes == record->fields.end() ? 0 : notes->second.entries.size();
    return RegisterOf(*t.store, "interviews", cast.visit, "place") + ", " + std::to_string(count) +
           " note";
  });
  Fact(tablets, NameOf(names, cast.company_visit), [&](Tablet& t) {
    Result<carnet::Record> record = t.store->Get("company_visits", cast.company_visit);
    if (!record.ok()) return "(" + record.status().ToString() + ")";
    std::vector<std::string> proposed;
    for (const std::string& id : record->fields["participants"].elements) {
      proposed.push_back(NameOf(names, id));
    }
    return RegisterOf(*t.store, "company_visits", cast.company_visit, "purpose") + ", at " +
           NameOf(names, record->fields["employer"].value.value_or("")) +
           ", proposed: " + Joined(proposed);
  });
  Fact(tablets, "CV workshop, registered", [&](Tablet& t) {
    Result<carnet::Record> record = t.store->Get("workshops", cast.workshop);
    if (!record.ok()) return "(" + record.status().ToString() + ")";
    std::vector<std::string> registered;
    for (const std::string& id : record->fields["registered"].elements) {
      registered.push_back(NameOf(names, id));
    }
    return Joined(registered);
  });
  Fact(tablets, "CV workshop, attendance", [&](Tablet& t) {
    std::vector<std::string> statuses;
    for (const std::string& p : {cast.nadia, cast.julien, cast.sophie}) {
      statuses.push_back(
          NameOf(names, p) + " " +
          RegisterOf(*t.store, "attendance", carnet::AttendanceId(cast.workshop, p), "status"));
    }
    return Joined(statuses);
  });

  std::printf("== Conflicts kept for review\n");
  std::vector<std::string> reference = ConflictLines(*tablets.front()->store, names);
  for (const std::string& line : reference) std::printf("%s\n", line.c_str());
  bool same = std::all_of(tablets.begin(), tablets.end(),
                          [&](Tablet* t) { return ConflictLines(*t->store, names) == reference; });
  std::printf("the same %zu conflicts on every tablet: %s\n", reference.size(),
              same ? "yes" : "NO");

  std::printf("== Each tablet against carnet-server dump --device\n");
  size_t equal = 0;
  for (Tablet* t : tablets) {
    Result<std::string> mine = t->store->CanonicalDump(true);
    Result<std::string> theirs =
        RunProgram({server_binary, "dump", "--store", store_spec, "--device", t->device}, log_path);
    if (!mine.ok() || !theirs.ok()) {
      std::printf("%s: cannot compare: %s\n", t->device.c_str(),
                  (!mine.ok() ? mine.status() : theirs.status()).ToString().c_str());
    } else if (*mine == *theirs) {
      ++equal;
      std::printf("%s: equal (%zu live entries)\n", t->device.c_str(), Lines(*mine));
    } else {
      std::printf("%s: DIFFERENT: %zu live entries on the tablet, %zu on the server\n",
                  t->device.c_str(), Lines(*mine), Lines(*theirs));
    }
  }
  std::printf("== Result: %zu of %zu tablets equal to the server\n", equal, tablets.size());
  return equal == tablets.size();
}

}  // namespace field_day
