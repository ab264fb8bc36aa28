// Slurm side by side (issue 10, item 7): the same stream of trivial jobs,
// in one run, through the real private Slurm of tests/slurm/slurm-local.sh
// (`sbatch --wrap true`, K submitters in parallel) and through ComputeNet
// (consumer SDK -> broker child process -> ProviderAgent ->
// ProcessExecutor running `true`, K consumers in parallel): jobs cleared
// per second and submit -> start for both, and their ratio.
//
// Slurm's start time is its job's output file being created (slurmstepd
// opens it as the job starts; `true` never writes to it), its completion
// the job's line appearing in the jobcomp file. ComputeNet's start is the
// RUNNING event reaching the consumer, its completion the SUCCEEDED event
// with the usage charged.
//
// Thread safety: RunSideBySide runs its own threads; call it from one.
#ifndef COMPUTENET_BENCH_LOADGEN_SLURM_SIDE_H_
#define COMPUTENET_BENCH_LOADGEN_SLURM_SIDE_H_

#include <string>

#include "computenet/common/status.h"

namespace computenet::loadgen {

struct SideBySideOptions {
  std::string slurm_local;  // tests/slurm/slurm-local.sh
  std::string work_dir;
  std::string broker_binary;
  std::string broker_log_level = "warn";
  int jobs = 300;
  int submitters = 8;
  int timeout_s = 60;  // per system
};

struct SystemResult {
  int jobs = 0;
  int submitted = 0;
  int cleared = 0;
  double submit_seconds = 0;  // first submit -> last submit answered
  double clear_seconds = 0;   // first submit -> last job cleared
  double submit_per_s = 0;
  double cleared_per_s = 0;
  double start_p50_ms = 0;  // submit -> start
  double start_p99_ms = 0;
  int start_samples = 0;
};

struct SideBySide {
  bool slurm_skipped = false;
  std::string skip_reason;
  std::string slurm_conf;
  SystemResult slurm;
  SystemResult computenet;
};

StatusOr<SideBySide> RunSideBySide(const SideBySideOptions& options);

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_SLURM_SIDE_H_
