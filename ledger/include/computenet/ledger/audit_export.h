// The file a broker hands to auditors (`computenet-broker ledger export`):
// a standalone SQLite file holding only what `computenet ledger verify`
// needs, not the broker's whole database with its jobs' specs and
// environments. It holds
//   - the ledger's tables as they are (accounts, entries, postings, holds,
//     usage records with their provider signatures, checkpoints and
//     cosignatures, replicas, forks, settlement statements), the ledger's
//     schema version and its meta rows (broker id and key, v1 boundary);
//   - export_parties(role, name, ed25519_public): the consumers, providers
//     and peer brokers enrolled, with their Ed25519 public keys only;
//   - export_job_payers(job_id, consumer, home_broker): who pays for each
//     job, which the audit checks every charge against.
// No table of the broker's own (jobs, enrollments' CURVE keys, providers,
// job_secrets) is copied.
//
// Thread safety: stateless functions; each opens its own connections.
#ifndef COMPUTENET_LEDGER_AUDIT_EXPORT_H_
#define COMPUTENET_LEDGER_AUDIT_EXPORT_H_

#include <cstdint>
#include <string>

#include "computenet/common/status.h"

namespace computenet::ledger {

struct AuditExportSummary {
  uint64_t entries = 0;
  uint64_t usage_records = 0;
  uint64_t parties = 0;
  uint64_t job_payers = 0;
};

// Writes the export of the broker database at broker_db to out_path (mode
// 0600, replaced atomically). The broker may be running: everything is
// read in one read transaction of its WAL file, so the export is one
// consistent state. FAILED_PRECONDITION if broker_db holds no ledger;
// UNAVAILABLE if it cannot be opened; INTERNAL on I/O errors.
StatusOr<AuditExportSummary> WriteAuditExport(const std::string& broker_db,
                                              const std::string& out_path);

// The table that marks an export (see AuditDirectory in directory.h).
inline constexpr char kExportPayersTable[] = "export_job_payers";

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_AUDIT_EXPORT_H_
