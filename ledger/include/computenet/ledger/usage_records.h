// UsageRecords: the providers' signed usage records as received, exactly as
// signed (the bytes and the signature), in the ledger's `usage_records`
// table. Each record a charge posts is stored in the same transaction as
// the charge, so the audit can re-verify every charge from its signature.
//
// Thread safety: one thread (the ledger's owner).
#ifndef COMPUTENET_LEDGER_USAGE_RECORDS_H_
#define COMPUTENET_LEDGER_USAGE_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/storage/database.h"

namespace computenet::ledger {

struct StoredUsageRecord {
  std::string provider;
  std::string record_id;
  std::string job_id;
  std::string record;     // serialized v1::UsageRecord, as signed
  std::string signature;
  // Which placement of the job it bills (JobInfo.attempts when it arrived):
  // a job stopped by a reclaim and run again has one record per run.
  uint32_t attempt = 1;
};

class UsageRecords {
 public:
  // database must outlive this.
  explicit UsageRecords(storage::Database& database) : database_(database) {}

  // nullopt if the provider never sent this record id.
  StatusOr<std::optional<StoredUsageRecord>> Find(const std::string& provider,
                                                  const std::string& record_id);
  // The job's latest record (highest attempt, then newest); nullopt if none.
  StatusOr<std::optional<StoredUsageRecord>> LatestForJob(
      const std::string& job_id);
  // The latest record billing one attempt of the job; nullopt if none yet.
  StatusOr<std::optional<StoredUsageRecord>> LatestForAttempt(
      const std::string& job_id, uint32_t attempt);
  // Every record of the job (one per metering interval and attempt), oldest
  // first.
  StatusOr<std::vector<StoredUsageRecord>> ListForJob(const std::string& job_id);
  // Every record, oldest first.
  StatusOr<std::vector<StoredUsageRecord>> List();
  // ALREADY_EXISTS if (provider, record_id) is stored.
  Status Insert(const StoredUsageRecord& record, int64_t now_ms);

 private:
  StatusOr<std::vector<StoredUsageRecord>> Query(
      const std::string& where, const std::function<void(SQLite::Statement&)>& bind);

  storage::Database& database_;
};

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_USAGE_RECORDS_H_
