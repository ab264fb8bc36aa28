#include "computenet/broker/store.h"

#include <sqlite3.h>

#include <algorithm>

namespace computenet::broker {
namespace {

constexpr int kSchemaVersion = 3;

constexpr const char* kSchemaV1[] = {
    R"sql(CREATE TABLE enrollments(
      curve_public   TEXT PRIMARY KEY,
      role           TEXT NOT NULL,
      name           TEXT NOT NULL,
      ed25519_public TEXT NOT NULL,
      enrolled_ms    INTEGER NOT NULL,
      revoked        INTEGER NOT NULL DEFAULT 0,
      UNIQUE(role, name)))sql",
    R"sql(CREATE TABLE providers(
      name          TEXT PRIMARY KEY,
      registration  BLOB NOT NULL,
      online        INTEGER NOT NULL,
      updated_ms    INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE jobs(
      seq             INTEGER PRIMARY KEY AUTOINCREMENT,
      job_id          TEXT NOT NULL UNIQUE,
      consumer        TEXT NOT NULL,
      idempotency_key TEXT,
      state           INTEGER NOT NULL,
      provider        TEXT,
      info            BLOB NOT NULL,
      updated_ms      INTEGER NOT NULL,
      UNIQUE(consumer, idempotency_key)))sql",
    "CREATE INDEX jobs_by_state ON jobs(state, seq)",
    "CREATE INDEX jobs_by_consumer ON jobs(consumer, seq)",
    R"sql(CREATE TABLE usage_records(
      provider    TEXT NOT NULL,
      record_id   TEXT NOT NULL,
      job_id      TEXT NOT NULL UNIQUE,
      record      BLOB NOT NULL,
      signature   BLOB NOT NULL,
      received_ms INTEGER NOT NULL,
      PRIMARY KEY(provider, record_id)))sql",
    R"sql(CREATE TABLE ledger_accounts(
      name       TEXT PRIMARY KEY,
      kind       TEXT NOT NULL,
      balance    INTEGER NOT NULL DEFAULT 0,
      created_ms INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE ledger_entries(
      sequence        INTEGER PRIMARY KEY,
      idempotency_key TEXT NOT NULL UNIQUE,
      entry           BLOB NOT NULL,
      hash            BLOB NOT NULL))sql",
    R"sql(CREATE TABLE ledger_postings(
      sequence INTEGER NOT NULL,
      account  TEXT NOT NULL,
      amount   INTEGER NOT NULL,
      PRIMARY KEY(sequence, account)))sql",
};

// v2 (matching): consumers' organizations (fair share), providers' track
// records (reliability), and usage records per job attempt (a preempted job
// is billed for each run).
constexpr const char* kSchemaV2[] = {
    "ALTER TABLE enrollments ADD COLUMN organization TEXT NOT NULL DEFAULT ''",
    R"sql(CREATE TABLE provider_stats(
      provider          TEXT PRIMARY KEY,
      completed         INTEGER NOT NULL DEFAULT 0,
      provider_failures INTEGER NOT NULL DEFAULT 0,
      heartbeat_losses  INTEGER NOT NULL DEFAULT 0,
      updated_ms        INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE usage_records_v2(
      provider    TEXT NOT NULL,
      record_id   TEXT NOT NULL,
      job_id      TEXT NOT NULL,
      attempt     INTEGER NOT NULL DEFAULT 1,
      record      BLOB NOT NULL,
      signature   BLOB NOT NULL,
      received_ms INTEGER NOT NULL,
      PRIMARY KEY(provider, record_id),
      UNIQUE(job_id, attempt)))sql",
    "INSERT INTO usage_records_v2(provider, record_id, job_id, attempt, "
    "record, signature, received_ms) SELECT provider, record_id, job_id, 1, "
    "record, signature, received_ms FROM usage_records",
    "DROP TABLE usage_records",
    "ALTER TABLE usage_records_v2 RENAME TO usage_records",
};

