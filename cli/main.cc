// computenet: the command-line client for consumers (and operators' offline
// audit).
//
//   computenet keygen --name NAME --out DIR
//   computenet submit [--model A800|H800 ...] --cards N [--nodes N] --max-duration S
//                     [--max-price MINOR] [--env K=V ...] [--wait] -- CMD ARGS...
//                     [--secret-env K=V ...] [--secret-env-file K=PATH ...]
//   computenet submit -f job.toml [flags that override the file] [-- CMD ...]
//     (every request form as a file: consumer-sdk/.../job_file.h)
//     request forms (docs/matching.md): --a100-equivalents 8 | --gpu-milli 500,
//     --min-memory-mib, --vendor-class domestic, --cpu-milli-per-card,
//     --host-memory-mib-per-card, --region (strict), --prefer-region,
//     --exclude-provider, --max-price-per-a100-hour, --preemptible,
//     --priority low|normal|high, --max-attempts
//   computenet status JOB [-o table|json]   (-o on every read command;
//                                            --json = -o json)
//   computenet wait JOB [--timeout S]   (0 = no limit)
//   computenet cancel JOB
//   computenet logs JOB [-f] [--node NODE] [--tail N] [--stream out|err|both]
//   computenet jobs [--limit N] [--state queued,running,...|active]
//                   [-o table|wide|json]
//   computenet statement [--from T] [--to T] [--format table|csv|json]
//                        [--account A (admins)]
//   computenet ledger verify DB [--broker-identity FILE] [--allow-unsigned-tail]
//   computenet ledger prove DB --entry SEQ [--out FILE]
//   computenet ledger verify-proof PROOF --broker-identity FILE
//   computenet admin federation [--json]     (admin key)
//
// Connection settings: --broker (or COMPUTENET_BROKER), --broker-identity
// FILE (or COMPUTENET_BROKER_IDENTITY), --identity DIR (or
// COMPUTENET_IDENTITY), --request-timeout S and --retries N (or
// COMPUTENET_REQUEST_TIMEOUT, COMPUTENET_RETRIES; 5 s and 2 by default).
// Exit codes: the table in common/exit_codes.h (0 ok, 2 usage, 3 not found,
// 4 refused, 5 unavailable, 6 wrong state, 7 the job ended but did not
// succeed, 1 anything else); at the connection: 4 the broker refused your
// key, 5 the broker is unreachable, 6 the handshake failed (the pinned
// broker identity is not the broker's key). The help's footer says so.
#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <functional>
#include <optional>
#include <tuple>
#include <iostream>
#include <map>

#include "computenet/common/exit_codes.h"
#include "computenet/common/utc_time.h"
#include "computenet/common/version.h"
#include "computenet/common/job_state.h"
#include "computenet/ledger/ledger.h"
#include "computenet/consumer/client.h"
#include "computenet/common/clock.h"
#include "computenet/consumer/client_config.h"
#include "computenet/consumer/job_file.h"
#include "computenet/consumer/request_forms.h"
#include "ledger_commands.h"

