#include <algorithm>

#include "computenet/broker/matcher.h"

namespace computenet::broker {
namespace {

bool ModelAllowed(const v1::JobSpec& spec, const std::string& model) {
  if (spec.accelerator_models().empty()) return true;
  return std::find(spec.accelerator_models().begin(),
                   spec.accelerator_models().end(),
                   model) != spec.accelerator_models().end();
}

const DeviceGroup* GroupWithFree(const NodeCapacity& node,
                                 const std::string& model, uint32_t cards) {
  for (const auto& group : node.groups) {
    if (group.model == model && group.free_devices.size() >= cards) {
      return &group;
    }
  }
  return nullptr;
}

v1::NodeAssignment Assign(const NodeCapacity& node, const DeviceGroup& group,
                          uint32_t cards) {
  v1::NodeAssignment assignment;
  assignment.set_node(node.name);
  for (uint32_t i = 0; i < cards; ++i) {
    assignment.add_device_indices(group.free_devices[i]);
  }
  return assignment;
}

// First fabric of `provider` with `nodes` nodes that each have `cards` free
// cards of `model`.
std::optional<std::vector<v1::NodeAssignment>> FitGang(
    const ProviderCapacity& provider, const std::string& model,
    uint32_t nodes, uint32_t cards) {
  std::map<std::string, std::vector<v1::NodeAssignment>> by_fabric;
  for (const auto& node : provider.nodes) {
    const DeviceGroup* group = GroupWithFree(node, model, cards);
    if (group == nullptr) continue;
    // A node without a fabric id is a fabric of its own.
    auto& fabric = by_fabric[node.fabric_id.empty() ? "node:" + node.name
                                                    : node.fabric_id];
    fabric.push_back(Assign(node, *group, cards));
    if (fabric.size() == nodes) return fabric;
  }
  return std::nullopt;
}

}  // namespace

MatchOutcome FirstFitMatcher::Match(
    const v1::JobSpec& spec, const std::vector<ProviderCapacity>& providers,
    const std::set<std::string>& excluded) const {
  const uint32_t nodes = std::max<uint32_t>(1, spec.nodes());
  const uint32_t cards = spec.cards_per_node();
  bool any_model = false;
  bool any_affordable = false;
  for (const auto& provider : providers) {
    if (excluded.count(provider.provider) != 0) continue;
    for (const auto& [model, price] : provider.price_per_card_hour) {
      if (!ModelAllowed(spec, model)) continue;
      any_model = true;
      if (spec.max_price_per_card_hour() > 0 &&
          price > spec.max_price_per_card_hour()) {
        continue;
      }
      any_affordable = true;
      auto gang = FitGang(provider, model, nodes, cards);
      if (!gang) continue;
      Placement placement;
      placement.provider = provider.provider;
      placement.model = model;
      placement.assignments = std::move(*gang);
      placement.price_per_card_hour = price;
      placement.currency = provider.currency;
      return MatchOutcome{std::move(placement), ""};
    }
  }
  MatchOutcome outcome;
  if (!any_model) {
    outcome.reason = "no online provider offers the requested models";
  } else if (!any_affordable) {
    outcome.reason = "every matching offer is above the price ceiling";
  } else {
    outcome.reason = "waiting for capacity: no provider has " +
                     std::to_string(nodes) + " node(s) with " +
                     std::to_string(cards) +
                     " free card(s) of a requested model in one fabric";
  }
  return outcome;
}

}  // namespace computenet::broker
