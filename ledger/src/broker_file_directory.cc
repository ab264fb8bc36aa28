// The Directory of a broker database file. It reads two tables the broker's
// job store owns (their layout: broker/src/jobs/store.cc, schema "broker"),
// read-only and through these queries only.
#include "computenet/ledger/directory.h"
#include "computenet/ledger/audit_export.h"
#include "computenet/v1/job.pb.h"

namespace computenet::ledger {
namespace {

class FileDirectory final : public Directory {
 public:
  explicit FileDirectory(storage::Database& database) : database_(database) {}

  StatusOr<bool> IsConsumerEnrolled(const std::string& consumer) override {
    bool found = false;
    CN_RETURN_IF_ERROR(database_.Run([&]() -> Status {
      auto query = database_.Prepare(
          "SELECT 1 FROM enrollments WHERE role='consumer' AND name=?");
      query->bind(1, consumer);
      found = query->executeStep();
      return OkStatus();
    }));
    return found;
  }

  StatusOr<std::map<std::string, std::vector<std::string>>> ProviderKeys()
      override {
    return KeysOf("provider");
  }
  StatusOr<std::map<std::string, std::vector<std::string>>> PeerKeys()
      override {
    return KeysOf("peer");
  }

  StatusOr<JobPayer> PayerOf(const std::string& job_id) override {
    std::string info;
    bool found = false;
    CN_RETURN_IF_ERROR(database_.Run([&]() -> Status {
      auto query = database_.Prepare("SELECT info FROM jobs WHERE job_id=?");
      query->bind(1, job_id);
      found = query->executeStep();
      if (found) info = storage::BlobOf(query->getColumn(0));
      return OkStatus();
    }));
    if (!found) return NotFoundError("job " + job_id + " is missing");
    v1::JobInfo job;
    if (!job.ParseFromString(info)) {
      return DataLossError("job row " + job_id + " does not parse");
    }
    return JobPayer{job.consumer(), job.home_broker()};
  }

 private:
  StatusOr<std::map<std::string, std::vector<std::string>>> KeysOf(
      const char* role) {
    std::map<std::string, std::vector<std::string>> keys;
    CN_RETURN_IF_ERROR(database_.Run([&]() -> Status {
      auto query = database_.Prepare(
          "SELECT name, ed25519_public FROM enrollments WHERE role=?");
      query->bind(1, std::string(role));
      while (query->executeStep()) {
        keys[query->getColumn(0).getString()].push_back(
            query->getColumn(1).getString());
      }
      return OkStatus();
    }));
    return keys;
  }

  storage::Database& database_;
};

// An export holds the same facts in tables of its own, without the
// broker's jobs (specs, environments) or CURVE keys.
class ExportDirectory final : public Directory {
 public:
  explicit ExportDirectory(storage::Database& database) : database_(database) {}

  StatusOr<bool> IsConsumerEnrolled(const std::string& consumer) override {
    bool found = false;
    CN_RETURN_IF_ERROR(database_.Run([&]() -> Status {
      auto query = database_.Prepare(
          "SELECT 1 FROM export_parties WHERE role='consumer' AND name=?");
      query->bind(1, consumer);
      found = query->executeStep();
      return OkStatus();
    }));
    return found;
  }
  StatusOr<std::map<std::string, std::vector<std::string>>> ProviderKeys()
      override {
    return KeysOf("provider");
  }
  StatusOr<std::map<std::string, std::vector<std::string>>> PeerKeys()
      override {
    return KeysOf("peer");
  }
  StatusOr<JobPayer> PayerOf(const std::string& job_id) override {
    JobPayer payer;
    bool found = false;
    CN_RETURN_IF_ERROR(database_.Run([&]() -> Status {
      auto query = database_.Prepare(
          "SELECT consumer, home_broker FROM export_job_payers WHERE job_id=?");
      query->bind(1, job_id);
      found = query->executeStep();
      if (found) {
        payer.consumer = query->getColumn(0).getString();
        payer.home_broker = query->getColumn(1).getString();
      }
      return OkStatus();
    }));
    if (!found) return NotFoundError("job " + job_id + " is missing");
    return payer;
  }

 private:
  StatusOr<std::map<std::string, std::vector<std::string>>> KeysOf(
      const char* role) {
    std::map<std::string, std::vector<std::string>> keys;
    CN_RETURN_IF_ERROR(database_.Run([&]() -> Status {
      auto query = database_.Prepare(
          "SELECT name, ed25519_public FROM export_parties WHERE role=?");
      query->bind(1, std::string(role));
      while (query->executeStep()) {
        keys[query->getColumn(0).getString()].push_back(
            query->getColumn(1).getString());
      }
      return OkStatus();
    }));
    return keys;
  }

  storage::Database& database_;
};

}  // namespace

std::unique_ptr<Directory> BrokerFileDirectory(storage::Database& database) {
  return std::make_unique<FileDirectory>(database);
}

std::unique_ptr<Directory> ExportFileDirectory(storage::Database& database) {
  return std::make_unique<ExportDirectory>(database);
}

StatusOr<std::unique_ptr<Directory>> AuditDirectory(
    storage::Database& database) {
  bool is_export = false;
  CN_RETURN_IF_ERROR(database.Run([&]() -> Status {
    auto query = database.Prepare(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
    query->bind(1, std::string(kExportPayersTable));
    is_export = query->executeStep();
    return OkStatus();
  }));
  if (is_export) return ExportFileDirectory(database);
  return BrokerFileDirectory(database);
}

}  // namespace computenet::ledger
