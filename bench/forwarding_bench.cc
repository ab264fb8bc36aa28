// Forwarding benchmark: jobs per second routed from a home broker to a peer,
// and the time from submit to placement at the peer (p50/p99), over real
// CURVE links on loopback with a real provider agent at the peer.
//
//   forwarding_bench [--jobs N=2000] [--in-flight K=64] [--short]
//   forwarding_bench [JOBS] [IN_FLIGHT]          (the older positional form)
//
// The consumer (prepaid: topped up at home first, as an operator would)
// pipelines SubmitJob requests whose residency allows only the peer's
// region, watches its jobs, and timestamps the first event of each that
// shows it placed at the peer (PLACED, or RUNNING/SUCCEEDED when a fast job
// got there before its PLACED event was sent). --short: 100 jobs, 16 in
// flight, for the test command. Exits non-zero unless every job was placed
// (so a run that measures nothing fails). COMPUTENET_BENCH_LOG=info shows the
// brokers' and the agent's logs (default warn).
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "computenet/broker/broker.h"
#include "computenet/ledger/ledger.h"
#include "jobs/store.h"
#include "computenet/common/files.h"
#include "computenet/common/logging.h"
#include "computenet/common/transport.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"
#include "computenet/v1/consumer.pb.h"

namespace cn = computenet;
using Clock = std::chrono::steady_clock;

