// computenet-broker: the regional hub daemon and its operator commands.
//
//   computenet-broker keygen   --name ID --out DIR [--rekey-from OLD_DIR]
//   computenet-broker enroll   --db FILE --role ROLE --identity FILE [--name N]
//                              [--org ORGANIZATION]   (consumers: fair share)
//                              [--rotate [--overlap-s S]]  (a new key, same party)
//   computenet-broker retire   --db FILE --role ROLE --name N  (end an overlap now)
//   computenet-broker revoke   --db FILE --role ROLE --name N
//   computenet-broker enrollments --db FILE
//   computenet-broker run      --db FILE --keys DIR [--endpoint E]
//                              [--catalog accelerators.toml] ...
//   computenet-broker settlement --db FILE
//   computenet-broker topup    --db FILE --consumer NAME --amount MINOR [--key K]
//   computenet-broker credit-limit --db FILE --consumer NAME --limit MINOR
//   computenet-broker priority --db FILE [--org ORGANIZATION] [--max low|normal|high]
//   computenet-broker ledger export --db FILE --out FILE   (the auditors' file)
#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "computenet/common/exit_codes.h"
#include "computenet/common/version.h"
#include "computenet/broker/broker.h"
#include "computenet/broker/broker_config.h"
#include "computenet/common/files.h"
#include "computenet/common/job_state.h"
#include "computenet/common/utc_time.h"
#include "computenet/common/logging.h"
#include "computenet/ledger/audit_export.h"
#include "computenet/ledger/directory.h"
#include "computenet/ledger/ledger.h"
#include "computenet/matching/accelerator_catalog.h"
#include "jobs/store.h"

namespace {

using computenet::Status;
namespace broker = computenet::broker;
namespace ledger = computenet::ledger;

std::atomic<broker::Broker*> g_running{nullptr};

void OnSignal(int) {
  if (auto* b = g_running.load()) b->Shutdown();
}

// SIGHUP re-reads what can change while the broker runs (revocations) and
// logs what it reloaded; it used to kill the broker (exit 129).
void OnHangup(int) {
  if (auto* b = g_running.load()) b->Reload();
}

int Fail(const Status& status) {
  std::cerr << "computenet-broker: " << status.ToString() << "\n";
  return computenet::ExitCodeFor(status);  // common/exit_codes.h
}

std::string FormatMinor(int64_t amount) {
  // Minor units as major.minor with two decimals (CNY fen, USD cents).
  const char* sign = amount < 0 ? "-" : "";
  uint64_t magnitude = amount < 0 ? static_cast<uint64_t>(-(amount + 1)) + 1
                                  : static_cast<uint64_t>(amount);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%s%llu.%02llu", sign,
                static_cast<unsigned long long>(magnitude / 100),
                static_cast<unsigned long long>(magnitude % 100));
  return buffer;
}

