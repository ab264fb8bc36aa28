// SiteConfig: a provider site's configuration file (TOML), as an operator
// writes it for `computenet-provider --config FILE`:
//
//   broker_endpoint = "tcp://broker.example:7700"
//   broker_identity = "keys/broker/identity.pub"  # or broker_public_key = "Z85"
//   identity_dir    = "keys/site-a"                # from `computenet keygen`
//   work_dir        = "/var/lib/computenet/site-a" # job output
//   state_dir       = "/var/lib/computenet/site-a/state"  # default:
//                     # <work_dir>/state; the agent's durable outbox and
//                     # jobs, and the job supervisors' records. One agent
//                     # at a time (locked); keep it across restarts
//   usage_interval_s = 300   # interim usage records (0 = only the last)
//   site            = "zhangbei-1"
//   region          = "north"
//   currency        = "CNY"
//   [prices]                                       # minor units / card-hour
//   A800 = 1500
//   [spare_prices]           # optional: on spare nodes (default: [prices])
//   A800 = 900
//   [[nodes]]
//   name = "node-1"
//   fabric = "ib-1"          # NVLink/IB domain; gang jobs stay inside one
//   cpu_cores = 64
//   memory_mib = 524288
//   spare = false            # true: reclaimable, preemptible jobs only
//                            # (or offer = "dedicated" | "spare" | "withdrawn")
//   accelerators = [ { model = "A800", memory_mib = 81920, count = 8 } ]
//   # optional per accelerator: measured_dense_gflops = 280000 (the site's
//   # benchmark; overrides the catalog), measurement = "how", and for
//   # models the broker's catalog lacks: vendor = "...", vendor_class = "..."
//
// How placements run and where the inventory comes from (docs/sdk.md):
//   executor  = "process"   # "process" (child processes here) or "slurm"
//   inventory = "config"    # "config" ([[nodes]]), "nvml" or "slurm"
//   [slurm]                 # used by executor/inventory = "slurm"
//   partition = "gpu"       # sbatch --partition; default: the shareable ones
//   account = "computenet"  # sbatch --account
//   gres_name = "gpu"       # --gres=<gres_name>:<cards>; "gpu:a800" pins a type
//   extra_sbatch_args = ["--qos=spare"]
//   poll_interval_ms = 500  # squeue at most this often
//   command_timeout_ms = 5000
//   shareable_partitions = ["share"]  # inventory = "slurm" offers these
//   bin_dir = "/opt/slurm/bin"        # default: PATH
//   conf = "/etc/slurm/slurm.conf"    # SLURM_CONF for the commands
//   jobcomp_file = "/var/log/slurm/jobcomp.log"  # outcomes without sacct
//   model = "A800"          # catalog model of untyped GRES ("gpu:8")
//   card_memory_mib = 81920 # per card, for inventory = "slurm"
//   [nvml]
//   library = "libnvidia-ml.so.1"
//   [data]                  # job inputs and results (docs/sdk.md)
//   max_input_bytes = 4294967296   # offers with larger inputs are refused
//   max_result_bytes = 4294967296  # larger output directories are not kept
//   retention_s = 604800    # finished jobs' files are removed after this
//   max_work_bytes = 0      # offers refused while work_dir holds more (0 = off)
//   [sandbox]               # how the process executor fences jobs (sandbox.h)
//   mode = "bwrap"          # default; "none" runs jobs unfenced (warned at start)
//   read_only_paths = ["/usr", "/bin", "/lib", "/etc", ...]  # default list
//   writable_paths = ["/scratch"]         # bound read-write; none by default
//   hidden_paths = ["/etc/site-secrets"]  # masked even beneath those
//   device_dir = "/dev"     # where nvidiaN, nvidiactl, ... are
//   memory_mib_per_card = 65536  # when the job's spec gives none; a cap
//   pids_max = 4096         # per node; 0 = none
//   allow_network = true    # jobs asking network_access keep it (default:
//                           # [policy] network); false also sets that policy
//   cgroup_parent = ""      # default: <agent's cgroup>/computenet
// With inventory = "config", [[nodes]] with accelerators are required. With
// "nvml", at most one [[nodes]] (name, fabric, cores, memory of this
// machine; accelerators optional, used only if NVML is unavailable). With
// "slurm", no [[nodes]]: Slurm's nodes in shareable_partitions are used.
//
// Relative paths are relative to the file's directory. Unknown keys are an
// error, so a typo never silently drops a setting.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_PROVIDER_SITE_CONFIG_H_
#define COMPUTENET_PROVIDER_SITE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/provider/sandbox.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

// The [slurm] table. Defaults as documented above.
struct SlurmSiteConfig {
  std::string partition;
  std::string account;
  std::string gres_name = "gpu";
  std::vector<std::string> extra_sbatch_args;
  int poll_interval_ms = 500;
  int command_timeout_ms = 5000;
  std::vector<std::string> shareable_partitions;
  std::string bin_dir;
  std::string conf;
  std::string jobcomp_file;
  std::string model;
  uint64_t card_memory_mib = 0;
};

// Where a site keeps the work's data (docs/sdk.md "Inputs and results").
struct SiteDataOptions {
  // The site's work directory: job workspaces, fetched inputs, packed
  // results. Empty: the agent takes no jobs with inputs and packs no
  // results.
  std::string work_dir;
  // Offers whose inputs sum past this are refused. Default 4 GiB.
  uint64_t max_input_bytes = uint64_t{4} << 30;
  // A job's output directory larger than this is not kept (the job's
  // status says so). Default 4 GiB.
  uint64_t max_result_bytes = uint64_t{4} << 30;
  // Finished jobs' directories, results and cached inputs are removed
  // after this long. Default 7 days.
  int64_t retention_ms = int64_t{7} * 24 * 3600 * 1000;
  // While the work directory holds more than this, offers are refused
  // (RESOURCE_EXHAUSTED, "site storage full"). 0 = no quota (default).
  uint64_t max_work_bytes = 0;
};

struct SiteConfig {
  std::string broker_endpoint;
  std::string broker_public_key;  // Z85, read from broker_identity if given
  std::string identity_dir;
  std::string work_dir;
  std::string state_dir;  // <work_dir>/state unless set
  uint32_t usage_interval_s = 300;  // ProviderOptions::usage_interval_s
  v1::RegisterProvider registration;  // site, region, currency, nodes, prices
  std::string executor = "process";   // "process" | "slurm"
  std::string inventory = "config";   // "config" | "nvml" | "slurm"
  SlurmSiteConfig slurm;
  std::string nvml_library = "libnvidia-ml.so.1";
  SiteDataOptions data;  // work_dir = work_dir; limits from [data]
  SandboxOptions sandbox;  // [sandbox]; mode bwrap unless set to "none"
};

// INVALID_ARGUMENT naming the key at fault; NOT_FOUND if a referenced file
// is missing.
StatusOr<SiteConfig> ParseSiteConfig(const std::string& toml_text,
                                     const std::string& base_dir);
StatusOr<SiteConfig> LoadSiteConfig(const std::string& path);

// What changed between two registrations of the same site that can be sent
// at run time (UpdateOffer): node offers (spare / withdrawn / dedicated) and
// the price list. An empty UpdateOffer if nothing did. FAILED_PRECONDITION if
// nodes or cards changed: those need a restart (a new registration).
StatusOr<v1::UpdateOffer> OfferChanges(const v1::RegisterProvider& before,
                                       const v1::RegisterProvider& after);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SITE_CONFIG_H_
