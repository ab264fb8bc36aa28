#include "computenet/ledger/audit_export.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/schema.h"
#include "computenet/storage/database.h"
#include "computenet/v1/job.pb.h"

namespace computenet::ledger {
namespace {

// A file: URI for ATTACH (mode=ro: the export never writes the broker's
// file). The characters URIs give a meaning to are escaped.
std::string ReadOnlyUri(const std::string& path) {
  std::string out = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
      char escaped[4];
      std::snprintf(escaped, sizeof(escaped), "%%%02X", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "?mode=ro";
}

std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// The ledger's tables: named ledger_* plus the two it names otherwise
// (ledger/src/schema.cc).
constexpr char kLedgerTables[] =
    "type='table' AND (name LIKE 'ledger\\_%' ESCAPE '\\' OR "
    "name IN ('usage_records', 'settlement_statements'))";

uint64_t Count(SQLite::Database& db, const std::string& table) {
  return static_cast<uint64_t>(
      db.execAndGet("SELECT COUNT(*) FROM main." + table).getInt64());
}

Status Copy(SQLite::Database& out, AuditExportSummary* summary) {
  // The broker's file must hold a current ledger.
  {
    SQLite::Statement version(
        out, "SELECT version FROM src.schema_versions WHERE owner=?");
    version.bind(1, std::string(kSchemaOwner));
    if (!version.executeStep()) {
      return FailedPreconditionError("the file holds no ledger");
    }
    if (version.getColumn(0).getInt() != kSchemaVersion) {
      return FailedPreconditionError(
          "its ledger schema is version " +
          std::to_string(version.getColumn(0).getInt()) + ", expected " +
          std::to_string(kSchemaVersion) +
          " (open it once with this version's computenet-broker)");
    }
  }
  // The storage layer's bookkeeping, holding the ledger's rows only.
  out.exec(
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE schema_versions(owner TEXT PRIMARY KEY, "
      "version INTEGER NOT NULL);");
  {
    SQLite::Statement version(out,
                              "INSERT INTO main.schema_versions "
                              "SELECT owner, version FROM src.schema_versions "
                              "WHERE owner=?");
    version.bind(1, std::string(kSchemaOwner));
    version.exec();
    SQLite::Statement meta(out,
                           "INSERT INTO main.meta SELECT key, value FROM "
                           "src.meta WHERE key IN (?, ?, ?)");
    meta.bind(1, std::string(kMetaBrokerId));
    meta.bind(2, std::string(kMetaBrokerKey));
    meta.bind(3, std::string(kMetaV1Entries));
    meta.exec();
  }
  // The ledger's tables and indexes, as the broker's file declares them.
  std::vector<std::pair<std::string, std::string>> tables;
  {
    SQLite::Statement list(out, std::string("SELECT name, sql FROM "
                                            "src.sqlite_master WHERE ") +
                                    kLedgerTables + " ORDER BY name");
    while (list.executeStep()) {
      tables.emplace_back(list.getColumn(0).getString(),
                          list.getColumn(1).getString());
    }
  }
  for (const auto& [name, sql] : tables) {
    out.exec(sql);  // CREATE TABLE name(...): in main, the export
    out.exec("INSERT INTO main.\"" + name + "\" SELECT * FROM src.\"" + name +
             "\"");
  }
  {
    std::vector<std::string> indexes;
    SQLite::Statement list(
        out,
        std::string("SELECT sql FROM src.sqlite_master WHERE type='index' AND "
                    "sql IS NOT NULL AND tbl_name IN (SELECT name FROM "
                    "src.sqlite_master WHERE ") +
            kLedgerTables + ")");
    while (list.executeStep()) indexes.push_back(list.getColumn(0).getString());
    for (const auto& sql : indexes) out.exec(sql);
  }
  // What the audit's Directory needs: parties' public keys, jobs' payers.
  out.exec(
      "CREATE TABLE export_parties(role TEXT NOT NULL, name TEXT NOT NULL, "
      "ed25519_public TEXT NOT NULL);"
      "CREATE INDEX export_parties_by_role ON export_parties(role, name);"
      "CREATE TABLE export_job_payers(job_id TEXT PRIMARY KEY, "
      "consumer TEXT NOT NULL, home_broker TEXT NOT NULL);");
  out.exec(
      "INSERT INTO main.export_parties SELECT role, name, ed25519_public "
      "FROM src.enrollments WHERE role IN ('consumer', 'provider', 'peer')");
  {
    SQLite::Statement jobs(out, "SELECT job_id, info FROM src.jobs");
    SQLite::Statement put(out,
                          "INSERT INTO main.export_job_payers VALUES(?, ?, ?)");
    while (jobs.executeStep()) {
      v1::JobInfo job;
      if (!job.ParseFromString(storage::BlobOf(jobs.getColumn(1)))) {
        return DataLossError("job row " + jobs.getColumn(0).getString() +
                             " does not parse");
      }
      put.bind(1, jobs.getColumn(0).getString());
      put.bind(2, job.consumer());
      put.bind(3, job.home_broker());
      put.exec();
      put.reset();
    }
  }
  summary->entries = Count(out, "ledger_entries");
  summary->usage_records = Count(out, "usage_records");
  summary->parties = Count(out, "export_parties");
  summary->job_payers = Count(out, "export_job_payers");
  return OkStatus();
}

}  // namespace

StatusOr<AuditExportSummary> WriteAuditExport(const std::string& broker_db,
                                              const std::string& out_path) {
  if (::access(broker_db.c_str(), R_OK) != 0) {
    return UnavailableError(ErrnoText("open", broker_db));
  }
  const std::string temp = out_path + ".tmp." + std::to_string(::getpid());
  ::unlink(temp.c_str());
  // Owner-only from the first byte: the export names consumers and what
  // they paid.
  const int fd =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError(ErrnoText("create", temp));
  ::close(fd);
  AuditExportSummary summary;
  Status copied = [&]() -> Status {
    try {
      SQLite::Database out(temp, SQLite::OPEN_READWRITE | SQLite::OPEN_URI);
      out.setBusyTimeout(5000);
      // One file, no -wal beside it.
      out.exec("PRAGMA journal_mode=DELETE");
      SQLite::Statement attach(out, "ATTACH DATABASE ? AS src");
      attach.bind(1, ReadOnlyUri(broker_db));
      attach.exec();
      // One transaction: src is read under one snapshot of its WAL, so the
      // export is a consistent state even while the broker writes.
      SQLite::Transaction transaction(out);
      CN_RETURN_IF_ERROR(Copy(out, &summary));
      transaction.commit();
      out.exec("DETACH DATABASE src");
      out.exec("PRAGMA user_version=100");  // storage's owner-versioned mark
      return OkStatus();
    } catch (const SQLite::Exception& error) {
      return storage::StatusFromSqlite(error, "export " + broker_db);
    }
  }();
  if (!copied.ok()) {
    ::unlink(temp.c_str());
    return copied;
  }
  const int sync_fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (sync_fd < 0 || ::fsync(sync_fd) != 0) {
    if (sync_fd >= 0) ::close(sync_fd);
    ::unlink(temp.c_str());
    return InternalError(ErrnoText("sync", temp));
  }
  ::close(sync_fd);
  if (::rename(temp.c_str(), out_path.c_str()) != 0) {
    Status error = InternalError(ErrnoText("rename", temp));
    ::unlink(temp.c_str());
    return error;
  }
  return summary;
}

}  // namespace computenet::ledger
