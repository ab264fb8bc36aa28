#include "computenet/storage/database.h"

#include <sqlite3.h>

#include <array>

namespace computenet::storage {
namespace {

// Marks a file whose versions live in schema_versions. Binaries from before
// owners existed compare user_version with their single schema (3) and
// refuse a newer one, so they never misread such a file.
constexpr int kOwnerVersionedMarker = 100;
// Owners whose tables the single pre-owner schema (user_version 1..3) held.
constexpr std::array<std::string_view, 2> kLegacyOwners = {"broker", "ledger"};

constexpr const char* kStorageTables[] = {
    R"sql(CREATE TABLE IF NOT EXISTS meta(
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL))sql",
    R"sql(CREATE TABLE IF NOT EXISTS schema_versions(
      owner   TEXT PRIMARY KEY,
      version INTEGER NOT NULL))sql",
};

const char* SynchronousPragma(Durability durability) {
  switch (durability) {
    case Durability::kFull: return "PRAGMA synchronous=FULL";
    case Durability::kNormal: return "PRAGMA synchronous=NORMAL";
    case Durability::kOff: return "PRAGMA synchronous=OFF";
  }
  return "PRAGMA synchronous=FULL";
}

}  // namespace

Status StatusFromSqlite(const SQLite::Exception& error, std::string_view what) {
  const int code = error.getErrorCode() & 0xff;
  std::string message = std::string(what) + ": " + error.what();
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
    return UnavailableError(message);
  }
  if (code == SQLITE_CONSTRAINT) return AlreadyExistsError(message);
  return InternalError(message);
}

std::string BlobOf(const SQLite::Column& column) {
  return std::string(static_cast<const char*>(column.getBlob()),
                     static_cast<size_t>(column.getBytes()));
}

void BindBlob(SQLite::Statement& statement, int index,
              const std::string& bytes) {
  statement.bind(index, bytes.data(), static_cast<int>(bytes.size()));
}

SQLite::Database& RawConnectionForTesting(Database& database) {
  return *database.db_;
}

Database::Database(std::unique_ptr<SQLite::Database> db, std::string path,
                   bool read_only)
    : db_(std::move(db)), path_(std::move(path)), read_only_(read_only) {}

Database::~Database() {
  if (batch_open_) RollbackBatch();
  prepared_.clear();
}

StatusOr<std::unique_ptr<Database>> Database::Open(
    const std::string& path, const DatabaseOptions& options) {
  try {
    const int flags = options.read_only
                          ? SQLite::OPEN_READONLY
                          : (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    auto db = std::make_unique<SQLite::Database>(path, flags);
    db->setBusyTimeout(options.busy_timeout_ms);
    std::unique_ptr<Database> database(
        new Database(std::move(db), path, options.read_only));
    if (options.read_only) return database;
    database->db_->exec("PRAGMA journal_mode=WAL");
    database->db_->exec(SynchronousPragma(options.durability));
    database->db_->exec("PRAGMA foreign_keys=ON");
    CN_RETURN_IF_ERROR(database->AdoptLegacySchema());
    return database;
  } catch (const SQLite::Exception& error) {
    return UnavailableError("open database " + path + ": " + error.what());
  }
}

Status Database::AdoptLegacySchema() {
  return RunInTransaction([&]() -> Status {
    const int user_version = db_->execAndGet("PRAGMA user_version").getInt();
    const bool had_versions = db_->tableExists("schema_versions");
    for (const char* statement : kStorageTables) db_->exec(statement);
    if (!had_versions && user_version > 0 &&
        user_version < kOwnerVersionedMarker) {
      for (std::string_view owner : kLegacyOwners) {
        SQLite::Statement adopt(*db_,
                                "INSERT INTO schema_versions VALUES(?, ?)");
        adopt.bind(1, std::string(owner));
        adopt.bind(2, user_version);
        adopt.exec();
      }
    }
    if (user_version > kOwnerVersionedMarker) {
      return DataLossError(path_ + ": user_version " +
                           std::to_string(user_version) +
                           " is newer than this binary knows");
    }
    if (user_version != kOwnerVersionedMarker) {
      db_->exec("PRAGMA user_version=" +
                std::to_string(kOwnerVersionedMarker));
    }
    return OkStatus();
  });
}

StatusOr<int> Database::SchemaVersion(std::string_view owner) {
  int version = 0;
  Status read = Run([&]() -> Status {
    if (db_->tableExists("schema_versions")) {
      SQLite::Statement query(*db_,
                              "SELECT version FROM schema_versions WHERE "
                              "owner=?");
      query.bind(1, std::string(owner));
      if (query.executeStep()) version = query.getColumn(0).getInt();
      return OkStatus();
    }
    // A pre-owner file opened read-only (never adopted).
    const int user_version = db_->execAndGet("PRAGMA user_version").getInt();
    for (std::string_view legacy : kLegacyOwners) {
      if (legacy == owner && user_version < kOwnerVersionedMarker) {
        version = user_version;
      }
    }
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(read);
  return version;
}

Status Database::Migrate(std::string_view owner,
                         std::span<const Migration> steps) {
  CN_ASSIGN_OR_RETURN(int current, SchemaVersion(owner));
  const int latest = steps.empty() ? 0 : steps.back().version;
  if (current > latest) {
    return DataLossError(path_ + ": the " + std::string(owner) +
                         " schema is version " + std::to_string(current) +
                         ", newer than this binary's " +
                         std::to_string(latest));
  }
  if (current == latest) return OkStatus();
  if (read_only_) {
    return FailedPreconditionError(
        path_ + " has " + std::string(owner) + " schema version " +
        std::to_string(current) + ", expected " + std::to_string(latest) +
        " (open it once with this version's computenet-broker, e.g. "
        "`computenet-broker enrollments --db FILE`, to migrate a copy)");
  }
  for (const Migration& step : steps) {
    if (step.version <= current) continue;
    Status applied = RunInTransaction([&]() -> Status {
      for (const char* statement : step.statements) db_->exec(statement);
      SQLite::Statement bump(*db_,
                             "INSERT INTO schema_versions(owner, version) "
                             "VALUES(?, ?) ON CONFLICT(owner) DO UPDATE SET "
                             "version=excluded.version");
      bump.bind(1, std::string(owner));
      bump.bind(2, step.version);
      bump.exec();
      return OkStatus();
    });
    if (!applied.ok()) {
      return applied.WithContext("migrate " + std::string(owner) + " to " +
                                 std::to_string(step.version));
    }
  }
  return OkStatus();
}

Status Database::RunInTransaction(const std::function<Status()>& fn) {
  if (!in_transaction()) {
    try {
      // IMMEDIATE takes the write lock up front (waiting up to the busy
      // timeout). A deferred transaction that reads, then writes after
      // another connection (an operator's top-up) committed would fail at
      // once with SQLITE_BUSY_SNAPSHOT instead of waiting.
      db_->exec("BEGIN IMMEDIATE");
    } catch (const SQLite::Exception& error) {
      return StatusFromSqlite(error, "begin transaction");
    }
    depth_ = 1;
    Status status;
    try {
      status = fn();
      if (status.ok()) db_->exec("COMMIT");
    } catch (const SQLite::Exception& error) {
      status = StatusFromSqlite(error, "transaction");
    }
    if (!status.ok()) {
      try {
        if (sqlite3_get_autocommit(db_->getHandle()) == 0) {
          db_->exec("ROLLBACK");
        }
      } catch (const SQLite::Exception&) {
        // Nothing more to undo: the connection is back in autocommit.
      }
    }
    depth_ = 0;
    return status;
  }
  // Inside another transaction or a batch: a savepoint, so a failure undoes
  // only this call's writes and the caller's stay.
  const std::string name = "sp" + std::to_string(++savepoint_counter_);
  try {
    db_->exec("SAVEPOINT " + name);
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "savepoint");
  }
  ++depth_;
  Status status;
  try {
    status = fn();
  } catch (const SQLite::Exception& error) {
    status = StatusFromSqlite(error, "transaction");
  }
  try {
    if (!status.ok()) db_->exec("ROLLBACK TO " + name);
    db_->exec("RELEASE " + name);
  } catch (const SQLite::Exception& error) {
    if (status.ok()) status = StatusFromSqlite(error, "release savepoint");
  }
  --depth_;
  return status;
}

Status Database::Run(const std::function<Status()>& fn) {
  try {
    return fn();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "sqlite");
  }
}

Status Database::BeginBatch() {
  if (batch_open_) return OkStatus();
  if (depth_ > 0) {
    return FailedPreconditionError("a batch cannot open inside a transaction");
  }
  try {
    db_->exec("BEGIN IMMEDIATE");
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "begin batch");
  }
  batch_open_ = true;
  return OkStatus();
}

