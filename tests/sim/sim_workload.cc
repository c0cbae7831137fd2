#include "tests/sim/sim_workload.h"

#include <functional>
#include <optional>
#include <utility>

namespace carnet::sim {
namespace {

using Fields = std::vector<std::pair<std::string, std::optional<std::string>>>;

const std::vector<std::string> kPhases = {"assessment", "life_project", "health",
                                          "professional_project", "job_search",
                                          "in_work_followup"};
const std::vector<std::string> kPlaces = {"office", "home", "company", "phone", "other"};
const std::vector<std::string> kBarriers = {"mobility", "childcare", "housing", "health",
                                            "language", "digital", "debt", "other"};
const std::vector<std::string> kAttendance = {"registered", "present", "excused", "absent"};
const std::vector<std::string> kNames = {"Léa", "Karim", "Ana", "Jean-Pierre", "Zoë", "Mamadou",
                                         "Nguyễn", "O'Brien"};
// Texts an adviser types, with what a dump must escape (tabs, new lines, backslashes).
const std::vector<std::string> kNotes = {
    "Entretien de diagnostic : freins mobilité, pas de permis.",
    "A relancé l'employeur\tréponse attendue lundi",
    "Projet pro : aide-soignante\nformation IFAS à Amiens",
    "Santé : suivi CMP, RDV le 12 \\ à confirmer",
    "Absente au RDV, message laissé",
    "Reprise d'emploi CDD 4 mois — Boulangerie Petit",
};

std::string TwoDigits(int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); }

std::string RandomDate(Rng& rng) {
  return "2026-" + TwoDigits(rng.Between(1, 12)) + "-" + TwoDigits(rng.Between(1, 28));
}
std::string RandomDateTime(Rng& rng) {
  return RandomDate(rng) + "T" + TwoDigits(rng.Between(8, 18)) + ":" +
         TwoDigits(15 * rng.Between(0, 3)) + ":00Z";
}

// One action at a time on one tablet.
class Desk {
 public:
  Desk(Store& store, const Identity& me, Registry& registry, Rng& rng,
       const WorkloadOptions& options)
      : store_(store), me_(me), registry_(registry), rng_(rng), options_(options) {}

  Action Act() {
    using Fn = Action (Desk::*)();
    static const std::vector<std::pair<int, Fn>> kMix = {
        {24, &Desk::Note},          {18, &Desk::EditInterview}, {7, &Desk::NewInterview},
        {3, &Desk::ReviseOrRedact}, {7, &Desk::EditParticipant}, {4, &Desk::Barriers},
        {4, &Desk::NewParticipant}, {2, &Desk::HandOver},        {6, &Desk::Registration},
        {4, &Desk::Attendance},     {1, &Desk::NewWorkshop},     {4, &Desk::Actions},
        {4, &Desk::ExitOrSituation}, {2, &Desk::Consent},        {3, &Desk::Delete},
        {1, &Desk::Restore},        {2, &Desk::ResolveConflict},
    };
    std::vector<int> weights;
    for (const auto& [w, fn] : kMix) {
      bool off = (fn == &Desk::HandOver && !options_.handovers) ||
                 (fn == &Desk::Restore && !options_.restores);
      weights.push_back(off ? 0 : w);
    }
    return (this->*kMix[rng_.Weighted(weights)].second)();
  }

 private:
  // A record of `collection` this tablet holds and can read (not deleted), if one is found.
  std::optional<Record> Held(const std::string& collection) {
    const std::vector<std::string>& ids = registry_.Of(collection);
    for (int attempt = 0; attempt < 6 && !ids.empty(); ++attempt) {
      // Half the time among the recent ones: current work, where tablets meet.
      size_t from = rng_.Chance(0.5) && ids.size() > 48 ? ids.size() - 48 : 0;
      const std::string& id = ids[from + rng_.Below(ids.size() - from)];
      Result<Record> record = store_.Get(collection, id);
      if (record.ok()) return std::move(record.value());
    }
    return std::nullopt;
  }

  Action Done(std::string what, Status status) { return Action{std::move(what), std::move(status)}; }
  Action Nothing(const std::string& what) { return Done(what + ": nothing to work on", Status::Ok()); }

  std::string Create(const std::string& collection) {
    std::string id = store_.NewId();
    registry_.Add(collection, id);
    return id;
  }

