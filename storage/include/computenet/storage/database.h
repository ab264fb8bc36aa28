// Database: ComputeNet's SQLite layer. One file, WAL journal, a chosen
// durability (synchronous=FULL by default), numbered migrations per owner,
// transactions that nest (savepoints), group commit (a batch: many
// transactions, one durable commit), cached prepared statements and the meta
// table of facts about the file itself.
//
// Owners: each component that keeps tables in a file (the broker's job and
// enrolment repository, the ledger) registers its own numbered migrations
// under its own name; `schema_versions` records how far each owner got. A file
// written before owners existed (PRAGMA user_version 1..3, one schema for
// everything) is adopted as "every owner at that version".
//
// Errors: every method returns Status; SQLite exceptions raised by the layer
// itself are converted (busy/locked -> UNAVAILABLE, constraint ->
// ALREADY_EXISTS, else INTERNAL). Statements handed out by Prepare() are
// SQLiteCpp statements: run them inside RunInTransaction (or a Read), which
// converts what they throw.
//
// Thread safety: a Database is used by one thread (the broker's core loop, or
// a CLI command). Other processes may open the same file: SQLite serializes
// writers, and the busy timeout makes a short wait instead of an error.
#ifndef COMPUTENET_STORAGE_DATABASE_H_
#define COMPUTENET_STORAGE_DATABASE_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "computenet/common/status.h"

namespace computenet::storage {

// What a commit waits for. kFull survives power loss (the default for every
// daemon); kNormal survives a crash of the process; kOff is for tests that
// build large fixtures and never crash.
enum class Durability { kFull, kNormal, kOff };

struct DatabaseOptions {
  Durability durability = Durability::kFull;
  // How long a writer waits for another process's lock before UNAVAILABLE.
  int busy_timeout_ms = 5000;
  // Opens an existing file only, refusing every write (offline audit).
  bool read_only = false;
};

// One numbered schema step of an owner: SQL statements run in order, in the
// same transaction as the version bump.
struct Migration {
  int version = 0;
  std::span<const char* const> statements;
};

class Database {
 public:
  // Opens (creating unless read_only) the file at path. UNAVAILABLE if it
  // cannot be opened.
  static StatusOr<std::unique_ptr<Database>> Open(
      const std::string& path, const DatabaseOptions& options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  // --- migrations ------------------------------------------------------------
  // Brings owner's tables to the last step of `steps` (ascending versions),
  // each step in one transaction. DATA_LOSS if the file's version for owner
  // is newer than the last step (a newer binary wrote it); FAILED_PRECONDITION
  // on a read-only file that is behind.
  Status Migrate(std::string_view owner, std::span<const Migration> steps);
  // The owner's schema version in this file; 0 if it never migrated.
  StatusOr<int> SchemaVersion(std::string_view owner);

  // --- transactions ------------------------------------------------------------
  // Runs fn in a transaction: commits if it returns OK, rolls back otherwise
  // (or if it throws a SQLite exception, converted to a Status). Nested calls
  // and calls inside a batch become savepoints, so an inner failure undoes
  // only its own writes. Returns fn's status.
  Status RunInTransaction(const std::function<Status()>& fn);
  // Runs fn, converting what SQLite throws into a Status. Its writes join the
  // open transaction or batch, if any (else each statement autocommits).
  Status Run(const std::function<Status()>& fn);
  bool in_transaction() const { return depth_ > 0 || batch_open_; }

  // Group commit: BeginBatch opens one write transaction (BEGIN IMMEDIATE)
  // that every write and RunInTransaction until CommitBatch joins; the disk
  // sees one durable commit for all of them. CommitBatch returns UNAVAILABLE
  // (retry) if the commit failed, and then nothing of the batch is visible.
  // RollbackBatch undoes the whole batch. No-ops when no batch is open.
  Status BeginBatch();
  Status CommitBatch();
  void RollbackBatch();
  bool batch_open() const { return batch_open_; }
  // Test hook: the next CommitBatch fails (and rolls back) as if the disk
  // had refused it.
  void FailNextCommitForTesting() { fail_next_commit_ = true; }

  // --- statements ----------------------------------------------------------------
  // A prepared statement for `sql`, kept for reuse (preparing costs more than
  // most point queries). The guard resets it when it goes out of scope, so no
  // half-read result keeps an old snapshot open. Not reentrant for one sql:
  // finish a use before starting the next. Throws SQLite::Exception like
  // SQLite::Statement: use it inside RunInTransaction or Read.
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
  // A statement for one use, not cached: for SQL built at run time (IN lists
  // from a request), which would otherwise grow the cache without bound.
  // Throws SQLite::Exception like Prepare.
  std::unique_ptr<SQLite::Statement> PrepareOnce(const std::string& sql);
  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql);
  // The single value of a one-row query (e.g. COUNT(*)); NOT_FOUND if no row.
  StatusOr<int64_t> QueryInt(const std::string& sql);
  int64_t last_insert_rowid() const;
  // Rows changed by the last statement.
  int changes() const;
  // SQLite's data_version: changes when another connection commits.
  StatusOr<int64_t> DataVersion();

  // --- meta: facts about the file itself (which broker owns it) ------------------
  // nullopt if the key was never set.
  StatusOr<std::optional<std::string>> GetMeta(const std::string& key);
  Status SetMeta(const std::string& key, const std::string& value);

 private:
  friend SQLite::Database& RawConnectionForTesting(Database& database);
  Database(std::unique_ptr<SQLite::Database> db, std::string path,
           bool read_only);
  Status AdoptLegacySchema();

  std::unique_ptr<SQLite::Database> db_;
  std::string path_;
  bool read_only_ = false;
  int depth_ = 0;          // nested RunInTransaction calls
  bool batch_open_ = false;
  bool fail_next_commit_ = false;
  int savepoint_counter_ = 0;
  // Declared after db_: destroyed (finalized) before the connection closes.
  std::map<std::string, std::unique_ptr<SQLite::Statement>> prepared_;
};

// The connection itself, for tests and forgery drills that tamper with a
// file on purpose. Never used by production code.
SQLite::Database& RawConnectionForTesting(Database& database);

// Converts a SQLite exception into a Status (INTERNAL; UNAVAILABLE when the
// database is busy/locked so the caller may retry; ALREADY_EXISTS for a
// constraint).
Status StatusFromSqlite(const SQLite::Exception& error, std::string_view what);

// The bytes of a BLOB column, and binding bytes as a BLOB: every table that
// stores serialized protobufs (jobs, entries, records, checkpoints) goes
// through these.
std::string BlobOf(const SQLite::Column& column);
void BindBlob(SQLite::Statement& statement, int index, const std::string& bytes);

}  // namespace computenet::storage

#endif  // COMPUTENET_STORAGE_DATABASE_H_