Status Database::CommitBatch() {
  if (!batch_open_) return OkStatus();
  if (fail_next_commit_) {
    fail_next_commit_ = false;
    RollbackBatch();
    return UnavailableError("batch commit failed (injected); nothing of it "
                            "was stored; retry");
  }
  try {
    db_->exec("COMMIT");
    batch_open_ = false;
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    RollbackBatch();
    return UnavailableError(std::string("batch commit failed; nothing of it "
                                        "was stored; retry: ") +
                            error.what());
  }
}

void Database::RollbackBatch() {
  if (!batch_open_) return;
  batch_open_ = false;
  try {
    if (sqlite3_get_autocommit(db_->getHandle()) == 0) db_->exec("ROLLBACK");
  } catch (const SQLite::Exception&) {
    // SQLite already rolled back (e.g. after an I/O error).
  }
}

Database::Cached Database::Prepare(const std::string& sql) {
  auto& slot = prepared_[sql];
  if (!slot) slot = std::make_unique<SQLite::Statement>(*db_, sql);
  return Cached(*slot);
}

std::unique_ptr<SQLite::Statement> Database::PrepareOnce(
    const std::string& sql) {
  return std::make_unique<SQLite::Statement>(*db_, sql);
}

Status Database::Exec(const std::string& sql) {
  try {
    db_->exec(sql);
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "exec");
  }
}

StatusOr<int64_t> Database::QueryInt(const std::string& sql) {
  try {
    SQLite::Statement query(*db_, sql);
    if (!query.executeStep()) return NotFoundError("no row: " + sql);
    return query.getColumn(0).getInt64();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "query");
  }
}

int64_t Database::last_insert_rowid() const {
  return db_->getLastInsertRowid();
}

int Database::changes() const { return db_->getChanges(); }

StatusOr<int64_t> Database::DataVersion() {
  return QueryInt("PRAGMA data_version");
}

StatusOr<std::optional<std::string>> Database::GetMeta(const std::string& key) {
  try {
    auto query = Prepare("SELECT value FROM meta WHERE key=?");
    query->bind(1, key);
    if (!query->executeStep()) return std::optional<std::string>();
    return std::optional<std::string>(query->getColumn(0).getString());
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "read meta");
  }
}

Status Database::SetMeta(const std::string& key, const std::string& value) {
  try {
    auto upsert = Prepare(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value");
    upsert->bind(1, key);
    upsert->bind(2, value);
    upsert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "write meta");
  }
}

}  // namespace computenet::storage
