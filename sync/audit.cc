#include <openssl/evp.h>

#include <map>
#include <tuple>

#include "carnet/audit.h"
#include "carnet/server_store.h"
#include "sync/audit_log.h"

namespace carnet {
namespace {

constexpr char kVersionTag[] = "carnet-audit-1";
constexpr size_t kHashBytes = 32;

void Put(std::string* out, std::string_view bytes) {
  *out += std::to_string(bytes.size());
  *out += ':';
  out->append(bytes.data(), bytes.size());
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The 32 bytes a hash's hex stands for; the text as it is if it is not 64 lowercase hex digits
// (only a damaged store holds such a hash, and the row holding it fails the check itself).
std::string HashBytes(const std::string& hex) {
  if (hex.empty()) return std::string(kHashBytes, '\0');
  if (hex.size() != 2 * kHashBytes) return hex;
  std::string bytes;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = HexValue(hex[i]), low = HexValue(hex[i + 1]);
    if (high < 0 || low < 0) return hex;
    bytes.push_back(static_cast<char>(high << 4 | low));
  }
  return bytes;
}

std::string Hex(const unsigned char* bytes, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string AuditEncode(const AuditRow& row) {
  std::string out;
  Put(&out, kVersionTag);
  Put(&out, std::to_string(row.id));
  Put(&out, std::to_string(row.at_ms));
  Put(&out, row.device);
  Put(&out, row.adviser);
  Put(&out, row.action);
  Put(&out, row.collection);
  Put(&out, row.record);
  Put(&out, row.field);
  Put(&out, std::to_string(row.count));
  return out;
}

std::string AuditHash(const std::string& previous_hash, const AuditRow& row) {
  const std::string input = HashBytes(previous_hash) + AuditEncode(row);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha256(), nullptr);
  return Hex(digest, size);
}

Result<AuditCheck> VerifyAudit(ServerStore& store, const std::optional<AuditHead>& anchor) {
  AuditCheck check;
  Result<AuditHead> head = store.ReadAuditHead();
  if (!head.ok()) return head.status();
  check.head = *head;
  auto broken = [&](uint64_t id, std::string problem) {
    check.intact = false;
    check.broken_at = id;
    check.problem = std::move(problem);
    return check;
  };
  std::string previous;  // the hash of the last row checked
  bool anchor_seen = false;
  bool done = false;
  for (uint64_t after = 0; !done && after < check.head.last_id;) {
    Result<std::vector<AuditRow>> rows = store.ReadAudit({}, after, 1000);
    if (!rows.ok()) return rows.status();
    done = rows->empty();
    for (const AuditRow& row : *rows) {
      if (row.id > check.head.last_id) {  // appended since the check began
        done = true;
        break;
      }
      const std::string at = "row " + std::to_string(row.id);
      if (row.id != after + 1) {
        return broken(after + 1, "row " + std::to_string(after + 1) +
                                     " is missing (the log goes from row " +
                                     std::to_string(after) + " to " + at + ")");
      }
      if (AuditHash(previous, row) != row.hash) {
        return broken(row.id, at + " does not match its hash: " + at +
                                  " was altered, or the hash of the row before it was");
      }
      if (anchor && anchor->last_id == row.id) {
        if (anchor->hash != row.hash) {
          return broken(row.id, at + " no longer holds the anchor's hash " + anchor->hash +
                                    ": the log was rewritten from this row or before it");
        }
        anchor_seen = true;
      }
      previous = row.hash;
      after = row.id;
      ++check.rows;
    }
  }
  if (check.rows < check.head.last_id) {
    return broken(check.rows + 1, "rows " + std::to_string(check.rows + 1) + " to " +
                                      std::to_string(check.head.last_id) +
                                      " are missing: the log was cut");
  }
  if (check.head.hash != previous) {
    return broken(check.rows, "the head kept beside the log does not match row " +
                                  std::to_string(check.rows) + ": the log was cut or rewritten");
  }
  if (anchor && !anchor_seen) {
    return broken(anchor->last_id, "row " + std::to_string(anchor->last_id) +
                                       " of the anchor is missing: the log was cut");
  }
  check.intact = true;
  return check;
}

namespace audit {

std::vector<AuditRow> PushRows(const Device& device, int64_t now_ms,
                               const std::vector<Operation>& ops) {
  // Sorted, so that a batch's rows come in the same order whatever the order of its operations.
  std::map<std::tuple<std::string, std::string, std::string, std::string>, uint32_t> counts;
  for (const Operation& op : ops) {
    ++counts[{op.collection, op.record, IsRecordOp(op.kind) ? "" : op.field, OpKindName(op.kind)}];
  }
  std::vector<AuditRow> rows;
  rows.reserve(counts.size());
  for (const auto& [key, count] : counts) {
    const auto& [collection, record, field, action] = key;
    rows.push_back(AuditRow{0, now_ms, device.id, device.adviser, action, collection, record,
                            field, count, ""});
  }
  return rows;
}

std::vector<AuditRow> PullRows(const Device& device, const wire::PullReply& reply) {
  std::map<std::pair<std::string, std::string>, uint32_t> read;
  for (const Entry& e : reply.entries) ++read[{e.key.collection, e.key.record}];
  std::vector<AuditRow> rows;
  rows.reserve(read.size() + reply.forget.size());
  for (const auto& [record, count] : read) {
    rows.push_back(AuditRow{0, reply.server_time_ms, device.id, device.adviser, "read",
                            record.first, record.second, "", count, ""});
  }
  for (const wire::RecordRef& forget : reply.forget) {
    rows.push_back(AuditRow{0, reply.server_time_ms, device.id, device.adviser, "forget",
                            forget.collection, forget.record, "", 1, ""});
  }
  return rows;
}

AuditRow RefusalRow(const Device& device, int64_t now_ms, const std::string& collection,
                    const std::string& record, size_t ops) {
  return AuditRow{0,          now_ms, device.id, device.adviser, "refused", collection,
                  record,     "",     static_cast<uint32_t>(ops), ""};
}

AuditHead Chain(const AuditHead& head, std::vector<AuditRow>* rows) {
  AuditHead next = head;
  for (AuditRow& row : *rows) {
    row.id = ++next.last_id;
    row.hash = AuditHash(next.hash, row);
    next.hash = row.hash;
  }
  return next;
}

}  // namespace audit
}  // namespace carnet
