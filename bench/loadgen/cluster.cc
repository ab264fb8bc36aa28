// Cluster: the load generator's broker, providers and parties (see
// cluster.h).
#include "cluster.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "computenet/common/files.h"
#include "computenet/provider/process_executor.h"
#include "enroll.h"
#include "instant_executor.h"

namespace computenet::loadgen {
namespace {

using SteadyClock = std::chrono::steady_clock;

double Since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

StatusOr<std::vector<Identity>> MakeIdentities(const std::string& prefix,
                                               int count) {
  std::vector<Identity> out;
  out.reserve(static_cast<size_t>(std::max(0, count)));
  for (int i = 0; i < count; ++i) {
    CN_ASSIGN_OR_RETURN(auto identity,
                        Identity::Generate(prefix + "-" + std::to_string(i)));
    out.push_back(std::move(identity));
  }
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<Cluster>> Cluster::Create(ClusterOptions options) {
  std::unique_ptr<Cluster> cluster(new Cluster(std::move(options)));
  const ClusterOptions& o = cluster->options_;
  auto start = SteadyClock::now();
  CN_RETURN_IF_ERROR(
      cluster->broker_identity_.Save(o.work_dir + "/broker-keys"));
  CN_ASSIGN_OR_RETURN(
      cluster->agent_identities_,
      MakeIdentities("agent", static_cast<int>(o.agents.size())));
  CN_ASSIGN_OR_RETURN(cluster->consumers_,
                      MakeIdentities("consumer", o.consumers));
  CN_ASSIGN_OR_RETURN(cluster->unfunded_,
                      MakeIdentities("unfunded", o.unfunded_consumers));
  EnrollmentPlan plan;
  for (const auto& identity : cluster->agent_identities_) {
    plan.providers.push_back(identity.Public());
  }
  for (int i = 0; i < o.swarm; ++i) {
    // The swarm needs only CURVE keys; the Ed25519 half is never used, so
    // one signing key serves every member's enrolment.
    CN_ASSIGN_OR_RETURN(auto keys, CurveKeyPair::Generate());
    PublicIdentity identity;
    identity.name = "swarm-" + std::to_string(i);
    identity.curve_public = keys.public_z85;
    identity.ed25519_public = cluster->broker_identity_.Public().ed25519_public;
    plan.providers.push_back(identity);
    cluster->swarm_keys_.push_back(std::move(keys));
  }
  for (const auto& identity : cluster->consumers_) {
    plan.consumers.push_back(identity.Public());
  }
  for (const auto& identity : cluster->unfunded_) {
    plan.unfunded_consumers.push_back(identity.Public());
  }
  plan.topup_per_consumer = o.topup_per_consumer;
  cluster->keygen_s_ = Since(start);
  start = SteadyClock::now();
  const std::string db = o.work_dir + "/broker.db";
  CN_RETURN_IF_ERROR(
      EnrollAll(db, plan,
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count()));
  cluster->enroll_s_ = Since(start);

  BrokerProcessOptions broker;
  broker.binary = o.broker_binary;
  broker.work_dir = o.work_dir;
  broker.db_path = db;
  broker.keys_dir = o.work_dir + "/broker-keys";
  broker.log_level = o.broker_log_level;
  broker.heartbeat_ms = o.heartbeat_ms;
  broker.liveness = o.liveness;
  CN_ASSIGN_OR_RETURN(cluster->broker_, BrokerProcess::Start(broker, 20'000));
  return cluster;
}

Cluster::~Cluster() { Stop(); }

size_t Cluster::agent_nodes() const {
  size_t nodes = 0;
  for (const auto& registration : options_.agents) {
    nodes += static_cast<size_t>(registration.nodes_size());
  }
  return nodes;
}

Status Cluster::StartAgents(int timeout_ms) {
  for (size_t i = 0; i < options_.agents.size(); ++i) {
    provider::ProviderOptions agent;
    agent.broker_endpoint = broker_->endpoint();
    agent.broker_public_key = broker_identity_.curve().public_z85;
    agent.registration = options_.agents[i];
    agent.heartbeat_interval_ms = options_.heartbeat_ms;
    agent.heartbeat_liveness = options_.liveness;
    std::unique_ptr<provider::Executor> executor;
    if (options_.process_executor) {
      provider::ProcessExecutorOptions process;
      process.work_dir = options_.work_dir + "/work-" + std::to_string(i);
      executor = std::make_unique<provider::ProcessExecutor>(process);
    } else {
      executor = std::make_unique<InstantExecutor>(&executor_starts_);
    }
    CN_ASSIGN_OR_RETURN(
        auto created,
        provider::ProviderAgent::Create(std::move(agent), agent_identities_[i],
                                        std::move(executor)));
    agents_.push_back(std::move(created));
  }
  for (auto& agent : agents_) {
    provider::ProviderAgent* raw = agent.get();
    agent_threads_.emplace_back([raw] { (void)raw->Run(); });
  }
  const auto deadline =
      SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto& agent : agents_) {
    while (!agent->registered()) {
      if (SteadyClock::now() > deadline || !broker_->Alive()) {
        return UnavailableError("provider agents not registered in time");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return OkStatus();
}

Status Cluster::StartSwarm(int timeout_ms) {
  if (swarm_keys_.empty()) return OkStatus();
  const std::string keys_file = options_.work_dir + "/swarm-keys.txt";
  {
    std::ofstream keys(keys_file);
    for (const auto& key : swarm_keys_) {
      keys << key.public_z85 << " " << key.secret_z85 << "\n";
    }
  }
  ::chmod(keys_file.c_str(), 0600);
  std::error_code error;
  const std::string self =
      std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return UnavailableError("cannot find /proc/self/exe");
  const size_t per =
      static_cast<size_t>(std::max(1, options_.swarm_per_process));
  for (size_t from = 0; from < swarm_keys_.size(); from += per) {
    const size_t count = std::min(per, swarm_keys_.size() - from);
    const std::string stats = options_.work_dir + "/swarm-" +
                              std::to_string(swarm_workers_.size()) + ".stats";
    std::vector<std::string> args = {self,
                                     "--mode",
                                     "swarm-worker",
                                     "--swarm-keys",
                                     keys_file,
                                     "--swarm-from",
                                     std::to_string(from),
                                     "--swarm-count",
                                     std::to_string(count),
                                     "--swarm-endpoint",
                                     broker_->endpoint(),
                                     "--swarm-broker-key",
                                     broker_identity_.curve().public_z85,
                                     "--swarm-stats",
                                     stats,
                                     "--swarm-threads",
                                     std::to_string(options_.swarm_threads),
                                     "--heartbeat-ms",
                                     std::to_string(options_.heartbeat_ms)};
    if (options_.swarm_connect_only) args.push_back("--swarm-connect-only");
    CN_ASSIGN_OR_RETURN(
        const pid_t pid,
        SpawnChild(args, options_.work_dir + "/swarm-" +
                             std::to_string(swarm_workers_.size()) + ".log"));
    swarm_workers_.push_back(pid);
    swarm_stats_files_.push_back(stats);
  }
  const auto deadline =
      SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  if (options_.swarm_connect_only) {
    while (swarm_stats().connected < swarm_keys_.size() &&
           SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Handshakes finish in the background: give them time.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    return OkStatus();
  }
  auto next_report = SteadyClock::now() + std::chrono::seconds(5);
  while (swarm_stats().registered < swarm_keys_.size()) {
    if (SteadyClock::now() >= next_report) {
      // Progress, so a slow ramp shows its shape (broker memory and CPU).
      next_report += std::chrono::seconds(5);
      const SwarmStats stats = swarm_stats();
      auto sample = broker_->Sample();
      std::printf(
          "  swarm: %llu connected, %llu registered, %llu false losses; "
          "broker RSS %.0f MiB, CPU %.1f s\n",
          static_cast<unsigned long long>(stats.connected),
          static_cast<unsigned long long>(stats.registered),
          static_cast<unsigned long long>(stats.false_losses),
          sample.ok() ? static_cast<double>(sample->rss_kib) / 1024 : 0.0,
          sample.ok() ? sample->cpu_s() : 0.0);
    }
    if (SteadyClock::now() > deadline || !broker_->Alive()) {
      return UnavailableError(
          "swarm: " + std::to_string(swarm_stats().registered) + " of " +
          std::to_string(swarm_keys_.size()) + " registered in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return OkStatus();
}

SwarmStats Cluster::swarm_stats() const {
  SwarmStats total;
  for (const auto& file : swarm_stats_files_) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    AddSwarmStats(ParseSwarmStats(line), &total);
  }
  return total;
}

double Cluster::swarm_cpu_s() const {
  double total = 0;
  for (pid_t pid : swarm_workers_) {
    auto sample = SampleProcess(pid);
    if (sample.ok()) total += sample->cpu_s();
  }
  return total;
}

int RunSwarmWorker(const std::string& keys_file, size_t from, size_t count,
                   const std::string& endpoint, const std::string& broker_key,
                   const std::string& stats_file, int threads, int heartbeat_ms,
                   bool connect_only) {
  static std::atomic<bool> stop{false};
  std::signal(SIGTERM, [](int) { stop.store(true); });
  std::signal(SIGINT, [](int) { stop.store(true); });
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  SwarmOptions options;
  options.endpoint = endpoint;
  options.broker_public_key = broker_key;
  options.threads = threads;
  options.heartbeat_ms = heartbeat_ms;
  options.first_index = from;
  options.connect_only = connect_only;
  std::ifstream keys(keys_file);
  std::string public_z85, secret_z85;
  size_t index = 0;
  while (keys >> public_z85 >> secret_z85) {
    if (index >= from && index < from + count) {
      options.keys.push_back(CurveKeyPair{public_z85, secret_z85});
    }
    ++index;
  }
  HeartbeatSwarm swarm(std::move(options));
  swarm.Start();
  while (!stop.load()) {
    (void)WriteFileAtomically(stats_file, FormatSwarmStats(swarm.stats()),
                              0644);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  swarm.Stop();
  (void)WriteFileAtomically(stats_file, FormatSwarmStats(swarm.stats()), 0644);
  return 0;
}

void Cluster::Stop() {
  for (auto& agent : agents_) agent->Shutdown();
  for (auto& thread : agent_threads_) thread.join();
  agent_threads_.clear();
  agents_.clear();
  for (pid_t pid : swarm_workers_) StopChild(pid, 5000);
  swarm_workers_.clear();
  if (broker_) broker_->Stop(10'000);
}

}  // namespace computenet::loadgen