// v3 (the ledger issue): several usage records per job attempt (interim
// records), account holds and credit limits, signed checkpoints, replicas of
// other brokers' ledgers, and a meta table naming the broker that owns the
// file. Applied to v2 files in place.
constexpr const char* kSchemaV3[] = {
    R"sql(CREATE TABLE meta(
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL))sql",
    // A job attempt may now have one record per metering interval:
    // usage_records loses UNIQUE(job_id, attempt). SQLite cannot drop a
    // constraint, so the table is rebuilt.
    R"sql(CREATE TABLE usage_records_v3(
      provider    TEXT NOT NULL,
      record_id   TEXT NOT NULL,
      job_id      TEXT NOT NULL,
      attempt     INTEGER NOT NULL DEFAULT 1,
      record      BLOB NOT NULL,
      signature   BLOB NOT NULL,
      received_ms INTEGER NOT NULL,
      PRIMARY KEY(provider, record_id)))sql",
    "INSERT INTO usage_records_v3(provider, record_id, job_id, attempt, "
    "record, signature, received_ms) SELECT provider, record_id, job_id, "
    "attempt, record, signature, received_ms FROM usage_records",
    "DROP TABLE usage_records",
    "ALTER TABLE usage_records_v3 RENAME TO usage_records",
    "CREATE INDEX usage_records_by_job ON usage_records(job_id, attempt)",
    // held: reserved by open holds; credit_limit: how far balance - held
    // may go below zero (NULL = no limit: the operator's top-up source).
    "ALTER TABLE ledger_accounts ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE ledger_accounts ADD COLUMN credit_limit INTEGER DEFAULT 0",
    // Which entries touch which account, for statements.
    R"sql(CREATE TABLE ledger_entry_accounts(
      account  TEXT NOT NULL,
      sequence INTEGER NOT NULL,
      PRIMARY KEY(account, sequence)))sql",
    R"sql(INSERT INTO ledger_entry_accounts
      SELECT DISTINCT account, sequence FROM ledger_postings)sql",
    // The audit walks it by sequence.
    "CREATE INDEX ledger_entry_accounts_by_sequence ON "
    "ledger_entry_accounts(sequence)",
    R"sql(CREATE TABLE ledger_holds(
      hold_id             TEXT PRIMARY KEY,
      job_id              TEXT NOT NULL,
      account             TEXT NOT NULL,
      provider            TEXT NOT NULL,
      currency            TEXT NOT NULL,
      amount              INTEGER NOT NULL,
      remaining           INTEGER NOT NULL,
      max_card_seconds    INTEGER NOT NULL,
      billed_card_seconds INTEGER NOT NULL DEFAULT 0,
      last_end_ms         INTEGER,
      price_per_card_hour INTEGER NOT NULL,
      fee_bps             INTEGER NOT NULL,
      open                INTEGER NOT NULL,
      opened_sequence     INTEGER NOT NULL,
      closed_sequence     INTEGER,
      remote_broker       TEXT NOT NULL DEFAULT ''))sql",
    "CREATE INDEX ledger_holds_by_job ON ledger_holds(job_id, open)",
    R"sql(CREATE TABLE ledger_checkpoints(
      tree_size  INTEGER PRIMARY KEY,
      checkpoint BLOB NOT NULL,
      signature  BLOB NOT NULL,
      created_ms INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE ledger_cosignatures(
      tree_size   INTEGER NOT NULL,
      cosigner    TEXT NOT NULL,
      cosignature BLOB NOT NULL,
      PRIMARY KEY(tree_size, cosigner)))sql",
    R"sql(CREATE TABLE ledger_replica_origins(
      origin         TEXT PRIMARY KEY,
      ed25519_public TEXT NOT NULL,
      followed_ms    INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE ledger_replicas(
      origin   TEXT NOT NULL,
      sequence INTEGER NOT NULL,
      entry    BLOB NOT NULL,
      hash     BLOB NOT NULL,
      PRIMARY KEY(origin, sequence)))sql",
    R"sql(CREATE TABLE ledger_replica_checkpoints(
      origin     TEXT NOT NULL,
      tree_size  INTEGER NOT NULL,
      checkpoint BLOB NOT NULL,
      signature  BLOB NOT NULL,
      PRIMARY KEY(origin, tree_size)))sql",
    // Proof that a peer signed two histories (replication found a fork).
    R"sql(CREATE TABLE ledger_forks(
      origin      TEXT NOT NULL,
      detected_ms INTEGER NOT NULL,
      evidence    BLOB NOT NULL))sql",
    // Net settlement statements with peer brokers, as each side signed
    // them (agreed = both signatures present and valid).
    R"sql(CREATE TABLE settlement_statements(
      debtor     TEXT NOT NULL,
      creditor   TEXT NOT NULL,
      created_ms INTEGER NOT NULL,
      net        INTEGER NOT NULL,
      lines      INTEGER NOT NULL,
      agreed     INTEGER NOT NULL,
      signed     BLOB NOT NULL,
      differences TEXT NOT NULL DEFAULT '',
      PRIMARY KEY(debtor, creditor, created_ms)))sql",
    // Entries written before v2 follow v1's rules (no holds, no limits);
    // the audit needs to know where v2 begins.
    R"sql(INSERT INTO meta VALUES('ledger_v1_entries',
      (SELECT COUNT(*) FROM ledger_entries)))sql",
};