int Settlement(const std::string& db_path) {
  auto store = broker::Store::OpenReadOnly(db_path);
  if (!store.ok()) return Fail(store.status());
  auto jobs = (*store)->ListJobs("", {}, 1000);
  if (!jobs.ok()) return Fail(jobs.status());
  std::printf("%-14s %-10s %-12s %-10s %-6s %12s %12s %12s\n", "JOB", "STATE",
              "CONSUMER", "PROVIDER", "MODEL", "CARD-SEC", "PRICE/CH", "CHARGED");
  for (auto it = jobs->rbegin(); it != jobs->rend(); ++it) {
    std::printf("%-14s %-10s %-12s %-10s %-6s %12llu %12s %12s\n",
                it->job_id().c_str(), computenet::JobStateName(it->state()).c_str(),
                it->consumer().c_str(), it->provider().c_str(),
                it->model().c_str(),
                static_cast<unsigned long long>(it->card_seconds()),
                FormatMinor(it->price_per_card_hour()).c_str(),
                FormatMinor(it->charged()).c_str());
  }
  auto directory = ledger::BrokerFileDirectory((*store)->database());
  ledger::Ledger ledger((*store)->database(), *directory);
  auto balances = ledger.Balances();
  if (!balances.ok()) return Fail(balances.status());
  std::printf("\nSettlement (balances in major units; minor units exact):\n");
  int64_t total = 0;
  for (const auto& balance : *balances) {
    std::printf("  %-28s %14s  (%lld minor units", balance.account.c_str(),
                FormatMinor(balance.balance).c_str(),
                static_cast<long long>(balance.balance));
    if (balance.held != 0) {
      std::printf(", %lld held", static_cast<long long>(balance.held));
    }
    if (balance.credit_limit.value_or(0) != 0) {
      std::printf(", credit limit %lld",
                  static_cast<long long>(*balance.credit_limit));
    }
    std::printf(")\n");
    total += balance.balance;
  }
  std::printf("  %-28s %14s  (double entry: must be 0)\n", "sum of all accounts",
              FormatMinor(total).c_str());
  // Net settlement with peer brokers: the latest statement per direction,
  // and whether both brokers signed it.
  auto& database = (*store)->database();
  computenet::Status listed = database.Run([&]() -> computenet::Status {
    auto statements = database.Prepare(
        "SELECT debtor, creditor, net, lines, agreed, differences, "
        "MAX(created_ms) FROM settlement_statements GROUP BY debtor, creditor "
        "ORDER BY debtor, creditor");
    bool first = true;
    while (statements->executeStep()) {
      if (first) std::printf("Net settlement statements with peer brokers:\n");
      first = false;
      const bool agreed = statements->getColumn(4).getInt() != 0;
      std::printf("  %s owes %s %s (%lld minor units, %d lines): %s\n",
                  statements->getColumn(0).getString().c_str(),
                  statements->getColumn(1).getString().c_str(),
                  FormatMinor(statements->getColumn(2).getInt64()).c_str(),
                  static_cast<long long>(statements->getColumn(2).getInt64()),
                  statements->getColumn(3).getInt(),
                  agreed ? "agreed, signed by both"
                         : ("DIFFERS: " + statements->getColumn(5).getString())
                               .c_str());
    }
    return computenet::OkStatus();
  });
  if (!listed.ok()) return Fail(listed.WithContext("settlement statements"));
  auto audit = ledger::VerifyLedger((*store)->database(), *directory);
  if (!audit.ok()) return Fail(audit.status());
  std::printf("Ledger verified: %llu entries, %llu usage records, %llu signed "
              "checkpoints, head %s\n",
              static_cast<unsigned long long>(audit->entries),
              static_cast<unsigned long long>(audit->usage_records),
              static_cast<unsigned long long>(audit->checkpoints),
              audit->head_hash_hex.substr(0, 16).c_str());
  return 0;
}

std::string RandomKey() {
  std::random_device random;
  std::string key;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof(part), "%08x", random());
    key += part;
  }
  return key;
}

// Money comes in through the operator's top-up account; limits let an
// account go below zero. Both are ledger entries, so the audit sees them.
int TopUp(const std::string& db_path, const std::string& consumer,
          int64_t amount, std::string key, const std::string& memo) {
  auto store = broker::Store::Open(db_path);
  if (!store.ok()) return Fail(store.status());
  if (key.empty()) key = RandomKey();
  auto directory = ledger::BrokerFileDirectory((*store)->database());
  ledger::Ledger ledger((*store)->database(), *directory);
  auto posted = ledger.TopUp(consumer, amount, key, memo,
                             computenet::SystemClock::Shared()->NowMs());
  if (!posted.ok()) return Fail(posted.status());
  auto account = ledger.Account(ledger::ConsumerAccount(consumer));
  if (!account.ok()) return Fail(account.status());
  std::printf("%s consumer:%s by %lld minor units (ledger entry %llu, key %s); "
              "balance %lld, held %lld\n",
              posted->duplicate ? "already topped up" : "topped up",
              consumer.c_str(), static_cast<long long>(amount),
              static_cast<unsigned long long>(posted->entry.sequence()),
              key.c_str(), static_cast<long long>(account->balance),
              static_cast<long long>(account->held));
  return 0;
}

