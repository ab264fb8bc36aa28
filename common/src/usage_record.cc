#include "computenet/common/usage_record.h"

#include "computenet/common/sha256.h"

namespace computenet {

uint64_t CardSecondsFor(uint32_t cards, int64_t start_ms, int64_t end_ms) {
  if (end_ms <= start_ms) return 0;
  // Unsigned difference: defined for any pair (a signed one overflows).
  const uint64_t elapsed_ms =
      static_cast<uint64_t>(end_ms) - static_cast<uint64_t>(start_ms);
  // Rounded up without elapsed + 999, which wraps near 2^64.
  const uint64_t seconds = elapsed_ms / 1000 + (elapsed_ms % 1000 != 0);
  return static_cast<uint64_t>(cards) * seconds;
}

StatusOr<v1::UsageReport> SignUsageRecord(const SigningKey& key,
                                          const v1::UsageRecord& record) {
  v1::UsageReport report;
  record.SerializeToString(report.mutable_record());
  CN_ASSIGN_OR_RETURN(
      *report.mutable_signature(),
      key.Sign(DomainSeparated(kUsageRecordDomain, report.record())));
  return report;
}

StatusOr<v1::UsageRecord> VerifyUsageRecord(const std::string& public_key_hex,
                                            const std::string& record_bytes,
                                            const std::string& signature) {
  CN_ASSIGN_OR_RETURN(VerifyingKey key, VerifyingKey::FromHex(public_key_hex));
  CN_RETURN_IF_ERROR(
      key.Verify(DomainSeparated(kUsageRecordDomain, record_bytes), signature));
  v1::UsageRecord record;
  if (!record.ParseFromString(record_bytes)) {
    return InvalidArgumentError("usage record does not parse");
  }
  if (record.record_id().empty() || record.job_id().empty() ||
      record.provider().empty()) {
    return InvalidArgumentError("usage record lacks record_id/job_id/provider");
  }
  // Bounded before any arithmetic: start = INT64_MIN, end = INT64_MAX once
  // wrapped to card_seconds 0, passed, and poisoned the placement (every
  // later record started "inside" the billed interval).
  if (record.start_ms() < 0 || record.end_ms() > kMaxUsageTimestampMs) {
    return InvalidArgumentError(
        "usage record times must lie between 1970 and 2500 (Unix ms)");
  }
  if (record.end_ms() < record.start_ms()) {
    return InvalidArgumentError("usage record ends before it starts");
  }
  if (record.end_ms() - record.start_ms() > kMaxUsageIntervalMs) {
    return InvalidArgumentError("usage record covers more than 400 days");
  }
  if (record.cards() == 0 || record.cards() > kMaxUsageCards) {
    return InvalidArgumentError("usage record cards must be 1.." +
                                std::to_string(kMaxUsageCards));
  }
  if (record.card_seconds() !=
      CardSecondsFor(record.cards(), record.start_ms(), record.end_ms())) {
    return InvalidArgumentError(
        "usage record card_seconds disagrees with cards x duration");
  }
  if (!record.result_digest().empty()) {
    if (!IsSha256Hex(record.result_digest()) || !record.closes_job()) {
      return InvalidArgumentError(
          "usage record result_digest must be a SHA-256 in hex, on the "
          "closing record only");
    }
  }
  return record;
}

}  // namespace computenet