namespace {

using computenet::Status;
using computenet::StatusCode;
namespace v1 = computenet::v1;

using computenet::cli::Fail;

struct Connection {
  std::string broker;
  std::string broker_identity;
  std::string identity_dir;
  double request_timeout_s = 5.0;
  int retries = 2;
};

// The footer of `computenet --help`: what a script can tell from the exit.
constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  ok\n"
    "  1  any other failure\n"
    "  2  usage: bad arguments or input\n"
    "  3  not found\n"
    "  4  refused: the broker refused your key at the handshake (not\n"
    "     enrolled, or revoked: \"key refused by the broker\"), or the\n"
    "     request is not allowed to you\n"
    "  5  unavailable: the broker is unreachable or did not answer in time;\n"
    "     retrying may help\n"
    "  6  refused in the current state: fix it first; at the connection, the\n"
    "     handshake failed: --broker-identity is not that broker's key, or\n"
    "     --broker is not a ComputeNet broker\n"
    "  7  the job ended but did not succeed (submit --wait, wait)";

computenet::StatusOr<std::unique_ptr<computenet::consumer::Client>> Open(
    const Connection& connection) {
  if (connection.broker.empty() || connection.broker_identity.empty() ||
      connection.identity_dir.empty()) {
    return computenet::InvalidArgumentError(
        "set --broker, --broker-identity and --identity (or COMPUTENET_BROKER, "
        "COMPUTENET_BROKER_IDENTITY, COMPUTENET_IDENTITY, or broker, "
        "broker_identity and identity in ~/.config/computenet/config.toml)");
  }
  CN_ASSIGN_OR_RETURN(auto broker, computenet::PublicIdentity::LoadFile(
                                       connection.broker_identity));
  CN_ASSIGN_OR_RETURN(auto identity,
                      computenet::Identity::Load(connection.identity_dir));
  computenet::consumer::ClientOptions options;
  options.broker_endpoint = connection.broker;
  options.broker_public_key = broker.curve_public;
  options.request_timeout_ms =
      static_cast<int>(connection.request_timeout_s * 1000.0);
  options.retries = connection.retries;
  return computenet::consumer::Client::Connect(std::move(options),
                                               std::move(identity));
}

// "queued" -> JOB_STATE_QUEUED (the names JobStateName prints).
std::optional<v1::JobState> ParseStateName(const std::string& name) {
  for (int value = v1::JobState_MIN; value <= v1::JobState_MAX; ++value) {
    if (!v1::JobState_IsValid(value)) continue;
    const auto state = static_cast<v1::JobState>(value);
    if (state != v1::JOB_STATE_UNSPECIFIED && computenet::JobStateName(state) == name) {
      return state;
    }
  }
  return std::nullopt;
}


void PrintJob(const v1::JobInfo& job) {
  std::printf("job        %s\n", job.job_id().c_str());
  std::printf("state      %s\n",
              computenet::JobStateName(job.state()).c_str());
  if (!job.reason().empty()) std::printf("reason     %s\n", job.reason().c_str());
  if (!job.sandbox().empty()) {
    // "sandbox: bwrap, ..." as the provider reported it: the label once.
    std::string fence = job.sandbox();
    if (fence.rfind("sandbox: ", 0) == 0) fence = fence.substr(9);
    std::printf("sandbox    %s\n", fence.c_str());
  }
  if (!job.provider().empty()) {
    std::printf("provider   %s (%u x %s at %lld %s minor/card-hour%s)\n",
                job.provider().c_str(), computenet::TotalCards(job),
                job.model().c_str(),
                static_cast<long long>(job.price_per_card_hour()),
                job.currency().c_str(), job.spare() ? ", spare" : "");
    if (job.a100_equivalents_milli() > 0) {
      std::printf("compute    %u.%03u A100-equivalents (%s)\n",
                  job.a100_equivalents_milli() / 1000,
                  job.a100_equivalents_milli() % 1000,
                  job.compute_source().c_str());
    }
  }
  if (job.preemptions() > 0) {
    std::printf("preempted  %u time(s) by reclaims\n", job.preemptions());
  }
  if (computenet::IsTerminal(job.state())) {
    std::printf("exit code  %d\n", job.exit_code());
  }
  std::printf("metered    %llu card-seconds, charged %lld minor units\n",
              static_cast<unsigned long long>(job.card_seconds()),
              static_cast<long long>(job.charged()));
  for (const auto& input : job.spec().inputs()) {
    std::printf("input      sha256 %s, %llu bytes\n", input.digest().c_str(),
                static_cast<unsigned long long>(input.size()));
  }
  if (!job.result_digest().empty()) {
    std::printf("result     sha256 %s, %llu bytes (computenet fetch %s --out DIR)\n",
                job.result_digest().c_str(),
                static_cast<unsigned long long>(job.result_bytes()),
                job.job_id().c_str());
  }
  // Why it failed is usually in its stderr: the last lines the broker kept.
  if (computenet::IsTerminal(job.state()) &&
      job.state() != v1::JOB_STATE_SUCCEEDED && !job.stderr_tail().empty()) {
    std::printf("stderr     (last lines; computenet logs %s for more)\n",
                job.job_id().c_str());
    std::string tail = job.stderr_tail();
    if (tail.back() == '\n') tail.pop_back();
    size_t start = 0;
    while (start <= tail.size()) {
      const size_t end = std::min(tail.find('\n', start), tail.size());
      std::printf("  %s\n", tail.substr(start, end - start).c_str());
      start = end + 1;
    }
  }
}

// `computenet logs`: stdout bytes to stdout, stderr bytes to stderr, as the
// job wrote them. With prefix (a gang read without --node), whole lines,
// each headed "[node] "; a line still open at the end is printed as is.
class LogPrinter {
 public:
  explicit LogPrinter(bool prefix) : prefix_(prefix) {}
  void Print(const v1::LogChunk& chunk) {
    FILE* out = chunk.stream() == v1::LOG_STREAM_STDERR ? stderr : stdout;
    if (chunk.skipped() > 0) {
      std::fflush(stdout);
      std::fprintf(stderr, "[computenet: %llu bytes of %s's %s no longer held]\n",
                   static_cast<unsigned long long>(chunk.skipped()),
                   chunk.node().c_str(),
                   chunk.stream() == v1::LOG_STREAM_STDERR ? "stderr" : "stdout");
    }
    if (!prefix_) {
      std::fwrite(chunk.data().data(), 1, chunk.data().size(), out);
      std::fflush(out);
      return;
    }
    std::string& open = open_[{chunk.node(), chunk.stream()}];
    open += chunk.data();
    size_t start = 0;
    for (size_t newline; (newline = open.find('\n', start)) != std::string::npos;
         start = newline + 1) {
      std::fprintf(out, "[%s] ", chunk.node().c_str());
      std::fwrite(open.data() + start, 1, newline + 1 - start, out);
    }
    open.erase(0, start);
    std::fflush(out);
  }
  void Finish() {
    for (auto& [key, open] : open_) {
      if (open.empty()) continue;
      FILE* out = key.second == v1::LOG_STREAM_STDERR ? stderr : stdout;
      std::fprintf(out, "[%s] %s\n", key.first.c_str(), open.c_str());
    }
    open_.clear();
  }

 private:
  bool prefix_;
  std::map<std::pair<std::string, int>, std::string> open_;
};

// -o on every read command: "table" (the default), "wide" (more columns
// where there are any) or "json".
const std::vector<std::string> kOutputFormats = {"table", "wide", "json"};

// One JSON style for every command (docs/sdk.md, "The CLI"): the proto3
// JSON mapping with the field names of the .proto files (snake_case), enums
// by name, 64-bit integers as strings, fields at their defaults left out.
computenet::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                         bool pretty) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return computenet::InternalError("JSON conversion");
  }
  return json;
}

int PrintJson(const google::protobuf::Message& message) {
  auto json = ToJson(message, /*pretty=*/true);
  if (!json.ok()) return Fail(json.status());
  std::cout << *json;
  return 0;
}