  Action NewParticipant() {
    std::string id = Create("participants");
    Result<Transaction> txn = store_.Begin();
    if (!txn.ok()) return Done("new participant", txn.status());
    Status s = txn->Put("participants", id,
                        {{"first_name", rng_.Pick(kNames)},
                         {"last_name", rng_.Pick(kNames)},
                         {"birth_date", "19" + std::to_string(rng_.Between(60, 99)) + "-0" +
                                            std::to_string(rng_.Between(1, 9)) + "-15"},
                         {"referent", me_.adviser},
                         {"territory", rng_.Pick(me_.territories)},
                         {"status", "active"},
                         {"phase", "assessment"},
                         {"entry_date", RandomDate(rng_)}});
    if (s.ok() && rng_.Chance(0.6)) s = txn->Add("participants", id, "barriers", rng_.Pick(kBarriers));
    if (s.ok()) s = txn->Commit();
    return Done("new participant " + id, s);
  }

  Action EditParticipant() {
    std::optional<Record> p = Held("participants");
    if (!p) return NewParticipant();
    static const std::vector<std::string> kFields = {"phone", "email", "commune", "status",
                                                     "phase", "rural"};
    const std::string& field = rng_.Pick(kFields);
    std::optional<std::string> value;
    if (field == "phone") value = "06 12 34 56 " + TwoDigits(rng_.Below(4));
    if (field == "email") value = "p" + std::to_string(rng_.Below(3)) + "@example.org";
    if (field == "commune") value = rng_.Pick(std::vector<std::string>{"Amiens", "Abbeville", "Péronne"});
    if (field == "status") value = rng_.Pick(std::vector<std::string>{"active", "suspended", "exited"});
    if (field == "phase") value = rng_.Pick(kPhases);
    if (field == "rural") value = rng_.Chance(0.5) ? "true" : "false";
    if (rng_.Chance(0.05)) value.reset();  // cleared
    return Done("participant " + p->id + " " + field,
                store_.Set("participants", p->id, field, value));
  }

  Action Barriers() {
    std::optional<Record> p = Held("participants");
    if (!p) return Nothing("barriers");
    const std::vector<std::string>& present = p->fields["barriers"].elements;
    if (!present.empty() && rng_.Chance(0.4)) {
      const std::string& b = rng_.Pick(present);
      return Done("participant " + p->id + " barrier -" + b,
                  store_.Remove("participants", p->id, "barriers", b));
    }
    std::string b = rng_.Pick(kBarriers);
    return Done("participant " + p->id + " barrier +" + b,
                store_.Add("participants", p->id, "barriers", b));
  }

  // A participant handed to another adviser, or moved to another territory: their records leave
  // the scope of some tablets and enter that of others.
  Action HandOver() {
    std::optional<Record> p = Held("participants");
    if (!p) return Nothing("hand-over");
    Fields fields;
    if (rng_.Chance(0.6)) fields.push_back({"referent", rng_.Pick(Advisers())});
    if (fields.empty() || rng_.Chance(0.4)) fields.push_back({"territory", rng_.Pick(Territories())});
    std::string to;
    for (const auto& [f, v] : fields) to += " " + f + "=" + *v;
    return Done("hand over participant " + p->id + to, store_.Put("participants", p->id, fields));
  }

  Action NewInterview() {
    std::optional<Record> p = Held("participants");
    if (!p) return NewParticipant();
    std::string id = Create("interviews");
    Result<Transaction> txn = store_.Begin();
    if (!txn.ok()) return Done("new interview", txn.status());
    Status s = txn->Put("interviews", id,
                        {{"participant", p->id},
                         {"adviser", me_.adviser},
                         {"date_time", RandomDateTime(rng_)},
                         {"place", rng_.Pick(kPlaces)},
                         {"phase", rng_.Pick(kPhases)},
                         {"kind", "regular"}});
    if (s.ok()) s = txn->Append("interviews", id, "notes", rng_.Pick(kNotes)).status();
    if (s.ok()) s = txn->Commit();
    return Done("new interview " + id + " of " + p->id, s);
  }

  Action EditInterview() {
    std::optional<Record> i = Held("interviews");
    if (!i) return NewInterview();
    static const std::vector<std::string> kFields = {"place", "phase", "next_appointment",
                                                     "date_time", "kind"};
    const std::string& field = rng_.Pick(kFields);
    std::string value;
    if (field == "place") value = rng_.Pick(kPlaces);
    if (field == "phase") value = rng_.Pick(kPhases);
    if (field == "next_appointment" || field == "date_time") value = RandomDateTime(rng_);
    if (field == "kind") value = rng_.Pick(std::vector<std::string>{"regular", "month_1", "month_5"});
    return Done("interview " + i->id + " " + field + "=" + value,
                store_.Set("interviews", i->id, field, value));
  }

