#include "ledger_commands.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/ledger/directory.h"
#include "computenet/ledger/schema.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/files.h"
#include "computenet/common/identity.h"
#include "computenet/common/exit_codes.h"
#include "computenet/common/utc_time.h"
#include "computenet/common/sha256.h"
#include "computenet/consumer/statement.h"

namespace computenet::cli {

int Fail(const Status& status) {
  std::cerr << "computenet: " << status.ToString() << "\n";
  return ExitCodeFor(status);  // the table in common/exit_codes.h
}

namespace {

StatusOr<VerifyingKey> BrokerKey(const std::string& identity_path) {
  if (identity_path.empty()) {
    return InvalidArgumentError(
        "give the broker's identity.pub (--broker-identity or "
        "COMPUTENET_BROKER_IDENTITY): its Ed25519 key checks the signatures");
  }
  CN_ASSIGN_OR_RETURN(PublicIdentity broker,
                      PublicIdentity::LoadFile(identity_path));
  return VerifyingKey::FromHex(broker.ed25519_public);
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

StatusOr<int64_t> ParseTime(const std::string& text) {
  if (text.empty()) return int64_t{0};
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    if (text.size() > 15) return InvalidArgumentError("time out of range: " + text);
    return static_cast<int64_t>(std::stoll(text));
  }
  std::tm tm{};
  std::istringstream in(text);
  if (text.size() == 10) {
    in >> std::get_time(&tm, "%Y-%m-%d");
  } else {
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  }
  if (in.fail()) {
    return InvalidArgumentError("time '" + text +
                                "' is not ms since the epoch, YYYY-MM-DD or "
                                "YYYY-MM-DDTHH:MM:SSZ (UTC)");
  }
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

int LedgerVerify(const std::string& db_path,
                 const std::string& broker_identity_path,
                 bool allow_unsigned_tail) {
  ledger::LedgerAuditOptions options;
  if (!broker_identity_path.empty()) {
    auto key = BrokerKey(broker_identity_path);
    if (!key.ok()) return Fail(key.status());
    options.expected_broker_key = key->hex();
  }
  auto database = ledger::OpenForAudit(db_path);
  if (!database.ok()) return Fail(database.status());
  // A broker's file or an auditor's export (ledger/audit_export.h).
  auto directory = ledger::AuditDirectory(**database);
  if (!directory.ok()) return Fail(directory.status());
  auto report = ledger::VerifyLedger(**database, **directory, options);
  if (!report.ok()) {
    std::cerr << "ledger verify FAILED: " << report.status().message() << "\n";
    return 1;
  }
  std::printf(
      "ledger OK: %llu entries, %llu usage records, %llu accounts, "
      "%lld minor units charged, head %s\n",
      static_cast<unsigned long long>(report->entries),
      static_cast<unsigned long long>(report->usage_records),
      static_cast<unsigned long long>(report->accounts),
      static_cast<long long>(report->total_charged),
      report->head_hash_hex.c_str());
  std::printf(
      "  %llu holds (%llu open); %llu signed checkpoints (covering %llu "
      "entries), %llu cosignatures; broker %s%s\n",
      static_cast<unsigned long long>(report->holds),
      static_cast<unsigned long long>(report->open_holds),
      static_cast<unsigned long long>(report->checkpoints),
      static_cast<unsigned long long>(report->checkpointed_entries),
      static_cast<unsigned long long>(report->cosignatures),
      report->broker_id.empty() ? "(unbound)" : report->broker_id.c_str(),
      broker_identity_path.empty() ? "" : ", key pinned");
  if (report->checkpointed_entries < report->entries) {
    const auto unsigned_entries = static_cast<unsigned long long>(
        report->entries - report->checkpointed_entries);
    const auto first = static_cast<unsigned long long>(
        report->checkpointed_entries + 1);
    if (!allow_unsigned_tail) {
      std::fflush(stdout);
      std::cerr << "ledger verify FAILED: " << unsigned_entries
                << " entries (from " << first
                << ") are not covered by a signed checkpoint, so nothing "
                   "shows they are the broker's: a stopped broker signs "
                   "them on shutdown; to accept them anyway (a copy of a "
                   "live broker), pass --allow-unsigned-tail\n";
      return 1;
    }
    std::printf("  note: %llu entries (from %llu) are not under a signed "
                "checkpoint yet (accepted: --allow-unsigned-tail)\n",
                unsigned_entries, first);
  }
  return 0;
}

int LedgerProve(const std::string& db_path, uint64_t sequence,
                const std::string& out_path) {
  auto database = ledger::OpenForAudit(db_path);
  if (!database.ok()) return Fail(database.status());
  auto proof = ledger::ProveEntry(**database, sequence);
  if (!proof.ok()) return Fail(proof.status());
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.add_whitespace = true;
  if (!google::protobuf::util::MessageToJsonString(*proof, &json, print).ok()) {
    return Fail(InternalError("JSON conversion"));
  }
  if (out_path.empty()) {
    std::cout << json;
    return 0;
  }
  Status written = WriteFileAtomically(out_path, json, 0644);
  if (!written.ok()) return Fail(written);
  std::printf("wrote the proof of entry %llu to %s\n",
              static_cast<unsigned long long>(sequence), out_path.c_str());
  return 0;
}

int LedgerVerifyProof(const std::string& proof_path,
                      const std::string& broker_identity_path) {
  auto key = BrokerKey(broker_identity_path);
  if (!key.ok()) return Fail(key.status());
  std::ifstream in(proof_path);
  if (!in) return Fail(NotFoundError("cannot read " + proof_path));
  std::stringstream text;
  text << in.rdbuf();
  v1::EntryProof proof;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &proof).ok()) {
    return Fail(InvalidArgumentError(proof_path + " is not an entry proof"));
  }
  auto entry = VerifyEntryProof(*key, proof);
  if (!entry.ok()) {
    std::cerr << "proof verification FAILED: " << entry.status().message()
              << "\n";
    return 1;
  }
  v1::Checkpoint checkpoint;
  checkpoint.ParseFromString(proof.checkpoint().checkpoint());
  std::printf("proof OK: entry %llu (%s%s%s) is in the ledger of broker %s "
              "as signed over its first %llu entries\n  at %s, Merkle head "
              "%s\n",
              static_cast<unsigned long long>(entry->sequence()),
              entry->kind().c_str(), entry->job_id().empty() ? "" : ", job ",
              entry->job_id().c_str(), checkpoint.broker_id().c_str(),
              static_cast<unsigned long long>(checkpoint.tree_size()),
              FormatUtc(checkpoint.timestamp_ms()).c_str(),
              HexEncode(checkpoint.root_hash()).c_str());
  return 0;
}

int Statement(consumer::Client& client, const std::string& broker_identity_path,
              const StatementOptions& options) {
  if (options.format != "table" && options.format != "csv" &&
      options.format != "json") {
    return Fail(InvalidArgumentError("--format is table, csv or json"));
  }
  auto key = BrokerKey(broker_identity_path);
  if (!key.ok()) return Fail(key.status());
  auto from = ParseTime(options.from);
  if (!from.ok()) return Fail(from.status());
  auto to = ParseTime(options.to);
  if (!to.ok()) return Fail(to.status());

  consumer::StatementQuery query;
  query.account = options.account;
  query.from_ms = *from;
  query.to_ms = *to;
  auto statement = consumer::FetchVerifiedStatement(client, *key, query);
  if (!statement.ok()) {
    if (statement.status().code() == StatusCode::kUnauthenticated) {
      std::cerr << "statement verification FAILED: "
                << statement.status().message() << "\n";
      return 1;
    }
    return Fail(statement.status());
  }
  const std::string& account = statement->account;
  const auto& lines = statement->lines;
  const v1::Checkpoint& last_checkpoint = statement->checkpoint;
  const int64_t net = statement->net_amount;
  const int64_t held = statement->held_change;
  if (options.format == "json") {
    nlohmann::json json_lines = nlohmann::json::array();
    for (const auto& view : lines) {
      nlohmann::json path = nlohmann::json::array();
      for (const auto& hash : view.line.inclusion().hashes()) {
        path.push_back(HexEncode(hash));
      }
      json_lines.push_back({{"sequence", view.sequence},
                            {"created_ms", view.created_ms},
                            {"time", FormatUtc(view.created_ms)},
                            {"kind", view.kind},
                            {"job_id", view.job_id},
                            {"amount", view.amount},
                            {"held_change", view.held_change},
                            {"detail", view.detail},
                            {"entry_hex", HexEncode(view.line.entry())},
                            {"leaf_index", view.line.inclusion().leaf_index()},
                            {"tree_size", view.line.inclusion().tree_size()},
                            {"audit_path", path}});
    }
    nlohmann::json out = {
        {"account", account},
        {"broker", last_checkpoint.broker_id()},
        {"checkpoint",
         {{"tree_size", last_checkpoint.tree_size()},
          {"root_hash", HexEncode(last_checkpoint.root_hash())},
          {"timestamp_ms", last_checkpoint.timestamp_ms()}}},
        {"verified", true},
        {"net_amount", net},
        {"lines", json_lines}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (options.format == "csv") {
    std::cout << "sequence,time,kind,job_id,amount,held_change,detail\n";
    for (const auto& line : lines) {
      std::cout << line.sequence << "," << FormatUtc(line.created_ms) << ","
                << line.kind << "," << CsvField(line.job_id) << ","
                << line.amount << "," << line.held_change << ","
                << CsvField(line.detail) << "\n";
    }
    return 0;
  }
  std::printf("Statement of %s (minor units)\n", account.c_str());
  std::printf("%-6s %-20s %-12s %-16s %12s %12s  %s\n", "SEQ", "TIME", "KIND",
              "JOB", "AMOUNT", "HELD", "DETAIL");
  for (const auto& line : lines) {
    std::printf("%-6llu %-20s %-12s %-16s %12lld %12lld  %s\n",
                static_cast<unsigned long long>(line.sequence),
                FormatUtc(line.created_ms).c_str(), line.kind.c_str(),
                line.job_id.c_str(), static_cast<long long>(line.amount),
                static_cast<long long>(line.held_change), line.detail.c_str());
  }
  std::printf("%zu lines, net %lld, held change %lld\n", lines.size(),
              static_cast<long long>(net), static_cast<long long>(held));
  if (!lines.empty()) {
    std::printf("verified: every line is in broker %s's ledger under its "
                "checkpoint of %llu entries signed %s\n",
                last_checkpoint.broker_id().c_str(),
                static_cast<unsigned long long>(last_checkpoint.tree_size()),
                FormatUtc(last_checkpoint.timestamp_ms()).c_str());
  }
  return 0;
}

}  // namespace computenet::cli
