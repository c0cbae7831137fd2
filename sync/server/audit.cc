#include <openssl/evp.h>

#include <charconv>
#include <map>
#include <tuple>

#include "carnet/audit.h"
#include "carnet/server_store.h"
#include "sync/server/audit_log.h"

namespace carnet {
namespace {

constexpr char kVersionTag[] = "carnet-audit-1";
constexpr size_t kHashBytes = 32;

void Put(std::string* out, std::string_view bytes) {
  char length[24];
  const char* end = std::to_chars(length, length + sizeof length, bytes.size()).ptr;
  out->append(length, static_cast<size_t>(end - length));
  out->push_back(':');
  out->append(bytes.data(), bytes.size());
}

template <typename Integer>
void PutNumber(std::string* out, Integer value) {
  char digits[24];
  const char* end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  Put(out, std::string_view(digits, end - digits));
}

// AuditEncode into `out`, whose capacity is kept from row to row.
void EncodeInto(const AuditRow& row, std::string* out) {
  out->clear();
  Put(out, kVersionTag);
  PutNumber(out, row.id);
  PutNumber(out, row.at_ms);
  Put(out, row.device);
  Put(out, row.adviser);
  Put(out, row.action);
  Put(out, row.collection);
  Put(out, row.record);
  Put(out, row.field);
  PutNumber(out, row.count);
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
  std::string bytes(kHashBytes, '\0');
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = HexValue(hex[i]), low = HexValue(hex[i + 1]);
    if (high < 0 || low < 0) return hex;
    bytes[i / 2] = static_cast<char>(high << 4 | low);
  }
  return bytes;
}

void HexInto(const unsigned char* bytes, size_t size, std::string* out) {
  static const char kDigits[] = "0123456789abcdef";
  out->resize(2 * size);
  for (size_t i = 0; i < size; ++i) {
    (*out)[2 * i] = kDigits[bytes[i] >> 4];
    (*out)[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
}

// Hashes row after row with one digest context and one encoding buffer: a first snapshot's page
// chains a thousand rows, and a context and a few strings made for each row cost more than the
// SHA-256 itself.
class Hasher {
 public:
  Hasher() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {}
  ~Hasher() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  // SHA-256(previous || AuditEncode(row)) as hex into *hex; its bytes stay in digest().
  void Hash(std::string_view previous, const AuditRow& row, std::string* hex) {
    EncodeInto(row, &encoded_);
    size_ = 0;
    if (md_ == nullptr || ctx_ == nullptr || !EVP_DigestInit_ex2(ctx_, md_, nullptr) ||
        !EVP_DigestUpdate(ctx_, previous.data(), previous.size()) ||
        !EVP_DigestUpdate(ctx_, encoded_.data(), encoded_.size()) ||
        !EVP_DigestFinal_ex(ctx_, digest_, &size_)) {
      size_ = 0;  // out of memory: an empty hash, which no check accepts
    }
    HexInto(digest_, size_, hex);
  }
  std::string_view digest() const {
    return std::string_view(reinterpret_cast<const char*>(digest_), size_);
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
  std::string encoded_;
  unsigned char digest_[EVP_MAX_MD_SIZE];
  unsigned int size_ = 0;
};

// One a thread: the server hashes on its request threads (several at once on PostgreSQL).
Hasher& ThreadHasher() {
  thread_local Hasher hasher;
  return hasher;
}

}  // namespace

std::string AuditEncode(const AuditRow& row) {
  std::string out;
  EncodeInto(row, &out);
  return out;
}

std::string AuditHash(const std::string& previous_hash, const AuditRow& row) {
  std::string hex;
  ThreadHasher().Hash(HashBytes(previous_hash), row, &hex);
  return hex;
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
  // Views into the reply, which outlives the map: no copy per entry served.
  std::map<std::pair<std::string_view, std::string_view>, uint32_t> read;
  for (const Entry& e : reply.entries) ++read[{e.key.collection, e.key.record}];
  std::vector<AuditRow> rows;
  rows.reserve(read.size() + reply.forget.size());
  for (const auto& [record, count] : read) {
    rows.push_back(AuditRow{0, reply.server_time_ms, device.id, device.adviser, "read",
                            std::string(record.first), std::string(record.second), "", count,
                            ""});
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
  Hasher& hasher = ThreadHasher();
  AuditHead next = head;
  std::string previous = HashBytes(head.hash);
  for (AuditRow& row : *rows) {
    row.id = ++next.last_id;
    hasher.Hash(previous, row, &row.hash);
    previous.assign(hasher.digest());  // an empty digest chains as AuditHash would: on ""
    if (previous.empty()) previous.assign(kHashBytes, '\0');
  }
  if (!rows->empty()) next.hash = rows->back().hash;
  return next;
}

}  // namespace audit
}  // namespace carnet
