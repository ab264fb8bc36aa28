// Live-log latency benchmark (issue 11, item 2): how long from a job writing
// a line to its consumer seeing it, p50/p99, over real CURVE links on
// loopback: a real provider agent (ProcessExecutor) at broker "remote", and
// the consumer SDK following the job's logs (Client::StreamLogs, -f):
//  - direct: the consumer's home broker is the one the job runs at;
//  - forwarded: the consumer submits at "home", which forwards the job to
//    "remote"; the lines come back through both brokers.
// Each line the job prints is the wall-clock time it was written (date
// +%s%N); the consumer subtracts it from the time it reads the line.
//
//   log_latency [--lines N=300] [--interval-ms 20] [--agent-ms 200]
//               [--poll-ms 200] [--short]
//
// --agent-ms is the agent's log_interval_ms, --poll-ms the follower's poll
// (both the shipped defaults). --short: 30 lines, for the test command.
// Exits non-zero unless every line arrived on both paths.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "computenet/broker/broker.h"
#include "computenet/common/files.h"
#include "computenet/common/logging.h"
#include "computenet/consumer/client.h"
#include "computenet/ledger/ledger.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"
#include "jobs/store.h"

namespace cn = computenet;

namespace {

template <typename T>
T Must(cn::StatusOr<T> value) {
  if (!value.ok()) {
    std::fprintf(stderr, "log_latency: %s\n",
                 value.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*value);
}

void Check(const cn::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "log_latency: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Result {
  std::vector<double> latencies_ms;
  cn::v1::JobState state = cn::v1::JOB_STATE_UNSPECIFIED;
};

// Submits the line-printing job and follows its logs to the end.
Result Measure(cn::consumer::Client& client, const std::string& region,
               int lines, int interval_ms, int poll_ms) {
  cn::v1::JobSpec spec;
  spec.add_command("/bin/sh");
  spec.add_command("-c");
  char sleep_s[32];
  std::snprintf(sleep_s, sizeof(sleep_s), "%.3f", interval_ms / 1000.0);
  spec.add_command("i=0; while [ $i -lt " + std::to_string(lines) +
                   " ]; do date +%s%N; sleep " + sleep_s +
                   "; i=$((i+1)); done");
  spec.add_accelerator_models("A800");
  spec.set_cards_per_node(1);
  spec.set_max_duration_s(600);
  spec.add_allowed_regions(region);
  auto submitted = Must(client.Submit(spec));
  cn::consumer::LogOptions options;
  options.follow = true;
  options.poll_ms = poll_ms;
  options.stream = cn::v1::LOG_STREAM_STDOUT;
  options.timeout_ms = 600'000;
  Result result;
  std::string open;
  auto state = client.StreamLogs(
      submitted.job_id(), options, [&](const cn::v1::LogChunk& chunk) {
        const int64_t now = WallNs();
        open += chunk.data();
        size_t start = 0;
        for (size_t end; (end = open.find('\n', start)) != std::string::npos;
             start = end + 1) {
          const int64_t written = std::stoll(open.substr(start, end - start));
          result.latencies_ms.push_back(static_cast<double>(now - written) /
                                        1e6);
        }
        open.erase(0, start);
        return true;
      });
  result.state = Must(std::move(state));
  return result;
}

void Report(const char* path, Result& result, int lines) {
  auto& l = result.latencies_ms;
  std::sort(l.begin(), l.end());
  auto at = [&](double p) {
    return l.empty() ? 0.0 : l[static_cast<size_t>(p * (l.size() - 1))];
  };
  std::printf(
      "  %-9s %3zu of %d lines: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", path,
      l.size(), lines, at(0.5), at(0.99), at(1.0));
}

}  // namespace

int main(int argc, char** argv) {
  int lines = 300;
  int interval_ms = 20;
  int agent_ms = 200;
  int poll_ms = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : -1; };
    if (arg == "--short") {
      lines = 30;
    } else if (arg == "--lines") {
      lines = value();
    } else if (arg == "--interval-ms") {
      interval_ms = value();
    } else if (arg == "--agent-ms") {
      agent_ms = value();
    } else if (arg == "--poll-ms") {
      poll_ms = value();
    } else {
      std::fprintf(
          stderr,
          "usage: log_latency [--lines N] [--interval-ms MS] [--agent-ms MS] "
          "[--poll-ms MS] [--short]\n");
      return 2;
    }
  }
  if (lines < 1 || interval_ms < 0 || agent_ms < 1 || poll_ms < 1) {
    std::fprintf(stderr, "log_latency: bad arguments\n");
    return 2;
  }
  const char* log_level = std::getenv("COMPUTENET_BENCH_LOG");
  cn::InitLogging("bench", log_level != nullptr ? log_level : "warn");
  char pattern[] = "/tmp/computenet-bench-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);

  cn::Identity home = Must(cn::Identity::Generate("home"));
  cn::Identity remote = Must(cn::Identity::Generate("remote"));
  cn::Identity site = Must(cn::Identity::Generate("site"));
  cn::Identity alice = Must(cn::Identity::Generate("alice"));
  auto options_for = [&](const cn::Identity& self, const cn::Identity& peer) {
    cn::broker::BrokerOptions options;
    options.broker_id = self.name();
    options.region = self.name();
    options.database_path = dir + "/" + self.name() + ".db";
    options.heartbeat_interval_ms = 200;
    cn::broker::PeerConfig config;
    config.broker_id = peer.name();
    config.region = peer.name();
    config.endpoint_file = dir + "/" + peer.name() + ".endpoint";
    config.curve_public = peer.curve().public_z85;
    config.ed25519_public = peer.signing_key().verifying_key().hex();
    options.peers.push_back(config);
    return options;
  };
  auto home_broker =
      Must(cn::broker::Broker::Create(options_for(home, remote), home));
  auto remote_broker =
      Must(cn::broker::Broker::Create(options_for(remote, home), remote));
  Check(cn::WriteFileAtomically(dir + "/home.endpoint", home_broker->endpoint(),
                                0644));
  Check(cn::WriteFileAtomically(dir + "/remote.endpoint",
                                remote_broker->endpoint(), 0644));
  for (const char* name : {"home", "remote"}) {
    auto store = Must(cn::broker::Store::Open(dir + "/" + name + ".db"));
    Check(store->Enroll(cn::broker::Role::kConsumer, alice.Public(), 0));
    if (std::string(name) == "remote") {
      Check(store->Enroll(cn::broker::Role::kProvider, site.Public(), 0));
    }
    cn::ledger::Ledger ledger(store->database());
    Check(ledger
              .TopUp("alice", int64_t{1} << 40, "bench-funding", "bench",
                     cn::SystemClock::Shared()->NowMs())
              .status());
  }
  std::thread home_thread([&] { (void)home_broker->Run(); });
  std::thread remote_thread([&] { (void)remote_broker->Run(); });

  cn::provider::ProviderOptions provider;
  provider.broker_endpoint = remote_broker->endpoint();
  provider.broker_public_key = remote.curve().public_z85;
  provider.log_interval_ms = agent_ms;
  auto& registration = provider.registration;
  registration.set_site("site");
  registration.set_region("remote");
  registration.set_currency("CNY");
  auto* price = registration.add_prices();
  price->set_model("A800");
  price->set_per_card_hour(1000);
  auto* node = registration.add_nodes();
  node->set_name("n1");
  node->set_fabric_id("ib");
  auto* accelerator = node->add_accelerators();
  accelerator->set_model("A800");
  accelerator->set_count(8);
  cn::provider::ProcessExecutorOptions executor;
  executor.work_dir = dir + "/work";
  auto agent = Must(cn::provider::ProviderAgent::Create(
      std::move(provider), site,
      std::make_unique<cn::provider::ProcessExecutor>(executor)));
  std::thread agent_thread([&] { (void)agent->Run(); });

  auto connect = [&](const std::string& endpoint, const cn::Identity& broker) {
    cn::consumer::ClientOptions options;
    options.broker_endpoint = endpoint;
    options.broker_public_key = broker.curve().public_z85;
    return Must(cn::consumer::Client::Connect(options, alice));
  };
  auto at_remote = connect(remote_broker->endpoint(), remote);
  auto at_home = connect(home_broker->endpoint(), home);
  // The peer link and the first capacity adverts, before the forwarded run.
  std::this_thread::sleep_for(std::chrono::seconds(2));

  std::printf(
      "log_latency: line written -> read by the consumer (agent ships every "
      "%d ms, follower polls every %d ms, a line every %d ms)\n",
      agent_ms, poll_ms, interval_ms);
  Result direct = Measure(*at_remote, "remote", lines, interval_ms, poll_ms);
  Report("direct", direct, lines);
  Result forwarded = Measure(*at_home, "remote", lines, interval_ms, poll_ms);
  Report("forwarded", forwarded, lines);

  agent->Shutdown();
  agent_thread.join();
  home_broker->Shutdown();
  remote_broker->Shutdown();
  home_thread.join();
  remote_thread.join();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  const bool complete =
      direct.latencies_ms.size() == static_cast<size_t>(lines) &&
      forwarded.latencies_ms.size() == static_cast<size_t>(lines);
  return complete ? 0 : 1;
}
