#include "core/imports.h"
#include "jobs/store.h"

#include "computenet/ledger/schema.h"
#include "computenet/common/job_state.h"
#include "computenet/common/secrets.h"
#include "jobs/job_transitions.h"

#include <sqlite3.h>

#include <algorithm>

namespace computenet::broker {
namespace {

using storage::BindBlob;
using storage::BlobOf;
using storage::StatusFromSqlite;

constexpr char kSchemaOwner[] = "broker";

constexpr const char* kBrokerV1[] = {
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
};

// v2 (matching): consumers' organizations (fair share) and providers' track
// records (reliability).
constexpr const char* kBrokerV2[] = {
    "ALTER TABLE enrollments ADD COLUMN organization TEXT NOT NULL DEFAULT ''",
    R"sql(CREATE TABLE provider_stats(
      provider          TEXT PRIMARY KEY,
      completed         INTEGER NOT NULL DEFAULT 0,
      provider_failures INTEGER NOT NULL DEFAULT 0,
      heartbeat_losses  INTEGER NOT NULL DEFAULT 0,
      updated_ms        INTEGER NOT NULL))sql",
};

// v4 (matching): fair-share usage per organization, so that a restart
// does not forget who used what (JobQueue::UsageSnapshot).
constexpr const char* kBrokerV4[] = {
    R"sql(CREATE TABLE fair_share(
      organization  TEXT PRIMARY KEY,
      usage_milli_s INTEGER NOT NULL CHECK(usage_milli_s >= 0),
      as_of_ms      INTEGER NOT NULL))sql",
};

// v5: the highest priority class each organization may submit, set by an
// operator (`computenet-broker priority`; absent = NORMAL), and the peers
// that declined a forwarded job, until when (so a restart neither forgets
// nor retries them at once).
constexpr const char* kBrokerV5[] = {
    R"sql(CREATE TABLE organization_priority(
      organization TEXT PRIMARY KEY,
      max_priority INTEGER NOT NULL CHECK(max_priority BETWEEN 1 AND 3),
      set_ms       INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE forward_declines(
      job_id      TEXT NOT NULL,
      peer        TEXT NOT NULL,
      retry_at_ms INTEGER NOT NULL,
      declines    INTEGER NOT NULL CHECK(declines >= 1),
      reason      TEXT NOT NULL,
      PRIMARY KEY(job_id, peer)))sql",
};

// v6 (issue 12, key rotation): a party may hold several keys. The table is
// rebuilt without UNIQUE(role, name) (SQLite cannot drop a constraint); a
// key rotated away from gets the time it stops working (retire_at_ms, NULL
// while it is the party's active key). Enroll keeps one party per
// (role, name) itself; RotateKey adds keys to an existing one.
constexpr const char* kBrokerV6[] = {
    R"sql(CREATE TABLE enrollments_v6(
      curve_public   TEXT PRIMARY KEY,
      role           TEXT NOT NULL,
      name           TEXT NOT NULL,
      ed25519_public TEXT NOT NULL,
      enrolled_ms    INTEGER NOT NULL,
      revoked        INTEGER NOT NULL DEFAULT 0,
      organization   TEXT NOT NULL DEFAULT '',
      retire_at_ms   INTEGER))sql",
    "INSERT INTO enrollments_v6(curve_public, role, name, ed25519_public, "
    "enrolled_ms, revoked, organization) SELECT curve_public, role, name, "
    "ed25519_public, enrolled_ms, revoked, organization FROM enrollments",
    "DROP TABLE enrollments",
    "ALTER TABLE enrollments_v6 RENAME TO enrollments",
    "CREATE INDEX enrollments_by_party ON enrollments(role, name)",
};

// v7 (issue 11, secret job environment): the secret values of unfinished
// jobs, sealed under the broker's secrets.key (common/secrets.h) with the
// job id as context. The jobs table holds only the names ("***"); a row
// goes when its job ends, and secure_delete zeroes what it leaves behind.
constexpr const char* kBrokerV7[] = {
    R"sql(CREATE TABLE job_secrets(
      job_id TEXT PRIMARY KEY,
      sealed BLOB NOT NULL))sql",
};