// The spec of `computenet submit -f FILE [flags]`: the flags' spec, except
// that each key the job file sets wins over a flag that was not given
// (flag_given(name) says whether it was). So flags override the file, and
// the file overrides the flags' defaults.
v1::JobSpec MergeJobFile(
    const computenet::consumer::JobFile& file, const v1::JobSpec& from_flags,
    const std::function<bool(const std::string&)>& flag_given) {
  using Copy = std::function<void(const v1::JobSpec&, v1::JobSpec*)>;
  struct Key {
    const char* file_key;
    const char* flag;
    Copy copy;
  };
  const std::vector<Key> keys = {
      {"name", "--name", [](auto& f, auto* m) { m->set_name(f.name()); }},
      {"command", "command",
       [](auto& f, auto* m) { *m->mutable_command() = f.command(); }},
      {"max_duration_s", "--max-duration",
       [](auto& f, auto* m) { m->set_max_duration_s(f.max_duration_s()); }},
      {"models", "--model",
       [](auto& f, auto* m) {
         *m->mutable_accelerator_models() = f.accelerator_models();
       }},
      {"cards", "--cards",
       [](auto& f, auto* m) { m->set_cards_per_node(f.cards_per_node()); }},
      {"nodes", "--nodes", [](auto& f, auto* m) { m->set_nodes(f.nodes()); }},
      {"gpu_milli", "--gpu-milli",
       [](auto& f, auto* m) { m->set_gpu_milli(f.gpu_milli()); }},
      {"a100_equivalents", "--a100-equivalents",
       [](auto& f, auto* m) {
         m->set_a100_equivalents_milli(f.a100_equivalents_milli());
       }},
      {"min_memory_mib", "--min-memory-mib",
       [](auto& f, auto* m) { m->set_min_memory_mib(f.min_memory_mib()); }},
      {"vendor_classes", "--vendor-class",
       [](auto& f, auto* m) { *m->mutable_vendor_classes() = f.vendor_classes(); }},
      {"cpu_milli_per_card", "--cpu-milli-per-card",
       [](auto& f, auto* m) { m->set_cpu_milli_per_card(f.cpu_milli_per_card()); }},
      {"host_memory_mib_per_card", "--host-memory-mib-per-card",
       [](auto& f, auto* m) {
         m->set_host_memory_mib_per_card(f.host_memory_mib_per_card());
       }},
      {"regions", "--region",
       [](auto& f, auto* m) { *m->mutable_allowed_regions() = f.allowed_regions(); }},
      {"prefer_regions", "--prefer-region",
       [](auto& f, auto* m) {
         *m->mutable_preferred_regions() = f.preferred_regions();
       }},
      {"exclude_providers", "--exclude-provider",
       [](auto& f, auto* m) {
         *m->mutable_excluded_providers() = f.excluded_providers();
       }},
      {"max_price", "--max-price",
       [](auto& f, auto* m) {
         m->set_max_price_per_card_hour(f.max_price_per_card_hour());
       }},
      {"max_price_per_a100_hour", "--max-price-per-a100-hour",
       [](auto& f, auto* m) {
         m->set_max_price_per_a100_hour(f.max_price_per_a100_hour());
       }},
      {"preemptible", "--preemptible",
       [](auto& f, auto* m) { m->set_preemptible(f.preemptible()); }},
      {"priority", "--priority",
       [](auto& f, auto* m) { m->set_priority(f.priority()); }},
      {"max_attempts", "--max-attempts",
       [](auto& f, auto* m) { m->set_max_attempts(f.max_attempts()); }},
      {"network_access", "--network-access",
       [](auto& f, auto* m) { m->set_network_access(f.network_access()); }},
  };
  v1::JobSpec merged = from_flags;
  for (const Key& key : keys) {
    if (file.keys.count(key.file_key) != 0 && !flag_given(key.flag)) {
      key.copy(file.spec, &merged);
    }
  }
  // env: the file's variables, each --env KEY=VALUE given adding or
  // replacing one.
  for (const auto& [name, value] : file.spec.env()) {
    merged.mutable_env()->insert({name, value});
  }
  // secret env the same way (secret_env_files already read into it).
  for (const auto& [name, value] : file.spec.secret_env()) {
    merged.mutable_secret_env()->insert({name, value});
  }
  // Compute equivalence chosen by the file: the broker picks the cards, as
  // with --a100-equivalents, unless cards were asked for.
  if (merged.a100_equivalents_milli() > 0) {
    merged.set_nodes(0);
    if (file.keys.count("cards") == 0 && !flag_given("--cards")) {
      merged.set_cards_per_node(0);
    }
  }
  return merged;
}

int WaitAndPrint(computenet::consumer::Client& client, const std::string& job_id,
                 int64_t timeout_s, const std::string& output = "table") {
  // 0 (or less) = no limit, as kubectl's --timeout=0; seconds beyond what
  // the SDK's int milliseconds hold (24 days) are that much.
  const int timeout_ms =
      timeout_s <= 0 ? INT_MAX
                     : static_cast<int>(std::min<int64_t>(timeout_s, INT_MAX / 1000) * 1000);
  auto job = client.Wait(job_id, timeout_ms, [](const v1::JobInfo& j) {
    std::fprintf(stderr, "%s: %s%s%s\n", j.job_id().c_str(),
                 computenet::JobStateName(j.state()).c_str(),
                 j.reason().empty() ? "" : " - ", j.reason().c_str());
  });
  if (!job.ok()) return Fail(job.status());
  if (output == "json") {
    if (const int printed = PrintJson(*job); printed != 0) return printed;
  } else {
    PrintJob(*job);
  }
  return job->state() == v1::JOB_STATE_SUCCEEDED ? computenet::kExitOk
                                                 : computenet::kExitJobFailed;
}

