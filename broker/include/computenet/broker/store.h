// Store: the broker's durable state in one SQLite file (WAL, synchronous=FULL):
// enrollments, providers, jobs, usage records, the ledger tables (accounts,
// entries, holds, checkpoints, replicas of peers' ledgers) and a meta table.
// Schema version 2; a version-1 file is migrated in place when opened for
// writing (store.cc, kMigrationV2). Anything
// the broker acknowledges is committed here first.
//
// Thread safety: a Store is used by one thread (the broker's core loop, or a
// CLI command). Other processes may open the same file: SQLite serializes
// writers, and busy_timeout makes a short wait instead of an error.
#ifndef COMPUTENET_BROKER_STORE_H_
#define COMPUTENET_BROKER_STORE_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "computenet/broker/provider_stats.h"
#include "computenet/common/identity.h"
#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::broker {

enum class Role { kProvider, kConsumer, kPeer, kAdmin };
std::string_view RoleName(Role role);
// INVALID_ARGUMENT for anything but provider, consumer, peer, admin.
StatusOr<Role> ParseRole(std::string_view name);

struct Enrollment {
  Role role = Role::kConsumer;
  std::string name;
  std::string curve_public;
  std::string ed25519_public;  // hex
  int64_t enrolled_ms = 0;
  bool revoked = false;
  // Consumers: the organization fair share groups them by; the name when
  // none was given at enrollment.
  std::string organization;
};

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

class Store {
 public:
  // Opens (creating if needed) and migrates the database at path.
  // UNAVAILABLE if the file cannot be opened; DATA_LOSS if its schema is
  // newer than this binary knows.
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  // Opens an existing database read-only, for offline audit.
  static StatusOr<std::unique_ptr<Store>> OpenReadOnly(const std::string& path);

  SQLite::Database& db() { return *db_; }

  // A prepared statement for `sql`, kept for reuse: preparing costs more
  // than most of the ledger's point queries (bench/settlement_bench.cc).
  // The guard resets it when it goes out of scope, so no half-read result
  // keeps an old snapshot open. Not reentrant for one sql: finish a use
  // before starting the next. Throws SQLite::Exception like Statement.
  class Cached {
   public:
    explicit Cached(SQLite::Statement& statement) : statement_(statement) {}
    ~Cached() { statement_.tryReset(); }
    Cached(const Cached&) = delete;
    Cached& operator=(const Cached&) = delete;
    SQLite::Statement& operator*() { return statement_; }
    SQLite::Statement* operator->() { return &statement_; }

   private:
    SQLite::Statement& statement_;
  };
  Cached Prepare(const std::string& sql);

  // --- meta: facts about the file itself (which broker owns it) -------------
  // nullopt if the key was never set.
  StatusOr<std::optional<std::string>> GetMeta(const std::string& key);
  Status SetMeta(const std::string& key, const std::string& value);

  // --- enrollments ---------------------------------------------------------
  // ALREADY_EXISTS if the key or (role, name) is already enrolled.
  // organization: for consumers (fair share); empty = the name.
  Status Enroll(Role role, const PublicIdentity& identity, int64_t now_ms,
                const std::string& organization = "");
  // NOT_FOUND if no such enrollment.
  Status Revoke(Role role, const std::string& name);
  // nullopt if the key is not enrolled (revoked ones are returned, flagged).
  StatusOr<std::optional<Enrollment>> FindEnrollmentByKey(
      const std::string& curve_public);
  StatusOr<std::optional<Enrollment>> FindEnrollment(Role role,
                                                     const std::string& name);
  StatusOr<std::vector<Enrollment>> ListEnrollments();

  // --- providers -----------------------------------------------------------
  Status SaveProviderRegistration(const std::string& name,
                                  const v1::RegisterProvider& registration,
                                  int64_t now_ms);
  Status SetProviderOnline(const std::string& name, bool online,
                           int64_t now_ms);
  // Every provider that ever registered, with its last registration.
  StatusOr<std::vector<std::pair<std::string, v1::RegisterProvider>>>
  ListProviders();
  // Marks every provider offline (at broker start: they must re-register).
  Status MarkAllProvidersOffline();