Enrollment EnrollmentFromRow(SQLite::Statement& query) {
  Enrollment out;
  out.curve_public = query.getColumn(0).getString();
  out.role = ParseRole(query.getColumn(1).getString()).value();
  out.name = query.getColumn(2).getString();
  out.ed25519_public = query.getColumn(3).getString();
  out.enrolled_ms = query.getColumn(4).getInt64();
  out.revoked = query.getColumn(5).getInt() != 0;
  out.organization = query.getColumn(6).getString();
  if (out.organization.empty()) out.organization = out.name;
  return out;
}

StatusOr<v1::JobInfo> JobFromBlob(const SQLite::Column& column) {
  v1::JobInfo job;
  if (!job.ParseFromString(BlobOf(column))) {
    return DataLossError("job row does not parse");
  }
  return job;
}

std::string StateList(const std::vector<v1::JobState>& states) {
  std::string out;
  for (auto state : states) {
    if (!out.empty()) out += ",";
    out += std::to_string(static_cast<int>(state));
  }
  return out;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kProvider: return "provider";
    case Role::kConsumer: return "consumer";
    case Role::kPeer: return "peer";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

StatusOr<Role> ParseRole(std::string_view name) {
  if (name == "provider") return Role::kProvider;
  if (name == "consumer") return Role::kConsumer;
  if (name == "peer") return Role::kPeer;
  if (name == "admin") return Role::kAdmin;
  return InvalidArgumentError("unknown role '" + std::string(name) +
                              "' (provider, consumer, peer or admin)");
}

Status StatusFromSqlite(const SQLite::Exception& error, std::string_view what) {
  int code = error.getErrorCode() & 0xff;
  std::string message = std::string(what) + ": " + error.what();
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
    return UnavailableError(message);
  }
  if (code == SQLITE_CONSTRAINT) return AlreadyExistsError(message);
  return InternalError(message);
}