  Action Note() {
    std::optional<Record> i = Held("interviews");
    if (!i) return NewInterview();
    const char* field = rng_.Chance(0.15) ? "health_notes" : "notes";
    std::string text = rng_.Pick(kNotes) + " (" + me_.device + ")";
    return Done(std::string("interview ") + i->id + " " + field + " +note",
                store_.Append("interviews", i->id, field, text).status());
  }

  Action ReviseOrRedact() {
    std::optional<Record> i = Held("interviews");
    if (!i) return Nothing("revise");
    std::vector<LogEntry> notes;
    for (const LogEntry& e : i->fields["notes"].entries) {
      if (!e.redacted) notes.push_back(e);
    }
    if (notes.empty()) return Nothing("revise");
    const LogEntry& e = rng_.Pick(notes);
    if (rng_.Chance(0.3)) {
      return Done("interview " + i->id + " redact " + StampToString(e.stamp),
                  store_.Redact("interviews", i->id, "notes", e.stamp));
    }
    return Done("interview " + i->id + " revise " + StampToString(e.stamp),
                store_.Append("interviews", i->id, "notes", e.text + " (corrigé)", e.stamp).status());
  }

  Action NewWorkshop() {
    std::string id = Create("workshops");
    return Done("new workshop " + id,
                store_.Put("workshops", id,
                           {{"theme", "CV et lettre de motivation"},
                            {"date_time", RandomDateTime(rng_)},
                            {"place", "Maison France Services"},
                            {"facilitator", me_.adviser},
                            {"capacity", std::to_string(rng_.Between(6, 14))},
                            {"territory", rng_.Pick(me_.territories)}}));
  }

  // Registration to a workshop: the set of the session, and the attendance record whose id
  // every tablet derives alike (two advisers registering the same person meet on it).
  Action Registration() {
    std::optional<Record> w = Held("workshops");
    if (!w) return NewWorkshop();
    const std::vector<std::string>& registered = w->fields["registered"].elements;
    if (!registered.empty() && rng_.Chance(0.3)) {
      const std::string& p = rng_.Pick(registered);
      return Done("workshop " + w->id + " unregister " + p,
                  store_.Remove("workshops", w->id, "registered", p));
    }
    std::optional<Record> p = Held("participants");
    if (!p) return Nothing("registration");
    std::string attendance = AttendanceId(w->id, p->id);
    if (registry_.WasDeleted("attendance", attendance)) return Nothing("registration");
    registry_.Add("attendance", attendance);
    Result<Transaction> txn = store_.Begin();
    if (!txn.ok()) return Done("registration", txn.status());
    Status s = txn->Add("workshops", w->id, "registered", p->id);
    if (s.ok()) {
      s = txn->Put("attendance", attendance,
                   {{"session", w->id}, {"participant", p->id}, {"status", "registered"}});
    }
    if (s.ok()) s = txn->Commit();
    return Done("workshop " + w->id + " register " + p->id, s);
  }

  Action Attendance() {
    std::optional<Record> a = Held("attendance");
    if (!a) return Registration();
    if (rng_.Chance(0.25)) {
      return Done("attendance " + a->id + " evidence",
                  store_.Append("attendance", a->id, "evidence", "signature " + me_.device).status());
    }
    std::string status = rng_.Pick(kAttendance);
    return Done("attendance " + a->id + " " + status,
                store_.Set("attendance", a->id, "status", status));
  }

  Action Actions() {
    std::optional<Record> a = rng_.Chance(0.6) ? Held("actions") : std::nullopt;
    if (a) {
      std::string status = rng_.Pick(std::vector<std::string>{"open", "done", "dropped"});
      return Done("action " + a->id + " " + status, store_.Set("actions", a->id, "status", status));
    }
    std::optional<Record> p = Held("participants");
    if (!p) return Nothing("action");
    std::string id = Create("actions");
    return Done("new action " + id,
                store_.Put("actions", id,
                           {{"participant", p->id},
                            {"label", rng_.Pick(std::vector<std::string>{"permis B", "CV", "mutuelle"})},
                            {"due_date", RandomDate(rng_)},
                            {"status", "open"}}));
  }

