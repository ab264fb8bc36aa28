// The ledger's numbered migrations. Versions 1-3 are the ledger's share of
// the single schema broker files had before owners existed; such a file is
// adopted at its version by storage (database.cc) and continues from here.
#include "computenet/ledger/schema.h"

namespace computenet::ledger {
namespace {

constexpr const char* kLedgerV1[] = {
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

// v2 (matching): usage records per job attempt (a preempted job is billed
// for each run).
constexpr const char* kLedgerV2[] = {
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
// other brokers' ledgers, fork evidence and settlement statements.
constexpr const char* kLedgerV3[] = {
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
    // One statement over two lines (parenthesized: clang's
    // -Wstring-concatenation takes adjacent literals in an array for a
    // missing comma).
    ("CREATE INDEX ledger_entry_accounts_by_sequence ON "
     "ledger_entry_accounts(sequence)"),
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

constexpr storage::Migration kLedgerMigrations[] = {
    {1, kLedgerV1},
    {2, kLedgerV2},
    {3, kLedgerV3},
};
static_assert(kLedgerMigrations[2].version == kSchemaVersion);

}  // namespace

Status MigrateSchema(storage::Database& database) {
  return database.Migrate(kSchemaOwner, kLedgerMigrations);
}

StatusOr<std::unique_ptr<storage::Database>> OpenForAudit(
    const std::string& path) {
  storage::DatabaseOptions options;
  options.read_only = true;
  CN_ASSIGN_OR_RETURN(auto database, storage::Database::Open(path, options));
  // On a read-only file Migrate only checks that the schema is current.
  CN_RETURN_IF_ERROR(MigrateSchema(*database));
  return database;
}

}  // namespace computenet::ledger
