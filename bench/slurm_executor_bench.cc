// Measures the SlurmExecutor against the private Slurm of
// tests/slurm/slurm-local.sh (started if needed):
//   1. sbatch -> RUNNING as the executor sees it (Start() until Poll()
//      returns kStarted), one job at a time, at two poll intervals;
//   2. the cost of one tracking round (squeue + parsing) with 1 and with
//      many tracked jobs, and of Poll() on the agent's thread;
//   3. throughput: N trivial jobs submitted at once until all are reported
//      finished.
// Usage: slurm_executor_bench [jobs=100] [--short]. Prints medians and p90s.
// --short (the test command's form): 3 latency samples at a 100 ms poll, 10
// jobs, 5 idle rounds. Exits 77 if Slurm cannot run on this machine, 1 if
// an event never came (a run that measured nothing fails).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "computenet/provider/slurm_executor.h"
#include "computenet/provider/subprocess.h"

namespace {

using computenet::provider::ExecutionEvent;
using computenet::provider::ExecutionRequest;
using computenet::provider::SlurmExecutor;
using computenet::provider::SlurmExecutorOptions;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

ExecutionRequest Request(const std::string& job_id, const std::string& shell) {
  ExecutionRequest request;
  request.job_id = job_id;
  request.model = "A800";
  request.spec.add_command("/bin/sh");
  request.spec.add_command("-c");
  request.spec.add_command(shell);
  request.spec.set_cards_per_node(1);
  request.spec.set_max_duration_s(600);
  computenet::v1::NodeAssignment assignment;
  assignment.set_node("localhost");
  assignment.add_device_indices(0);
  request.assignments.push_back(assignment);
  return request;
}

std::unique_ptr<SlurmExecutor> Make(const std::string& conf, const std::string& owner,
                                    const std::string& work, int poll_ms) {
  SlurmExecutorOptions options;
  options.owner = owner;
  options.work_dir = work;
  options.commands.slurm_conf = conf;
  options.commands.timeout_ms = 10'000;
  options.poll_interval_ms = poll_ms;
  auto executor = SlurmExecutor::Create(std::move(options));
  if (!executor.ok()) {
    std::fprintf(stderr, "%s\n", executor.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*executor);
}

// Polls every millisecond until the event arrives (or arrived earlier, in
// the same batch as another); returns when it was seen. Exits 1 if it does
// not come within a minute.
Clock::time_point WaitFor(SlurmExecutor& executor, const std::string& job_id,
                          ExecutionEvent::Kind kind) {
  static std::map<std::pair<std::string, ExecutionEvent::Kind>, Clock::time_point> seen;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (true) {
    const auto now = Clock::now();
    for (const auto& event : executor.Poll()) seen[{event.job_id, event.kind}] = now;
    auto it = seen.find({job_id, kind});
    if (it != seen.end()) return it->second;
    if (now > deadline) {
      std::fprintf(stderr, "slurm_executor_bench: no %s event for %s in 60 s\n",
                   kind == ExecutionEvent::Kind::kStarted ? "started" : "finished",
                   job_id.c_str());
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int jobs = 100;
  int latency_samples = 10;
  std::vector<int> poll_intervals = {100, 500};
  size_t idle_samples = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--short") {
      jobs = 10;
      latency_samples = 3;
      poll_intervals = {100};
      idle_samples = 5;
    } else if (!arg.empty() && arg[0] != '-') {
      jobs = std::max(1, std::atoi(arg.c_str()));
    } else {
      std::fprintf(stderr, "usage: slurm_executor_bench [jobs] [--short]\n");
      return 2;
    }
  }
  computenet::provider::SubprocessOptions start;
  start.argv = {COMPUTENET_SLURM_LOCAL, "start"};
  start.timeout_ms = 600'000;
  auto started = computenet::provider::RunSubprocess(start);
  if (!started.ok() || started->exit_code != 0) {
    std::fprintf(stderr, "slurm-local.sh start failed: %s\n",
                 started.ok() ? started->err.c_str() : started.status().ToString().c_str());
    return started.ok() && started->exit_code == 77 ? 77 : 1;
  }
  std::string conf = started->out;
  while (!conf.empty() && conf.back() == '\n') conf.pop_back();
  conf = conf.substr(conf.rfind('\n') == std::string::npos ? 0 : conf.rfind('\n') + 1);
  const std::string work = std::filesystem::temp_directory_path() /
                           ("cn-slurm-bench-" + std::to_string(::getpid()));
  const std::string owner = "bench-" + std::to_string(::getpid());
  std::printf("Slurm: %s\n", conf.c_str());

  // 1. Start -> kStarted latency, one job at a time.
  for (int poll_ms : poll_intervals) {
    auto executor = Make(conf, owner + "-lat" + std::to_string(poll_ms), work, poll_ms);
    std::vector<double> latencies;
    for (int i = 0; i < latency_samples; ++i) {
      const std::string id = "lat-" + std::to_string(poll_ms) + "-" + std::to_string(i);
      const auto t0 = Clock::now();
      if (!executor->Start(Request(id, "true")).ok()) return 1;
      const auto t1 = WaitFor(*executor, id, ExecutionEvent::Kind::kStarted);
      latencies.push_back(Ms(t1 - t0));
      WaitFor(*executor, id, ExecutionEvent::Kind::kFinished);
    }
    std::printf("Start -> kStarted, poll %3d ms: median %.0f ms, p90 %.0f ms, max %.0f ms (n=%zu)\n",
                poll_ms, Percentile(latencies, 0.5), Percentile(latencies, 0.9),
                *std::max_element(latencies.begin(), latencies.end()), latencies.size());
  }

  // 2 + 3. Many jobs at once: throughput, round cost, Poll() cost.
  auto executor = Make(conf, owner + "-tp", work, 100);
  const auto t0 = Clock::now();
  for (int i = 0; i < jobs; ++i) {
    if (!executor->Start(Request("tp-" + std::to_string(i), "true")).ok()) return 1;
  }
  const auto t_queued = Clock::now();
  std::set<std::string> done;
  std::vector<double> poll_ns;
  std::vector<double> round_ms;
  uint64_t last_polls = 0;
  const auto throughput_deadline = t0 + std::chrono::seconds(120);
  while (static_cast<int>(done.size()) < jobs) {
    if (Clock::now() > throughput_deadline) {
      std::fprintf(stderr, "slurm_executor_bench: %zu of %d jobs finished in "
                           "120 s\n", done.size(), jobs);
      return 1;
    }
    const auto p0 = Clock::now();
    auto events = executor->Poll();
    poll_ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - p0).count());
    for (const auto& event : events) {
      if (event.kind == ExecutionEvent::Kind::kFinished) done.insert(event.job_id);
    }
    auto stats = executor->stats();
    if (stats.polls != last_polls) {
      round_ms.push_back(static_cast<double>(stats.last_poll_ms));
      last_polls = stats.polls;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const auto t_done = Clock::now();
  auto stats = executor->stats();
  std::printf("%d trivial jobs: queued in %.1f ms (Start() %.3f ms each), all finished in %.2f s: %.1f jobs/s\n",
              jobs, Ms(t_queued - t0), Ms(t_queued - t0) / jobs, Ms(t_done - t0) / 1000,
              jobs / (Ms(t_done - t0) / 1000));
  std::printf("tracking round (squeue + scontrol for jobs that ended): median %.0f ms, p90 %.0f ms over %zu rounds\n",
              Percentile(round_ms, 0.5), Percentile(round_ms, 0.9), round_ms.size());
  std::printf("Slurm commands: %llu, %.1f ms each on average, %llu failed\n",
              static_cast<unsigned long long>(stats.commands),
              static_cast<double>(stats.command_ms) / static_cast<double>(std::max<uint64_t>(stats.commands, 1)),
              static_cast<unsigned long long>(stats.failed_commands));
  std::printf("Poll() on the caller's thread: median %.0f ns, p99 %.0f ns\n",
              Percentile(poll_ns, 0.5), Percentile(poll_ns, 0.99));

  // One idle round with a single tracked job: the steady-state poll cost.
  auto idle = Make(conf, owner + "-idle", work, 100);
  if (!idle->Start(Request("idle-0", "sleep 30")).ok()) return 1;
  WaitFor(*idle, "idle-0", ExecutionEvent::Kind::kStarted);
  std::vector<double> idle_rounds;
  uint64_t polls = idle->stats().polls;
  const auto idle_deadline = Clock::now() + std::chrono::seconds(60);
  while (idle_rounds.size() < idle_samples) {
    if (Clock::now() > idle_deadline) {
      std::fprintf(stderr, "slurm_executor_bench: no tracking round in 60 s\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto s = idle->stats();
    if (s.polls != polls) {
      idle_rounds.push_back(static_cast<double>(s.last_poll_ms));
      polls = s.polls;
    }
  }
  std::printf("steady round with 1 running job (one squeue): median %.0f ms, p90 %.0f ms\n",
              Percentile(idle_rounds, 0.5), Percentile(idle_rounds, 0.9));
  (void)idle->Cancel("idle-0", 0);
  WaitFor(*idle, "idle-0", ExecutionEvent::Kind::kFinished);
  std::error_code ignored;
  std::filesystem::remove_all(work, ignored);
  return 0;
}
