// loadgen: ComputeNet's load generator (issue 10, items 6 and 7). A program,
// not a Google Benchmark: it starts a real broker as a child process,
// connects N real provider agents and M consumers over CURVE on loopback,
// and drives an open-loop job stream (drawn from the Alibaba GPU trace)
// that steps up in rate until the broker saturates. Per step it prints
// what was accepted, placed and cleared end to end (submit -> ran ->
// succeeded -> usage settled) per second, submit -> placed percentiles,
// heartbeats absorbed, broker CPU per 1,000 jobs and where its CPU went,
// and, once, memory per tracked node and per queued job and the building
// blocks measured in the same run (SQLite group commit, Ed25519) with the
// ratios. Results also go to CSV/JSON for bench/plot_loadgen.gp.
//
// Modes:
//   steps       (default) the rate steps;
//   heartbeats  a swarm of lightweight providers (default 10,000) heart-
//               beating once a second while submissions run at --rates
//               (default 10,000/s): false losses are reported;
//   slurm       the Slurm side by side (slurm_side.h); exit 77 if Slurm
//               cannot run here.
// --short runs a few seconds with small N (the ctest form); every mode
// exits non-zero if it measured nothing.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "broker_process.h"
#include "building_blocks.h"
#include "cluster.h"
#include "computenet/common/logging.h"
#include "computenet/common/transport.h"
#include "computenet/provider/subprocess.h"
#include "computenet/v1/consumer.pb.h"
#include "driver.h"
#include "slurm_side.h"
#include "trace_mix.h"

namespace {

namespace cn = computenet;
namespace lg = computenet::loadgen;
using nlohmann::json;

struct Flags {
  std::string mode = "steps";
  bool short_form = false;
  int agents = 16;
  int consumers = 16;
  std::string rates = "100,200,500,1000,2000,5000,10000,20000";
  int past_saturation = 1;  // steps run after the first saturated one
  double step_seconds = 5;
  double drain_seconds = 10;
  int swarm = -1;         // -1 = mode default
  int swarm_threads = 2;  // per swarm worker process
  std::string executor = "instant";
  bool pipelined = false;
  std::string trace;
  std::string broker = COMPUTENET_BROKER_BIN;
  std::string broker_log_level = "warn";
  int queued_jobs = 4000;
  double blocks_seconds = 1.0;
  std::string json_path;
  std::string csv_path;
  bool keep = false;
  uint64_t seed = 1;
  double budget_seconds = 170;
  int slurm_jobs = 300;
  int slurm_submitters = 8;
  std::string slurm_local = COMPUTENET_SLURM_LOCAL;
  std::string log_level = "error";
  bool perf = true;  // count the broker's fsyncs with `perf stat` if present
  // Where the work directory (broker database included) is made. /dev/shm
  // (tmpfs: fsync costs nothing) shows what bounds the broker besides the
  // disk.
  std::string tmp_dir = "/tmp";
};

// The broker's fdatasync+fsync calls over `seconds`, counted by `perf stat`
// on the syscall tracepoints; -1 if perf is missing or not permitted.
double CountBrokerSyncs(pid_t pid, double seconds) {
  cn::provider::SubprocessOptions perf;
  perf.argv = {"perf",
               "stat",
               "-x,",
               "-e",
               "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync",
               "-p",
               std::to_string(pid),
               "--",
               "sleep",
               std::to_string(seconds)};
  perf.timeout_ms = static_cast<int>(seconds * 1000) + 5000;
  auto ran = cn::provider::RunSubprocess(perf);
  if (!ran.ok() || ran->exit_code != 0) return -1;
  double total = 0;
  bool any = false;
  std::istringstream lines(ran->err);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("syscalls:sys_enter_") == std::string::npos) continue;
    const std::string count = line.substr(0, line.find(','));
    if (count.empty() || !std::isdigit(static_cast<unsigned char>(count[0]))) {
      return -1;  // "<not supported>" / "<not counted>"
    }
    total += std::atof(count.c_str());
    any = true;
  }
  return any ? total : -1;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index = static_cast<size_t>(
      std::ceil(p * static_cast<double>(values.size())) - 1);
  return values[std::min(index, values.size() - 1)];
}

std::vector<double> ParseRates(const std::string& text) {
  std::vector<double> rates;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) rates.push_back(std::atof(part.c_str()));
  }
  return rates;
}

// Machine-wide CPU from /proc/stat: busy and iowait jiffies.
struct MachineCpu {
  double busy = 0, iowait = 0, total = 0;
};
MachineCpu ReadMachineCpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user, nice, system, idle, iowait, irq, softirq, steal;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >>
      steal;
  MachineCpu out;
  out.busy = user + nice + system + irq + softirq + steal;
  out.iowait = iowait;
  out.total = out.busy + idle + iowait;
  return out;
}

// Broker threads by role: the core loop is the main thread.
struct ThreadSplit {
  double loop_s = 0, zmq_io_s = 0, other_s = 0;
};
ThreadSplit Split(const std::vector<lg::ThreadCpu>& threads, pid_t pid) {
  ThreadSplit split;
  for (const auto& thread : threads) {
    if (thread.tid == pid) {
      split.loop_s += thread.cpu_s;
    } else if (thread.name.find("ZMQbg/IO") != std::string::npos) {
      split.zmq_io_s += thread.cpu_s;
    } else {
      split.other_s += thread.cpu_s;
    }
  }
  return split;
}

