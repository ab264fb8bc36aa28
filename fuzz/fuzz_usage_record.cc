// Fuzzes the usage record check (common/usage_record.h, VerifyUsageRecord)
// as OnUsageReport runs it on a UsageReport's bytes: once with the report's
// own signature, and once signed by the provider's key, as an enrolled
// provider can sign any bytes, so that the checks behind the signature see
// every record. An accepted record must obey the metering rule and bounds.
#include <cstddef>
#include <cstdint>

#include "computenet/common/usage_record.h"
#include "computenet/v1/provider.pb.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

namespace {

void CheckAccepted(const computenet::v1::UsageRecord& record) {
  using namespace computenet;
  if (record.start_ms() < 0 || record.end_ms() > kMaxUsageTimestampMs ||
      record.end_ms() < record.start_ms() ||
      record.end_ms() - record.start_ms() > kMaxUsageIntervalMs ||
      record.cards() == 0 || record.cards() > kMaxUsageCards ||
      record.card_seconds() !=
          CardSecondsFor(record.cards(), record.start_ms(), record.end_ms())) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  v1::UsageReport report;
  if (!report.ParseFromArray(data, static_cast<int>(size))) return 0;
  const SigningKey& key = fuzz::ProviderKey();
  const std::string public_hex = key.verifying_key().hex();
  auto as_sent =
      VerifyUsageRecord(public_hex, report.record(), report.signature());
  if (as_sent.ok()) CheckAccepted(*as_sent);
  v1::UsageRecord parsed;
  if (!parsed.ParseFromString(report.record())) return 0;
  auto signed_report = SignUsageRecord(key, parsed);
  if (!signed_report.ok()) __builtin_trap();
  auto verified = VerifyUsageRecord(public_hex, signed_report->record(),
                                    signed_report->signature());
  if (verified.ok()) CheckAccepted(*verified);
  // The record bytes exactly as sent, signed: unknown fields and all.
  auto signature =
      key.Sign(DomainSeparated(kUsageRecordDomain, report.record()));
  if (!signature.ok()) __builtin_trap();
  auto raw = VerifyUsageRecord(public_hex, report.record(), *signature);
  if (raw.ok()) CheckAccepted(*raw);
  return 0;
}