constexpr storage::Migration kBrokerMigrations[] = {
    {1, kBrokerV1},
    {2, kBrokerV2},
    // v3 (the ledger issue) changed only the ledger's tables.
    {3, {}},
    {4, kBrokerV4},
    {5, kBrokerV5},
    {6, kBrokerV6},
    {7, kBrokerV7},
};

constexpr char kEnrollmentColumns[] =
    "curve_public, role, name, ed25519_public, enrolled_ms, revoked, "
    "organization, retire_at_ms";

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
  if (!query.getColumn(7).isNull()) {
    out.retire_at_ms = query.getColumn(7).getInt64();
  }
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

StatusOr<std::unique_ptr<Store>> Store::Open(
    const std::string& path, const storage::DatabaseOptions& options) {
  CN_ASSIGN_OR_RETURN(auto db, storage::Database::Open(path, options));
  CN_RETURN_IF_ERROR(db->Migrate(kSchemaOwner, kBrokerMigrations));
  CN_RETURN_IF_ERROR(ledger::MigrateSchema(*db));
  // Deleted rows (a finished job's sealed secrets) are overwritten with
  // zeros, in the file and its WAL, instead of lingering in free pages.
  CN_RETURN_IF_ERROR(db->Exec("PRAGMA secure_delete = ON"));
  return std::unique_ptr<Store>(new Store(std::move(db)));
}

StatusOr<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& path) {
  storage::DatabaseOptions options;
  options.read_only = true;
  CN_ASSIGN_OR_RETURN(auto db, storage::Database::Open(path, options));
  // Migrate on a read-only file only checks that it is current.
  CN_RETURN_IF_ERROR(db->Migrate(kSchemaOwner, kBrokerMigrations));
  CN_RETURN_IF_ERROR(ledger::MigrateSchema(*db));
  return std::unique_ptr<Store>(new Store(std::move(db)));
}

namespace {

std::string PartyName(Role role, const std::string& name) {
  return std::string(RoleName(role)) + " '" + name + "'";
}

}  // namespace

Status Store::Enroll(Role role, const PublicIdentity& identity,
                     int64_t now_ms, const std::string& organization) {
  return db_->RunInTransaction([&]() -> Status {
    // One party per (role, name): the table allows several keys per party
    // (rotation), so a second Enroll of the name is refused here.
    auto party =
        db_->Prepare("SELECT 1 FROM enrollments WHERE role=? AND name=?");
    party->bind(1, std::string(RoleName(role)));
    party->bind(2, identity.name);
    if (party->executeStep()) {
      return AlreadyExistsError(PartyName(role, identity.name) +
                                " or its key is already enrolled");
    }
    return InsertKey(role, identity, now_ms, organization);
  });
}

Status Store::InsertKey(Role role, const PublicIdentity& identity,
                        int64_t now_ms, const std::string& organization) {
  try {
    auto insert = db_->Prepare(
        "INSERT INTO enrollments(curve_public, role, name, ed25519_public, "
        "enrolled_ms, organization) VALUES(?, ?, ?, ?, ?, ?)");
    insert->bind(1, identity.curve_public);
    insert->bind(2, std::string(RoleName(role)));
    insert->bind(3, identity.name);
    insert->bind(4, identity.ed25519_public);
    insert->bind(5, static_cast<int64_t>(now_ms));
    insert->bind(6, organization);
    insert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    if ((error.getErrorCode() & 0xff) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError(PartyName(role, identity.name) +
                                " or its key is already enrolled");
    }
    return StatusFromSqlite(error, "enroll");
  }
}