struct StepResult {
  double offered_rate = 0;
  double window_s = 0;
  lg::StepSubmission submission;
  uint64_t accepted = 0, refused = 0, placed = 0, cleared = 0;
  uint64_t placed_in_window = 0, accepted_in_window = 0, cleared_in_window = 0;
  double accepted_per_s = 0, placed_per_s = 0, cleared_per_s = 0;
  double settled_per_s = 0;
  double accept_p99_ms = 0;
  double placed_p50_ms = 0, placed_p99_ms = 0, placed_p999_ms = 0;
  double cleared_p50_ms = 0, cleared_p99_ms = 0;
  double heartbeats_per_s = 0;
  uint64_t false_losses = 0;
  double broker_cpu_s = 0;
  double cpu_s_per_1000 = 0;
  double broker_cpu_pct = 0, loop_pct = 0, zmq_pct = 0;
  double loadgen_cpu_pct = 0, machine_busy_pct = 0, machine_iowait_pct = 0;
  double broker_voluntary_per_s = 0;
  double syncs_per_s = -1;  // broker fdatasync+fsync (perf), -1 unknown
  double syncs_per_job = -1;
  double elapsed_s = 0;  // window + drain
  int64_t rss_kib = 0;
  bool drained = false;
  bool saturated = false;
};

json ToJson(const StepResult& r) {
  return json{{"offered_per_s", r.offered_rate},
              {"window_s", r.window_s},
              {"due", r.submission.due},
              {"sent", r.submission.sent},
              {"unsent", r.submission.unsent},
              {"accepted", r.accepted},
              {"refused", r.refused},
              {"placed", r.placed},
              {"cleared", r.cleared},
              {"accepted_per_s", r.accepted_per_s},
              {"placed_per_s", r.placed_per_s},
              {"cleared_per_s", r.cleared_per_s},
              {"usage_settled_per_s", r.settled_per_s},
              {"submit_to_accepted_p99_ms", r.accept_p99_ms},
              {"submit_to_placed_p50_ms", r.placed_p50_ms},
              {"submit_to_placed_p99_ms", r.placed_p99_ms},
              {"submit_to_placed_p999_ms", r.placed_p999_ms},
              {"submit_to_cleared_p50_ms", r.cleared_p50_ms},
              {"submit_to_cleared_p99_ms", r.cleared_p99_ms},
              {"heartbeats_per_s", r.heartbeats_per_s},
              {"false_losses", r.false_losses},
              {"broker_cpu_s", r.broker_cpu_s},
              {"broker_cpu_s_per_1000_jobs", r.cpu_s_per_1000},
              {"broker_cpu_pct", r.broker_cpu_pct},
              {"broker_loop_thread_pct", r.loop_pct},
              {"broker_zmq_io_pct", r.zmq_pct},
              {"broker_voluntary_switches_per_s", r.broker_voluntary_per_s},
              {"broker_fsyncs_per_s", r.syncs_per_s},
              {"broker_fsyncs_per_job_cleared", r.syncs_per_job},
              {"loadgen_cpu_pct", r.loadgen_cpu_pct},
              {"machine_busy_pct", r.machine_busy_pct},
              {"machine_iowait_pct", r.machine_iowait_pct},
              {"broker_rss_kib", r.rss_kib},
              {"drained", r.drained},
              {"saturated", r.saturated}};
}

void PrintHeader() {
  std::printf(
      "%8s %8s %8s %8s %8s | %7s %7s %7s | %8s %5s | %6s %5s %5s %5s %5s %7s "
      "%5s %5s | %6s\n",
      "offered", "accept", "placed", "cleared", "settled", "p50ms", "p99ms",
      "p999ms", "hb/s", "lost", "cpu/1k", "brk%", "loop", "zmq", "lg%",
      "fsync/s", "/job", "iow%", "rssMiB");
}

void PrintRow(const StepResult& r) {
  std::printf(
      "%8.0f %8.0f %8.0f %8.0f %8.0f | %7.1f %7.1f %7.1f | %8.0f %5llu | "
      "%6.2f %5.0f %5.0f %5.0f %5.0f %7.0f %5.1f %5.1f | %6.1f%s\n",
      r.offered_rate, r.accepted_per_s, r.placed_per_s, r.cleared_per_s,
      r.settled_per_s, r.placed_p50_ms, r.placed_p99_ms, r.placed_p999_ms,
      r.heartbeats_per_s, static_cast<unsigned long long>(r.false_losses),
      r.cpu_s_per_1000, r.broker_cpu_pct, r.loop_pct, r.zmq_pct,
      r.loadgen_cpu_pct, r.syncs_per_s, r.syncs_per_job, r.machine_iowait_pct,
      static_cast<double>(r.rss_kib) / 1024.0,
      r.saturated ? "  <- saturated" : "");
}

void RaiseFileLimit(int needed) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const rlim_t want = static_cast<rlim_t>(std::max(needed, 1024));
  if (limit.rlim_cur >= want) return;
  rlimit raised = limit;
  raised.rlim_cur = want;
  if (raised.rlim_max < want) raised.rlim_max = want;  // root may raise it
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    raised.rlim_cur = limit.rlim_max;
    raised.rlim_max = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &raised);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  std::printf("RLIMIT_NOFILE: %llu (wanted %llu)\n",
              static_cast<unsigned long long>(limit.rlim_cur),
              static_cast<unsigned long long>(want));
}

