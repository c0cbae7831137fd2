#include "carnet/schema.h"

#include <algorithm>
#include <charconv>

namespace carnet {
namespace {

FieldSpec Reg(std::string name, FieldType type, Sensitivity s = Sensitivity::kPersonal,
              std::vector<std::string> values = {}) {
  return FieldSpec{std::move(name), FieldKind::kRegister, type, s, std::move(values), false};
}
FieldSpec Enum(std::string name, std::vector<std::string> values,
               Sensitivity s = Sensitivity::kPersonal) {
  return Reg(std::move(name), FieldType::kEnum, s, std::move(values));
}
FieldSpec ForwardOnly(std::string name, std::vector<std::string> values) {
  FieldSpec f = Enum(std::move(name), std::move(values));
  f.forward_only = true;
  return f;
}
FieldSpec SetOf(std::string name, FieldType type, Sensitivity s = Sensitivity::kPersonal,
                std::vector<std::string> values = {}) {
  return FieldSpec{std::move(name), FieldKind::kSet, type, s, std::move(values), false};
}
FieldSpec Log(std::string name, Sensitivity s) {
  return FieldSpec{std::move(name), FieldKind::kLog, FieldType::kText, s, {}, false};
}

CollectionSpec Collection(std::string name, std::vector<FieldSpec> fields,
                          std::string participant_field, bool belongs_to_participant) {
  CollectionSpec c;
  c.name = std::move(name);
  c.fields = std::move(fields);
  c.participant_field = std::move(participant_field);
  c.belongs_to_participant = belongs_to_participant;
  return c;
}

const std::vector<std::string> kPhases = {"assessment",           "life_project",
                                          "health",               "professional_project",
                                          "job_search",           "in_work_followup"};
const std::vector<std::string> kYesNoDeclined = {"yes", "no", "declined"};
const std::vector<std::string> kValidation = {"draft", "validated", "exported"};
// The in-work follow-up's formal interviews: employer, employee and adviser, or two of them.
const std::vector<std::string> kInterviewFormats = {"tripartite", "bipartite"};

Schema BuildProgramme() {
  using T = FieldType;
  using S = Sensitivity;
  std::vector<CollectionSpec> c;
  c.push_back(Collection("participants",
               {Reg("first_name", T::kText), Reg("last_name", T::kText),
                Reg("birth_date", T::kDate), Enum("gender", {"female", "male", "other", "undisclosed"}),
                Reg("commune", T::kText), Reg("rural", T::kBoolean), Reg("phone", T::kText),
                Reg("email", T::kText), Reg("rsa_entry_date", T::kDate),
                Reg("entry_date", T::kDate), Reg("referent", T::kText),
                Reg("territory", T::kText),
                Enum("status", {"active", "suspended", "exited"}), Enum("phase", kPhases),
                // The health barrier makes this set health-related as a whole: it is classed H
                // so that it travels only where health data may.
                SetOf("barriers", T::kEnum, S::kHealth,
                      {"mobility", "childcare", "housing", "health", "language", "digital", "debt",
                       "other"})},
               "", true));
  {
    CollectionSpec esf = Collection("entry_situations",
                       {Reg("participant", T::kRef),
                        Enum("labour_status", {"unemployed", "inactive", "employed"}),
                        Reg("long_term_unemployed", T::kBoolean),
                        Enum("education_level", {"isced0", "isced1", "isced2", "isced3", "isced4",
                                                 "isced5", "isced6", "isced7", "isced8"}),
                        Enum("age_band", {"under_25", "25_54", "over_54"}),
                        Enum("disability", kYesNoDeclined, S::kHealth),
                        Enum("foreign_background", kYesNoDeclined, S::kSocial),
                        Enum("other_disadvantage", kYesNoDeclined, S::kSocial),
                        ForwardOnly("validation", kValidation)},
                       "participant", true);
    esf.freeze_field = "validation";
    esf.freeze_rank = 1;
    c.push_back(std::move(esf));
  }
  c.push_back(Collection("consents",
               {Reg("participant", T::kRef), Log("events", S::kPersonal)},
               "participant", true));
  c.push_back(Collection("interviews",
               {Reg("participant", T::kRef), Reg("adviser", T::kText),
                Reg("date_time", T::kDateTime),
                Enum("place", {"office", "home", "company", "phone", "other"}),
                Enum("phase", kPhases), Enum("kind", {"regular", "month_1", "month_5"}),
                Reg("next_appointment", T::kDateTime), Log("notes", S::kSocial),
                Log("health_notes", S::kHealth)},
               "participant", true));
  c.push_back(Collection("actions",
               {Reg("participant", T::kRef), Reg("label", T::kText), Reg("due_date", T::kDate),
                Enum("status", {"open", "done", "dropped"})},
               "participant", true));
  c.push_back(Collection("workshops",
               {Reg("theme", T::kText), Reg("date_time", T::kDateTime), Reg("place", T::kText),
                Reg("facilitator", T::kText), Reg("capacity", T::kInteger),
                Reg("territory", T::kText), SetOf("registered", T::kRef)},
               "", false));
  c.push_back(Collection("attendance",
               {Reg("session", T::kRef), Reg("participant", T::kRef),
                Enum("status", {"registered", "present", "excused", "absent"}),
                Log("evidence", S::kPersonal)},
               "participant", true));
  // `employer` is the name as typed before employers were records; `employer_id` names the
  // record. A subsidised contract is a CAE or a CIE; "subsidised" stays for those recorded before.
  c.push_back(Collection("followups",
               {Reg("participant", T::kRef), Reg("employer", T::kText),
                Reg("employer_id", T::kRef),
                Enum("contract", {"open_ended", "fixed_term_6m_plus", "fixed_term_under_6m",
                                  "temp_work", "subsidised", "integration_activity",
                                  "business_creation", "training", "subsidised_cae",
                                  "subsidised_cie"}),
                Reg("start_date", T::kDate), Reg("planned_end", T::kDate),
                Reg("hours_per_week", T::kInteger), Reg("month_1_date", T::kDate),
                Enum("month_1_format", kInterviewFormats), Log("month_1_notes", S::kSocial),
                Reg("month_5_date", T::kDate), Enum("month_5_format", kInterviewFormats),
                Log("month_5_notes", S::kSocial)},
               "participant", true));
  // Employers and company visits go by territory, like workshops; a visit may propose nobody
  // (prospecting).
  c.push_back(Collection("employers",
               {Reg("name", T::kText), Reg("siret", T::kText), Reg("address", T::kText),
                Reg("commune", T::kText), Reg("sector", T::kText),
                Reg("contact_name", T::kText), Reg("contact_phone", T::kText),
                Reg("contact_email", T::kText), Reg("territory", T::kText)},
               "", false));
  c.push_back(Collection("company_visits",
               {Reg("employer", T::kRef), Reg("adviser", T::kText), Reg("date", T::kDate),
                Enum("purpose", {"prospecting", "placement", "in_work_followup"}),
                SetOf("participants", T::kRef), Log("notes", S::kSocial),
                Reg("territory", T::kText)},
               "", false));
  {
    CollectionSpec exits = Collection("exits",
                         {Reg("participant", T::kRef), Reg("exit_date", T::kDate),
                          Enum("category", {"durable_employment", "subsidised_employment",
                                            "temporary_employment", "training", "other"}),
                          Reg("result_6_months", T::kText), ForwardOnly("validation", kValidation)},
                         "participant", true);
    exits.freeze_field = "validation";
    exits.freeze_rank = 1;
    c.push_back(std::move(exits));
  }
  return Schema(std::move(c));
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int ToInt(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool IsValidDate(std::string_view v) {
  if (v.size() != 10 || v[4] != '-' || v[7] != '-') return false;
  if (!AllDigits(v.substr(0, 4)) || !AllDigits(v.substr(5, 2)) || !AllDigits(v.substr(8, 2)))
    return false;
  int year = ToInt(v.substr(0, 4)), month = ToInt(v.substr(5, 2)), day = ToInt(v.substr(8, 2));
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1900 || month < 1 || month > 12 || day < 1 || day > kDays[month - 1]) return false;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return !(month == 2 && day == 29 && !leap);
}

bool IsValidDateTime(std::string_view v) {
  if (v.size() != 20 || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != 'Z') return false;
  if (!IsValidDate(v.substr(0, 10))) return false;
  auto two = [&](size_t at, int max) {
    return AllDigits(v.substr(at, 2)) && ToInt(v.substr(at, 2)) <= max;
  };
  return two(11, 23) && two(14, 59) && two(17, 59);
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    if (n > 1 && c < 0xc2 && n == 2) return false;  // overlong two-byte form
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

}  // namespace

const char* FieldKindName(FieldKind kind) {
  switch (kind) {
    case FieldKind::kRegister: return "register";
    case FieldKind::kSet: return "set";
    case FieldKind::kLog: return "log";
  }
  return "?";
}

const char* FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kText: return "text";
    case FieldType::kInteger: return "integer";
    case FieldType::kBoolean: return "boolean";
    case FieldType::kDate: return "date";
    case FieldType::kDateTime: return "datetime";
    case FieldType::kEnum: return "enum";
    case FieldType::kRef: return "ref";
  }
  return "?";
}

const char* SensitivityName(Sensitivity s) {
  switch (s) {
    case Sensitivity::kNone: return "-";
    case Sensitivity::kPersonal: return "P";
    case Sensitivity::kSocial: return "S";
    case Sensitivity::kHealth: return "H";
  }
  return "?";
}

const FieldSpec* CollectionSpec::Find(std::string_view field) const {
  for (const FieldSpec& f : fields) {
    if (f.name == field) return &f;
  }
  return nullptr;
}

Schema::Schema(std::vector<CollectionSpec> collections) : collections_(std::move(collections)) {}

const Schema& Schema::Programme() {
  static const Schema* const kProgramme = new Schema(BuildProgramme());
  return *kProgramme;
}

const CollectionSpec* Schema::Find(std::string_view collection) const {
  for (const CollectionSpec& c : collections_) {
    if (c.name == collection) return &c;
  }
  return nullptr;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsValidRecordId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxRecordIdBytes && std::all_of(id.begin(), id.end(), IdChar);
}

bool IsValidDeviceId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxNameBytes && std::all_of(id.begin(), id.end(), IdChar);
}