Status Store::AddPartyKey(Role role, const PublicIdentity& identity,
                          int64_t now_ms,
                          std::optional<int64_t> retire_others_at_ms) {
  return db_->RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto holder,
                        FindEnrollmentByKey(identity.curve_public));
    if (holder.has_value()) {
      if (holder->role == role && holder->name == identity.name) {
        return AlreadyExistsError("that key is already one of " +
                                  PartyName(role, identity.name) + "'s keys");
      }
      return AlreadyExistsError("that key is already enrolled for " +
                                PartyName(holder->role, holder->name));
    }
    CN_ASSIGN_OR_RETURN(auto current, FindEnrollment(role, identity.name));
    if (!current.has_value()) {
      return NotFoundError(PartyName(role, identity.name) +
                           " is not enrolled (enroll it without --rotate "
                           "first; rotation keeps an existing party)");
    }
    if (current->revoked) {
      return FailedPreconditionError(
          PartyName(role, identity.name) +
          " is revoked: a revoked party cannot rotate to a new key");
    }
    if (retire_others_at_ms.has_value()) {
      // A key already retiring sooner keeps its earlier time.
      auto retire = db_->Prepare(
          "UPDATE enrollments SET retire_at_ms=? WHERE role=? AND name=? AND "
          "(retire_at_ms IS NULL OR retire_at_ms > ?)");
      retire->bind(1, static_cast<int64_t>(*retire_others_at_ms));
      retire->bind(2, std::string(RoleName(role)));
      retire->bind(3, identity.name);
      retire->bind(4, static_cast<int64_t>(*retire_others_at_ms));
      retire->exec();
    }
    // The organization is the party's, whatever key it uses.
    const std::string organization =
        current->organization == current->name ? "" : current->organization;
    return InsertKey(role, identity, now_ms, organization);
  });
}

Status Store::RotateKey(Role role, const PublicIdentity& identity,
                        int64_t now_ms, int64_t overlap_ms) {
  if (overlap_ms < 0) {
    return InvalidArgumentError("the overlap cannot be negative");
  }
  return AddPartyKey(role, identity, now_ms, now_ms + overlap_ms);
}

Status Store::AddKey(Role role, const PublicIdentity& identity,
                     int64_t now_ms) {
  return AddPartyKey(role, identity, now_ms, std::nullopt);
}

StatusOr<int> Store::EndOverlap(Role role, const std::string& name,
                                int64_t now_ms) {
  int retired = 0;
  Status status = db_->RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto current, FindEnrollment(role, name));
    if (!current.has_value()) {
      return NotFoundError(PartyName(role, name) + " is not enrolled");
    }
    auto retire = db_->Prepare(
        "UPDATE enrollments SET retire_at_ms=? WHERE role=? AND name=? AND "
        "retire_at_ms > ?");
    retire->bind(1, static_cast<int64_t>(now_ms));
    retire->bind(2, std::string(RoleName(role)));
    retire->bind(3, name);
    retire->bind(4, static_cast<int64_t>(now_ms));
    retired = retire->exec();
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(status);
  return retired;
}

Status Store::RemovePeerEnrollment(const std::string& broker_id,
                                   const std::string& curve_public) {
  return db_->Run([&]() -> Status {
    auto drop = db_->Prepare(
        "DELETE FROM enrollments WHERE role='peer' AND (name=? OR "
        "curve_public=?)");
    drop->bind(1, broker_id);
    drop->bind(2, curve_public);
    drop->exec();
    return OkStatus();
  });
}

Status Store::Revoke(Role role, const std::string& name) {
  try {
    // Every key of the party: revocation is of the party, not of one key.
    auto update = db_->Prepare("UPDATE enrollments SET revoked=1 WHERE role=? AND name=?");
    update->bind(1, std::string(RoleName(role)));
    update->bind(2, name);
    if (update->exec() == 0) {
      return NotFoundError(PartyName(role, name) + " is not enrolled");
    }
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "revoke");
  }
}