namespace {

cn::Identity Must(cn::StatusOr<cn::Identity> identity) {
  if (!identity.ok()) {
    std::fprintf(stderr, "%s\n", identity.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*identity);
}

void Check(const cn::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    std::exit(1);
  }
}

double Micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 2000;
  size_t in_flight = 64;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--short") {
      jobs = 100;
      in_flight = 16;
    } else if (arg == "--jobs" && i + 1 < argc) {
      jobs = std::atoi(argv[++i]);
    } else if (arg == "--in-flight" && i + 1 < argc) {
      in_flight = static_cast<size_t>(std::atoi(argv[++i]));
    } else if (!arg.empty() && arg[0] != '-' && positional < 2) {
      if (positional++ == 0) {
        jobs = std::atoi(arg.c_str());
      } else {
        in_flight = static_cast<size_t>(std::atoi(arg.c_str()));
      }
    } else {
      std::fprintf(stderr,
                   "usage: forwarding_bench [--jobs N] [--in-flight K] "
                   "[--short]\n");
      return 2;
    }
  }
  if (jobs < 1 || in_flight < 1) {
    std::fprintf(stderr, "forwarding_bench: jobs and in-flight must be >= 1\n");
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
    options.requests_per_second = 1e9;  // the bench is the load
    options.request_burst = 1e9;
    // Adverts are deltas, and once a peer's have expired (5 heartbeats
    // without one: seen here when the remote's loop falls behind under
    // load) the home holds none until the link restarts, so forwarding
    // stops. A long TTL keeps the bench measuring forwarding.
    options.advert_ttl_ms = 60'000;
    cn::broker::PeerConfig config;
    config.broker_id = peer.name();
    config.region = peer.name();
    config.endpoint_file = dir + "/" + peer.name() + ".endpoint";
    config.curve_public = peer.curve().public_z85;
    config.ed25519_public = peer.signing_key().verifying_key().hex();
    options.peers.push_back(config);
    return options;
  };
  auto home_broker = cn::broker::Broker::Create(options_for(home, remote), home);
  auto remote_broker =
      cn::broker::Broker::Create(options_for(remote, home), remote);
  if (!home_broker.ok() || !remote_broker.ok()) return 1;
  Check(cn::WriteFileAtomically(dir + "/home.endpoint",
                                (*home_broker)->endpoint(), 0644));
  Check(cn::WriteFileAtomically(dir + "/remote.endpoint",
                                (*remote_broker)->endpoint(), 0644));
  {
    auto home_store = cn::broker::Store::Open(dir + "/home.db");
    auto remote_store = cn::broker::Store::Open(dir + "/remote.db");
    Check((*home_store)->Enroll(cn::broker::Role::kConsumer, alice.Public(), 0));
    Check((*remote_store)->Enroll(cn::broker::Role::kProvider, site.Public(), 0));
    // Prepaid: without funds no job (nor forward) of alice's is placed.
    cn::ledger::Ledger ledger((*home_store)->database());
    Check(ledger
              .TopUp("alice", int64_t{1} << 50, "bench-funding", "bench",
                     cn::SystemClock::Shared()->NowMs())
              .status());
  }
  std::thread home_thread([&] { (void)(*home_broker)->Run(); });
  std::thread remote_thread([&] { (void)(*remote_broker)->Run(); });

  // A provider at the peer: 64 nodes x 8 cards, running `true`.
  cn::provider::ProviderOptions provider;
  provider.broker_endpoint = (*remote_broker)->endpoint();
  provider.broker_public_key = remote.curve().public_z85;
  auto& registration = provider.registration;
  registration.set_site("site");
  registration.set_region("remote");
  registration.set_currency("CNY");
  auto* price = registration.add_prices();
  price->set_model("A800");
  price->set_per_card_hour(1000);
  for (int n = 0; n < 64; ++n) {
    auto* node = registration.add_nodes();
    node->set_name("n" + std::to_string(n));
    node->set_fabric_id("ib");
    auto* accelerator = node->add_accelerators();
    accelerator->set_model("A800");
    accelerator->set_count(8);
  }
  cn::provider::ProcessExecutorOptions executor;
  executor.work_dir = dir + "/work";
  auto agent = cn::provider::ProviderAgent::Create(
      std::move(provider), site,
      std::make_unique<cn::provider::ProcessExecutor>(executor));
  std::thread agent_thread([&] { (void)(*agent)->Run(); });

  zmq::context_t context(1);
  cn::DealerOptions dealer;
  dealer.endpoint = (*home_broker)->endpoint();
  dealer.server_public_key = home.curve().public_z85;
  dealer.client_keys = alice.curve();
  auto channel = cn::DealerChannel::Connect(context, dealer);
  if (!channel.ok()) return 1;
  auto& consumer = **channel;
  Check(consumer.Send(cn::v1::MESSAGE_TYPE_WATCH_JOBS, consumer.NextRequestId(),
                      cn::v1::WatchJobs()));
  // Let the peer link come up and the first adverts arrive.
  std::this_thread::sleep_for(std::chrono::seconds(2));

  std::map<uint64_t, Clock::time_point> sent;          // by request id
  std::map<std::string, Clock::time_point> submitted;  // by job id
  // Placed before its submit reply was read (the event came first).
  std::map<std::string, Clock::time_point> placed_early;
  std::set<std::string> done;  // placed or ended: later events are ignored
  std::vector<double> latencies_us;
  int refused = 0;  // submit failed, or the job ended without running
  const auto start = Clock::now();
  Clock::time_point last_placed = start;
  int next = 0;
  const auto deadline = start + std::chrono::seconds(120);
  auto placed = [&](const std::string& job_id, Clock::time_point when) {
    auto it = submitted.find(job_id);
    if (it == submitted.end()) return false;
    last_placed = std::max(last_placed, when);
    latencies_us.push_back(Micros(when - it->second));
    done.insert(job_id);
    submitted.erase(it);
    return true;
  };
  while (static_cast<int>(latencies_us.size()) + refused < jobs &&
         Clock::now() < deadline) {
    // Keep up to in_flight jobs between submit and placement.
    while (next < jobs && sent.size() + submitted.size() < in_flight) {
      cn::v1::SubmitJob submit;
      auto* spec = submit.mutable_spec();
      spec->add_command("true");
      spec->set_cards_per_node(1);
      spec->set_max_duration_s(60);
      spec->add_allowed_regions("remote");
      submit.set_idempotency_key("bench-" + std::to_string(next++));
      const uint64_t id = consumer.NextRequestId();
      sent[id] = Clock::now();
      Check(consumer.Send(cn::v1::MESSAGE_TYPE_SUBMIT_JOB, id, submit));
    }
    auto received = consumer.Receive(100);
    if (!received.ok() || !received->has_value()) continue;
    const auto& envelope = **received;
    if (envelope.type() == cn::v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY ||
        envelope.type() == cn::v1::MESSAGE_TYPE_ERROR) {
      auto it = sent.find(envelope.request_id());
      if (it == sent.end()) continue;
      auto reply = cn::DecodeBody<cn::v1::SubmitJobReply>(envelope);
      if (envelope.type() == cn::v1::MESSAGE_TYPE_ERROR ||
          envelope.status().code() != 0 || !reply.ok()) {
        if (refused++ == 0) {
          std::fprintf(stderr, "forwarding_bench: a submit failed: %s\n",
                       envelope.status().message().c_str());
        }
        sent.erase(it);
        continue;
      }
      submitted.emplace(reply->job_id(), it->second);
      sent.erase(it);
      auto early = placed_early.find(reply->job_id());
      if (early != placed_early.end()) {
        placed(reply->job_id(), early->second);
        placed_early.erase(early);
      }
    } else if (envelope.type() == cn::v1::MESSAGE_TYPE_JOB_EVENT) {
      auto event = cn::DecodeBody<cn::v1::JobEvent>(envelope);
      if (!event.ok()) continue;
      const auto& job = event->job();
      const auto state = job.state();
      if (done.count(job.job_id()) != 0) continue;
      if (state == cn::v1::JOB_STATE_PLACED ||
          state == cn::v1::JOB_STATE_RUNNING ||
          state == cn::v1::JOB_STATE_SUCCEEDED) {
        // The first of these is when it was placed; later ones are ignored.
        if (!placed(job.job_id(), Clock::now()) &&
            submitted.count(job.job_id()) == 0 && !sent.empty()) {
          placed_early.emplace(job.job_id(), Clock::now());
        }
      } else if ((state == cn::v1::JOB_STATE_FAILED ||
                  state == cn::v1::JOB_STATE_CANCELLED) &&
                 submitted.erase(job.job_id()) > 0) {
        done.insert(job.job_id());
        if (refused++ == 0) {
          std::fprintf(stderr, "forwarding_bench: job %s ended unplaced: %s\n",
                       job.job_id().c_str(), job.reason().c_str());
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(last_placed - start).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto percentile = [&](double p) {
    if (latencies_us.empty()) return 0.0;
    return latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))];
  };
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("forwarding_bench: %zu of %d jobs placed at the peer, %zu in "
              "flight, %d refused or failed unplaced\n",
              latencies_us.size(), jobs, in_flight, refused);
  std::printf("  routed home -> peer: %.0f jobs/s\n",
              seconds > 0 ? latencies_us.size() / seconds : 0.0);
  std::printf("  submit -> placed at peer: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              percentile(0.50) / 1000, percentile(0.99) / 1000,
              percentile(1.0) / 1000);
  std::printf("  peak RSS (both brokers, agent, client): %ld MiB\n",
              usage.ru_maxrss / 1024);

  (*agent)->Shutdown();
  agent_thread.join();
  (*home_broker)->Shutdown();
  (*remote_broker)->Shutdown();
  home_thread.join();
  remote_thread.join();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return latencies_us.size() == static_cast<size_t>(jobs) ? 0 : 1;
}