Status RunInTransaction(SQLite::Database& db,
                        const std::function<Status()>& fn) {
  try {
    // IMMEDIATE takes the write lock up front (waiting up to the busy
    // timeout). A deferred transaction that reads, then writes after another
    // connection (an operator's top-up) committed would fail at once with
    // SQLITE_BUSY_SNAPSHOT instead of waiting.
    SQLite::Transaction transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
    Status status = fn();
    if (!status.ok()) return status;  // destructor rolls back
    transaction.commit();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "transaction");
  }
}

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db->setBusyTimeout(5000);
    db->exec("PRAGMA journal_mode=WAL");
    // FULL: an acknowledged job or usage record survives power loss too.
    db->exec("PRAGMA synchronous=FULL");
    db->exec("PRAGMA foreign_keys=ON");
    std::unique_ptr<Store> store(new Store(std::move(db)));
    CN_RETURN_IF_ERROR(store->Migrate());
    return store;
  } catch (const SQLite::Exception& error) {
    return UnavailableError("open database " + path + ": " + error.what());
  }
}

StatusOr<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& path) {
  try {
    auto db =
        std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY);
    db->setBusyTimeout(5000);
    int version = db->execAndGet("PRAGMA user_version").getInt();
    if (version != kSchemaVersion) {
      std::string hint;
      if (version > 0 && version < kSchemaVersion) {
        hint = " (open it once with this version's computenet-broker, e.g. "
               "`computenet-broker enrollments --db FILE`, to migrate a copy)";
      }
      return FailedPreconditionError(path + " has schema version " +
                                     std::to_string(version) + ", expected " +
                                     std::to_string(kSchemaVersion) + hint);
    }
    return std::unique_ptr<Store>(new Store(std::move(db)));
  } catch (const SQLite::Exception& error) {
    return UnavailableError("open database " + path + ": " + error.what());
  }
}

Status Store::Migrate() {
  int version = db_->execAndGet("PRAGMA user_version").getInt();
  if (version > kSchemaVersion) {
    return DataLossError("database schema " + std::to_string(version) +
                         " is newer than this broker (" +
                         std::to_string(kSchemaVersion) + ")");
  }
  if (version == kSchemaVersion) return OkStatus();
  return RunInTransaction(*db_, [&]() -> Status {
    if (version < 1) {
      for (const char* statement : kSchemaV1) db_->exec(statement);
    }
    if (version < 2) {
      for (const char* statement : kSchemaV2) db_->exec(statement);
    }
    if (version < 3) {
      for (const char* statement : kSchemaV3) db_->exec(statement);
    }
    db_->exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    return OkStatus();
  });
}

std::string BlobOf(const SQLite::Column& column) {
  return std::string(static_cast<const char*>(column.getBlob()),
                     static_cast<size_t>(column.getBytes()));
}

void BindBlob(SQLite::Statement& statement, int index,
              const std::string& bytes) {
  statement.bind(index, bytes.data(), static_cast<int>(bytes.size()));
}

Store::Cached Store::Prepare(const std::string& sql) {
  auto& slot = prepared_[sql];
  if (!slot) slot = std::make_unique<SQLite::Statement>(*db_, sql);
  return Cached(*slot);
}

StatusOr<std::optional<std::string>> Store::GetMeta(const std::string& key) {
  try {
    SQLite::Statement query(*db_, "SELECT value FROM meta WHERE key=?");
    query.bind(1, key);
    if (!query.executeStep()) return std::optional<std::string>();
    return std::optional<std::string>(query.getColumn(0).getString());
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "read meta");
  }
}

Status Store::SetMeta(const std::string& key, const std::string& value) {
  try {
    SQLite::Statement upsert(*db_,
                             "INSERT INTO meta(key, value) VALUES(?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value=excluded.value");
    upsert.bind(1, key);
    upsert.bind(2, value);
    upsert.exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "write meta");
  }
}