int CreditLimit(const std::string& db_path, const std::string& consumer,
                int64_t limit) {
  auto store = broker::Store::Open(db_path);
  if (!store.ok()) return Fail(store.status());
  auto enrolled = (*store)->FindEnrollment(broker::Role::kConsumer, consumer);
  if (!enrolled.ok()) return Fail(enrolled.status());
  if (!enrolled->has_value()) {
    return Fail(computenet::NotFoundError("no consumer '" + consumer +
                                          "' is enrolled"));
  }
  auto directory = ledger::BrokerFileDirectory((*store)->database());
  ledger::Ledger ledger((*store)->database(), *directory);
  auto posted = ledger.SetCreditLimit(
      ledger::ConsumerAccount(consumer), limit,
      computenet::SystemClock::Shared()->NowMs());
  if (!posted.ok()) return Fail(posted.status());
  std::printf("consumer:%s credit limit %s %lld minor units\n",
              consumer.c_str(), posted->has_value() ? "set to" : "already",
              static_cast<long long>(limit));
  return 0;
}

// Grants (or with no --max, lists) the highest priority class an
// organization's consumers may submit.
int Priority(const std::string& db_path, const std::string& organization,
             const std::string& max) {
  auto store = broker::Store::Open(db_path);
  if (!store.ok()) return Fail(store.status());
  if (max.empty()) {
    auto grants = (*store)->ListMaxPriorities();
    if (!grants.ok()) return Fail(grants.status());
    for (const auto& [org, priority] : *grants) {
      if (!organization.empty() && org != organization) continue;
      std::printf("%s\t%s\n", org.c_str(),
                  computenet::v1::PriorityClass_Name(priority).c_str() +
                      sizeof("PRIORITY_CLASS_") - 1);
    }
    return 0;
  }
  static const std::map<std::string, computenet::v1::PriorityClass> kClasses = {
      {"low", computenet::v1::PRIORITY_CLASS_LOW},
      {"normal", computenet::v1::PRIORITY_CLASS_NORMAL},
      {"high", computenet::v1::PRIORITY_CLASS_HIGH}};
  auto it = kClasses.find(max);
  if (it == kClasses.end()) {
    return Fail(computenet::InvalidArgumentError(
        "--max must be low, normal or high, not '" + max + "'"));
  }
  if (organization.empty()) {
    return Fail(computenet::InvalidArgumentError("--org is required with --max"));
  }
  Status valid = computenet::ValidatePartyName(organization);
  if (!valid.ok()) return Fail(valid.WithContext("--org"));
  Status set = (*store)->SetMaxPriority(organization, it->second,
                                        computenet::SystemClock::Shared()->NowMs());
  if (!set.ok()) return Fail(set);
  std::printf("organization %s may submit up to %s priority\n",
              organization.c_str(), max.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"computenet-broker: ComputeNet regional broker"};
  app.require_subcommand(1);
  // `computenet-broker run --log-level debug` as well as before `run`.
  app.fallthrough();
  app.set_version_flag("--version",
                       computenet::VersionLine("computenet-broker"));
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember(computenet::LogLevelNames()));
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text (default) or json: one JSON object per line")
      ->check(CLI::IsMember(computenet::LogFormatNames()));

  std::string name, out_dir;
  bool force = false;
  auto* keygen = app.add_subcommand("keygen", "create the broker's keys");
  keygen->add_option("--name", name, "broker id")->required();
  keygen->add_option("--out", out_dir, "directory for the keys")->required();
  keygen->add_flag("--force", force, "overwrite existing keys");
  std::string rekey_from;
  keygen->add_option("--rekey-from", rekey_from,
                     "key directory whose name and signing key to keep: only "
                     "the CURVE key is new (a broker's key rotation)");

  std::string db_path, role_name, identity_path;
  auto* enroll = app.add_subcommand("enroll", "admit a party's public key");
  enroll->add_option("--db", db_path, "broker database")->required();
  enroll->add_option("--role", role_name, "provider|consumer|peer|admin")
      ->required();
  enroll->add_option("--identity", identity_path, "identity.pub file")
      ->required();
  enroll->add_option("--name", name, "override the name in the file");
  std::string organization;
  enroll->add_option("--org", organization,
                     "consumer's organization for fair share (default: its "
                     "name)");
  bool rotate = false;
  int64_t overlap_s = 0;
  enroll->add_flag("--rotate", rotate,
                   "bind this new key to the already enrolled party of that "
                   "name (same account, jobs and organization)");
  enroll
      ->add_option("--overlap-s", overlap_s,
                   "with --rotate: the party's old key(s) keep working this "
                   "many seconds (default 0: refused at once)")
      ->check(CLI::Range(int64_t{0}, int64_t{365} * 24 * 3600));

  auto* retire = app.add_subcommand(
      "retire",
      "end a rotation's overlap now: the party's old keys are refused");
  retire->add_option("--db", db_path)->required();
  retire->add_option("--role", role_name)->required();
  retire->add_option("--name", name)->required();

  auto* revoke = app.add_subcommand("revoke", "revoke an enrollment");
  revoke->add_option("--db", db_path)->required();
  revoke->add_option("--role", role_name)->required();
  revoke->add_option("--name", name)->required();

  auto* list = app.add_subcommand(
      "enrollments",
      "list enrolled keys and their state (active, retiring until T, retired, "
      "revoked)");
  list->add_option("--db", db_path)->required();

  broker::BrokerOptions options;
  std::string keys_dir, endpoint_file, config_path;
  auto* run = app.add_subcommand("run", "serve");
  run->add_option("--config", config_path,
                  "broker config (TOML); flags given as well override its keys");
  run->add_option("--db", options.database_path, "broker database");
  run->add_option("--keys", keys_dir, "broker key directory");
  run->add_option("--region", options.region, "region served")
      ->capture_default_str();
  run->add_option("--endpoint", options.endpoint, "bind address")
      ->capture_default_str();
  run->add_option("--broker-id", options.broker_id, "job id prefix")
      ->capture_default_str();
  run->add_option("--heartbeat-ms", options.heartbeat_interval_ms)
      ->capture_default_str();
  run->add_option("--liveness", options.heartbeat_liveness)
      ->capture_default_str();
  run->add_option("--endpoint-file", endpoint_file,
                  "write the bound endpoint here (for port 0)");
  std::string catalog_path;
  run->add_option("--catalog", catalog_path,
                  "accelerator catalog (default: accelerators.toml next to "
                  "this binary, else the built-in one)");
  int64_t half_life_s = options.queue.fair_share_half_life_ms / 1000;
  int64_t aging_s = options.queue.aging_interval_ms / 1000;
  run->add_option("--fair-share-half-life-s", half_life_s,
                  "fair-share usage halves every this many seconds")
      ->capture_default_str();
  run->add_option("--aging-interval-s", aging_s,
                  "a waiting job climbs one priority level per this many "
                  "seconds")
      ->capture_default_str();
  run->add_option("--lost-job-timeout-ms", options.lost_job_timeout_ms,
                  "jobs on a provider that stays lost this long fail")
      ->capture_default_str()
      ->check(CLI::Range(100, 7 * 24 * 3600 * 1000));
  run->add_option("--reclaim-grace-ms", options.reclaim_grace_ms,
                  "notice-to-stop grace when spare capacity is reclaimed")
      ->capture_default_str();
  run->add_option("--fee-bps", options.fee_bps,
                  "broker fee share of each usage charge, basis points")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000));
  run->add_option("--checkpoint-every", options.checkpoint_every_entries,
                  "sign a ledger checkpoint every N entries")
      ->capture_default_str();
  run->add_option("--checkpoint-interval-ms", options.checkpoint_interval_ms,
                  "... or this often when there are new entries")
      ->capture_default_str();
  run->add_option("--metrics-address", options.metrics_address,
                  "HOST:PORT for GET /metrics, /healthz, /readyz over plain "
                  "HTTP (e.g. 127.0.0.1:9464; default: none)");

  std::string consumer, key, memo;
  int64_t amount = 0;
  auto* topup = app.add_subcommand("topup", "credit a consumer's prepaid account");
  topup->add_option("--db", db_path)->required();
  topup->add_option("--consumer", consumer, "enrolled consumer name")->required();
  topup->add_option("--amount", amount, "minor units, > 0")->required();
  topup->add_option("--key", key,
                    "idempotency key: the same key again tops up once "
                    "(default: a random one)");
  topup->add_option("--memo", memo, "a note kept in the ledger");
  int64_t limit = 0;
  auto* credit = app.add_subcommand(
      "credit-limit", "let a consumer's balance go down to -LIMIT");
  credit->add_option("--db", db_path)->required();
  credit->add_option("--consumer", consumer, "enrolled consumer name")
      ->required();
  credit->add_option("--limit", limit, "minor units, >= 0")->required();

  std::string max_priority;
  auto* priority = app.add_subcommand(
      "priority",
      "grant an organization the highest priority class its consumers may "
      "submit (HIGH may preempt others' preemptible work); without --max, "
      "list the grants");
  priority->add_option("--db", db_path)->required();
  priority->add_option("--org", organization, "organization (as enrolled)");
  priority->add_option("--max", max_priority, "low, normal or high");

  auto* settlement = app.add_subcommand("settlement", "print charges and balances");
  settlement->add_option("--db", db_path)->required();

  auto* ledger_command = app.add_subcommand("ledger", "the ledger for auditors");
  ledger_command->require_subcommand(1);
  std::string export_path;
  auto* ledger_export = ledger_command->add_subcommand(
      "export",
      "write the file for auditors: the ledger, checkpoints, signed usage "
      "records and the public keys `computenet ledger verify` checks them "
      "with; no job specs or environments (safe while the broker runs)");
  ledger_export->add_option("--db", db_path, "broker database")->required();
  ledger_export->add_option("--out", export_path, "the export (mode 0600)")
      ->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every other parse error is a usage error.
    const int code = app.exit(error);
    return code == 0 ? computenet::kExitOk : computenet::kExitUsage;
  }
  // The log names the broker, which the config file holds. (It once set its
  // own pattern here, which printed messages raw, past SafeText.)
  std::string log_component = "broker";
  if (*run && !config_path.empty()) {
    auto config = broker::LoadBrokerConfig(config_path);
    if (config.ok()) log_component = config->options.broker_id;
  }
  computenet::InitLogging(log_component, log_level, log_format);

  if (*keygen && !rekey_from.empty()) {
    auto old = computenet::Identity::Load(rekey_from);
    if (!old.ok()) return Fail(old.status());
    if (old->name() != name) {
      return Fail(computenet::InvalidArgumentError(
          rekey_from + " holds the keys of '" + old->name() + "', not '" +
          name + "'"));
    }
    auto identity = old->WithNewCurveKey();
    if (!identity.ok()) return Fail(identity.status());
    Status saved = identity->Save(out_dir, force);
    if (!saved.ok()) return Fail(saved);
    // The sealed secret env of unfinished jobs opens only under the same
    // secrets.key: it moves with the signing key.
    auto secrets_key = computenet::ReadSecretFile(rekey_from + "/secrets.key");
    if (secrets_key.ok()) {
      Status copied = computenet::WriteFileAtomically(
          out_dir + "/secrets.key", *secrets_key, 0600);
      if (!copied.ok()) return Fail(copied);
    } else if (secrets_key.status().code() != computenet::StatusCode::kNotFound) {
      return Fail(secrets_key.status());
    }
    std::cout << "wrote " << out_dir << "/identity.pub with a new CURVE key "
              << identity->curve().public_z85 << " (signing key kept from "
              << rekey_from << ")\n";
    return 0;
  }
  if (*keygen) {
    auto identity = computenet::Identity::Generate(name);
    if (!identity.ok()) return Fail(identity.status());
    Status saved = identity->Save(out_dir, force);
    if (!saved.ok()) return Fail(saved);
    std::cout << "wrote " << out_dir << "/identity.pub (public), curve.key and "
              << "signing.pem (secret, 0600)\n";
    return 0;
  }
  if (*enroll || *revoke || *list || *retire) {
    auto store = broker::Store::Open(db_path);
    if (!store.ok()) return Fail(store.status());
    if (*list) {
      auto all = (*store)->ListEnrollments();
      if (!all.ok()) return Fail(all.status());
      const int64_t now = computenet::SystemClock::Shared()->NowMs();
      for (const auto& e : *all) {
        std::string state = "active";
        if (e.revoked) {
          state = "revoked";
        } else if (e.RetiredAt(now)) {
          state = "retired";
        } else if (e.retire_at_ms.has_value()) {
          state = "retiring until " + computenet::FormatUtc(*e.retire_at_ms);
        }
        std::cout << broker::RoleName(e.role) << "\t" << e.name << "\t"
                  << e.curve_public << "\t" << state;
        if (e.role == broker::Role::kConsumer && e.organization != e.name) {
          std::cout << "\torg=" << e.organization;
        }
        std::cout << "\n";
      }
      return 0;
    }
    auto role = broker::ParseRole(role_name);
    if (!role.ok()) return Fail(role.status());
    if (*revoke) {
      Status revoked = (*store)->Revoke(*role, name);
      if (!revoked.ok()) return Fail(revoked);
      std::cout << "revoked " << role_name << " " << name
                << " (every key it holds)\n";
      return 0;
    }
    if (*retire) {
      auto retired = (*store)->EndOverlap(
          *role, name, computenet::SystemClock::Shared()->NowMs());
      if (!retired.ok()) return Fail(retired.status());
      std::cout << "retired " << *retired << " key(s) of " << role_name << " "
                << name << "\n";
      return 0;
    }
    auto identity = computenet::PublicIdentity::LoadFile(identity_path);
    if (!identity.ok()) return Fail(identity.status());
    if (!name.empty()) {
      Status valid = computenet::ValidatePartyName(name);
      if (!valid.ok()) return Fail(valid);
      identity->name = name;
    }
    if (!organization.empty()) {
      Status valid = computenet::ValidatePartyName(organization);
      if (!valid.ok()) return Fail(valid.WithContext("--org"));
    }
    if (!rotate && enroll->count("--overlap-s") > 0) {
      return Fail(
          computenet::InvalidArgumentError("--overlap-s needs --rotate"));
    }
    if (rotate) {
      if (!organization.empty()) {
        return Fail(computenet::InvalidArgumentError(
            "--org cannot change with --rotate: the party keeps its own"));
      }
      const int64_t now = computenet::SystemClock::Shared()->NowMs();
      Status rotated =
          (*store)->RotateKey(*role, *identity, now, overlap_s * 1000);
      if (!rotated.ok()) return Fail(rotated);
      std::cout << "rotated " << role_name << " " << identity->name
                << " to key " << identity->curve_public << "; its old key(s) "
                << (overlap_s == 0
                        ? std::string("are refused from now on")
                        : "work until " +
                              computenet::FormatUtc(now + overlap_s * 1000))
                << "\n";
      return 0;
    }
    Status enrolled = (*store)->Enroll(
        *role, *identity, computenet::SystemClock::Shared()->NowMs(),
        organization);
    if (!enrolled.ok()) return Fail(enrolled);
    std::cout << "enrolled " << role_name << " " << identity->name << "\n";
    return 0;
  }
  if (*settlement) return Settlement(db_path);
  if (*ledger_export) {
    auto summary = ledger::WriteAuditExport(db_path, export_path);
    if (!summary.ok()) return Fail(summary.status());
    std::cout << "wrote " << export_path << " (0600): " << summary->entries
              << " ledger entries, " << summary->usage_records
              << " usage records, " << summary->parties << " parties' keys, "
              << summary->job_payers << " job payers; verify it with "
              << "`computenet ledger verify " << export_path << "`\n";
    return 0;
  }
  if (*topup) return TopUp(db_path, consumer, amount, key, memo);
  if (*credit) return CreditLimit(db_path, consumer, limit);
  if (*priority) return Priority(db_path, organization, max_priority);

  // run
  if (!config_path.empty()) {
    auto config = broker::LoadBrokerConfig(config_path);
    if (!config.ok()) return Fail(config.status());
    // The file is the base; a flag given on the command line overrides its
    // key (and says so), rather than being silently ignored.
    const broker::BrokerOptions flags = options;
    const std::string flag_keys = keys_dir, flag_endpoint_file = endpoint_file;
    options = std::move(config->options);
    keys_dir = config->keys_dir;
    endpoint_file = config->endpoint_file;
    std::string overridden;
    auto take = [&](const char* flag, auto apply) {
      if (run->count(flag) == 0) return;
      apply();
      overridden += std::string(overridden.empty() ? "" : ", ") + flag;
    };
    take("--db", [&] { options.database_path = flags.database_path; });
    take("--keys", [&] { keys_dir = flag_keys; });
    take("--region", [&] { options.region = flags.region; });
    take("--endpoint", [&] { options.endpoint = flags.endpoint; });
    take("--broker-id", [&] { options.broker_id = flags.broker_id; });
    take("--heartbeat-ms", [&] { options.heartbeat_interval_ms = flags.heartbeat_interval_ms; });
    take("--liveness", [&] { options.heartbeat_liveness = flags.heartbeat_liveness; });
    take("--endpoint-file", [&] { endpoint_file = flag_endpoint_file; });
    take("--reclaim-grace-ms", [&] { options.reclaim_grace_ms = flags.reclaim_grace_ms; });
    take("--lost-job-timeout-ms",
         [&] { options.lost_job_timeout_ms = flags.lost_job_timeout_ms; });
    take("--fee-bps", [&] { options.fee_bps = flags.fee_bps; });
    take("--checkpoint-every",
         [&] { options.checkpoint_every_entries = flags.checkpoint_every_entries; });
    take("--checkpoint-interval-ms",
         [&] { options.checkpoint_interval_ms = flags.checkpoint_interval_ms; });
    take("--metrics-address", [&] { options.metrics_address = flags.metrics_address; });
    if (!overridden.empty()) {
      spdlog::info("command-line flags override {}: {}", config_path, overridden);
    }
  }
  if (options.database_path.empty() || keys_dir.empty()) {
    return Fail(computenet::InvalidArgumentError(
        "run needs --config, or --db and --keys"));
  }
  if (half_life_s <= 0 || aging_s <= 0) {
    return Fail(computenet::InvalidArgumentError(
        "--fair-share-half-life-s and --aging-interval-s must be positive"));
  }
  options.queue.fair_share_half_life_ms = half_life_s * 1000;
  options.queue.aging_interval_ms = aging_s * 1000;
  if (catalog_path.empty()) {
    // Installed next to the binary (CMake copies it there too).
    std::error_code error;
    auto self = std::filesystem::read_symlink("/proc/self/exe", error);
    auto beside = self.parent_path() / "accelerators.toml";
    if (!error && std::filesystem::exists(beside, error)) {
      catalog_path = beside.string();
    }
  }
  if (!catalog_path.empty()) {
    auto catalog = computenet::matching::AcceleratorCatalog::Load(catalog_path);
    if (!catalog.ok()) return Fail(catalog.status());
    spdlog::info("accelerator catalog: {} ({} models)", catalog_path,
                 catalog->entries().size());
    options.catalog =
        std::make_shared<const computenet::matching::AcceleratorCatalog>(std::move(*catalog));
  }
  auto identity = computenet::Identity::Load(keys_dir);
  if (!identity.ok()) return Fail(identity.status());
  // Beside the broker's other secret keys (created 0600 at first start).
  if (options.secrets_key_file.empty()) {
    options.secrets_key_file = keys_dir + "/secrets.key";
  }
  auto created = broker::Broker::Create(std::move(options), std::move(*identity));
  if (!created.ok()) return Fail(created.status());
  std::unique_ptr<broker::Broker> server = std::move(*created);
  if (!endpoint_file.empty()) {
    Status written = computenet::WriteFileAtomically(
        endpoint_file, server->endpoint() + "\n", 0644);
    if (!written.ok()) return Fail(written);
  }
  g_running.store(server.get());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, OnHangup);
  Status result = server->Run();
  g_running.store(nullptr);
  if (!result.ok()) return Fail(result);
  return 0;
}
