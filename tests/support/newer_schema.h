// The programme's schema as a later app release extends it, for the tests of tablets and servers
// on two schema versions at once (core/README.md, Mixed versions).
#pragma once

#include <utility>
#include <vector>

#include "carnet/schema.h"

namespace carnet::testing {

// Schema::Programme() plus what the newer release adds: a collection (`job_fairs`, which goes
// by its territory, like workshops), a field (`participants.preferred_language`), and enum
// values: a phase (`post_exit`, for participants and interviews), a barrier (`transport`) and a
// forward-only state after the others (`validation`: `archived`). Job fairs name participants
// (`attendees`, `speaker`), as a newer app's fields may.
inline const Schema& NewerSchema() {
  static const Schema* const kNewer = [] {
    std::vector<CollectionSpec> collections = Schema::Programme().collections();
    for (CollectionSpec& c : collections) {
      for (FieldSpec& f : c.fields) {
        if (f.name == "phase") f.values.push_back("post_exit");
        if (f.name == "barriers") f.values.push_back("transport");
        if (f.name == "validation") f.values.push_back("archived");
      }
      if (c.name == "participants") {
        c.fields.push_back(FieldSpec{"preferred_language",
                                     FieldKind::kRegister,
                                     FieldType::kText,
                                     Sensitivity::kPersonal,
                                     {},
                                     false});
      }
    }
    CollectionSpec fairs;
    fairs.name = "job_fairs";
    fairs.belongs_to_participant = false;
    fairs.fields = {
        FieldSpec{"name", FieldKind::kRegister, FieldType::kText, Sensitivity::kNone, {}, false},
        FieldSpec{
            "territory", FieldKind::kRegister, FieldType::kText, Sensitivity::kNone, {}, false},
        FieldSpec{"sector",
                  FieldKind::kRegister,
                  FieldType::kEnum,
                  Sensitivity::kNone,
                  {"care", "construction", "retail", "other"},
                  false},
        FieldSpec{"contacts", FieldKind::kLog, FieldType::kText, Sensitivity::kPersonal, {}, false},
        FieldSpec{"attendees", FieldKind::kSet, FieldType::kRef, Sensitivity::kPersonal, {}, false},
        FieldSpec{
            "speaker", FieldKind::kRegister, FieldType::kRef, Sensitivity::kPersonal, {}, false}};
    collections.push_back(std::move(fairs));
    return new Schema(std::move(collections));
  }();
  return *kNewer;
}

}  // namespace carnet::testing
