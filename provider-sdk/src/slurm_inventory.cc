#include "computenet/provider/slurm_inventory.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "computenet/provider/accelerator_models.h"
#include "computenet/provider/slurm_parse.h"

namespace computenet::provider {
namespace {

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// States in which a node takes no new work ("IDLE+DRAIN", "DOWN*", ...).
bool Usable(const std::string& state) {
  if (state.empty() || state.find('*') != std::string::npos) return false;
  for (const char* bad : {"DOWN", "DRAIN", "FAIL", "INVAL", "FUTURE",
                          "NOT_RESPONDING", "UNKNOWN"}) {
    if (state.find(bad) != std::string::npos) return false;
  }
  return true;
}

uint64_t Number(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  return std::stoull(text);
}

}  // namespace

StatusOr<std::vector<v1::Node>> NodesFromScontrol(
    std::string_view text, const SlurmInventoryOptions& options) {
  const std::string base = options.gres_name.substr(0, options.gres_name.find(':'));
  std::vector<v1::Node> nodes;
  for (const auto& record : ParseScontrolRecords(text)) {
    const std::string name = record.Get("NodeName");
    if (name.empty()) continue;
    std::string partition;
    for (const auto& candidate : SplitCommas(record.Get("Partitions"))) {
      if (std::find(options.partitions.begin(), options.partitions.end(),
                    candidate) != options.partitions.end()) {
        partition = candidate;
        break;
      }
    }
    if (partition.empty()) continue;
    const std::string state = record.Get("State");
    if (!Usable(state)) {
      spdlog::info("Slurm node {} left out: state {}", name, state);
      continue;
    }
    // Cards per model, in the order Slurm lists them.
    std::vector<std::pair<std::string, uint32_t>> models;
    for (const auto& entry : ParseGresList(record.Get("Gres"))) {
      if (entry.name != base || entry.count == 0) continue;
      std::string model;
      if (entry.type.empty()) {
        if (options.default_model.empty()) {
          return InvalidArgumentError(
              "Slurm node " + name + " has untyped GRES '" + record.Get("Gres") +
              "': set the catalog model of its cards ([slurm] model)");
        }
        model = options.default_model;
      } else {
        CatalogModel catalog = CatalogModelFromDeviceName(entry.type);
        if (!catalog.verified) {
          spdlog::warn("Slurm node {}: GRES type '{}' is no known model; "
                       "registered as it is",
                       name, entry.type);
        }
        model = catalog.model;
      }
      auto it = std::find_if(models.begin(), models.end(),
                             [&](const auto& m) { return m.first == model; });
      if (it == models.end()) {
        models.emplace_back(model, entry.count);
      } else {
        it->second += entry.count;
      }
    }
    if (models.empty()) continue;
    v1::Node node;
    node.set_name(name);
    node.set_fabric_id("slurm:" + partition);
    node.set_cpu_cores(static_cast<uint32_t>(Number(record.Get("CPUTot"))));
    node.set_memory_mib(Number(record.Get("RealMemory")));
    for (const auto& [model, count] : models) {
      auto* accelerator = node.add_accelerators();
      accelerator->set_model(model);
      accelerator->set_count(count);
      accelerator->set_memory_mib(options.card_memory_mib);
    }
    nodes.push_back(std::move(node));
  }
  if (nodes.empty()) {
    std::string list;
    for (const auto& partition : options.partitions) {
      list += (list.empty() ? "" : ",") + partition;
    }
    return FailedPreconditionError("no usable " + base +
                                   " node in Slurm partition(s) " + list);
  }
  return nodes;
}

StatusOr<std::vector<v1::Node>> DiscoverSlurmNodes(
    const SlurmInventoryOptions& options) {
  if (options.partitions.empty()) {
    return InvalidArgumentError("slurm inventory: no shareable partitions");
  }
  auto result = RunSlurmCommand(options.commands, "scontrol", {"-o", "show", "node"});
  if (!result.ok()) {
    return UnavailableError("scontrol show node: " + result.status().message());
  }
  if (result->exit_code != 0) {
    std::string err = result->err.substr(0, result->err.find('\n'));
    return UnavailableError("scontrol show node exited with " +
                            std::to_string(result->exit_code) + ": " + err);
  }
  return NodesFromScontrol(result->out, options);
}

}  // namespace computenet::provider
