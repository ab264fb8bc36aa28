// Slurm inventory: derives a site's registered capacity from its Slurm
// cluster instead of hand-written [[nodes]]: one v1::Node per Slurm node in
// the partitions the site marks shareable, read from `scontrol -o show node`
// (CPUTot, RealMemory, State, Partitions, and Gres such as "gpu:8" or
// "gpu:a800:8(S:0-1)"). Nodes that are down, drained, failing or not
// responding are left out; so are nodes without the GPU GRES.
//
// Models: a typed GRES ("gpu:a800") maps to the catalog name ("A800")
// through CatalogModelFromDeviceName; an unknown type is kept as written
// (with a warning); untyped GRES ("gpu:8") takes default_model. Fabric:
// "slurm:<partition>", the node's first shareable partition (a partition is
// taken as one interconnect domain; gang jobs stay inside one).
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_PROVIDER_SLURM_INVENTORY_H_
#define COMPUTENET_PROVIDER_SLURM_INVENTORY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/provider/slurm_command.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

struct SlurmInventoryOptions {
  SlurmCommandOptions commands;
  // Partitions whose nodes are offered to ComputeNet. Required.
  std::vector<std::string> partitions;
  // The GRES that counts as cards. Default "gpu" (a type suffix is ignored).
  std::string gres_name = "gpu";
  // Catalog model for untyped GRES; required if any node has one.
  std::string default_model;
  // Memory per card to register (Slurm does not know it); 0 = unknown.
  uint64_t card_memory_mib = 0;
};

// Parses `scontrol -o show node` output into nodes. INVALID_ARGUMENT if a
// shareable node has untyped GRES and no default_model; FAILED_PRECONDITION
// if no usable GPU node is in the shareable partitions.
StatusOr<std::vector<v1::Node>> NodesFromScontrol(
    std::string_view text, const SlurmInventoryOptions& options);

// Runs scontrol and parses it. UNAVAILABLE if Slurm cannot be queried;
// otherwise as NodesFromScontrol.
StatusOr<std::vector<v1::Node>> DiscoverSlurmNodes(
    const SlurmInventoryOptions& options);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SLURM_INVENTORY_H_
