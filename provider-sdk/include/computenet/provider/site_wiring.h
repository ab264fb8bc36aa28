// Site wiring: turns a SiteConfig into the parts a site agent runs with:
// the inventory it registers (from the config, NVML discovery, or Slurm's
// nodes) and the executor that runs its placements (child processes or
// Slurm). computenet-provider is these two calls plus ProviderAgent.
//
// Thread safety: stateless functions; call them before the agent starts.
#ifndef COMPUTENET_PROVIDER_SITE_WIRING_H_
#define COMPUTENET_PROVIDER_SITE_WIRING_H_

#include <memory>
#include <string>

#include "computenet/common/status.h"
#include "computenet/provider/executor.h"
#include "computenet/provider/site_config.h"

namespace computenet::provider {

// Fills config->registration.nodes from config->inventory:
//   "config": unchanged.
//   "nvml":   one node for this machine (name/fabric/cores/memory from the
//             optional [[nodes]] entry, else hostname and the OS's counts)
//             with the GPUs NVML finds. If NVML is unavailable and that entry
//             lists accelerators, they are used instead (logged); otherwise
//             FAILED_PRECONDITION with NVML's reason.
//   "slurm":  Slurm's usable GPU nodes in [slurm] shareable_partitions.
//             UNAVAILABLE if Slurm cannot be queried.
// Returns a one-line description of what was registered, for the log.
StatusOr<std::string> ResolveSiteInventory(SiteConfig* config);

// Builds config->executor: a ProcessExecutor under work_dir, or a
// SlurmExecutor owned by the site name (which re-adopts the site's jobs
// still in Slurm). FAILED_PRECONDITION if work_dir cannot be created or
// written; otherwise errors as SlurmExecutor::Create.
StatusOr<std::unique_ptr<Executor>> MakeSiteExecutor(const SiteConfig& config);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SITE_WIRING_H_