  // --- jobs ----------------------------------------------------------------
  // Inserts a new job, assigning its global id "<broker_id>-<seq>". If the
  // consumer already submitted idempotency_key, returns that job and sets
  // *duplicate. The job's state is stored as given (normally QUEUED).
  StatusOr<v1::JobInfo> InsertJob(const std::string& broker_id,
                                  v1::JobInfo job,
                                  const std::string& idempotency_key,
                                  bool* duplicate);
  // Inserts a job that already has its global id (one forwarded here by a
  // peer). ALREADY_EXISTS if the id is taken.
  Status InsertJobWithId(const v1::JobInfo& job, int64_t now_ms);
  // Rewrites a job's row. NOT_FOUND if it does not exist.
  Status UpdateJob(const v1::JobInfo& job, int64_t now_ms);
  // NOT_FOUND if absent.
  StatusOr<v1::JobInfo> GetJob(const std::string& job_id);
  // Newest first. consumer empty = every consumer; states empty = any state.
  StatusOr<std::vector<v1::JobInfo>> ListJobs(
      const std::string& consumer, const std::vector<v1::JobState>& states,
      uint32_t limit);
  // Oldest first (submission order), any consumer.
  StatusOr<std::vector<v1::JobInfo>> JobsInStates(
      const std::vector<v1::JobState>& states);

  // --- usage records ---------------------------------------------------------
  // nullopt if the provider never sent this record id.
  StatusOr<std::optional<StoredUsageRecord>> FindUsageRecord(
      const std::string& provider, const std::string& record_id);
  // The job's latest record (highest attempt, then newest); nullopt if none.
  StatusOr<std::optional<StoredUsageRecord>> FindUsageRecordForJob(
      const std::string& job_id);
  // The latest record billing one attempt of the job; nullopt if none yet.
  StatusOr<std::optional<StoredUsageRecord>> FindUsageRecordForAttempt(
      const std::string& job_id, uint32_t attempt);
  // Every record of the job (one per metering interval and attempt), oldest
  // first.
  StatusOr<std::vector<StoredUsageRecord>> ListUsageRecordsForJob(
      const std::string& job_id);
  Status InsertUsageRecord(const StoredUsageRecord& record, int64_t now_ms);
  StatusOr<std::vector<StoredUsageRecord>> ListUsageRecords();

  // --- provider track records (reliability) ----------------------------------
  // Adds one event to the provider's record (creating it).
  Status RecordProviderEvent(const std::string& provider, ProviderEvent event,
                             int64_t now_ms);
  // Every provider with a record.
  StatusOr<std::map<std::string, ProviderStats>> ListProviderStats();

 private:
  explicit Store(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
  Status Migrate();

  std::unique_ptr<SQLite::Database> db_;
  // Declared after db_: destroyed (finalized) before the connection closes.
  std::map<std::string, std::unique_ptr<SQLite::Statement>> prepared_;
};

// Runs fn inside one SQLite transaction (BEGIN IMMEDIATE: it holds the write
// lock from the start): commits if it returns OK, rolls back
// otherwise (or if it throws). Returns fn's status, or INTERNAL on SQLite
// failure.
Status RunInTransaction(SQLite::Database& db, const std::function<Status()>& fn);

// Converts a SQLite exception into a Status (INTERNAL, or UNAVAILABLE when the
// database is busy/locked so the caller may retry).
Status StatusFromSqlite(const SQLite::Exception& error, std::string_view what);

// The bytes of a BLOB column, and binding bytes as a BLOB: every table that
// stores serialized protobufs (entries, records, checkpoints) goes through
// these.
std::string BlobOf(const SQLite::Column& column);
void BindBlob(SQLite::Statement& statement, int index, const std::string& bytes);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_STORE_H_
