// Directory: what the ledger needs to know about parties it does not own.
// The ledger owns accounts, entries, holds, usage records and checkpoints;
// enrolments and jobs belong to the broker. A top-up must name an enrolled
// consumer, and the audit checks each charge against the job's payer and
// each usage record against its provider's enrolled signing key: those facts
// come through this interface, so the ledger links storage + common only.
//
// Thread safety: implementations are used by the thread that owns the
// ledger (one thread).
#ifndef COMPUTENET_LEDGER_DIRECTORY_H_
#define COMPUTENET_LEDGER_DIRECTORY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/storage/database.h"

namespace computenet::ledger {

// Who pays for a job at this broker.
struct JobPayer {
  std::string consumer;
  // Set for a job a peer forwarded here: that peer's clearing account pays.
  std::string home_broker;
};

class Directory {
 public:
  virtual ~Directory() = default;
  // Whether a consumer of that name is enrolled (revoked ones count: their
  // account stays).
  virtual StatusOr<bool> IsConsumerEnrolled(const std::string& consumer) = 0;
  // The Ed25519 public keys (hex) of every enrolled provider, by name: every
  // key it holds or held (a key rotation keeps the old ones, so records
  // signed before it still verify).
  virtual StatusOr<std::map<std::string, std::vector<std::string>>>
  ProviderKeys() = 0;
  // The same for pinned peer brokers.
  virtual StatusOr<std::map<std::string, std::vector<std::string>>>
  PeerKeys() = 0;
  // NOT_FOUND if the job is unknown here.
  virtual StatusOr<JobPayer> PayerOf(const std::string& job_id) = 0;
};

// The Directory of a broker's own database file: reads its `enrollments`
// and `jobs` tables (read-only), as the broker (broker/src/jobs/store.cc) writes them.
// Used by the broker itself and by the offline audit of a broker file.
// database must outlive it.
std::unique_ptr<Directory> BrokerFileDirectory(storage::Database& database);

// The Directory of an auditor's export (ledger/audit_export.h): reads its
// export_parties and export_job_payers tables.
std::unique_ptr<Directory> ExportFileDirectory(storage::Database& database);

// For the offline audit of either kind of file: ExportFileDirectory if the
// file is an export, else BrokerFileDirectory.
StatusOr<std::unique_ptr<Directory>> AuditDirectory(storage::Database& database);

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_DIRECTORY_H_