StatusOr<std::set<std::string>> Store::RevokedUserIds() {
  std::set<std::string> revoked;
  Status read = db_->Run([&]() -> Status {
    auto select =
        db_->Prepare("SELECT role, name FROM enrollments WHERE revoked=1");
    while (select->executeStep()) {
      revoked.insert(select->getColumn(0).getString() + "/" +
                     select->getColumn(1).getString());
    }
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(read);
  return revoked;
}

StatusOr<std::map<std::string, RetiringKey>> Store::RetiringKeys() {
  std::map<std::string, RetiringKey> keys;
  Status read = db_->Run([&]() -> Status {
    auto select = db_->Prepare(
        "SELECT curve_public, role, name, retire_at_ms FROM enrollments "
        "WHERE retire_at_ms IS NOT NULL");
    while (select->executeStep()) {
      keys[select->getColumn(0).getString()] =
          RetiringKey{select->getColumn(1).getString() + "/" +
                          select->getColumn(2).getString(),
                      select->getColumn(3).getInt64()};
    }
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(read);
  return keys;
}

StatusOr<std::optional<Enrollment>> Store::FindEnrollmentByKey(
    const std::string& curve_public) {
  try {
    auto query = db_->Prepare(std::string("SELECT ") + kEnrollmentColumns +
                              " FROM enrollments WHERE curve_public=?");
    query->bind(1, curve_public);
    if (!query->executeStep()) return std::optional<Enrollment>();
    return std::optional<Enrollment>(EnrollmentFromRow(*query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find enrollment");
  }
}

StatusOr<std::optional<Enrollment>> Store::FindEnrollment(
    Role role, const std::string& name) {
  try {
    // The party's current key: an active one before retiring ones, the
    // newest first.
    auto query = db_->Prepare(
        std::string("SELECT ") + kEnrollmentColumns +
        " FROM enrollments WHERE role=? AND name=? ORDER BY "
        "retire_at_ms IS NOT NULL, enrolled_ms DESC, rowid DESC LIMIT 1");
    query->bind(1, std::string(RoleName(role)));
    query->bind(2, name);
    if (!query->executeStep()) return std::optional<Enrollment>();
    return std::optional<Enrollment>(EnrollmentFromRow(*query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find enrollment");
  }
}

StatusOr<std::vector<std::string>> Store::SigningKeys(Role role,
                                                      const std::string& name) {
  try {
    auto query = db_->Prepare(
        "SELECT ed25519_public FROM enrollments WHERE role=? AND name=? "
        "ORDER BY retire_at_ms IS NOT NULL, enrolled_ms DESC, rowid DESC");
    query->bind(1, std::string(RoleName(role)));
    query->bind(2, name);
    std::vector<std::string> keys;
    while (query->executeStep())
      keys.push_back(query->getColumn(0).getString());
    return keys;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "signing keys");
  }
}

StatusOr<std::vector<Enrollment>> Store::ListEnrollments() {
  try {
    auto query = db_->Prepare(std::string("SELECT ") + kEnrollmentColumns +
                              " FROM enrollments ORDER BY role, name, "
                              "enrolled_ms, rowid");
    std::vector<Enrollment> out;
    while (query->executeStep()) out.push_back(EnrollmentFromRow(*query));
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list enrollments");
  }
}

Status Store::SaveProviderRegistration(const std::string& name,
                                       const v1::RegisterProvider& registration,
                                       int64_t now_ms) {
  try {
    auto upsert = db_->Prepare("INSERT INTO providers(name, registration, online, updated_ms) "
        "VALUES(?, ?, 1, ?) ON CONFLICT(name) DO UPDATE SET "
        "registration=excluded.registration, online=1, "
        "updated_ms=excluded.updated_ms");
    std::string blob = registration.SerializeAsString();
    upsert->bind(1, name);
    upsert->bind(2, blob.data(), static_cast<int>(blob.size()));
    upsert->bind(3, static_cast<int64_t>(now_ms));
    upsert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "save provider");
  }
}

Status Store::SetProviderOnline(const std::string& name, bool online,
                                int64_t now_ms) {
  try {
    auto update = db_->Prepare("UPDATE providers SET online=?, updated_ms=? WHERE name=?");
    update->bind(1, online ? 1 : 0);
    update->bind(2, static_cast<int64_t>(now_ms));
    update->bind(3, name);
    update->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "update provider");
  }
}

StatusOr<std::vector<std::pair<std::string, v1::RegisterProvider>>>
Store::ListProviders() {
  try {
    auto query = db_->Prepare("SELECT name, registration FROM providers ORDER BY name");
    std::vector<std::pair<std::string, v1::RegisterProvider>> out;
    while (query->executeStep()) {
      v1::RegisterProvider registration;
      if (!registration.ParseFromString(BlobOf(query->getColumn(1)))) {
        return DataLossError("provider row does not parse");
      }
      out.emplace_back(query->getColumn(0).getString(), std::move(registration));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list providers");
  }
}

Status Store::MarkAllProvidersOffline() {
  try {
    return db_->Exec("UPDATE providers SET online=0");
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "mark providers offline");
  }
}

StatusOr<v1::JobInfo> Store::InsertJob(const std::string& broker_id,
                                       v1::JobInfo job,
                                       const std::string& idempotency_key,
                                       bool* duplicate,
                                       const std::function<Status()>& admit) {
  *duplicate = false;
  v1::JobInfo result;
  // The values go to job_secrets, sealed; the row keeps only the names.
  const v1::JobSpec secrets = SecretsOf(job.spec());
  MaskSecretEnv(job.mutable_spec());
  Status status = db_->RunInTransaction([&]() -> Status {
    if (!idempotency_key.empty()) {
      auto existing = db_->Prepare("SELECT info FROM jobs WHERE consumer=? AND idempotency_key=?");
      existing->bind(1, job.consumer());
      existing->bind(2, idempotency_key);
      if (existing->executeStep()) {
        CN_ASSIGN_OR_RETURN(result, JobFromBlob(existing->getColumn(0)));
        *duplicate = true;
        return OkStatus();
      }
    }
    if (admit) CN_RETURN_IF_ERROR(admit());
    // Insert first to get the sequence, then write the id-bearing blob.
    auto insert = db_->Prepare("INSERT INTO jobs(job_id, consumer, "
                             "idempotency_key, state, info, updated_ms) "
                             "VALUES('', ?, ?, ?, x'', ?)");
    insert->bind(1, job.consumer());
    if (idempotency_key.empty()) {
      insert->bind(2);
    } else {
      insert->bind(2, idempotency_key);
    }
    insert->bind(3, static_cast<int>(job.state()));
    insert->bind(4, static_cast<int64_t>(job.created_ms()));
    insert->exec();
    int64_t seq = db_->last_insert_rowid();
    job.set_job_id(broker_id + "-" + std::to_string(seq));
    std::string blob = job.SerializeAsString();
    auto update = db_->Prepare("UPDATE jobs SET job_id=?, info=? WHERE seq=?");
    update->bind(1, job.job_id());
    update->bind(2, blob.data(), static_cast<int>(blob.size()));
    update->bind(3, seq);
    update->exec();
    CN_RETURN_IF_ERROR(PutSecrets(job.job_id(), secrets));
    result = std::move(job);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

Status Store::InsertJobWithId(const v1::JobInfo& forwarded, int64_t now_ms) {
  v1::JobInfo job = forwarded;
  const v1::JobSpec secrets = SecretsOf(job.spec());
  MaskSecretEnv(job.mutable_spec());
  return db_->RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(InsertForwardedRow(job, now_ms));
    return PutSecrets(job.job_id(), secrets);
  });
}

Status Store::InsertForwardedRow(const v1::JobInfo& job, int64_t now_ms) {
  try {
    auto insert = db_->Prepare("INSERT INTO jobs(job_id, consumer, state, "
                             "provider, info, updated_ms) VALUES(?, ?, ?, ?, "
                             "?, ?)");
    std::string blob = job.SerializeAsString();
    insert->bind(1, job.job_id());
    // Jobs of another broker's consumers are kept apart from ours.
    insert->bind(2, "peer:" + job.home_broker() + "/" + job.consumer());
    insert->bind(3, static_cast<int>(job.state()));
    insert->bind(4, job.provider());
    insert->bind(5, blob.data(), static_cast<int>(blob.size()));
    insert->bind(6, static_cast<int64_t>(now_ms));
    insert->exec();
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
    // The one place a job's state changes: checked against the table.
    {
      auto current = db_->Prepare("SELECT state FROM jobs WHERE job_id=?");
      current->bind(1, job.job_id());
      if (!current->executeStep()) return NotFoundError("job " + job.job_id());
      Status allowed = CheckJobTransition(
          static_cast<v1::JobState>(current->getColumn(0).getInt()),
          job.state());
      if (!allowed.ok()) return allowed.WithContext("job " + job.job_id());
    }
    auto update = db_->Prepare(
        "UPDATE jobs SET state=?, provider=?, info=?, updated_ms=? "
        "WHERE job_id=?");
    std::string blob;
    if (HasSecretValues(job.spec())) {
      // A copy that came back with the values (an offer's spec): the row
      // never holds them.
      v1::JobInfo masked = job;
      MaskSecretEnv(masked.mutable_spec());
      blob = masked.SerializeAsString();
    } else {
      blob = job.SerializeAsString();
    }
    update->bind(1, static_cast<int>(job.state()));
    update->bind(2, job.provider());
    update->bind(3, blob.data(), static_cast<int>(blob.size()));
    update->bind(4, static_cast<int64_t>(now_ms));
    update->bind(5, job.job_id());
    if (update->exec() == 0) return NotFoundError("job " + job.job_id());
    // A job that ended needs its secrets no more: they go with the write
    // that ends it.
    if (IsTerminal(job.state())) {
      auto erase = db_->Prepare("DELETE FROM job_secrets WHERE job_id=?");
      erase->bind(1, job.job_id());
      erase->exec();
    }
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "update job");
  }
}

v1::JobSpec Store::SecretsOf(const v1::JobSpec& spec) {
  v1::JobSpec out;
  if (HasSecretValues(spec)) *out.mutable_secret_env() = spec.secret_env();
  return out;
}

Status Store::PutSecrets(const std::string& job_id,
                         const v1::JobSpec& secrets) {
  if (secrets.secret_env().empty()) return OkStatus();
  if (secrets_ == nullptr) {
    return FailedPreconditionError(
        "this broker keeps no secrets.key: it takes no secret env");
  }
  std::string plain = secrets.SerializeAsString();
  auto sealed = secrets_->Seal(plain, job_id);
  std::fill(plain.begin(), plain.end(), '\0');
  if (!sealed.ok()) return sealed.status();
  try {
    auto put = db_->Prepare(
        "INSERT OR REPLACE INTO job_secrets(job_id, sealed) VALUES(?, ?)");
    put->bind(1, job_id);
    put->bind(2, sealed->data(), static_cast<int>(sealed->size()));
    put->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "store job secrets");
  }
}

StatusOr<std::map<std::string, std::string>> Store::JobSecrets(
    const std::string& job_id) {
  std::string sealed;
  try {
    auto query = db_->Prepare("SELECT sealed FROM job_secrets WHERE job_id=?");
    query->bind(1, job_id);
    if (!query->executeStep()) return std::map<std::string, std::string>{};
    sealed = BlobOf(query->getColumn(0));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "read job secrets");
  }
  if (secrets_ == nullptr) {
    return FailedPreconditionError("job " + job_id +
                                   " has secrets but this broker has no "
                                   "secrets.key to open them");
  }
  CN_ASSIGN_OR_RETURN(std::string plain, secrets_->Open(sealed, job_id));
  v1::JobSpec secrets;
  const bool parsed = secrets.ParseFromString(plain);
  std::fill(plain.begin(), plain.end(), '\0');
  if (!parsed) return DataLossError("job " + job_id + ": secrets do not parse");
  return std::map<std::string, std::string>(secrets.secret_env().begin(),
                                            secrets.secret_env().end());
}

StatusOr<uint64_t> Store::CountJobSecrets() {
  try {
    auto query = db_->Prepare("SELECT COUNT(*) FROM job_secrets");
    query->executeStep();
    return static_cast<uint64_t>(query->getColumn(0).getInt64());
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "count job secrets");
  }
}

StatusOr<v1::JobInfo> Store::GetJob(const std::string& job_id) {
  try {
    auto query = db_->Prepare("SELECT info FROM jobs WHERE job_id=?");
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
    auto query = db_->PrepareOnce(sql);
    int index = 1;
    if (!consumer.empty()) query->bind(index++, consumer);
    query->bind(index, static_cast<int64_t>(limit));
    std::vector<v1::JobInfo> out;
    while (query->executeStep()) {
      CN_ASSIGN_OR_RETURN(v1::JobInfo job, JobFromBlob(query->getColumn(0)));
      out.push_back(std::move(job));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list jobs");
  }
}

StatusOr<uint64_t> Store::CountUnfinishedJobs(const std::string& consumer) {
  try {
    auto query = db_->Prepare(
        "SELECT COUNT(*) FROM jobs WHERE consumer=? AND state IN (" +
        StateList({v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED,
                   v1::JOB_STATE_RUNNING}) +
        ")");
    query->bind(1, consumer);
    if (!query->executeStep()) return uint64_t{0};
    return static_cast<uint64_t>(query->getColumn(0).getInt64());
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "count unfinished jobs");
  }
}

StatusOr<std::vector<v1::JobInfo>> Store::JobsInStates(
    const std::vector<v1::JobState>& states) {
  try {
    auto query = db_->PrepareOnce("SELECT info FROM jobs WHERE state IN (" +
                                      StateList(states) + ") ORDER BY seq");
    std::vector<v1::JobInfo> out;
    while (query->executeStep()) {
      CN_ASSIGN_OR_RETURN(v1::JobInfo job, JobFromBlob(query->getColumn(0)));
      out.push_back(std::move(job));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "jobs in states");
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
    auto upsert = db_->Prepare(std::string("INSERT INTO provider_stats(provider, ") + column +
                  ", updated_ms) VALUES(?, 1, ?) ON CONFLICT(provider) DO "
                  "UPDATE SET " + column + "=" + column +
                  "+1, updated_ms=excluded.updated_ms");
    upsert->bind(1, provider);
    upsert->bind(2, static_cast<int64_t>(now_ms));
    upsert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "record provider event");
  }
}

StatusOr<std::map<std::string, ProviderStats>> Store::ListProviderStats() {
  try {
    auto query = db_->Prepare("SELECT provider, completed, provider_failures, "
                            "heartbeat_losses FROM provider_stats");
    std::map<std::string, ProviderStats> out;
    while (query->executeStep()) {
      ProviderStats stats;
      stats.completed = static_cast<uint64_t>(query->getColumn(1).getInt64());
      stats.provider_failures =
          static_cast<uint64_t>(query->getColumn(2).getInt64());
      stats.heartbeat_losses =
          static_cast<uint64_t>(query->getColumn(3).getInt64());
      out[query->getColumn(0).getString()] = stats;
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list provider stats");
  }
}

Status Store::SaveFairShare(const std::vector<matching::StoredUsage>& usage) {
  // One transaction, so a reader never sees half a snapshot; rows of
  // organizations whose usage decayed away go.
  return db_->RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(db_->Exec("DELETE FROM fair_share"));
    auto insert = db_->Prepare(
        "INSERT INTO fair_share(organization, usage_milli_s, as_of_ms) VALUES(?, ?, ?)");
    for (const auto& row : usage) {
      insert->reset();
      insert->bind(1, row.organization);
      insert->bind(2, static_cast<int64_t>(
                          std::min<uint64_t>(row.usage_milli_s, INT64_MAX)));
      insert->bind(3, static_cast<int64_t>(row.as_of_ms));
      insert->exec();
    }
    return OkStatus();
  });
}

