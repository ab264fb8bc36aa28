// Sandbox start overhead per job: one job of `true` at a time through a real
// ProcessExecutor (supervisor fork, exec, exit record, reap), first with no
// sandbox, then under bubblewrap with the site defaults (namespaces, binds,
// and cgroups where writable). Start() -> kFinished seen, woken by the
// executor's pidfd set. The difference of the medians is what the sandbox
// adds to each job.
//
// Usage: sandbox_bench [--short] [jobs=50]. Prints p50/p99/max in ms for
// both; exits 1 if it measured nothing, 77 where bwrap cannot run here.
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "computenet/provider/process_executor.h"
#include "computenet/provider/sandbox.h"

namespace {

namespace cn = computenet;
namespace provider = computenet::provider;

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index =
      static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

void Print(const char* what, const std::vector<double>& ms) {
  std::printf("%-22s n=%zu p50=%.2f p99=%.2f max=%.2f ms\n", what, ms.size(),
              Percentile(ms, 0.5), Percentile(ms, 0.99), Percentile(ms, 1.0));
}

// Runs `jobs` jobs of `true` one at a time; their Start -> end times in ms.
std::vector<double> Measure(const std::string& dir,
                            std::shared_ptr<const provider::Sandbox> sandbox,
                            int jobs) {
  provider::ProcessExecutorOptions options;
  options.work_dir = dir + "/work";
  options.state_dir = dir + "/state";
  options.sandbox = std::move(sandbox);
  provider::ProcessExecutor executor(std::move(options));
  std::vector<double> out;
  for (int i = 0; i < jobs; ++i) {
    provider::ExecutionRequest request;
    request.job_id = "job-" + std::to_string(i);
    request.spec.add_command("true");
    request.spec.set_cards_per_node(1);
    request.spec.set_nodes(1);
    request.assignments.emplace_back();
    request.assignments.back().set_node("n1");
    request.assignments.back().add_device_indices(0);
    const auto begin = std::chrono::steady_clock::now();
    cn::Status started = executor.Start(request);
    if (!started.ok()) {
      std::fprintf(stderr, "start: %s\n", started.ToString().c_str());
      return {};
    }
    bool finished = false;
    while (!finished) {
      pollfd item{executor.WakeFd(), POLLIN, 0};
      if (item.fd >= 0) ::poll(&item, 1, 100);
      for (const auto& event : executor.Poll()) {
        if (event.kind != provider::ExecutionEvent::Kind::kFinished) continue;
        if (event.final_state != cn::v1::JOB_STATE_SUCCEEDED) {
          std::fprintf(stderr, "job %s: %s\n", event.job_id.c_str(),
                       event.message.c_str());
          return {};
        }
        finished = true;
      }
    }
    out.push_back(std::chrono::duration<double, std::milli>(
                      std::chrono::steady_clock::now() - begin)
                      .count());
    std::filesystem::remove_all(dir + "/work/" + request.job_id);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 50;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) {
      jobs = 5;
    } else {
      jobs = std::max(1, std::atoi(argv[i]));
    }
  }
  char pattern[] = "/tmp/computenet-sandbox-bench-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  if (made == nullptr) return 1;
  const std::string dir = made;

  provider::SandboxOptions bwrap;
  bwrap.mode = provider::SandboxOptions::Mode::kBwrap;
  auto sandbox =
      provider::Sandbox::Create(bwrap, dir + "/work", dir + "/state");
  if (!sandbox.ok()) {
    std::fprintf(stderr, "skipped: %s\n", sandbox.status().ToString().c_str());
    std::filesystem::remove_all(dir);
    return 77;
  }
  std::printf("jobs of `true`, one at a time, %d each; cgroups %s\n", jobs,
              (*sandbox)->cgroup_kind().c_str());
  const auto plain = Measure(dir + "/plain", nullptr, jobs);
  const auto fenced = Measure(dir + "/bwrap", *sandbox, jobs);
  std::filesystem::remove_all(dir);
  Print("no sandbox", plain);
  Print("bwrap sandbox", fenced);
  if (plain.empty() || fenced.empty()) return 1;
  std::printf("overhead per job       p50=%.2f ms\n",
              Percentile(fenced, 0.5) - Percentile(plain, 0.5));
  return 0;
}