// Submits `count` jobs from the unfunded consumers (no money, so they wait
// for funds and stay QUEUED) and returns how many were accepted; the
// caller reads the broker's RSS before and after.
uint64_t SubmitQueuedJobs(lg::Cluster& cluster, const cn::v1::JobSpec& spec,
                          int count) {
  zmq::context_t context(1);
  uint64_t accepted = 0;
  const auto& unfunded = cluster.unfunded();
  if (unfunded.empty()) return 0;
  const int per = (count + static_cast<int>(unfunded.size()) - 1) /
                  static_cast<int>(unfunded.size());
  for (const auto& identity : unfunded) {
    cn::DealerOptions dealer;
    dealer.endpoint = cluster.broker().endpoint();
    dealer.server_public_key = cluster.broker_identity().curve().public_z85;
    dealer.client_keys = identity.curve();
    auto channel = cn::DealerChannel::Connect(context, dealer);
    if (!channel.ok()) continue;
    int answered = 0;
    int sent = 0;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (answered < per && std::chrono::steady_clock::now() < deadline) {
      // At most 1,000 in flight: under the per-identity burst of 4,000.
      while (sent < per && sent - answered < 1000) {
        cn::v1::SubmitJob submit;
        *submit.mutable_spec() = spec;
        submit.set_idempotency_key("queued-" + std::to_string(sent));
        if (!(*channel)
                 ->Send(cn::v1::MESSAGE_TYPE_SUBMIT_JOB,
                        (*channel)->NextRequestId(), submit)
                 .ok()) {
          break;
        }
        ++sent;
      }
      auto received = (*channel)->Receive(100);
      if (!received.ok() || !received->has_value()) continue;
      if ((*received)->type() != cn::v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY &&
          (*received)->type() != cn::v1::MESSAGE_TYPE_ERROR) {
        continue;
      }
      ++answered;
      if (cn::StatusFromProto((*received)->status()).ok()) ++accepted;
    }
  }
  return accepted;
}