StatusOr<std::vector<matching::StoredUsage>> Store::LoadFairShare() {
  try {
    auto query = db_->Prepare(
        "SELECT organization, usage_milli_s, as_of_ms FROM fair_share ORDER BY organization");
    std::vector<matching::StoredUsage> out;
    while (query->executeStep()) {
      const int64_t usage = query->getColumn(1).getInt64();
      if (usage <= 0) continue;
      out.push_back({query->getColumn(0).getString(), static_cast<uint64_t>(usage),
                     query->getColumn(2).getInt64()});
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "load fair share");
  }
}

Status Store::SetMaxPriority(const std::string& organization,
                             v1::PriorityClass max_priority, int64_t now_ms) {
  if (organization.empty() || organization.size() > 128) {
    return InvalidArgumentError("organization must be 1..128 bytes");
  }
  if (max_priority < v1::PRIORITY_CLASS_LOW ||
      max_priority > v1::PRIORITY_CLASS_HIGH) {
    return InvalidArgumentError("max priority must be low, normal or high");
  }
  return db_->RunInTransaction([&]() -> Status {
    auto upsert = db_->Prepare(
        "INSERT INTO organization_priority(organization, max_priority, set_ms) "
        "VALUES(?, ?, ?) ON CONFLICT(organization) DO UPDATE SET "
        "max_priority = excluded.max_priority, set_ms = excluded.set_ms");
    upsert->bind(1, organization);
    upsert->bind(2, static_cast<int>(max_priority));
    upsert->bind(3, static_cast<int64_t>(now_ms));
    upsert->exec();
    return OkStatus();
  });
}

