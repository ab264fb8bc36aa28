// Test support for the real, private Slurm that tests/slurm/slurm-local.sh
// runs on 127.0.0.1: start it on demand (cheap when it already runs), skip
// the test ONLY if the script says Slurm cannot run on this machine (exit
// 77), and query it with the SDK's own parsers.
#ifndef COMPUTENET_TESTS_SUPPORT_LOCAL_SLURM_H_
#define COMPUTENET_TESTS_SUPPORT_LOCAL_SLURM_H_

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "computenet/provider/slurm_command.h"
#include "computenet/provider/slurm_parse.h"
#include "computenet/provider/subprocess.h"

namespace computenet::testing {

struct LocalSlurm {
  enum class Outcome { kRunning, kSkip, kFailed };
  Outcome outcome = Outcome::kFailed;
  std::string conf;     // SLURM_CONF, when running
  std::string message;  // why it skipped or failed
  std::string jobcomp_file;

  provider::SlurmCommandOptions Commands() const {
    provider::SlurmCommandOptions options;
    options.slurm_conf = conf;
    options.timeout_ms = 10'000;
    return options;
  }
};

// Runs `slurm-local.sh start` and sets SLURM_CONF for this process.
inline LocalSlurm StartLocalSlurm() {
  LocalSlurm slurm;
  provider::SubprocessOptions options;
  options.argv = {COMPUTENET_SLURM_LOCAL, "start"};
  options.timeout_ms = 600'000;  // a first start may install packages
  auto result = provider::RunSubprocess(options);
  if (!result.ok()) {
    slurm.message = result.status().ToString();
    return slurm;
  }
  std::string err = result->err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  if (result->exit_code == 77) {
    slurm.outcome = LocalSlurm::Outcome::kSkip;
    slurm.message = err;
    return slurm;
  }
  if (result->exit_code != 0) {
    slurm.message = "slurm-local.sh start exited with " +
                    std::to_string(result->exit_code) + ":\n" + err;
    return slurm;
  }
  std::string out = result->out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  slurm.conf = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  slurm.jobcomp_file = (std::filesystem::path(slurm.conf).parent_path().parent_path() /
                        "log" / "jobcomp.txt")
                           .string();
  ::setenv("SLURM_CONF", slurm.conf.c_str(), 1);
  slurm.outcome = LocalSlurm::Outcome::kRunning;
  return slurm;
}

// A tag no other test (or earlier run) uses, so tests running in parallel
// on the one Slurm never see each other's jobs.
inline std::string UniqueSlurmOwner(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return prefix + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count() %
                        1'000'000'000) +
         "-" + std::to_string(counter++);
}

// This user's Slurm jobs whose comment carries `owner`.
inline std::vector<provider::SqueueRow> OwnedSlurmJobs(const LocalSlurm& slurm,
                                                       const std::string& owner) {
  std::vector<provider::SqueueRow> rows;
  auto result = provider::RunSlurmCommand(
      slurm.Commands(), "squeue",
      {"--noheader", "--me", "--states=all",
       "--format=" + std::string(provider::kSqueueFormat)});
  if (!result.ok() || result->exit_code != 0) return rows;
  for (auto& row : provider::ParseSqueue(result->out)) {
    auto tag = provider::DecodeJobTag(row.comment);
    if (tag && tag->owner == owner) rows.push_back(std::move(row));
  }
  return rows;
}

// Cancels every job of `owner` still queued or running (test clean-up).
inline void CancelOwnedSlurmJobs(const LocalSlurm& slurm, const std::string& owner) {
  for (const auto& row : OwnedSlurmJobs(slurm, owner)) {
    if (provider::IsTerminal(provider::ParseSlurmState(row.state))) continue;
    (void)provider::RunSlurmCommand(slurm.Commands(), "scancel",
                                    {"--signal=KILL", "--full", row.job_id});
    (void)provider::RunSlurmCommand(slurm.Commands(), "scancel", {row.job_id});
  }
}

// `scontrol show job` of one Slurm job, parsed; empty if unknown.
inline provider::SlurmRecord ShowSlurmJob(const LocalSlurm& slurm,
                                          const std::string& slurm_id) {
  auto result = provider::RunSlurmCommand(slurm.Commands(), "scontrol",
                                          {"show", "job", slurm_id});
  if (!result.ok() || result->exit_code != 0) return {};
  for (auto& record : provider::ParseScontrolRecords(result->out)) {
    if (record.Get("JobId") == slurm_id) return record;
  }
  return {};
}

}  // namespace computenet::testing

#endif  // COMPUTENET_TESTS_SUPPORT_LOCAL_SLURM_H_
