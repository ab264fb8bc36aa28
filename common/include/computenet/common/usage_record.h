// Usage records: what a provider measured for one job, signed with the
// provider's Ed25519 key. Providers sign; brokers and auditors verify. The
// signature covers the serialized record byte for byte, under the domain
// "computenet.v1.UsageRecord", so it cannot be replayed as another object.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_USAGE_RECORD_H_
#define COMPUTENET_COMMON_USAGE_RECORD_H_

#include <cstdint>
#include <string>

#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"
#include "computenet/v1/provider.pb.h"

namespace computenet {

inline constexpr char kUsageRecordDomain[] = "computenet.v1.UsageRecord";
// What a record may describe: times from 1970 to 2500 (Unix ms), at most
// 400 days (jobs run at most 366), at most 4096 nodes x 64 cards.
inline constexpr int64_t kMaxUsageTimestampMs = 16'725'225'600'000;
inline constexpr int64_t kMaxUsageIntervalMs = int64_t{400} * 24 * 3600 * 1000;
inline constexpr uint32_t kMaxUsageCards = 4096 * 64;

// Per-second metering: cards * ceil((end_ms - start_ms) / 1000); a started
// second counts. 0 if end_ms <= start_ms.
uint64_t CardSecondsFor(uint32_t cards, int64_t start_ms, int64_t end_ms);

// Serializes and signs record. INTERNAL if signing fails.
StatusOr<v1::UsageReport> SignUsageRecord(const SigningKey& key,
                                          const v1::UsageRecord& record);

// Checks signature over record_bytes with the hex Ed25519 public key, then
// parses and sanity-checks the record (times within the bounds above,
// end >= start, 1..kMaxUsageCards cards, card_seconds matches the metering
// rule). UNAUTHENTICATED for a bad signature, INVALID_ARGUMENT for
// a malformed or inconsistent record.
StatusOr<v1::UsageRecord> VerifyUsageRecord(const std::string& public_key_hex,
                                            const std::string& record_bytes,
                                            const std::string& signature);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_USAGE_RECORD_H_