StatusOr<v1::PriorityClass> Store::MaxPriority(const std::string& organization) {
  try {
    auto query = db_->Prepare(
        "SELECT max_priority FROM organization_priority WHERE organization = ?");
    query->bind(1, organization);
    if (!query->executeStep()) return v1::PRIORITY_CLASS_NORMAL;
    const int value = query->getColumn(0).getInt();
    if (!v1::PriorityClass_IsValid(value)) return v1::PRIORITY_CLASS_NORMAL;
    return static_cast<v1::PriorityClass>(value);
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "read organization priority");
  }
}

Status Store::SaveDecline(const ForwardDecline& decline) {
  return db_->RunInTransaction([&]() -> Status {
    auto upsert = db_->Prepare(
        "INSERT INTO forward_declines(job_id, peer, retry_at_ms, declines, reason) "
        "VALUES(?, ?, ?, ?, ?) ON CONFLICT(job_id, peer) DO UPDATE SET "
        "retry_at_ms = excluded.retry_at_ms, declines = excluded.declines, "
        "reason = excluded.reason");
    upsert->bind(1, decline.job_id);
    upsert->bind(2, decline.peer);
    upsert->bind(3, static_cast<int64_t>(decline.retry_at_ms));
    upsert->bind(4, static_cast<int64_t>(decline.declines));
    upsert->bind(5, decline.reason.substr(0, 512));
    upsert->exec();
    return OkStatus();
  });
}

