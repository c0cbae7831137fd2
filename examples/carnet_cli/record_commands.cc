// The commands that read and change records.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "examples/carnet_cli/cli.h"
#include "examples/carnet_cli/render.h"
#include "platform/json_writer.h"

namespace carnet_cli {
namespace {

using carnet::Status;
using carnet::Store;

// Opens the tablet and runs `fn(Store&)` on it.
template <typename Fn>
Status WithTablet(const Context& ctx, Fn fn) {
  carnet::Result<std::unique_ptr<Store>> store = OpenTablet(ctx);
  if (!store.ok()) return store.status();
  return fn(**store);
}

// An empty value on the command line clears a register.
std::optional<std::string> ValueOrClear(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return text;
}

// Echoes a piece of user input in an error message, cut to a readable length.
std::string Quoted(const std::string& text) {
  constexpr size_t kMax = 60;
  return "'" + (text.size() > kMax ? text.substr(0, kMax) + "..." : text) + "'";
}

// Prints `items` as one JSON array, each item written by `write`.
template <typename T>
Status PrintArray(Context& ctx, const carnet::Result<std::vector<T>>& items,
                  void (*write)(JsonWriter&, const T&)) {
  if (!items.ok()) return items.status();
  JsonWriter json;
  json.BeginArray();
  for (const T& item : *items) write(json, item);
  json.EndArray();
  ctx.out = json.text() + "\n";
  return Status::Ok();
}

}  // namespace

Status PutCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  std::vector<std::pair<std::string, std::optional<std::string>>> fields;
  for (size_t i = 2; i < o.size(); ++i) {
    size_t equals = o[i].find('=');
    if (equals == std::string::npos || equals == 0) {
      return carnet::InvalidArgument("expected FIELD=VALUE (FIELD= clears it), got " +
                                     Quoted(o[i]));
    }
    fields.emplace_back(o[i].substr(0, equals), ValueOrClear(o[i].substr(equals + 1)));
  }
  // One call, one transaction: a bad field refuses the whole command and writes nothing.
  return WithTablet(ctx, [&](Store& store) { return store.Put(o[0], o[1], fields); });
}

Status SetAddCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  return WithTablet(ctx, [&](Store& store) { return store.Add(o[0], o[1], o[2], o[3]); });
}

Status SetRemoveCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  return WithTablet(ctx, [&](Store& store) { return store.Remove(o[0], o[1], o[2], o[3]); });
}

Status AppendCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  return WithTablet(ctx, [&](Store& store) {
    carnet::Result<carnet::Stamp> stamp = store.Append(o[0], o[1], o[2], o[3]);
    if (!stamp.ok()) return stamp.status();
    ctx.out = carnet::StampToString(*stamp) + "\n";
    return Status::Ok();
  });
}

Status DeleteCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  return WithTablet(ctx, [&](Store& store) { return store.Delete(o[0], o[1]); });
}

Status GetCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  return WithTablet(ctx, [&](Store& store) {
    carnet::Result<carnet::Record> record = store.Get(o[0], o[1]);
    if (!record.ok()) return record.status();
    JsonWriter json;
    WriteRecord(json, *record);
    ctx.out = json.text() + "\n";
    return Status::Ok();
  });
}

Status ListCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  return WithTablet(ctx,
                    [&](Store& store) { return PrintArray(ctx, store.List(o[0]), WriteRecord); });
}

Status ConflictsCommand(Context& ctx) {
  return WithTablet(
      ctx, [&](Store& store) { return PrintArray(ctx, store.Conflicts(), WriteConflict); });
}

Status ResolveCommand(Context& ctx) {
  const std::vector<std::string>& o = ctx.operands;
  const bool keep_deleted = ctx.options.count("keep-deleted") != 0;
  const bool restore = ctx.options.count("restore") != 0;
  if (o.size() == 2 && keep_deleted != restore) {
    return WithTablet(ctx,
                      [&](Store& store) { return store.ResolveDeleted(o[0], o[1], keep_deleted); });
  }
  if (o.size() != 4 || keep_deleted || restore) {
    return Usage(
        "resolve COLLECTION ID FIELD VALUE, or resolve COLLECTION ID "
        "--keep-deleted|--restore");
  }
  return WithTablet(
      ctx, [&](Store& store) { return store.Resolve(o[0], o[1], o[2], ValueOrClear(o[3])); });
}

Status NewIdCommand(Context& ctx) {
  return WithTablet(ctx, [&](Store& store) {
    ctx.out = store.NewId() + "\n";
    return Status::Ok();
  });
}

}  // namespace carnet_cli