// `computenet watch`: one line per job change (or one JSON object per line)
// until the deadline; with a job, until that job ends (exit as `wait`).
int Watch(computenet::consumer::Client& client, const std::string& job_id,
          int64_t timeout_s, const std::string& output) {
  auto print = [&](const v1::JobInfo& job) -> int {
    if (output == "json") {
      auto json = ToJson(job, /*pretty=*/false);
      if (!json.ok()) return Fail(json.status());
      std::cout << *json << "\n" << std::flush;
      return 0;
    }
    const std::string where =
        job.provider().empty() ? std::string("-")
                               : job.provider() + (job.region().empty()
                                                       ? std::string()
                                                       : " (" + job.region() + ")");
    std::printf("%s  %-14s %-10s %-28s %s\n",
                computenet::FormatUtc(computenet::SystemClock::Shared()->NowMs()).c_str(),
                job.job_id().c_str(), computenet::JobStateName(job.state()).c_str(),
                where.c_str(), job.reason().c_str());
    std::fflush(stdout);
    return 0;
  };
  const int64_t deadline =
      timeout_s <= 0 ? INT64_MAX
                     : computenet::SystemClock::Shared()->NowMs() +
                           std::min<int64_t>(timeout_s, int64_t{1} << 40) * 1000;
  auto remaining_ms = [&]() {
    const int64_t left = deadline - computenet::SystemClock::Shared()->NowMs();
    return static_cast<int>(std::clamp<int64_t>(left, 0, 5000));
  };
  if (!job_id.empty()) {
    auto job = client.WatchJob(job_id);
    if (!job.ok()) return Fail(job.status());
    if (const int printed = print(*job); printed != 0) return printed;
    while (!computenet::IsTerminal(job->state())) {
      if (remaining_ms() == 0) {
        return Fail(computenet::DeadlineExceededError(
            "job " + job_id + " still " + computenet::JobStateName(job->state())));
      }
      auto next = client.NextChange(*job, remaining_ms());
      if (!next.ok()) return Fail(next.status());
      if (!next->has_value()) continue;
      *job = std::move(**next);
      if (const int printed = print(*job); printed != 0) return printed;
    }
    return job->state() == v1::JOB_STATE_SUCCEEDED ? computenet::kExitOk
                                                   : computenet::kExitJobFailed;
  }
  if (Status watched = client.WatchAll(); !watched.ok()) return Fail(watched);
  while (remaining_ms() > 0) {
    auto next = client.NextEvent(remaining_ms());
    if (!next.ok()) return Fail(next.status());
    if (next->has_value()) {
      if (const int printed = print(**next); printed != 0) return printed;
    }
  }
  return computenet::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"computenet: submit and manage jobs on ComputeNet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", computenet::VersionLine("computenet"));
  Connection connection;
  app.add_option("--broker", connection.broker, "broker endpoint")
      ->envname("COMPUTENET_BROKER");
  app.add_option("--broker-identity", connection.broker_identity,
                 "the broker's identity.pub")
      ->envname("COMPUTENET_BROKER_IDENTITY");
  app.add_option("--identity", connection.identity_dir, "your key directory")
      ->envname("COMPUTENET_IDENTITY");
  app.add_option("--request-timeout", connection.request_timeout_s,
                 "seconds to wait for each reply (default 5)")
      ->envname("COMPUTENET_REQUEST_TIMEOUT")
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--retries", connection.retries,
                 "attempts after a request timed out (default 2)")
      ->envname("COMPUTENET_RETRIES")
      ->check(CLI::Range(0, 100));
  std::string config_path;
  app.add_option("--config", config_path,
                 "connection settings file (default: $COMPUTENET_CONFIG, else "
                 "~/.config/computenet/config.toml; flags and COMPUTENET_* "
                 "variables override it)");
  app.footer(kExitCodesHelp);

  std::string name, out_dir;
  bool force = false;
  auto* keygen = app.add_subcommand("keygen", "create your keys");
  keygen->add_option("--name", name, "your name as enrolled")->required();
  keygen->add_option("--out", out_dir, "directory for the keys")->required();
  keygen->add_flag("--force", force, "overwrite existing keys");

  v1::JobSpec spec;
  std::vector<std::string> models, env, command;
  uint32_t cards = 1, nodes = 1, max_duration = 3600;
  int64_t max_price = 0;
  std::string job_name, idempotency_key;
  bool wait = false;
  int64_t timeout_s = 3600;
  auto* submit = app.add_subcommand("submit", "submit a job");
  // Repeatable options take one value each, so `--region east -- cmd`
  // never swallows the separator.
  submit->add_option("--model", models, "accelerator model (repeatable; any of)")
      ->allow_extra_args(false);
  submit->add_option("--cards", cards, "cards per node")->capture_default_str();
  submit->add_option("--nodes", nodes, "nodes (gang in one fabric)")
      ->capture_default_str();
  submit->add_option("--max-duration", max_duration, "seconds")
      ->capture_default_str();
  submit->add_option("--max-price", max_price,
                     "minor units per card-hour (0 = no ceiling)");
  submit->add_option("--env", env, "KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  std::vector<std::string> secret_env, secret_env_files;
  submit->add_option("--secret-env", secret_env,
                     "NAME=VALUE set in the job's environment only: never "
                     "stored in plaintext, shown as *** (repeatable)");
  submit->add_option("--secret-env-file", secret_env_files,
                     "NAME=PATH: the same, the value read from a file that "
                     "only you may read (mode 0600; repeatable)");
  submit->add_option("--name", job_name, "a name for humans");
  submit->add_option("--idempotency-key", idempotency_key,
                     "resubmitting with the same key returns the same job");
  submit->add_flag("--wait", wait, "wait for the job to end");
  submit->add_option("--timeout", timeout_s, "seconds to wait (0 = no limit)");
  submit->add_option("command", command,
                     "the command to run (or `command` in the job file)");
  std::string job_file;
  submit->add_option("-f,--file", job_file,
                     "a job file (TOML; docs/sdk.md): every request form; "
                     "flags given as well override its keys");
  bool network_access = false;
  submit->add_flag("--network-access", network_access,
                   "the job needs network access at the site");
  std::vector<std::string> inputs;
  submit->add_option("--input", inputs,
                     "a file or directory for the job's working directory "
                     "(repeatable; uploaded first)")
      ->allow_extra_args(false);
  std::vector<std::string> vendor_classes, regions, preferred_regions,
      excluded_providers;
  std::string a100_equivalents, priority;
  uint32_t gpu_milli = 0, cpu_milli_per_card = 0, max_attempts = 0;
  uint64_t min_memory_mib = 0, host_memory_mib_per_card = 0;
  int64_t max_price_a100 = 0;
  bool preemptible = false;
  auto* cards_option = submit->get_option("--cards");
  submit->add_option("--a100-equivalents", a100_equivalents,
                     "compute equivalence, e.g. 8 or 2.5 (instead of --cards)");
  submit->add_option("--gpu-milli", gpu_milli,
                     "a share of one card in thousandths, 1..999");
  submit->add_option("--min-memory-mib", min_memory_mib,
                     "accelerator memory per card at least");
  submit->add_option("--vendor-class", vendor_classes,
                     "e.g. domestic or nvidia (repeatable, or a|b)")
      ->allow_extra_args(false);
  submit->add_option("--cpu-milli-per-card", cpu_milli_per_card,
                     "host CPU per card, 1000 = one core");
  submit->add_option("--host-memory-mib-per-card", host_memory_mib_per_card,
                     "host memory per card");
  submit->add_option("--region", regions,
                     "allowed region (strict; repeatable, or a|b)")
      ->allow_extra_args(false);
  submit->add_option("--prefer-region", preferred_regions,
                     "preferred region (repeatable, or a|b)")
      ->allow_extra_args(false);
  submit->add_option("--exclude-provider", excluded_providers,
                     "never this provider (repeatable, or a|b)")
      ->allow_extra_args(false);
  submit->add_option("--max-price-per-a100-hour", max_price_a100,
                     "minor units per A100-equivalent-hour (0 = no ceiling)");
  submit->add_flag("--preemptible", preemptible,
                   "may run on reclaimable spare capacity and be requeued");
  submit->add_option("--priority", priority, "low, normal or high");
  submit->add_option("--max-attempts", max_attempts,
                     "placements before the job fails (0 = broker default)");

  std::string job_id;
  bool json = false;
  std::string output = "table";
  auto add_output = [&output, &json](CLI::App* read_command) {
    read_command->add_option("-o,--output", output, "table, wide or json")
        ->check(CLI::IsMember(kOutputFormats))
        ->capture_default_str();
    read_command->add_flag("--json", json, "the same as -o json");
  };
  auto* status = app.add_subcommand("status", "show a job");
  status->add_option("job", job_id)->required();
  add_output(status);
  auto* wait_cmd = app.add_subcommand("wait", "wait for a job to end");
  wait_cmd->add_option("job", job_id)->required();
  wait_cmd->add_option("--timeout", timeout_s, "seconds (0 = no limit)")
      ->capture_default_str();
  add_output(wait_cmd);
  auto* watch = app.add_subcommand(
      "watch", "follow your jobs' changes live (one line each), or one job's "
               "until it ends");
  watch->add_option("job", job_id, "only this job (then exit as `wait` does)");
  int64_t watch_timeout_s = 0;
  watch->add_option("--timeout", watch_timeout_s, "seconds (0 = until interrupted)")
      ->capture_default_str();
  add_output(watch);
  std::string fetch_dir;
  auto* fetch = app.add_subcommand(
      "fetch", "download a job's result (its output directory) and check it");
  fetch->add_option("job", job_id)->required();
  fetch->add_option("--out", fetch_dir, "directory to unpack it into")
      ->required();
  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("job", job_id)->required();
  bool follow = false;
  std::string log_node;
  uint32_t tail_lines = 0;
  std::string log_stream = "both";
  auto* logs = app.add_subcommand(
      "logs", "print a job's stdout and stderr (live, as the broker holds them)");
  logs->add_option("job", job_id)->required();
  logs->add_flag("-f,--follow", follow,
                 "keep printing new output until the job ends");
  logs->add_option("--node", log_node, "only this node of a gang");
  logs->add_option("--tail", tail_lines, "start at the last N lines of each stream");
  logs->add_option("--stream", log_stream, "out, err or both")
      ->check(CLI::IsMember({"out", "err", "both"}))
      ->capture_default_str();
  uint32_t limit = 100;
  std::vector<std::string> state_filter;
  auto* jobs = app.add_subcommand("jobs", "list your jobs, newest first");
  jobs->add_option("--limit", limit)->capture_default_str();
  jobs->add_option("--state", state_filter,
                   "only these states: queued, placed, running, succeeded, failed, "
                   "cancelled, or active (the first three); repeat or comma-separate")
      ->delimiter(',');
  add_output(jobs);

  auto* admin = app.add_subcommand("admin", "operator views (admin key)");
  admin->require_subcommand(1);
  auto* federation = admin->add_subcommand(
      "federation", "peers, link state, adverts and forwarded jobs");
  add_output(federation);


  computenet::cli::StatementOptions statement_options;
  auto* statement = app.add_subcommand(
      "statement", "your ledger lines for a period, each proven against a "
                   "checkpoint signed by your broker");
  statement->add_option("--from", statement_options.from,
                        "ms since the epoch, YYYY-MM-DD or "
                        "YYYY-MM-DDTHH:MM:SSZ (UTC)");
  statement->add_option("--to", statement_options.to, "exclusive; same forms");
  statement->add_option("--format", statement_options.format,
                        "table, csv or json")
      ->capture_default_str();
  statement->add_option("-o,--output", statement_options.format,
                        "the same as --format (table, csv or json)");
  statement->add_option("--account", statement_options.account,
                        "admins: any account, e.g. provider:site-a");

  std::string db_path, pinned_identity, proof_path, out_path;
  uint64_t entry_sequence = 0;
  auto* ledger = app.add_subcommand("ledger", "ledger tools");
  ledger->require_subcommand(1);
  auto* verify = ledger->add_subcommand("verify", "audit a broker ledger file");
  verify->add_option("db", db_path, "broker database file")->required();
  verify->add_option("--broker-identity", pinned_identity,
                     "the broker's identity.pub: its key must be the file's");
  bool allow_unsigned_tail = false;
  verify->add_flag("--allow-unsigned-tail", allow_unsigned_tail,
                   "accept entries after the last signed checkpoint (a copy "
                   "of a live broker's file)");
  auto* prove = ledger->add_subcommand(
      "prove", "write a proof that one entry is in the signed ledger");
  prove->add_option("db", db_path, "broker database file")->required();
  prove->add_option("--entry", entry_sequence, "entry sequence")->required();
  prove->add_option("--out", out_path, "proof file (default: stdout)");
  auto* verify_proof = ledger->add_subcommand(
      "verify-proof", "check an entry proof offline with the broker's key");
  verify_proof->add_option("proof", proof_path, "proof file")->required();
  verify_proof->add_option("--broker-identity", pinned_identity,
                           "the broker's identity.pub");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every other parse error is a usage error.
    const int code = app.exit(error);
    return code == 0 ? computenet::kExitOk : computenet::kExitUsage;
  }

  if (json) output = "json";
  {
    // The settings file fills what no flag or variable gave.
    const bool explicit_file = !config_path.empty() ||
                               std::getenv("COMPUTENET_CONFIG") != nullptr;
    const std::string path =
        config_path.empty() ? computenet::consumer::DefaultClientConfigPath()
                            : config_path;
    auto file = path.empty() ? computenet::StatusOr<computenet::consumer::ClientConfig>(
                                   computenet::NotFoundError("no config file"))
                             : computenet::consumer::LoadClientConfig(path);
    if (file.ok()) {
      auto unset = [&](const char* flag) {
        return app.get_option(flag)->count() == 0;
      };
      if (unset("--broker") && !file->broker.empty()) connection.broker = file->broker;
      if (unset("--broker-identity") && !file->broker_identity.empty()) {
        connection.broker_identity = file->broker_identity;
      }
      if (unset("--identity") && !file->identity.empty()) {
        connection.identity_dir = file->identity;
      }
      if (unset("--request-timeout") && file->request_timeout_s) {
        connection.request_timeout_s = *file->request_timeout_s;
      }
      if (unset("--retries") && file->retries) connection.retries = *file->retries;
    } else if (file.status().code() != computenet::StatusCode::kNotFound ||
               explicit_file) {
      return Fail(file.status());
    }
  }

  if (*keygen) {
    auto identity = computenet::Identity::Generate(name);
    if (!identity.ok()) return Fail(identity.status());
    Status saved = identity->Save(out_dir, force);
    if (!saved.ok()) return Fail(saved);
    std::cout << "wrote " << out_dir
              << "/identity.pub: give it to your broker's operator to enroll\n"
              << "secrets " << out_dir << "/curve.key and " << out_dir
              << "/signing.pem are mode 0600\n";
    return 0;
  }
  if (*verify) {
    return computenet::cli::LedgerVerify(db_path, pinned_identity,
                                         allow_unsigned_tail);
  }
  if (*prove) {
    return computenet::cli::LedgerProve(db_path, entry_sequence, out_path);
  }
  if (*verify_proof) {
    return computenet::cli::LedgerVerifyProof(
        proof_path, pinned_identity.empty() ? connection.broker_identity
                                            : pinned_identity);
  }

  // A bad job file is reported before any connection is tried.
  std::optional<computenet::consumer::JobFile> file;
  if (*submit && !job_file.empty()) {
    auto loaded = computenet::consumer::LoadJobFile(job_file);
    if (!loaded.ok()) return Fail(loaded.status());
    file = std::move(*loaded);
  }
  auto client = Open(connection);
  if (!client.ok()) return Fail(client.status());
  if (*submit) {
    // The spec the flags describe (with their defaults); with a job file,
    // MergeJobFile keeps the file's keys where no flag was given.
    spec.set_name(job_name);
    for (const auto& arg : command) spec.add_command(arg);
    auto add_list = [](const std::vector<std::string>& entries,
                       const std::string& what,
                       google::protobuf::RepeatedPtrField<std::string>* field)
        -> Status {
      CN_ASSIGN_OR_RETURN(auto names,
                          computenet::consumer::ParseAlternatives(entries, what));
      for (auto& entry : names) field->Add(std::move(entry));
      return computenet::OkStatus();
    };
    for (const auto& [entries, what, field] :
         {std::tuple{&models, "--model", spec.mutable_accelerator_models()},
          std::tuple{&vendor_classes, "--vendor-class",
                     spec.mutable_vendor_classes()},
          std::tuple{&regions, "--region", spec.mutable_allowed_regions()},
          std::tuple{&preferred_regions, "--prefer-region",
                     spec.mutable_preferred_regions()},
          std::tuple{&excluded_providers, "--exclude-provider",
                     spec.mutable_excluded_providers()}}) {
      Status listed = add_list(*entries, what, field);
      if (!listed.ok()) return Fail(listed);
    }
    if (!a100_equivalents.empty()) {
      auto milli = computenet::consumer::ParseMilli(
          a100_equivalents, "--a100-equivalents", 100'000'000);
      if (!milli.ok()) return Fail(milli.status());
      spec.set_a100_equivalents_milli(*milli);
      // The broker chooses the cards; --cards is for whole-card requests.
      if (cards_option->count() == 0) cards = 0;
    }
    if (gpu_milli > 0 && cards_option->count() == 0) cards = 1;
    spec.set_gpu_milli(gpu_milli);
    spec.set_min_memory_mib(min_memory_mib);
    spec.set_cpu_milli_per_card(cpu_milli_per_card);
    spec.set_host_memory_mib_per_card(host_memory_mib_per_card);
    spec.set_max_price_per_a100_hour(max_price_a100);
    spec.set_preemptible(preemptible);
    spec.set_max_attempts(max_attempts);
    if (!priority.empty()) {
      auto parsed = computenet::consumer::ParsePriorityClass(priority);
      if (!parsed.ok()) return Fail(parsed.status());
      spec.set_priority(*parsed);
    }
    for (const auto& entry : env) {
      auto eq = entry.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Fail(computenet::InvalidArgumentError("--env wants KEY=VALUE, got " +
                                                     entry));
      }
      (*spec.mutable_env())[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    for (const auto& entry : secret_env) {
      Status added = computenet::consumer::AddSecretEnv(entry, &spec);
      if (!added.ok()) return Fail(added);
    }
    for (const auto& entry : secret_env_files) {
      Status added = computenet::consumer::AddSecretEnvFile(entry, &spec);
      if (!added.ok()) return Fail(added);
    }
    spec.set_cards_per_node(cards);
    spec.set_nodes(spec.a100_equivalents_milli() > 0 ? 0 : nodes);
    spec.set_max_duration_s(max_duration);
    spec.set_max_price_per_card_hour(max_price);
    spec.set_network_access(network_access);
    if (file) {
      spec = MergeJobFile(*file, spec, [&](const std::string& flag) {
        return submit->get_option(flag)->count() > 0;
      });
      if (idempotency_key.empty()) idempotency_key = file->idempotency_key;
    }
    if (spec.command_size() == 0) {
      return Fail(computenet::InvalidArgumentError(
          "submit: no command (give it after --, or `command` in the job file)"));
    }
    if (file) {
      // The file's inputs too (relative to it); --input adds to them.
      inputs.insert(inputs.begin(), file->inputs.begin(), file->inputs.end());
    }
    if (!inputs.empty()) {
      // One bundle of every --input, kept only where the job may run.
      const std::vector<std::string> allowed(spec.allowed_regions().begin(),
                                             spec.allowed_regions().end());
      auto uploaded = (*client)->UploadInputs(inputs, allowed);
      if (!uploaded.ok()) return Fail(uploaded.status().WithContext("--input"));
      *spec.add_inputs() = *uploaded;
    }
    auto reply = (*client)->Submit(spec, idempotency_key);
    if (!reply.ok()) return Fail(reply.status());
    std::printf("%s\n", reply->job_id().c_str());
    std::fflush(stdout);
    if (!wait) return 0;
    return WaitAndPrint(**client, reply->job_id(), timeout_s);
  }
  if (*status) {
    auto job = (*client)->GetJob(job_id);
    if (!job.ok()) return Fail(job.status());
    if (output == "json") return PrintJson(*job);
    PrintJob(*job);
    return 0;
  }
  if (*wait_cmd) return WaitAndPrint(**client, job_id, timeout_s, output);
  if (*watch) return Watch(**client, job_id, watch_timeout_s, output);
  if (*fetch) {
    auto fetched = (*client)->FetchResultInto(job_id, fetch_dir);
    if (!fetched.ok()) return Fail(fetched.status());
    std::printf("%s: %llu bytes, sha256 %s (as signed by %s), in %s\n",
                job_id.c_str(), static_cast<unsigned long long>(fetched->size),
                fetched->digest.c_str(), fetched->record.provider().c_str(),
                fetch_dir.c_str());
    return 0;
  }
  if (*logs) {
    auto job = (*client)->GetJob(job_id);
    if (!job.ok()) return Fail(job.status());
    computenet::consumer::LogOptions options;
    options.node = log_node;
    options.stream = log_stream == "out"   ? v1::LOG_STREAM_STDOUT
                     : log_stream == "err" ? v1::LOG_STREAM_STDERR
                                           : v1::LOG_STREAM_UNSPECIFIED;
    options.tail_lines = tail_lines;
    options.follow = follow;
    LogPrinter printer(log_node.empty() && job->assignments_size() > 1);
    auto state = (*client)->StreamLogs(job_id, options, [&](const v1::LogChunk& chunk) {
      printer.Print(chunk);
      return true;
    });
    printer.Finish();
    if (!state.ok()) return Fail(state.status());
    return 0;
  }
  if (*federation) {
    auto view = (*client)->GetFederationStatus();
    if (!view.ok()) return Fail(view.status());
    if (output == "json") return PrintJson(*view);
    std::printf("broker %s (region %s)\n", view->broker_id().c_str(),
                view->region().c_str());
    for (const auto& peer : view->peers()) {
      std::printf("peer %-12s region %-8s link %-4s adverts seq %llu, "
                  "forwarded %u (in doubt %u), accepted %u\n",
                  peer.broker_id().c_str(), peer.region().c_str(),
                  peer.link_up() ? "up" : "down",
                  static_cast<unsigned long long>(peer.advert_sequence()),
                  peer.jobs_forwarded_to(), peer.jobs_in_doubt(),
                  peer.jobs_accepted_from());
      for (const auto& entry : peer.adverts()) {
        std::printf("    %-8s free %4u cards, largest node %2u, from %lld %s/card-hour",
                    entry.model().c_str(), entry.free_cards(),
                    entry.largest_node_cards(),
                    static_cast<long long>(entry.lowest_price()),
                    entry.currency().c_str());
        // What routing compares (docs/federation.md, "Routing").
        if (entry.lowest_price_per_a100_hour_milli() > 0) {
          std::printf(", %lld per A100-hour",
                      static_cast<long long>(
                          (entry.lowest_price_per_a100_hour_milli() + 500) / 1000));
        }
        std::printf(", reliability %u bp\n", entry.reliability_bp());
      }
    }
    for (const auto& job : view->forwarded_jobs()) {
      std::printf("forwarded %-16s -> %-10s %s\n", job.job_id().c_str(),
                  job.remote_broker().c_str(),
                  computenet::JobStateName(job.state()).c_str());
    }
    return 0;
  }
  if (*statement) {
    return computenet::cli::Statement(**client, connection.broker_identity,
                                      statement_options);
  }
  if (*cancel) {
    auto reply = (*client)->Cancel(job_id);
    if (!reply.ok()) return Fail(reply.status());
    std::printf("%s: cancel requested (now %s)\n", reply->job_id().c_str(),
                computenet::JobStateName(reply->state()).c_str());
    return 0;
  }
  if (*jobs) {
    std::vector<v1::JobState> states;
    for (const std::string& wanted : state_filter) {
      if (wanted == "active") {
        states.insert(states.end(), {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED,
                                     v1::JOB_STATE_RUNNING});
        continue;
      }
      auto state = ParseStateName(wanted);
      if (!state) {
        return Fail(computenet::InvalidArgumentError(
            "--state: unknown state '" + wanted +
            "' (queued, placed, running, succeeded, failed, cancelled, active)"));
      }
      states.push_back(*state);
    }
    auto list = (*client)->ListJobs(limit, states);
    if (!list.ok()) return Fail(list.status());
    if (output == "json") {
      // {"jobs": [JobInfo, ...]}: an object, so fields can be added later.
      std::string out = "{\"jobs\": [";
      for (size_t i = 0; i < list->size(); ++i) {
        auto json_job = ToJson((*list)[i], /*pretty=*/false);
        if (!json_job.ok()) return Fail(json_job.status());
        out += (i == 0 ? "\n  " : ",\n  ") + *json_job;
      }
      out += list->empty() ? "]}\n" : "\n]}\n";
      std::cout << out;
      return 0;
    }
    const bool wide = output == "wide";
    std::printf("%-16s %-16s %-10s %-20s %-12s %-6s %10s %10s", "JOB", "NAME",
                "STATE", "SUBMITTED", "PROVIDER", "MODEL", "CARD-SEC", "CHARGED");
    if (wide) {
      std::printf(" %-8s %-5s %-8s %-20s %-20s %s", "REGION", "CARDS", "ATTEMPTS",
                  "STARTED", "FINISHED", "REASON");
    }
    std::printf("\n");
    for (const auto& job : *list) {
      std::printf("%-16s %-16s %-10s %-20s %-12s %-6s %10llu %10lld",
                  job.job_id().c_str(),
                  job.spec().name().empty() ? "-" : job.spec().name().substr(0, 16).c_str(),
                  computenet::JobStateName(job.state()).c_str(),
                  computenet::FormatUtc(job.created_ms()).c_str(), job.provider().c_str(),
                  job.model().c_str(),
                  static_cast<unsigned long long>(job.card_seconds()),
                  static_cast<long long>(job.charged()));
      if (wide) {
        auto time_or_dash = [](int64_t ms) {
          return ms > 0 ? computenet::FormatUtc(ms) : std::string("-");
        };
        std::printf(" %-8s %-5u %-8u %-20s %-20s %s",
                    job.region().empty() ? "-" : job.region().c_str(),
                    computenet::TotalCards(job), job.attempts(),
                    time_or_dash(job.started_ms()).c_str(),
                    time_or_dash(job.finished_ms()).c_str(),
                    job.reason().empty() ? "-" : job.reason().c_str());
      }
      std::printf("\n");
    }
    return 0;
  }
  return 0;
}
