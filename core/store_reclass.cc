// After an app update, the fields a previous version did not know take their class.
// The previous version sealed their values with the store key, their class being unknown to it
// (core/ENCRYPTION.md). Values of classes S and H open whatever key sealed them, since a sealed
// value names its key; values of a class kept in clear must be opened once, or they would read
// as their sealed bytes.
#include <string>
#include <vector>

#include "core/store_impl.h"

namespace carnet {
namespace {

// meta "clear_fields": the fields kept in clear under the schema the store was last opened with.
constexpr const char* kClearFieldsKey = "clear_fields";

std::string ClearFields(const Store::Impl& impl) {
  std::string fields;
  for (const CollectionSpec& c : impl.schema_->collections()) {
    for (const FieldSpec& f : c.fields) {
      if (impl.ProtectionOf(c.name, f.name) != Store::Impl::Protection::kClear) continue;
      fields += c.name + "." + f.name + "\n";
    }
  }
  return fields;
}

// Whether the entry row's value or set element has the form of a sealed one.
bool LooksSealed(const sqlite::Statement& row) {
  if (static_cast<FieldKind>(row.Int(5)) == FieldKind::kSet) {
    return !crypto::ElementKeyId(row.Text(3)).empty();
  }
  std::optional<std::string> value = row.OptionalText(7);
  return value && !crypto::ValueKeyId(*value).empty();
}

}  // namespace

Status Store::Impl::OpenNowClear() {
  const std::string clear_fields = ClearFields(*this);
  Result<std::optional<std::string>> before = GetMeta(kClearFieldsKey);
  if (!before.ok()) return before.status();
  if (before->has_value() && **before == clear_fields) return Status::Ok();

  std::vector<Entry> sealed;
  {
    Result<sqlite::Statement*> st =
        db_->Prepare(std::string(kEntryColumns) + "WHERE field <> '' AND live = 1");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      if (ProtectionOf((*st)->Text(0), (*st)->Text(2)) != Protection::kClear) continue;
      if (!LooksSealed(**st)) continue;
      Result<Entry> e = ReadEntry(**st);
      if (!e.ok()) {
        (*st)->Reset();
        return e.status();
      }
      sealed.push_back(std::move(e.value()));
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  CARNET_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  Status status = [&]() -> Status {
    for (const Entry& e : sealed) {
      Entry opened = e;
      Result<bool> readable = OpenSealed(&opened);
      // A clear value that only looks sealed does not open: it stays as it is, as does one
      // sealed with an erased key.
      if (!readable.ok() && readable.status().code() == StatusCode::kCorruption) continue;
      if (!readable.ok()) return readable.status();
      if (!*readable) continue;
      if (opened.key.element != e.key.element) CARNET_RETURN_IF_ERROR(DeleteEntry(e.key));
      CARNET_RETURN_IF_ERROR(PutEntry(opened));
    }
    CARNET_RETURN_IF_ERROR(PutMeta(kClearFieldsKey, clear_fields));
    return db_->Exec("COMMIT");
  }();
  if (!status.ok()) (void)db_->Exec("ROLLBACK");
  return status;
}

}  // namespace carnet