Status Store::DeleteDeclines(const std::string& job_id) {
  return db_->RunInTransaction([&]() -> Status {
    auto erase = db_->Prepare("DELETE FROM forward_declines WHERE job_id = ?");
    erase->bind(1, job_id);
    erase->exec();
    return OkStatus();
  });
}

StatusOr<std::vector<ForwardDecline>> Store::LoadDeclines() {
  std::vector<ForwardDecline> out;
  Status loaded = db_->RunInTransaction([&]() -> Status {
    // Declines of jobs no longer waiting here are history: dropped.
    CN_RETURN_IF_ERROR(db_->Exec(
        "DELETE FROM forward_declines WHERE job_id NOT IN "
        "(SELECT job_id FROM jobs WHERE state = " +
        std::to_string(static_cast<int>(v1::JOB_STATE_QUEUED)) + ")"));
    auto query = db_->Prepare(
        "SELECT job_id, peer, retry_at_ms, declines, reason FROM forward_declines "
        "ORDER BY job_id, peer");
    while (query->executeStep()) {
      ForwardDecline decline;
      decline.job_id = query->getColumn(0).getString();
      decline.peer = query->getColumn(1).getString();
      decline.retry_at_ms = query->getColumn(2).getInt64();
      decline.declines = static_cast<uint32_t>(
          std::clamp<int64_t>(query->getColumn(3).getInt64(), 1, UINT32_MAX));
      decline.reason = query->getColumn(4).getString();
      out.push_back(std::move(decline));
    }
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(loaded);
  return out;
}

StatusOr<std::vector<std::pair<std::string, v1::PriorityClass>>>
Store::ListMaxPriorities() {
  try {
    auto query = db_->Prepare(
        "SELECT organization, max_priority FROM organization_priority "
        "ORDER BY organization");
    std::vector<std::pair<std::string, v1::PriorityClass>> out;
    while (query->executeStep()) {
      const int value = query->getColumn(1).getInt();
      out.emplace_back(query->getColumn(0).getString(),
                       v1::PriorityClass_IsValid(value)
                           ? static_cast<v1::PriorityClass>(value)
                           : v1::PRIORITY_CLASS_NORMAL);
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list organization priorities");
  }
}

}  // namespace computenet::broker