Status ValidateValue(const FieldSpec& field, std::string_view value) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("field '" + field.name + "' (" + FieldTypeName(field.type) + "): " + why);
  };
  if (value.size() > kMaxValueBytes) {
    return bad("value of " + std::to_string(value.size()) + " bytes exceeds the limit of " +
               std::to_string(kMaxValueBytes));
  }
  if (!IsValidUtf8(value)) return bad("value is not valid UTF-8");
  switch (field.type) {
    case FieldType::kText:
      return Status::Ok();
    case FieldType::kInteger: {
      std::string_view digits = value.substr(!value.empty() && value[0] == '-' ? 1 : 0);
      int64_t parsed = 0;
      auto r = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (!AllDigits(digits) || r.ec != std::errc() || r.ptr != value.data() + value.size())
        return bad("'" + std::string(value) + "' is not an integer");
      return Status::Ok();
    }
    case FieldType::kBoolean:
      if (value == "true" || value == "false") return Status::Ok();
      return bad("expected true or false");
    case FieldType::kDate:
      if (IsValidDate(value)) return Status::Ok();
      return bad("'" + std::string(value) + "' is not a date YYYY-MM-DD");
    case FieldType::kDateTime:
      if (IsValidDateTime(value)) return Status::Ok();
      return bad("'" + std::string(value) + "' is not a UTC date-time YYYY-MM-DDTHH:MM:SSZ");
    case FieldType::kEnum:
      if (std::find(field.values.begin(), field.values.end(), value) != field.values.end())
        return Status::Ok();
      return bad("'" + std::string(value) + "' is not one of the allowed values");
    case FieldType::kRef:
      if (IsValidRecordId(value)) return Status::Ok();
      return bad("'" + std::string(value) + "' is not a record id");
  }
  return bad("unknown type");
}

bool IsKnownValue(const FieldSpec& field, std::string_view value) {
  return field.type != FieldType::kEnum ||
         std::find(field.values.begin(), field.values.end(), value) != field.values.end();
}

Status ValidateReceivedValue(const FieldSpec& field, std::string_view value) {
  if (IsKnownValue(field, value)) return ValidateValue(field, value);
  // A name is valid UTF-8 and within every size limit.
  if (IsValidName(value)) return Status::Ok();
  return InvalidArgument("field '" + field.name + "' (enum): '" +
                         std::string(value.substr(0, 100)) +
                         "' is neither one of the allowed values nor a newer one's name");
}

std::string AttendanceId(std::string_view session_id, std::string_view participant_id) {
  return std::string(session_id) + ":" + std::string(participant_id);
}

}  // namespace carnet