  // ESF records: registers until validated, then frozen; validation only moves forward.
  Action ExitOrSituation() {
    const char* collection = rng_.Chance(0.5) ? "exits" : "entry_situations";
    std::optional<Record> r = rng_.Chance(0.7) ? Held(collection) : std::nullopt;
    if (r) {
      if (rng_.Chance(0.3)) {
        std::string v = rng_.Pick(std::vector<std::string>{"draft", "validated", "exported"});
        return Done(std::string(collection) + " " + r->id + " validation=" + v,
                    store_.Set(collection, r->id, "validation", v));
      }
      bool exit = std::string(collection) == "exits";
      return Done(std::string(collection) + " " + r->id + " edit",
                  exit ? store_.Set(collection, r->id, "exit_date", RandomDate(rng_))
                       : store_.Set(collection, r->id, "education_level",
                                    "isced" + std::to_string(rng_.Between(0, 8))));
    }
    std::optional<Record> p = Held("participants");
    if (!p) return Nothing(collection);
    std::string id = Create(collection);
    Fields fields = {{"participant", p->id}, {"validation", "draft"}};
    if (std::string(collection) == "exits") {
      fields.push_back({"exit_date", RandomDate(rng_)});
      fields.push_back({"category", "durable_employment"});
    } else {
      fields.push_back({"labour_status", "unemployed"});
    }
    return Done(std::string("new ") + collection + " " + id, store_.Put(collection, id, fields));
  }

  Action Consent() {
    std::optional<Record> c = Held("consents");
    if (c) {
      return Done("consent " + c->id + " event",
                  store_.Append("consents", c->id, "events", "notice RGPD remise").status());
    }
    std::optional<Record> p = Held("participants");
    if (!p) return Nothing("consent");
    std::string id = Create("consents");
    Result<Transaction> txn = store_.Begin();
    if (!txn.ok()) return Done("consent", txn.status());
    Status s = txn->Put("consents", id, {{"participant", p->id}});
    if (s.ok()) s = txn->Append("consents", id, "events", "information notice given").status();
    if (s.ok()) s = txn->Commit();
    return Done("new consent " + id, s);
  }

  Action Delete() {
    static const std::vector<std::string> kCollections = {
        "interviews", "interviews", "interviews", "interviews", "actions", "actions",
        "attendance", "attendance", "exits", "participants", "workshops"};
    const std::string& collection = rng_.Pick(kCollections);
    std::optional<Record> r = Held(collection);
    if (!r) return Nothing("delete");
    Status status = store_.Delete(collection, r->id);
    if (status.ok()) registry_.MarkDeleted(collection, r->id);
    return Done("delete " + collection + " " + r->id, status);
  }

  // A deleted record brought back, or its delete confirmed.
  Action Restore() {
    static const std::vector<std::string> kCollections = {"interviews", "actions", "attendance",
                                                          "participants"};
    const std::string& collection = rng_.Pick(kCollections);
    const std::vector<std::string>& ids = registry_.Of(collection);
    for (int attempt = 0; attempt < 6 && !ids.empty(); ++attempt) {
      const std::string& id = rng_.Pick(ids);
      Result<Record> record = store_.Get(collection, id);
      if (record.ok() || record.status().message().find("is deleted") == std::string::npos) continue;
      if (rng_.Chance(0.7)) return Done("restore " + collection + " " + id, store_.Restore(collection, id));
      bool keep = rng_.Chance(0.5);
      return Done(std::string(keep ? "confirm delete of " : "undelete ") + collection + " " + id,
                  store_.ResolveDeleted(collection, id, keep));
    }
    return Nothing("restore");
  }

  Action ResolveConflict() {
    Result<std::vector<Conflict>> conflicts = store_.Conflicts();
    if (!conflicts.ok()) return Done("conflicts", conflicts.status());
    if (conflicts->empty()) return Note();
    const Conflict& c = rng_.Pick(*conflicts);
    if (c.kind == ConflictKind::kEditedWhileDeleted) {
      bool keep = !options_.restores || rng_.Chance(0.5);
      return Done(std::string("resolve deleted ") + c.collection + " " + c.record +
                      (keep ? " (keep deleted)" : " (restore)"),
                  store_.ResolveDeleted(c.collection, c.record, keep));
    }
    std::optional<std::string> value = rng_.Chance(0.5) ? c.kept_value : c.losing_value;
    return Done("resolve " + c.collection + " " + c.record + " " + c.field,
                store_.Resolve(c.collection, c.record, c.field, value));
  }

  Store& store_;
  const Identity& me_;
  Registry& registry_;
  Rng& rng_;
  const WorkloadOptions& options_;
};

}  // namespace

const std::vector<std::string>& Advisers() {
  static const std::vector<std::string> kAdvisers = {"adviser-a", "adviser-b", "adviser-c",
                                                     "adviser-d", "adviser-e", "adviser-z"};
  return kAdvisers;
}

const std::vector<std::string>& Territories() {
  static const std::vector<std::string> kTerritories = {"bassin-nord", "bassin-sud", "bassin-est",
                                                        "bassin-ouest"};
  return kTerritories;
}

Action Act(Store& store, const Identity& me, Registry& registry, Rng& rng,
           const WorkloadOptions& options) {
  return Desk(store, me, registry, rng, options).Act();
}

}  // namespace carnet::sim