// One open-loop step: submit for the window, then wait (bounded) for every
// job of it to end; figures from the job record and /proc.
StepResult RunStep(int step, double rate, const Flags& flags,
                   lg::Cluster& cluster, lg::LoadDriver& driver,
                   lg::JobTracker& tracker) {
  StepResult r;
  r.offered_rate = rate;
  r.window_s = flags.step_seconds;
  const size_t first_job = tracker.size();
  const auto swarm_before = cluster.swarm_stats();
  const double swarm_cpu_before = cluster.swarm_cpu_s();
  const auto broker_before = cluster.broker().Sample();
  const auto threads_before =
      Split(cluster.broker().Threads(), cluster.broker().pid());
  const auto self_before = lg::SampleProcess(0);
  const auto machine_before = ReadMachineCpu();
  const int64_t start_ns = lg::NowNs();

  double syncs = -1;
  std::thread perf_thread;
  if (flags.perf) {
    perf_thread = std::thread([&] {
      syncs = CountBrokerSyncs(cluster.broker().pid(), flags.step_seconds);
    });
  }
  r.submission =
      driver.RunStep(step, rate, flags.step_seconds,
                     flags.seed * 1000 + static_cast<uint64_t>(step));
  if (perf_thread.joinable()) perf_thread.join();
  const int64_t window_end_ns = lg::NowNs();
  const auto swarm_window = cluster.swarm_stats();
  const int64_t drain_deadline =
      window_end_ns + static_cast<int64_t>(flags.drain_seconds * 1e9);
  while (lg::NowNs() < drain_deadline) {
    if (tracker.Outstanding(first_job) == 0) {
      r.drained = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int64_t end_ns = lg::NowNs();
  const auto broker_after = cluster.broker().Sample();
  const auto threads_after =
      Split(cluster.broker().Threads(), cluster.broker().pid());
  const auto self_after = lg::SampleProcess(0);
  const auto machine_after = ReadMachineCpu();
  r.elapsed_s = static_cast<double>(end_ns - start_ns) / 1e9;

  // The window as the clients saw it: from the plan's start (2 ms after
  // start_ns) to its end.
  const int64_t window_start = start_ns + 2'000'000;
  const int64_t window_stop =
      window_start + static_cast<int64_t>(flags.step_seconds * 1e9);
  auto in_window = [&](int64_t at) {
    return at != 0 && at >= window_start && at < window_stop;
  };
  std::vector<double> accept_ms, placed_ms, cleared_ms;
  uint64_t settled_in_window = 0;
  for (const auto& job : tracker.Snapshot(first_job)) {
    if (job.step != step) {
      if (job.refused_ns != 0) ++r.refused;  // an unattributed refusal
      continue;
    }
    if (job.refused_ns != 0) ++r.refused;
    if (job.accepted_ns != 0) {
      ++r.accepted;
      accept_ms.push_back(static_cast<double>(job.accepted_ns - job.due_ns) /
                          1e6);
    }
    if (job.placed_ns != 0) {
      ++r.placed;
      placed_ms.push_back(static_cast<double>(job.placed_ns - job.due_ns) /
                          1e6);
    }
    if (job.cleared()) {
      ++r.cleared;
      cleared_ms.push_back(static_cast<double>(job.done_ns - job.due_ns) / 1e6);
    }
    if (in_window(job.accepted_ns)) ++r.accepted_in_window;
    if (in_window(job.placed_ns)) ++r.placed_in_window;
    if (job.cleared() && in_window(job.done_ns)) {
      ++r.cleared_in_window;
      if (job.settled()) ++settled_in_window;  // one closing record per job
    }
  }
  r.accepted_per_s =
      static_cast<double>(r.accepted_in_window) / flags.step_seconds;
  r.placed_per_s = static_cast<double>(r.placed_in_window) / flags.step_seconds;
  r.cleared_per_s =
      static_cast<double>(r.cleared_in_window) / flags.step_seconds;
  r.settled_per_s = static_cast<double>(settled_in_window) / flags.step_seconds;
  r.accept_p99_ms = Percentile(accept_ms, 0.99);
  r.placed_p50_ms = Percentile(placed_ms, 0.50);
  r.placed_p99_ms = Percentile(placed_ms, 0.99);
  r.placed_p999_ms = Percentile(placed_ms, 0.999);
  r.cleared_p50_ms = Percentile(cleared_ms, 0.50);
  r.cleared_p99_ms = Percentile(cleared_ms, 0.99);
  r.heartbeats_per_s = static_cast<double>(swarm_window.heartbeats_sent -
                                           swarm_before.heartbeats_sent) /
                       flags.step_seconds;
  const auto swarm_after = cluster.swarm_stats();
  r.false_losses = swarm_after.false_losses - swarm_before.false_losses;
  if (broker_before.ok() && broker_after.ok()) {
    r.broker_cpu_s = broker_after->cpu_s() - broker_before->cpu_s();
    r.broker_cpu_pct = 100 * r.broker_cpu_s / r.elapsed_s;
    r.rss_kib = broker_after->rss_kib;
    r.broker_voluntary_per_s =
        static_cast<double>(broker_after->voluntary_switches -
                            broker_before->voluntary_switches) /
        r.elapsed_s;
  }
  r.loop_pct =
      100 * (threads_after.loop_s - threads_before.loop_s) / r.elapsed_s;
  r.zmq_pct =
      100 * (threads_after.zmq_io_s - threads_before.zmq_io_s) / r.elapsed_s;
  if (self_before.ok() && self_after.ok()) {
    // The load generator and its swarm worker processes together.
    r.loadgen_cpu_pct = 100 *
                        (self_after->cpu_s() - self_before->cpu_s() +
                         cluster.swarm_cpu_s() - swarm_cpu_before) /
                        r.elapsed_s;
  }
  const double total = machine_after.total - machine_before.total;
  if (total > 0) {
    r.machine_busy_pct =
        100 * (machine_after.busy - machine_before.busy) / total;
    r.machine_iowait_pct =
        100 * (machine_after.iowait - machine_before.iowait) / total;
  }
  if (syncs >= 0) {
    r.syncs_per_s = syncs / flags.step_seconds;
    if (r.cleared_in_window > 0) {
      r.syncs_per_job = syncs / static_cast<double>(r.cleared_in_window);
    }
  }
  if (r.cleared > 0) {
    r.cpu_s_per_1000 = r.broker_cpu_s / static_cast<double>(r.cleared) * 1000;
  }
  const double offered =
      static_cast<double>(r.submission.due) / flags.step_seconds;
  r.saturated = !r.drained || r.accepted_per_s < 0.9 * offered ||
                r.cleared_per_s < 0.9 * offered || r.placed_p99_ms > 1000;
  return r;
}

int RunSlurmMode(const Flags& flags, const std::string& dir, json& out) {
  lg::SideBySideOptions options;
  options.slurm_local = flags.slurm_local;
  options.work_dir = dir;
  options.broker_binary = flags.broker;
  options.broker_log_level = flags.broker_log_level;
  options.jobs = flags.short_form ? 40 : flags.slurm_jobs;
  options.submitters = flags.short_form ? 4 : flags.slurm_submitters;
  options.timeout_s = flags.short_form ? 30 : 90;
  auto result = lg::RunSideBySide(options);
  if (!result.ok()) {
    std::fprintf(stderr, "loadgen: side by side: %s\n",
                 result.status().ToString().c_str());
    return 1;
  }
  if (result->slurm_skipped) {
    std::printf("SKIP: Slurm cannot start here: %s\n",
                result->skip_reason.c_str());
    return 77;
  }
  const auto& s = result->slurm;
  const auto& c = result->computenet;
  std::printf(
      "\nSlurm side by side: %d trivial jobs, %d submitters each "
      "(Slurm: %s)\n",
      options.jobs, options.submitters, result->slurm_conf.c_str());
  std::printf("%-28s %10s %10s %10s %12s %12s\n", "", "submitted", "cleared",
              "cleared/s", "start p50 ms", "start p99 ms");
  std::printf("%-28s %10d %10d %10.1f %12.1f %12.1f\n",
              "Slurm (sbatch --wrap true)", s.submitted, s.cleared,
              s.cleared_per_s, s.start_p50_ms, s.start_p99_ms);
  std::printf("%-28s %10d %10d %10.1f %12.1f %12.1f\n",
              "ComputeNet (agent, `true`)", c.submitted, c.cleared,
              c.cleared_per_s, c.start_p50_ms, c.start_p99_ms);
  const double ratio =
      s.cleared_per_s > 0 ? c.cleared_per_s / s.cleared_per_s : 0;
  const double start_ratio =
      c.start_p50_ms > 0 ? s.start_p50_ms / c.start_p50_ms : 0;
  std::printf(
      "ratio ComputeNet / Slurm: %.1fx jobs cleared per second "
      "(target >= 20x); submit -> start p50 %.1fx shorter\n",
      ratio, start_ratio);
  std::printf(
      "submissions/s: Slurm %.0f (sbatch), ComputeNet %.0f (Client::Submit)\n",
      s.submit_per_s, c.submit_per_s);
  auto system = [](const lg::SystemResult& r) {
    return json{{"jobs", r.jobs},
                {"submitted", r.submitted},
                {"cleared", r.cleared},
                {"cleared_per_s", r.cleared_per_s},
                {"submit_per_s", r.submit_per_s},
                {"clear_seconds", r.clear_seconds},
                {"submit_to_start_p50_ms", r.start_p50_ms},
                {"submit_to_start_p99_ms", r.start_p99_ms},
                {"start_samples", r.start_samples}};
  };
  out["slurm_side_by_side"] = {{"slurm", system(s)},
                               {"computenet", system(c)},
                               {"cleared_ratio", ratio},
                               {"start_p50_ratio", start_ratio}};
  return s.cleared > 0 && c.cleared > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Flags flags;
  CLI::App app{"loadgen: ComputeNet load generator (bench/loadgen)"};
  app.add_option("--mode", flags.mode, "steps | heartbeats | slurm")
      ->check(CLI::IsMember({"steps", "heartbeats", "slurm", "swarm-worker"}));
  app.add_flag("--short", flags.short_form, "a few seconds, small N (ctest)");
  app.add_option("--agents", flags.agents,
                 "provider agents (ProviderAgent threads)");
  app.add_option("--consumers", flags.consumers, "consumers, each its own key");
  app.add_option("--rates", flags.rates,
                 "offered jobs/s per step, comma-separated");
  app.add_option("--step-seconds", flags.step_seconds);
  app.add_option("--past-saturation", flags.past_saturation,
                 "steps to run after the first saturated one (the plateau)");
  app.add_option("--drain-seconds", flags.drain_seconds,
                 "longest wait after a step for its jobs to end");
  app.add_option(
      "--swarm", flags.swarm,
      "raw-protocol heartbeating providers (steps: 1000; heartbeats: 10000)");
  app.add_option("--swarm-threads", flags.swarm_threads);
  app.add_option("--executor", flags.executor,
                 "instant | process (runs `true`)")
      ->check(CLI::IsMember({"instant", "process"}));
  app.add_flag("--pipelined", flags.pipelined,
               "submit without waiting for replies (raw protocol) instead of "
               "consumer::Client");
  app.add_option("--trace", flags.trace,
                 "openb_pod_list_default.csv or its directory");
  app.add_option("--broker", flags.broker, "computenet-broker binary");
  app.add_option("--broker-log-level", flags.broker_log_level);
  app.add_option(
      "--queued-jobs", flags.queued_jobs,
      "jobs left waiting for funds to measure memory per queued job");
  app.add_option("--blocks-seconds", flags.blocks_seconds,
                 "time per building-block measurement");
  app.add_option("--json", flags.json_path, "write results as JSON");
  app.add_option("--csv", flags.csv_path, "write the step table as CSV");
  app.add_flag("--keep", flags.keep, "keep the work directory");
  app.add_option("--seed", flags.seed);
  app.add_option("--budget-seconds", flags.budget_seconds,
                 "no new step starts after this much wall time");
  app.add_option("--slurm-jobs", flags.slurm_jobs);
  app.add_option("--slurm-submitters", flags.slurm_submitters);
  app.add_option("--slurm-local", flags.slurm_local,
                 "tests/slurm/slurm-local.sh");
  // Internal: one swarm worker process (started by Cluster::StartSwarm).
  std::string swarm_keys, swarm_endpoint, swarm_broker_key, swarm_stats;
  size_t swarm_from = 0, swarm_count = 0;
  int heartbeat_ms = 1000;
  app.add_option("--swarm-keys", swarm_keys)->group("");
  app.add_option("--swarm-from", swarm_from)->group("");
  app.add_option("--swarm-count", swarm_count)->group("");
  app.add_option("--swarm-endpoint", swarm_endpoint)->group("");
  app.add_option("--swarm-broker-key", swarm_broker_key)->group("");
  app.add_option("--swarm-stats", swarm_stats)->group("");
  app.add_option("--heartbeat-ms", heartbeat_ms)->group("");
  bool connect_only = false;
  app.add_flag("--swarm-connect-only", connect_only,
               "diagnostic: swarm members connect but never register "
               "(broker memory per connection)");
  app.add_option("--tmp-dir", flags.tmp_dir,
                 "where the work directory and broker database go")
      ->capture_default_str();
  app.add_option("--log-level", flags.log_level,
                 "this process's log (agents' warnings: reconnects)");
  app.add_option("--perf", flags.perf, "count broker fsyncs with perf stat")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cn::InitLogging("loadgen", flags.log_level);
  if (flags.mode == "swarm-worker") {
    return lg::RunSwarmWorker(swarm_keys, swarm_from, swarm_count,
                              swarm_endpoint, swarm_broker_key, swarm_stats,
                              flags.swarm_threads, heartbeat_ms, connect_only);
  }
  const auto run_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         run_start)
        .count();
  };

  if (flags.swarm < 0) flags.swarm = flags.mode == "heartbeats" ? 10000 : 1000;
  if (flags.mode == "heartbeats" && !app.count("--rates"))
    flags.rates = "10000";
  if (flags.mode == "heartbeats" && !app.count("--past-saturation")) {
    flags.past_saturation = 0;
  }
  if (flags.mode == "heartbeats" && !app.count("--step-seconds")) {
    flags.step_seconds = 15;
  }
  if (flags.short_form) {
    if (!app.count("--agents")) flags.agents = 2;
    if (!app.count("--consumers")) flags.consumers = 2;
    if (!app.count("--rates")) flags.rates = "100,300";
    if (!app.count("--past-saturation")) flags.past_saturation = 0;
    if (!app.count("--step-seconds")) flags.step_seconds = 1.5;
    if (!app.count("--drain-seconds")) flags.drain_seconds = 3;
    if (!app.count("--swarm")) flags.swarm = std::min(flags.swarm, 50);
    if (!app.count("--queued-jobs")) flags.queued_jobs = 200;
    if (!app.count("--blocks-seconds")) flags.blocks_seconds = 0.3;
    if (!app.count("--budget-seconds")) flags.budget_seconds = 12;
  }
  if (flags.trace.empty()) flags.trace = lg::DefaultTracePath();

  std::string pattern = flags.tmp_dir + "/computenet-loadgen-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = pattern;
  // Removed on every way out (unless --keep), failures included.
  struct RemoveDir {
    std::string path;
    bool keep;
    ~RemoveDir() {
      if (keep) return;
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } remove_dir{dir, flags.keep};
  std::printf("work directory (broker database): %s\n", dir.c_str());
  json out;
  out["mode"] = flags.mode;
  out["short"] = flags.short_form;
  out["cores"] = std::thread::hardware_concurrency();
  int rc = 0;

  if (flags.mode == "slurm") {
    rc = RunSlurmMode(flags, dir, out);
  } else {
    // The broker (a child) holds one descriptor per swarm member.
    RaiseFileLimit(flags.swarm + 4096);
    auto mix = lg::LoadTraceMix(flags.trace, 3600, 100'000);
    if (!mix.ok()) {
      std::fprintf(stderr, "loadgen: trace: %s\n",
                   mix.status().ToString().c_str());
      return 1;
    }
    std::printf(
        "trace: %s: %zu GPU jobs (%zu fractional), %zu CPU-only skipped; "
        "%zu nodes\n",
        mix->pod_path.c_str(), mix->jobs.size(), mix->fractional,
        mix->cpu_only_pods, mix->nodes.size());

    std::printf("building blocks (%.1f s each, this machine, now): ",
                flags.blocks_seconds);
    const auto blocks = lg::MeasureBuildingBlocks(dir, flags.blocks_seconds);
    std::printf(
        "SQLite WAL FULL 1000 rows/txn %.0f rows/s, 1 row/txn %.0f "
        "commits/s; Ed25519 verify %.0f/s, sign %.0f/s per core\n",
        blocks.sqlite_batched_rows_per_s, blocks.sqlite_single_commits_per_s,
        blocks.ed25519_verify_per_s, blocks.ed25519_sign_per_s);
    out["building_blocks"] = {
        {"sqlite_full_1000_per_txn_rows_per_s",
         blocks.sqlite_batched_rows_per_s},
        {"sqlite_full_1_per_txn_commits_per_s",
         blocks.sqlite_single_commits_per_s},
        {"ed25519_verify_per_s_per_core", blocks.ed25519_verify_per_s},
        {"ed25519_sign_per_s_per_core", blocks.ed25519_sign_per_s}};

    lg::ClusterOptions options;
    options.work_dir = dir;
    options.broker_binary = flags.broker;
    options.broker_log_level = flags.broker_log_level;
    options.agents = lg::DealProviders(*mix, flags.agents, "openb", "default");
    options.process_executor = flags.executor == "process";
    options.consumers = flags.consumers;
    options.unfunded_consumers = flags.queued_jobs > 0 ? 4 : 0;
    options.swarm = flags.swarm;
    options.swarm_threads = flags.swarm_threads;
    options.swarm_connect_only = connect_only;
    auto cluster = lg::Cluster::Create(options);
    if (!cluster.ok()) {
      std::fprintf(stderr, "loadgen: %s\n",
                   cluster.status().ToString().c_str());
      return 1;
    }
    lg::Cluster& c = **cluster;
    std::printf(
        "keys for %d agents, %d consumers, %d swarm providers: %.2f s; "
        "bulk enrolment + top-ups: %.2f s; broker pid %d at %s\n",
        flags.agents, flags.consumers, flags.swarm, c.keygen_s(), c.enroll_s(),
        c.broker().pid(), c.broker().endpoint().c_str());
    // Broker memory before anything registers, with the agents' nodes
    // (many nodes per provider), then with the swarm (one node and one
    // connection per provider).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto rss_empty = c.broker().Sample();
    auto t0 = std::chrono::steady_clock::now();
    cn::Status started = c.StartAgents(60'000);
    const double agents_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto rss_agents = c.broker().Sample();
    t0 = std::chrono::steady_clock::now();
    if (started.ok()) {
      cn::Status swarm_started = c.StartSwarm(90'000);
      // A swarm that is not all registered in time is a result, not a
      // reason to stop: the steps show what the broker does with it.
      if (!swarm_started.ok()) {
        std::printf("WARNING: %s; going on\n",
                    swarm_started.ToString().c_str());
      }
    }
    const double swarm_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (!started.ok() || !c.broker().Alive()) {
      std::fprintf(stderr, "loadgen: %s\n%s", started.ToString().c_str(),
                   c.broker().LogTail(10).c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto rss_swarm = c.broker().Sample();
    double per_node = 0;
    double per_swarm_provider = 0;
    if (rss_empty.ok() && rss_agents.ok() && rss_swarm.ok()) {
      per_node = static_cast<double>(rss_agents->rss_kib - rss_empty->rss_kib) *
                 1024.0 /
                 static_cast<double>(std::max<size_t>(1, c.agent_nodes()));
      std::printf(
          "%d agents registered %zu nodes in %.1f s; broker RSS %.1f -> "
          "%.1f MiB: %.0f B per tracked node (target < 2048)\n",
          flags.agents, c.agent_nodes(), agents_s,
          static_cast<double>(rss_empty->rss_kib) / 1024,
          static_cast<double>(rss_agents->rss_kib) / 1024, per_node);
      if (flags.swarm > 0) {
        per_swarm_provider =
            static_cast<double>(rss_swarm->rss_kib - rss_agents->rss_kib) *
            1024.0 / flags.swarm;
        std::printf(
            "%d swarm providers (1 node, 1 CURVE connection each) %s in "
            "%.1f s; broker RSS -> %.1f MiB: %.0f B per provider\n",
            flags.swarm, connect_only ? "connected" : "registered", swarm_s,
            static_cast<double>(rss_swarm->rss_kib) / 1024, per_swarm_provider);
      }
    }
    out["registration"] = {
        {"agents", flags.agents},
        {"agent_nodes", c.agent_nodes()},
        {"agents_seconds", agents_s},
        {"rss_bytes_per_tracked_node", per_node},
        {"swarm", flags.swarm},
        {"swarm_seconds", swarm_s},
        {"rss_bytes_per_swarm_provider", per_swarm_provider}};

    lg::JobTracker tracker;
    lg::DriverOptions driver_options;
    driver_options.endpoint = c.broker().endpoint();
    driver_options.broker_public_key = c.broker_identity().curve().public_z85;
    driver_options.consumers = c.consumers();
    driver_options.pipelined = flags.pipelined;
    // A random draw from the trace's GPU pods, fixed by the seed.
    std::vector<cn::v1::JobSpec> draw;
    {
      std::mt19937_64 random(flags.seed);
      for (int i = 0; i < 4096; ++i)
        draw.push_back(mix->jobs[random() % mix->jobs.size()]);
    }
    lg::LoadDriver driver(driver_options, draw, &tracker);
    cn::Status connected = driver.Start();
    if (!connected.ok()) {
      std::fprintf(stderr, "loadgen: %s\n", connected.ToString().c_str());
      return 1;
    }
    std::printf(
        "\n%s: %d agents (%s executor), %d consumers (%s), %d swarm "
        "providers; %.1f s steps; latencies from each job's due time\n",
        flags.mode.c_str(), flags.agents, flags.executor.c_str(),
        flags.consumers,
        flags.pipelined ? "pipelined raw SUBMIT_JOB" : "consumer::Client",
        flags.swarm, flags.step_seconds);
    PrintHeader();
    std::vector<StepResult> steps;
    int step = 0;
    int saturated_steps = 0;
    for (double rate : ParseRates(flags.rates)) {
      if (elapsed() + flags.step_seconds > flags.budget_seconds) {
        std::printf("(wall budget of %.0f s reached: no more steps)\n",
                    flags.budget_seconds);
        break;
      }
      StepResult r = RunStep(step++, rate, flags, c, driver, tracker);
      PrintRow(r);
      steps.push_back(r);
      if (!c.broker().Alive()) break;
      if (r.saturated && saturated_steps++ >= flags.past_saturation) break;
    }
    std::printf(
        "columns: offered/accepted/placed/cleared/settled per s in the "
        "window; p50/p99/p999 submit->placed; hb/s swarm heartbeats "
        "sent; lost = false losses; cpu/1k = broker CPU s per 1,000 "
        "jobs cleared; brk%%/loop/zmq = broker CPU (all, core loop, "
        "ZMQ I/O thread) in %% of one core; lg%% = this load generator; "
        "fsync/s, /job = broker fdatasync+fsync calls (perf stat) per s "
        "and per job cleared; iow%% = machine iowait\n");

    // Memory per queued job: jobs that wait for funds stay QUEUED.
    double per_queued = 0;
    if (flags.queued_jobs > 0 && c.broker().Alive()) {
      const auto before = c.broker().Sample();
      const uint64_t queued = SubmitQueuedJobs(c, draw[0], flags.queued_jobs);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const auto after = c.broker().Sample();
      if (before.ok() && after.ok() && queued > 0) {
        per_queued = static_cast<double>(after->rss_kib - before->rss_kib) *
                     1024.0 / static_cast<double>(queued);
        std::printf(
            "queued (waiting for funds): %llu jobs; broker RSS %.1f -> "
            "%.1f MiB: %.0f B per queued job\n",
            static_cast<unsigned long long>(queued),
            static_cast<double>(before->rss_kib) / 1024,
            static_cast<double>(after->rss_kib) / 1024, per_queued);
      }
      out["rss_bytes_per_queued_job"] = per_queued;
    }

    // Summary against the building blocks.
    const StepResult* best = nullptr;
    for (const auto& r : steps) {
      if (best == nullptr || r.cleared_per_s > best->cleared_per_s) best = &r;
    }
    double peak_accepted = 0;
    double peak_settled = 0;
    for (const auto& r : steps) {
      peak_accepted = std::max(peak_accepted, r.accepted_per_s);
      peak_settled = std::max(peak_settled, r.settled_per_s);
    }
    if (best != nullptr) {
      std::printf("\nratios to the building blocks measured above:\n");
      std::printf(
          "  peak accepted %.0f/s = %.3f of SQLite FULL group commit "
          "(%.0f rows/s), %.2f of one-row FULL commits (%.0f/s); "
          "target 20,000/s\n",
          peak_accepted,
          peak_accepted / std::max(1.0, blocks.sqlite_batched_rows_per_s),
          blocks.sqlite_batched_rows_per_s,
          peak_accepted / std::max(1.0, blocks.sqlite_single_commits_per_s),
          blocks.sqlite_single_commits_per_s);
      std::printf(
          "  peak usage settled %.0f/s = %.3f of Ed25519 verify on one "
          "core (%.0f/s); target >= 0.8\n",
          peak_settled,
          peak_settled / std::max(1.0, blocks.ed25519_verify_per_s),
          blocks.ed25519_verify_per_s);
      std::printf(
          "  best cleared %.0f/s at %.0f offered: broker %.0f%% of a core "
          "(loop thread %.0f%%), %.3f CPU s per 1,000 jobs, %.0f "
          "voluntary context switches/s\n",
          best->cleared_per_s, best->offered_rate, best->broker_cpu_pct,
          best->loop_pct, best->cpu_s_per_1000, best->broker_voluntary_per_s);
    }
    out["ratios"] = {
        {"peak_accepted_per_s", peak_accepted},
        {"peak_settled_per_s", peak_settled},
        {"accepted_over_sqlite_group_commit",
         peak_accepted / std::max(1.0, blocks.sqlite_batched_rows_per_s)},
        {"accepted_over_sqlite_single_commit",
         peak_accepted / std::max(1.0, blocks.sqlite_single_commits_per_s)},
        {"settled_over_ed25519_verify",
         peak_settled / std::max(1.0, blocks.ed25519_verify_per_s)}};
    json step_json = json::array();
    for (const auto& r : steps) step_json.push_back(ToJson(r));
    out["steps"] = step_json;
    if (c.has_swarm()) {
      const auto s = c.swarm_stats();
      std::printf(
          "swarm: %llu members, %llu registered at the end, %llu "
          "heartbeats sent, %llu received from the broker, %llu false "
          "losses, %llu rate-limited, %llu blocked sends, %llu other "
          "errors\n",
          static_cast<unsigned long long>(s.members),
          static_cast<unsigned long long>(s.registered),
          static_cast<unsigned long long>(s.heartbeats_sent),
          static_cast<unsigned long long>(s.heartbeats_received),
          static_cast<unsigned long long>(s.false_losses),
          static_cast<unsigned long long>(s.rate_limited),
          static_cast<unsigned long long>(s.send_blocked),
          static_cast<unsigned long long>(s.other_errors));
      out["swarm"] = {{"members", s.members},
                      {"registered", s.registered},
                      {"heartbeats_sent", s.heartbeats_sent},
                      {"heartbeats_received", s.heartbeats_received},
                      {"false_losses", s.false_losses},
                      {"blocked_sends", s.send_blocked}};
    }
    auto refusals = tracker.refusals();
    for (const auto& [code, count] : refusals) {
      std::printf("refused submissions: %s x %llu\n",
                  std::string(cn::StatusCodeName(code)).c_str(),
                  static_cast<unsigned long long>(count));
    }
    driver.Stop();
    const size_t lost_lines = c.broker().CountInLog("lost: silent");
    c.Stop();
    std::printf(
        "broker log: %zu 'provider ... lost' lines (false losses as the "
        "broker saw them)\n",
        lost_lines);
    out["broker_lost_lines"] = lost_lines;

    if (!flags.csv_path.empty()) {
      std::ofstream csv(flags.csv_path);
      csv << "offered_per_s,accepted_per_s,placed_per_s,cleared_per_s,"
             "settled_per_s,placed_p50_ms,placed_p99_ms,placed_p999_ms,"
             "heartbeats_per_s,false_losses,cpu_s_per_1000,broker_cpu_pct,"
             "loop_pct,rss_kib,saturated\n";
      for (const auto& r : steps) {
        csv << r.offered_rate << "," << r.accepted_per_s << ","
            << r.placed_per_s << "," << r.cleared_per_s << ","
            << r.settled_per_s << "," << r.placed_p50_ms << ","
            << r.placed_p99_ms << "," << r.placed_p999_ms << ","
            << r.heartbeats_per_s << "," << r.false_losses << ","
            << r.cpu_s_per_1000 << "," << r.broker_cpu_pct << "," << r.loop_pct
            << "," << r.rss_kib << "," << (r.saturated ? 1 : 0) << "\n";
      }
    }
    uint64_t cleared = 0;
    for (const auto& r : steps) cleared += r.cleared;
    if (cleared == 0) {
      std::fprintf(stderr, "loadgen: FAIL: no job was cleared end to end\n");
      rc = 1;
    }
    if (flags.mode == "heartbeats" && flags.swarm > 0 &&
        c.swarm_stats().heartbeats_sent == 0) {
      std::fprintf(stderr, "loadgen: FAIL: no heartbeat was sent\n");
      rc = 1;
    }
  }
  if (!flags.json_path.empty()) {
    std::ofstream(flags.json_path) << out.dump(2) << "\n";
  }
  if (flags.keep) std::printf("work directory kept: %s\n", dir.c_str());
  std::printf("wall time %.1f s\n", elapsed());
  return rc;
}
