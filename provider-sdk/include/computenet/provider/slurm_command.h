// RunSlurmCommand: how the provider SDK invokes one of Slurm's client
// commands (sbatch, squeue, scontrol, scancel, sacct): without a shell,
// bounded by a timeout, from the site's chosen directory and SLURM_CONF, and
// with SLURM_TIME_FORMAT=%s so that every time comes back as epoch seconds.
//
// Thread safety: stateless; safe from any thread.
#ifndef COMPUTENET_PROVIDER_SLURM_COMMAND_H_
#define COMPUTENET_PROVIDER_SLURM_COMMAND_H_

#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/provider/subprocess.h"

namespace computenet::provider {

struct SlurmCommandOptions {
  // Directory holding the commands (e.g. "/opt/slurm/bin"); empty = PATH.
  std::string bin_dir;
  // SLURM_CONF for the commands; empty = inherited from this process.
  std::string slurm_conf;
  // Each command is killed after this long. Default 3 s: the agent's loop
  // waits for it, and a controller that slow is treated as unreachable.
  int timeout_ms = 3000;
};

// Runs `command args...` to completion and returns its result, whatever its
// exit code (callers read err for Slurm's reason). Errors as RunSubprocess:
// NOT_FOUND if the command is not installed, DEADLINE_EXCEEDED on timeout.
StatusOr<SubprocessResult> RunSlurmCommand(const SlurmCommandOptions& options,
                                           const std::string& command,
                                           const std::vector<std::string>& args);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SLURM_COMMAND_H_
