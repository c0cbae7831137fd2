// The kinds of transaction the crash and I/O-error loops drive, each from a shared history:
// tablet B made the caseload and A holds it; A's own edits reached the server but wait for its
// acknowledgement; A has a pull cursor.
#include <memory>

#include "carnet/merge.h"
#include "tests/core/store_helpers.h"
#include "tests/crash/crash_harness.h"

namespace carnet::testing {
namespace {

void AcknowledgeAll(Store& store) {
  std::vector<Operation> outbox = Outbox(store);
  if (!outbox.empty()) REQUIRE_OK(store.AcknowledgeOperations(outbox.back().seq));
}

void SharedHistory(Tablet& a, Tablet& b) {
  REQUIRE_OK(b->Put("participants", "p1",
                    {{"first_name", "Awa"}, {"last_name", "Diallo"}, {"phase", "assessment"}}));
  REQUIRE_OK(b->Put("interviews", "i1", {{"participant", "p1"}, {"place", "office"}}));
  REQUIRE_OK(b->Append("interviews", "i1", "notes", "First meeting: wants to drive a bus."));
  REQUIRE_OK(b->Put("workshops", "w1", {{"theme", "CV writing"}}));
  REQUIRE_OK(b->Add("workshops", "w1", "registered", "p1"));
  REQUIRE_OK(b->Put("participants", "p2", {{"first_name", "Jean"}, {"last_name", "Martin"}}));
  REQUIRE_OK(b->Put("interviews", "i2", {{"participant", "p2"}, {"place", "home"}}));
  REQUIRE_OK(b->Put("actions", "a2", {{"participant", "p2"}, {"label", "Call the employer"}}));
  Deliver(*b, *a);
  AcknowledgeAll(*b);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "life_project"));
  REQUIRE_OK(a->Append("interviews", "i1", "notes", "Follow-up by phone: licence booked."));
  REQUIRE_OK(a->SetSyncState("pull_cursor", "16"));
  Deliver(*a, *b);  // pushed; the acknowledgement has not come back yet
}

// Text long enough that a batch spans several pages.
std::string Note(int i) {
  std::string note = "Interview " + std::to_string(i) + ": ";
  while (note.size() < 600) note += "situation reviewed, next steps agreed with the adviser. ";
  return note;
}

}  // namespace

Scenario LocalEditScenario() {
  Scenario s;
  s.name = "a local edit";
  s.setup = SharedHistory;
  s.run = [](Tablet& a) -> Status {
    Result<Transaction> txn = a->Begin();
    if (!txn.ok()) return txn.status();
    CARNET_RETURN_IF_ERROR(txn->Put(
        "participants", "p3",
        {{"first_name", "Leila"}, {"last_name", "Benali"}, {"phase", "assessment"}}));
    CARNET_RETURN_IF_ERROR(txn->Set("participants", "p1", "phase", "job_search"));
    CARNET_RETURN_IF_ERROR(txn->Add("participants", "p1", "barriers", "mobility"));
    Result<Stamp> note = txn->Append("interviews", "i1", "notes", Note(1));
    if (!note.ok()) return note.status();
    CARNET_RETURN_IF_ERROR(txn->Delete("workshops", "w1"));
    return txn->Commit();
  };
  return s;
}

Scenario PulledBatchScenario() {
  struct Batch {
    std::vector<Entry> entries;
  };
  auto batch = std::make_shared<Batch>();
  Scenario s;
  s.name = "applying a pulled batch";
  s.setup = [batch](Tablet& a, Tablet& b) {
    SharedHistory(a, b);
    // What the server holds from B since A's cursor: new interviews with long notes, and a phase
    // written concurrently with A's.
    for (int i = 0; i < 8; ++i) {
      const std::string id = "i-pull-" + std::to_string(i);
      REQUIRE_OK(b->Put("interviews", id, {{"participant", "p1"}, {"place", "company"}}));
      REQUIRE_OK(b->Append("interviews", id, "notes", Note(i)));
    }
    REQUIRE_OK(b->Set("participants", "p1", "phase", "health"));
    for (const Operation& op : Outbox(*b)) {
      for (Entry& e : MergeOperation(op, {})) batch->entries.push_back(std::move(e));
    }
  };
  s.run = [batch](Tablet& a) -> Status {
    return a->ApplyPulled(batch->entries, {{"workshops", "w1"}}, {{"pull_cursor", "17"}})
        .status();
  };
  s.sync_redoes = true;
  s.evicted = {{"workshops", "w1"}};
  return s;
}

Scenario CursorScenario() {
  Scenario s;
  s.name = "saving a cursor";
  s.setup = SharedHistory;
  s.run = [](Tablet& a) { return a->SetSyncState("pull_cursor", "17"); };
  s.sync_redoes = true;
  return s;
}

Scenario AcknowledgeScenario() {
  auto last_pushed = std::make_shared<uint64_t>(0);
  Scenario s;
  s.name = "acknowledging a push";
  s.setup = [last_pushed](Tablet& a, Tablet& b) {
    SharedHistory(a, b);
    *last_pushed = Outbox(*a).back().seq;
  };
  s.run = [last_pushed](Tablet& a) { return a->AcknowledgeOperations(*last_pushed); };
  s.sync_redoes = true;
  return s;
}

Scenario EvictionScenario() {
  Scenario s;
  s.name = "an eviction";
  s.setup = SharedHistory;
  s.run = [](Tablet& a) { return a->Forget("participants", "p2"); };
  s.sync_redoes = true;
  s.evicted = {{"participants", "p2"}, {"interviews", "i2"}, {"actions", "a2"}};
  return s;
}

Scenario CloseScenario() {
  Scenario s;
  s.name = "a local edit, then closing the store";
  s.setup = SharedHistory;
  s.run = [](Tablet& a) {
    Status status = a->Set("participants", "p1", "phase", "job_search");
    a.Close();  // the last connection checkpoints the WAL into the database file
    return status;
  };
  return s;
}

}  // namespace carnet::testing
