#include "computenet/ledger/usage_records.h"

#include <algorithm>

namespace computenet::ledger {
namespace {

constexpr char kUsageColumns[] =
    "SELECT provider, record_id, job_id, record, signature, attempt "
    "FROM usage_records ";

StoredUsageRecord UsageFromRow(SQLite::Statement& query) {
  StoredUsageRecord out;
  out.provider = query.getColumn(0).getString();
  out.record_id = query.getColumn(1).getString();
  out.job_id = query.getColumn(2).getString();
  out.record = storage::BlobOf(query.getColumn(3));
  out.signature = storage::BlobOf(query.getColumn(4));
  out.attempt = static_cast<uint32_t>(query.getColumn(5).getInt64());
  return out;
}

std::optional<StoredUsageRecord> First(std::vector<StoredUsageRecord> rows) {
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

}  // namespace

StatusOr<std::vector<StoredUsageRecord>> UsageRecords::Query(
    const std::string& where,
    const std::function<void(SQLite::Statement&)>& bind) {
  std::vector<StoredUsageRecord> out;
  Status read = database_.Run([&]() -> Status {
    auto query = database_.Prepare(std::string(kUsageColumns) + where);
    bind(*query);
    while (query->executeStep()) out.push_back(UsageFromRow(*query));
    return OkStatus();
  });
  if (!read.ok()) return read.WithContext("usage records");
  return out;
}

StatusOr<std::optional<StoredUsageRecord>> UsageRecords::Find(
    const std::string& provider, const std::string& record_id) {
  CN_ASSIGN_OR_RETURN(auto rows, Query("WHERE provider=? AND record_id=?",
                                       [&](SQLite::Statement& query) {
                                         query.bind(1, provider);
                                         query.bind(2, record_id);
                                       }));
  return First(std::move(rows));
}

StatusOr<std::optional<StoredUsageRecord>> UsageRecords::LatestForJob(
    const std::string& job_id) {
  CN_ASSIGN_OR_RETURN(auto rows,
                      Query("WHERE job_id=? ORDER BY attempt DESC, received_ms "
                            "DESC, rowid DESC LIMIT 1",
                            [&](SQLite::Statement& query) {
                              query.bind(1, job_id);
                            }));
  return First(std::move(rows));
}

StatusOr<std::optional<StoredUsageRecord>> UsageRecords::LatestForAttempt(
    const std::string& job_id, uint32_t attempt) {
  CN_ASSIGN_OR_RETURN(auto rows,
                      Query("WHERE job_id=? AND attempt=? ORDER BY "
                            "received_ms DESC, rowid DESC LIMIT 1",
                            [&](SQLite::Statement& query) {
                              query.bind(1, job_id);
                              query.bind(2, static_cast<int64_t>(attempt));
                            }));
  return First(std::move(rows));
}

StatusOr<std::vector<StoredUsageRecord>> UsageRecords::ListForJob(
    const std::string& job_id) {
  return Query("WHERE job_id=? ORDER BY attempt, received_ms, rowid",
               [&](SQLite::Statement& query) { query.bind(1, job_id); });
}

StatusOr<std::vector<StoredUsageRecord>> UsageRecords::List() {
  return Query("ORDER BY received_ms, provider, record_id",
               [](SQLite::Statement&) {});
}

Status UsageRecords::Insert(const StoredUsageRecord& record, int64_t now_ms) {
  return database_.Run([&]() -> Status {
    auto insert = database_.Prepare(
        "INSERT INTO usage_records(provider, record_id, job_id, record, "
        "signature, received_ms, attempt) VALUES(?, ?, ?, ?, ?, ?, ?)");
    insert->bind(1, record.provider);
    insert->bind(2, record.record_id);
    insert->bind(3, record.job_id);
    storage::BindBlob(*insert, 4, record.record);
    storage::BindBlob(*insert, 5, record.signature);
    insert->bind(6, static_cast<int64_t>(now_ms));
    insert->bind(7, static_cast<int64_t>(std::max<uint32_t>(1, record.attempt)));
    insert->exec();
    return OkStatus();
  });
}

}  // namespace computenet::ledger
