// The ledger's tables (owner "ledger" in storage's schema_versions): accounts,
// entries, postings, holds, usage records, checkpoints and cosignatures,
// replicas of peers' ledgers, fork evidence and settlement statements.
//
// Thread safety: call from the thread that owns the database.
#ifndef COMPUTENET_LEDGER_SCHEMA_H_
#define COMPUTENET_LEDGER_SCHEMA_H_

#include <memory>
#include <string>

#include "computenet/common/status.h"
#include "computenet/storage/database.h"

namespace computenet::ledger {

inline constexpr char kSchemaOwner[] = "ledger";
inline constexpr int kSchemaVersion = 3;

// Creates or upgrades the ledger's tables. DATA_LOSS if the file's ledger
// schema is newer than this binary; FAILED_PRECONDITION if a read-only file
// is behind.
Status MigrateSchema(storage::Database& database);

// Opens a file holding a ledger read-only, for the offline audit and proofs.
// UNAVAILABLE if it cannot be opened; FAILED_PRECONDITION if its ledger
// schema is not this binary's (with how to migrate a copy).
StatusOr<std::unique_ptr<storage::Database>> OpenForAudit(
    const std::string& path);

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_SCHEMA_H_