Status Store::Enroll(Role role, const PublicIdentity& identity,
                     int64_t now_ms, const std::string& organization) {
  try {
    SQLite::Statement insert(*db_,
                             "INSERT INTO enrollments(curve_public, role, "
                             "name, ed25519_public, enrolled_ms, "
                             "organization) VALUES(?, ?, ?, ?, ?, ?)");
    insert.bind(1, identity.curve_public);
    insert.bind(2, std::string(RoleName(role)));
    insert.bind(3, identity.name);
    insert.bind(4, identity.ed25519_public);
    insert.bind(5, static_cast<int64_t>(now_ms));
    insert.bind(6, organization);
    insert.exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    if ((error.getErrorCode() & 0xff) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError(std::string(RoleName(role)) + " '" +
                                identity.name +
                                "' or its key is already enrolled");
    }
    return StatusFromSqlite(error, "enroll");
  }
}

Status Store::Revoke(Role role, const std::string& name) {
  try {
    SQLite::Statement update(
        *db_, "UPDATE enrollments SET revoked=1 WHERE role=? AND name=?");
    update.bind(1, std::string(RoleName(role)));
    update.bind(2, name);
    if (update.exec() == 0) {
      return NotFoundError(std::string(RoleName(role)) + " '" + name +
                           "' is not enrolled");
    }
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "revoke");
  }
}

