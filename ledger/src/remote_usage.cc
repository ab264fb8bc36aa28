#include "computenet/ledger/remote_usage.h"

#include "computenet/ledger/ledger.h"

namespace computenet::ledger {

using storage::BindBlob;
using storage::BlobOf;
using storage::StatusFromSqlite;
namespace {

std::string SignedBytes(v1::RemoteUsage usage) {
  usage.clear_broker_signature();
  return DomainSeparated(kRemoteUsageDomain, usage.SerializeAsString());
}

}  // namespace

Status SignRemoteUsage(const SigningKey& key, v1::RemoteUsage* usage) {
  CN_ASSIGN_OR_RETURN(std::string signature, key.Sign(SignedBytes(*usage)));
  usage->set_broker_signature(std::move(signature));
  return OkStatus();
}

StatusOr<v1::UsageRecord> VerifyRemoteUsage(const std::string& public_key_hex,
                                            const v1::RemoteUsage& usage) {
  CN_ASSIGN_OR_RETURN(VerifyingKey key, VerifyingKey::FromHex(public_key_hex));
  CN_RETURN_IF_ERROR(key.Verify(SignedBytes(usage), usage.broker_signature()));
  v1::UsageRecord record;
  if (!record.ParseFromString(usage.record())) {
    return InvalidArgumentError("remote usage: record does not parse");
  }
  if (record.job_id() != usage.job_id()) {
    return InvalidArgumentError("remote usage: record is for another job");
  }
  if (usage.billed_card_seconds() > record.card_seconds()) {
    return InvalidArgumentError("remote usage: bills more than was metered");
  }
  if (usage.billed_card_seconds() > usage.cumulative_card_seconds()) {
    return InvalidArgumentError("remote usage: bills more than its total");
  }
  // The cumulative rule: this record costs charge(total) - charge(before).
  CN_ASSIGN_OR_RETURN(
      int64_t amount,
      ChargeForInterval(
          usage.cumulative_card_seconds() - usage.billed_card_seconds(),
          usage.billed_card_seconds(), usage.price_per_card_hour()));
  if (amount != usage.amount()) {
    return InvalidArgumentError("remote usage: amount breaks the rounding rule");
  }
  return record;
}

}  // namespace computenet::ledger
