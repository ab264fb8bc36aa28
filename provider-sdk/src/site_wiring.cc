#include "computenet/provider/site_wiring.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <thread>

#include "computenet/provider/nvml_inventory.h"
#include "computenet/provider/process_executor.h"
#include "computenet/provider/slurm_executor.h"
#include "computenet/provider/slurm_inventory.h"

namespace computenet::provider {
namespace {

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

std::string Describe(const v1::RegisterProvider& registration) {
  uint32_t cards = 0;
  for (const auto& node : registration.nodes()) {
    for (const auto& accelerator : node.accelerators()) cards += accelerator.count();
  }
  return std::to_string(registration.nodes_size()) + " node(s), " +
         std::to_string(cards) + " card(s)";
}

SlurmCommandOptions Commands(const SlurmSiteConfig& slurm) {
  SlurmCommandOptions commands;
  commands.bin_dir = slurm.bin_dir;
  commands.slurm_conf = slurm.conf;
  commands.timeout_ms = slurm.command_timeout_ms;
  return commands;
}

Status ResolveNvml(SiteConfig* config) {
  auto& registration = config->registration;
  v1::Node configured;
  if (registration.nodes_size() == 1) configured = registration.nodes(0);
  NvmlOptions options;
  options.library_path = config->nvml_library;
  auto inventory = DiscoverNvmlGpus(options);
  if (!inventory.ok()) {
    if (configured.accelerators_size() > 0) {
      spdlog::warn("inventory = nvml but {}; registering the accelerators "
                   "listed in the config instead",
                   inventory.status().message());
      return OkStatus();
    }
    return FailedPreconditionError(
        "inventory = \"nvml\" but " + inventory.status().message() +
        "; list accelerators under [[nodes]] to fall back to them");
  }
  if (inventory->gpus.empty()) {
    return FailedPreconditionError("inventory = \"nvml\" but NVML found no GPU");
  }
  const std::string name = configured.name().empty() ? HostName() : configured.name();
  const std::string fabric =
      configured.fabric_id().empty() ? name : configured.fabric_id();
  v1::Node node = NodeFromGpus(name, fabric, *inventory);
  node.set_cpu_cores(configured.cpu_cores() > 0
                         ? configured.cpu_cores()
                         : std::max(1u, std::thread::hardware_concurrency()));
  if (configured.memory_mib() > 0) {
    node.set_memory_mib(configured.memory_mib());
  } else {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page_size = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page_size > 0) {
      node.set_memory_mib(static_cast<uint64_t>(pages) *
                          static_cast<uint64_t>(page_size) / (1024 * 1024));
    }
  }
  for (const auto& gpu : inventory->gpus) {
    if (!gpu.model_verified) {
      spdlog::warn("GPU {} '{}' is no catalog model; registered under its raw "
                   "name (give it a price under that name, or report it)",
                   gpu.index, gpu.name);
    }
    spdlog::info("GPU {}: {} ({} MiB, {}), NVLink peers {}", gpu.index, gpu.model,
                 gpu.memory_mib, gpu.uuid, gpu.nvlink_peers.size());
  }
  registration.clear_nodes();
  *registration.add_nodes() = std::move(node);
  return OkStatus();
}

}  // namespace

StatusOr<std::string> ResolveSiteInventory(SiteConfig* config) {
  if (config->inventory == "nvml") {
    CN_RETURN_IF_ERROR(ResolveNvml(config));
  } else if (config->inventory == "slurm") {
    SlurmInventoryOptions options;
    options.commands = Commands(config->slurm);
    options.partitions = config->slurm.shareable_partitions;
    options.gres_name = config->slurm.gres_name;
    options.default_model = config->slurm.model;
    options.card_memory_mib = config->slurm.card_memory_mib;
    CN_ASSIGN_OR_RETURN(auto nodes, DiscoverSlurmNodes(options));
    config->registration.clear_nodes();
    for (auto& node : nodes) *config->registration.add_nodes() = std::move(node);
  } else if (config->inventory != "config") {
    return InvalidArgumentError("unknown inventory '" + config->inventory + "'");
  }
  return Describe(config->registration) + " from " + config->inventory;
}

namespace {

// Jobs run in (process) or are staged under (Slurm) the work directory: an
// agent that cannot write there must not start, or every job it accepts
// fails when it starts.
Status CheckWorkDir(const std::string& work_dir) {
  std::error_code error;
  std::filesystem::create_directories(work_dir, error);
  if (error || !std::filesystem::is_directory(work_dir, error)) {
    return FailedPreconditionError("work_dir " + work_dir +
                                   " is not a directory the agent can create" +
                                   (error ? ": " + error.message() : ""));
  }
  if (::access(work_dir.c_str(), W_OK | X_OK) != 0) {
    return FailedPreconditionError("work_dir " + work_dir +
                                   " is not writable by the agent");
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<Executor>> MakeSiteExecutor(const SiteConfig& config) {
  CN_RETURN_IF_ERROR(CheckWorkDir(config.work_dir));
  if (config.executor == "process") {
    ProcessExecutorOptions options;
    options.work_dir = config.work_dir;
    options.state_dir = config.state_dir;
    // The agent's keys are never visible to jobs, wherever they live.
    SandboxOptions sandbox = config.sandbox;
    sandbox.hidden_paths.push_back(config.identity_dir);
    CN_ASSIGN_OR_RETURN(options.sandbox,
                        Sandbox::Create(std::move(sandbox), config.work_dir,
                                        config.state_dir));
    return std::unique_ptr<Executor>(new ProcessExecutor(std::move(options)));
  }
  if (config.executor != "slurm") {
    return InvalidArgumentError("unknown executor '" + config.executor + "'");
  }
  SlurmExecutorOptions options;
  options.owner = config.registration.site();
  options.work_dir = config.work_dir;
  options.partition = config.slurm.partition;
  if (options.partition.empty()) {
    // Jobs go where the capacity was offered (sbatch takes a comma list).
    for (const auto& partition : config.slurm.shareable_partitions) {
      options.partition += (options.partition.empty() ? "" : ",") + partition;
    }
  }
  options.account = config.slurm.account;
  options.gres_name = config.slurm.gres_name;
  options.extra_sbatch_args = config.slurm.extra_sbatch_args;
  options.commands = Commands(config.slurm);
  options.jobcomp_file = config.slurm.jobcomp_file;
  options.poll_interval_ms = config.slurm.poll_interval_ms;
  CN_ASSIGN_OR_RETURN(auto executor, SlurmExecutor::Create(std::move(options)));
  return std::unique_ptr<Executor>(std::move(executor));
}

}  // namespace computenet::provider