StatusOr<std::optional<Enrollment>> Store::FindEnrollmentByKey(
    const std::string& curve_public) {
  try {
    SQLite::Statement query(*db_,
                            "SELECT curve_public, role, name, ed25519_public, "
                            "enrolled_ms, revoked, organization FROM enrollments "
                            "WHERE curve_public=?");
    query.bind(1, curve_public);
    if (!query.executeStep()) return std::optional<Enrollment>();
    return std::optional<Enrollment>(EnrollmentFromRow(query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find enrollment");
  }
}

StatusOr<std::optional<Enrollment>> Store::FindEnrollment(
    Role role, const std::string& name) {
  try {
    auto query = Prepare(
        "SELECT curve_public, role, name, ed25519_public, enrolled_ms, "
        "revoked, organization FROM enrollments WHERE role=? AND name=?");
    query->bind(1, std::string(RoleName(role)));
    query->bind(2, name);
    if (!query->executeStep()) return std::optional<Enrollment>();
    return std::optional<Enrollment>(EnrollmentFromRow(*query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find enrollment");
  }
}

StatusOr<std::vector<Enrollment>> Store::ListEnrollments() {
  try {
    SQLite::Statement query(*db_,
                            "SELECT curve_public, role, name, ed25519_public, "
                            "enrolled_ms, revoked, organization FROM enrollments "
                            "ORDER BY role, name");
    std::vector<Enrollment> out;
    while (query.executeStep()) out.push_back(EnrollmentFromRow(query));
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list enrollments");
  }
}

Status Store::SaveProviderRegistration(const std::string& name,
                                       const v1::RegisterProvider& registration,
                                       int64_t now_ms) {
  try {
    SQLite::Statement upsert(
        *db_,
        "INSERT INTO providers(name, registration, online, updated_ms) "
        "VALUES(?, ?, 1, ?) ON CONFLICT(name) DO UPDATE SET "
        "registration=excluded.registration, online=1, "
        "updated_ms=excluded.updated_ms");
    std::string blob = registration.SerializeAsString();
    upsert.bind(1, name);
    upsert.bind(2, blob.data(), static_cast<int>(blob.size()));
    upsert.bind(3, static_cast<int64_t>(now_ms));
    upsert.exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "save provider");
  }
}

Status Store::SetProviderOnline(const std::string& name, bool online,
                                int64_t now_ms) {
  try {
    SQLite::Statement update(
        *db_, "UPDATE providers SET online=?, updated_ms=? WHERE name=?");
    update.bind(1, online ? 1 : 0);
    update.bind(2, static_cast<int64_t>(now_ms));
    update.bind(3, name);
    update.exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "update provider");
  }
}

StatusOr<std::vector<std::pair<std::string, v1::RegisterProvider>>>
Store::ListProviders() {
  try {
    SQLite::Statement query(
        *db_, "SELECT name, registration FROM providers ORDER BY name");
    std::vector<std::pair<std::string, v1::RegisterProvider>> out;
    while (query.executeStep()) {
      v1::RegisterProvider registration;
      if (!registration.ParseFromString(BlobOf(query.getColumn(1)))) {
        return DataLossError("provider row does not parse");
      }
      out.emplace_back(query.getColumn(0).getString(), std::move(registration));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list providers");
  }
}

Status Store::MarkAllProvidersOffline() {
  try {
    db_->exec("UPDATE providers SET online=0");
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "mark providers offline");
  }
}

StatusOr<v1::JobInfo> Store::InsertJob(const std::string& broker_id,
                                       v1::JobInfo job,
                                       const std::string& idempotency_key,
                                       bool* duplicate) {
  *duplicate = false;
  v1::JobInfo result;
  Status status = RunInTransaction(*db_, [&]() -> Status {
    if (!idempotency_key.empty()) {
      SQLite::Statement existing(
          *db_,
          "SELECT info FROM jobs WHERE consumer=? AND idempotency_key=?");
      existing.bind(1, job.consumer());
      existing.bind(2, idempotency_key);
      if (existing.executeStep()) {
        CN_ASSIGN_OR_RETURN(result, JobFromBlob(existing.getColumn(0)));
        *duplicate = true;
        return OkStatus();
      }
    }
    // Insert first to get the sequence, then write the id-bearing blob.
    SQLite::Statement insert(*db_,
                             "INSERT INTO jobs(job_id, consumer, "
                             "idempotency_key, state, info, updated_ms) "
                             "VALUES('', ?, ?, ?, x'', ?)");
    insert.bind(1, job.consumer());
    if (idempotency_key.empty()) {
      insert.bind(2);
    } else {
      insert.bind(2, idempotency_key);
    }
    insert.bind(3, static_cast<int>(job.state()));
    insert.bind(4, static_cast<int64_t>(job.created_ms()));
    insert.exec();
    int64_t seq = db_->getLastInsertRowid();
    job.set_job_id(broker_id + "-" + std::to_string(seq));
    std::string blob = job.SerializeAsString();
    SQLite::Statement update(
        *db_, "UPDATE jobs SET job_id=?, info=? WHERE seq=?");
    update.bind(1, job.job_id());
    update.bind(2, blob.data(), static_cast<int>(blob.size()));
    update.bind(3, seq);
    update.exec();
    result = std::move(job);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

Status Store::InsertJobWithId(const v1::JobInfo& job, int64_t now_ms) {
  try {
    SQLite::Statement insert(*db_,
                             "INSERT INTO jobs(job_id, consumer, state, "
                             "provider, info, updated_ms) VALUES(?, ?, ?, ?, "
                             "?, ?)");
    std::string blob = job.SerializeAsString();
    insert.bind(1, job.job_id());
    // Jobs of another broker's consumers are kept apart from ours.
    insert.bind(2, "peer:" + job.home_broker() + "/" + job.consumer());
    insert.bind(3, static_cast<int>(job.state()));
    insert.bind(4, job.provider());
    insert.bind(5, blob.data(), static_cast<int>(blob.size()));
    insert.bind(6, static_cast<int64_t>(now_ms));
    insert.exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    if ((error.getErrorCode() & 0xff) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError("job " + job.job_id() + " already exists");
    }
    return StatusFromSqlite(error, "insert job");
  }
}

Status Store::UpdateJob(const v1::JobInfo& job, int64_t now_ms) {
  try {
    auto update = Prepare(
        "UPDATE jobs SET state=?, provider=?, info=?, updated_ms=? "
        "WHERE job_id=?");
    std::string blob = job.SerializeAsString();
    update->bind(1, static_cast<int>(job.state()));
    update->bind(2, job.provider());
    update->bind(3, blob.data(), static_cast<int>(blob.size()));
    update->bind(4, static_cast<int64_t>(now_ms));
    update->bind(5, job.job_id());
    if (update->exec() == 0) return NotFoundError("job " + job.job_id());
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "update job");
  }
}

StatusOr<v1::JobInfo> Store::GetJob(const std::string& job_id) {
  try {
    auto query = Prepare("SELECT info FROM jobs WHERE job_id=?");
    query->bind(1, job_id);
    if (!query->executeStep()) return NotFoundError("no job " + job_id);
    return JobFromBlob(query->getColumn(0));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "get job");
  }
}

StatusOr<std::vector<v1::JobInfo>> Store::ListJobs(
    const std::string& consumer, const std::vector<v1::JobState>& states,
    uint32_t limit) {
  try {
    std::string sql = "SELECT info FROM jobs WHERE 1=1";
    if (!consumer.empty()) sql += " AND consumer=?";
    // The states are integers (enum values, possibly from the wire), never
    // text, so building the IN list cannot inject SQL.
    if (!states.empty()) sql += " AND state IN (" + StateList(states) + ")";
    sql += " ORDER BY seq DESC LIMIT ?";
    SQLite::Statement query(*db_, sql);
    int index = 1;
    if (!consumer.empty()) query.bind(index++, consumer);
    query.bind(index, static_cast<int64_t>(limit));
    std::vector<v1::JobInfo> out;
    while (query.executeStep()) {
      CN_ASSIGN_OR_RETURN(v1::JobInfo job, JobFromBlob(query.getColumn(0)));
      out.push_back(std::move(job));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list jobs");
  }
}

StatusOr<std::vector<v1::JobInfo>> Store::JobsInStates(
    const std::vector<v1::JobState>& states) {
  try {
    SQLite::Statement query(*db_, "SELECT info FROM jobs WHERE state IN (" +
                                      StateList(states) + ") ORDER BY seq");
    std::vector<v1::JobInfo> out;
    while (query.executeStep()) {
      CN_ASSIGN_OR_RETURN(v1::JobInfo job, JobFromBlob(query.getColumn(0)));
      out.push_back(std::move(job));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "jobs in states");
  }
}

namespace {

StoredUsageRecord UsageFromRow(SQLite::Statement& query) {
  StoredUsageRecord out;
  out.provider = query.getColumn(0).getString();
  out.record_id = query.getColumn(1).getString();
  out.job_id = query.getColumn(2).getString();
  out.record = BlobOf(query.getColumn(3));
  out.signature = BlobOf(query.getColumn(4));
  out.attempt = static_cast<uint32_t>(query.getColumn(5).getInt64());
  return out;
}

constexpr char kUsageColumns[] =
    "SELECT provider, record_id, job_id, record, signature, attempt "
    "FROM usage_records ";

}  // namespace

StatusOr<std::optional<StoredUsageRecord>> Store::FindUsageRecord(
    const std::string& provider, const std::string& record_id) {
  try {
    auto query =
        Prepare(std::string(kUsageColumns) + "WHERE provider=? AND record_id=?");
    query->bind(1, provider);
    query->bind(2, record_id);
    if (!query->executeStep()) return std::optional<StoredUsageRecord>();
    return std::optional<StoredUsageRecord>(UsageFromRow(*query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find usage record");
  }
}

StatusOr<std::optional<StoredUsageRecord>> Store::FindUsageRecordForJob(
    const std::string& job_id) {
  try {
    SQLite::Statement query(
        *db_, std::string(kUsageColumns) +
                  "WHERE job_id=? ORDER BY attempt DESC, received_ms DESC, "
                  "rowid DESC LIMIT 1");
    query.bind(1, job_id);
    if (!query.executeStep()) return std::optional<StoredUsageRecord>();
    return std::optional<StoredUsageRecord>(UsageFromRow(query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find usage record");
  }
}

StatusOr<std::optional<StoredUsageRecord>> Store::FindUsageRecordForAttempt(
    const std::string& job_id, uint32_t attempt) {
  try {
    SQLite::Statement query(*db_, std::string(kUsageColumns) +
                                      "WHERE job_id=? AND attempt=? ORDER BY "
                                      "received_ms DESC, rowid DESC LIMIT 1");
    query.bind(1, job_id);
    query.bind(2, static_cast<int64_t>(attempt));
    if (!query.executeStep()) return std::optional<StoredUsageRecord>();
    return std::optional<StoredUsageRecord>(UsageFromRow(query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find usage record");
  }
}

StatusOr<std::vector<StoredUsageRecord>> Store::ListUsageRecordsForJob(
    const std::string& job_id) {
  try {
    SQLite::Statement query(
        *db_, std::string(kUsageColumns) +
                  "WHERE job_id=? ORDER BY attempt, received_ms, rowid");
    query.bind(1, job_id);
    std::vector<StoredUsageRecord> out;
    while (query.executeStep()) out.push_back(UsageFromRow(query));
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list usage records");
  }
}

Status Store::InsertUsageRecord(const StoredUsageRecord& record,
                                int64_t now_ms) {
  try {
    auto insert = Prepare(
        "INSERT INTO usage_records(provider, record_id, job_id, record, "
        "signature, received_ms, attempt) VALUES(?, ?, ?, ?, ?, ?, ?)");
    insert->bind(1, record.provider);
    insert->bind(2, record.record_id);
    insert->bind(3, record.job_id);
    insert->bind(4, record.record.data(), static_cast<int>(record.record.size()));
    insert->bind(5, record.signature.data(),
                 static_cast<int>(record.signature.size()));
    insert->bind(6, static_cast<int64_t>(now_ms));
    insert->bind(7, static_cast<int64_t>(std::max<uint32_t>(1, record.attempt)));
    insert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "insert usage record");
  }
}

StatusOr<std::vector<StoredUsageRecord>> Store::ListUsageRecords() {
  try {
    SQLite::Statement query(*db_, std::string(kUsageColumns) +
                                      "ORDER BY received_ms, provider, record_id");
    std::vector<StoredUsageRecord> out;
    while (query.executeStep()) out.push_back(UsageFromRow(query));
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list usage records");
  }
}

Status Store::RecordProviderEvent(const std::string& provider,
                                  ProviderEvent event, int64_t now_ms) {
  const char* column = "completed";
  switch (event) {
    case ProviderEvent::kCompleted: column = "completed"; break;
    case ProviderEvent::kProviderFailure: column = "provider_failures"; break;
    case ProviderEvent::kHeartbeatLoss: column = "heartbeat_losses"; break;
  }
  try {
    // The column name is one of three constants above, never input.
    SQLite::Statement upsert(
        *db_, std::string("INSERT INTO provider_stats(provider, ") + column +
                  ", updated_ms) VALUES(?, 1, ?) ON CONFLICT(provider) DO "
                  "UPDATE SET " + column + "=" + column +
                  "+1, updated_ms=excluded.updated_ms");
    upsert.bind(1, provider);
    upsert.bind(2, static_cast<int64_t>(now_ms));
    upsert.exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "record provider event");
  }
}

StatusOr<std::map<std::string, ProviderStats>> Store::ListProviderStats() {
  try {
    SQLite::Statement query(*db_,
                            "SELECT provider, completed, provider_failures, "
                            "heartbeat_losses FROM provider_stats");
    std::map<std::string, ProviderStats> out;
    while (query.executeStep()) {
      ProviderStats stats;
      stats.completed = static_cast<uint64_t>(query.getColumn(1).getInt64());
      stats.provider_failures =
          static_cast<uint64_t>(query.getColumn(2).getInt64());
      stats.heartbeat_losses =
          static_cast<uint64_t>(query.getColumn(3).getInt64());
      out[query.getColumn(0).getString()] = stats;
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list provider stats");
  }
}

}  // namespace computenet::broker
