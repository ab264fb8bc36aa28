// Slurm side by side (see slurm_side.h).
#include "slurm_side.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "computenet/consumer/client.h"
#include "computenet/provider/subprocess.h"
#include "driver.h"

namespace computenet::loadgen {
namespace {

int64_t RealNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index =
      static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

std::string ConfValue(const std::string& conf_path, const std::string& key) {
  std::ifstream in(conf_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

StatusOr<SystemResult> RunSlurm(const SideBySideOptions& options,
                                const std::string& conf) {
  SystemResult result;
  result.jobs = options.jobs;
  const std::string jobcomp = ConfValue(conf, "JobCompLoc");
  if (jobcomp.empty())
    return FailedPreconditionError(conf + " has no JobCompLoc");
  std::error_code error;
  const auto start_size = std::filesystem::exists(jobcomp, error)
                              ? std::filesystem::file_size(jobcomp, error)
                              : 0;
  const std::string out_dir = options.work_dir + "/slurm-out";
  std::filesystem::create_directories(out_dir, error);

  std::mutex mu;
  std::map<std::string, int64_t> submitted_at;  // Slurm job id -> ns
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  int64_t last_answer_ns = 0;
  const int64_t first_ns = RealNs();
  std::vector<std::thread> submitters;
  for (int s = 0; s < options.submitters; ++s) {
    submitters.emplace_back([&] {
      while (next.fetch_add(1) < options.jobs) {
        provider::SubprocessOptions sbatch;
        sbatch.argv = {"sbatch",          "--parsable", "--job-name",
                       "cn-side-by-side", "--output",   out_dir + "/%j.out",
                       "--wrap",          "true"};
        sbatch.env["SLURM_CONF"] = conf;
        sbatch.timeout_ms = 30'000;
        const int64_t at = RealNs();
        auto ran = provider::RunSubprocess(sbatch);
        if (!ran.ok() || ran->exit_code != 0) {
          failures.fetch_add(1);
          continue;
        }
        std::string id = ran->out.substr(0, ran->out.find_first_of(";\n"));
        std::lock_guard<std::mutex> lock(mu);
        submitted_at[id] = at;
        last_answer_ns = std::max(last_answer_ns, RealNs());
      }
    });
  }
  // Completions: our jobs' lines appended to the jobcomp file.
  std::map<std::string, int64_t> cleared_at;
  std::string pending;
  uintmax_t offset = start_size;
  const int64_t deadline =
      first_ns + int64_t{options.timeout_s} * 1'000'000'000;
  bool submitting = true;
  while (RealNs() < deadline) {
    if (submitting && next.load() >= options.jobs + options.submitters) {
      for (auto& thread : submitters) thread.join();
      submitters.clear();
      submitting = false;
    }
    std::ifstream in(jobcomp);
    in.seekg(static_cast<std::streamoff>(offset));
    std::string chunk((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    offset += chunk.size();
    pending += chunk;
    const int64_t now = RealNs();
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      const size_t at = line.find("JobId=");
      if (at == std::string::npos) continue;
      const std::string id = line.substr(at + 6, line.find(' ', at) - (at + 6));
      std::lock_guard<std::mutex> lock(mu);
      if (submitted_at.count(id) != 0 && cleared_at.count(id) == 0) {
        cleared_at[id] = now;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!submitting && cleared_at.size() >= submitted_at.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  next.store(options.jobs + options.submitters);
  for (auto& thread : submitters) thread.join();

  std::lock_guard<std::mutex> lock(mu);
  result.submitted = static_cast<int>(submitted_at.size());
  result.cleared = static_cast<int>(cleared_at.size());
  int64_t last_cleared = first_ns;
  for (const auto& [id, at] : cleared_at)
    last_cleared = std::max(last_cleared, at);
  result.submit_seconds = static_cast<double>(last_answer_ns - first_ns) / 1e9;
  result.clear_seconds = static_cast<double>(last_cleared - first_ns) / 1e9;
  if (result.submit_seconds > 0) {
    result.submit_per_s = result.submitted / result.submit_seconds;
  }
  if (result.clear_seconds > 0) {
    result.cleared_per_s = result.cleared / result.clear_seconds;
  }
  std::vector<double> starts;
  for (const auto& [id, at] : submitted_at) {
    struct stat info {};
    const std::string file = out_dir + "/" + id + ".out";
    if (::stat(file.c_str(), &info) != 0) continue;
    const int64_t created =
        int64_t{info.st_mtim.tv_sec} * 1'000'000'000 + info.st_mtim.tv_nsec;
    starts.push_back(static_cast<double>(created - at) / 1e6);
  }
  result.start_samples = static_cast<int>(starts.size());
  result.start_p50_ms = Percentile(starts, 0.5);
  result.start_p99_ms = Percentile(starts, 0.99);
  return result;
}

StatusOr<SystemResult> RunComputeNet(const SideBySideOptions& options) {
  SystemResult result;
  result.jobs = options.jobs;
  ClusterOptions cluster_options;
  cluster_options.work_dir = options.work_dir + "/computenet";
  std::error_code error;
  std::filesystem::create_directories(cluster_options.work_dir, error);
  cluster_options.broker_binary = options.broker_binary;
  cluster_options.broker_log_level = options.broker_log_level;
  cluster_options.process_executor = true;
  cluster_options.consumers = options.submitters;
  // One site, 8 nodes x 8 cards: 64 slots, as Slurm's 64 declared CPUs.
  v1::RegisterProvider site;
  site.set_site("side-by-side");
  site.set_region("default");
  site.set_currency("CNY");
  auto* price = site.add_prices();
  price->set_model("A800");
  price->set_per_card_hour(1000);
  for (int n = 0; n < 8; ++n) {
    auto* node = site.add_nodes();
    node->set_name("n" + std::to_string(n));
    node->set_fabric_id("ib");
    node->set_cpu_cores(64);
    node->set_memory_mib(524288);
    auto* card = node->add_accelerators();
    card->set_model("A800");
    card->set_count(8);
  }
  cluster_options.agents.push_back(site);
  CN_ASSIGN_OR_RETURN(auto cluster,
                      Cluster::Create(std::move(cluster_options)));
  CN_RETURN_IF_ERROR(cluster->StartAgents(20'000));

  JobTracker tracker;
  DriverOptions driver_options;
  driver_options.endpoint = cluster->broker().endpoint();
  driver_options.broker_public_key =
      cluster->broker_identity().curve().public_z85;
  driver_options.consumers = cluster->consumers();
  driver_options.watch_only = true;
  v1::JobSpec spec;
  spec.add_command("true");
  spec.set_cards_per_node(1);
  spec.set_max_duration_s(60);
  LoadDriver watcher(driver_options, {spec}, &tracker);
  CN_RETURN_IF_ERROR(watcher.Start());

  std::atomic<int> next{0};
  std::atomic<int64_t> last_answer{0};
  const int64_t first_ns = NowNs();
  std::vector<std::thread> submitters;
  for (int s = 0; s < options.submitters; ++s) {
    submitters.emplace_back([&, s] {
      consumer::ClientOptions client_options;
      client_options.broker_endpoint = cluster->broker().endpoint();
      client_options.broker_public_key =
          cluster->broker_identity().curve().public_z85;
      auto client = consumer::Client::Connect(
          client_options, cluster->consumers()[static_cast<size_t>(s)]);
      if (!client.ok()) return;
      int k;
      while ((k = next.fetch_add(1)) < options.jobs) {
        const int64_t at = NowNs();
        const size_t index = tracker.NewJob(0, at, at);
        auto reply = (*client)->Submit(spec, "side-" + std::to_string(k));
        const int64_t now = NowNs();
        if (reply.ok()) {
          tracker.Accepted(index, reply->job_id(), now);
        } else {
          tracker.Refused(index, reply.status().code(), now);
        }
        int64_t seen = last_answer.load();
        while (now > seen && !last_answer.compare_exchange_weak(seen, now)) {
        }
      }
    });
  }
  for (auto& thread : submitters) thread.join();
  const int64_t deadline =
      first_ns + int64_t{options.timeout_s} * 1'000'000'000;
  while (NowNs() < deadline && tracker.Outstanding(0) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  watcher.Stop();
  cluster->Stop();

  int64_t last_cleared = first_ns;
  std::vector<double> starts;
  for (const auto& job : tracker.Snapshot()) {
    if (job.accepted_ns != 0) ++result.submitted;
    if (job.cleared()) {
      ++result.cleared;
      last_cleared = std::max(last_cleared, job.done_ns);
    }
    if (job.running_ns != 0) {
      starts.push_back(static_cast<double>(job.running_ns - job.sent_ns) / 1e6);
    }
  }
  result.submit_seconds =
      static_cast<double>(last_answer.load() - first_ns) / 1e9;
  result.clear_seconds = static_cast<double>(last_cleared - first_ns) / 1e9;
  if (result.submit_seconds > 0) {
    result.submit_per_s = result.submitted / result.submit_seconds;
  }
  if (result.clear_seconds > 0) {
    result.cleared_per_s = result.cleared / result.clear_seconds;
  }
  result.start_samples = static_cast<int>(starts.size());
  result.start_p50_ms = Percentile(starts, 0.5);
  result.start_p99_ms = Percentile(starts, 0.99);
  return result;
}

}  // namespace

StatusOr<SideBySide> RunSideBySide(const SideBySideOptions& options) {
  SideBySide out;
  provider::SubprocessOptions start;
  start.argv = {options.slurm_local, "start"};
  start.timeout_ms = 600'000;
  auto started = provider::RunSubprocess(start);
  if (!started.ok()) return started.status();
  if (started->exit_code == 77) {
    out.slurm_skipped = true;
    out.skip_reason = started->err;
    while (!out.skip_reason.empty() && out.skip_reason.back() == '\n') {
      out.skip_reason.pop_back();
    }
    return out;
  }
  if (started->exit_code != 0) {
    return UnavailableError("slurm-local.sh start failed: " + started->err);
  }
  std::string conf = started->out;
  while (!conf.empty() && conf.back() == '\n') conf.pop_back();
  const size_t last = conf.rfind('\n');
  out.slurm_conf = last == std::string::npos ? conf : conf.substr(last + 1);
  CN_ASSIGN_OR_RETURN(out.slurm, RunSlurm(options, out.slurm_conf));
  CN_ASSIGN_OR_RETURN(out.computenet, RunComputeNet(options));
  return out;
}

}  // namespace computenet::loadgen
