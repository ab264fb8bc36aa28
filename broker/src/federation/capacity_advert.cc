#include "core/imports.h"
#include "federation/capacity_advert.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

namespace computenet::broker {
namespace {

bool ModelRequested(const v1::JobSpec& spec, const std::string& model) {
  return spec.accelerator_models().empty() ||
         std::find(spec.accelerator_models().begin(),
                   spec.accelerator_models().end(),
                   model) != spec.accelerator_models().end();
}

}  // namespace

std::vector<v1::CapacityEntry> SummarizeCapacity(
    const std::vector<ProviderCapacity>& providers) {
  struct Totals {
    v1::CapacityEntry entry;
    // fabric key -> free cards on each of its nodes
    std::map<std::string, std::vector<uint32_t>> fabrics;
    bool priced = false;
  };
  std::map<std::string, Totals> by_model;
  for (const auto& provider : providers) {
    for (const auto& node : provider.nodes) {
      const std::string fabric =
          provider.provider + "/" +
          (node.fabric_id.empty() ? "node:" + node.name : node.fabric_id);
      for (const auto& group : node.groups) {
        auto price = provider.price_per_card_hour.find(group.model);
        if (price == provider.price_per_card_hour.end()) continue;
        Totals& totals = by_model[group.model];
        auto& entry = totals.entry;
        entry.set_model(group.model);
        const uint32_t free = static_cast<uint32_t>(group.free_devices.size());
        entry.set_free_cards(entry.free_cards() + free);
        entry.set_largest_node_cards(std::max(entry.largest_node_cards(), free));
        if (!totals.priced || price->second < entry.lowest_price()) {
          entry.set_lowest_price(price->second);
          entry.set_currency(provider.currency);
        }
        entry.set_highest_price(
            totals.priced ? std::max(entry.highest_price(), price->second)
                          : price->second);
        totals.priced = true;
        if (free > 0) totals.fabrics[fabric].push_back(free);
      }
    }
  }
  std::vector<v1::CapacityEntry> out;
  for (auto& [model, totals] : by_model) {
    v1::CapacityEntry& entry = totals.entry;
    entry.set_reliability_bp(10000);
    for (uint32_t cards = 1; cards <= entry.largest_node_cards() && cards > 0;
         cards *= 2) {
      uint32_t best = 0;
      for (const auto& [fabric, nodes] : totals.fabrics) {
        uint32_t count = static_cast<uint32_t>(std::count_if(
            nodes.begin(), nodes.end(), [&](uint32_t n) { return n >= cards; }));
        best = std::max(best, count);
      }
      auto* gang = entry.add_gangs();
      gang->set_cards_per_node(cards);
      gang->set_nodes(best);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<v1::CapacityEntry> AdvertDelta(
    const std::map<std::string, v1::CapacityEntry>& before,
    const std::vector<v1::CapacityEntry>& now) {
  std::vector<v1::CapacityEntry> out;
  std::map<std::string, bool> present;
  for (const auto& entry : now) {
    present[entry.model()] = true;
    auto it = before.find(entry.model());
    if (it == before.end() ||
        !google::protobuf::util::MessageDifferencer::Equals(it->second, entry)) {
      out.push_back(entry);
    }
  }
  for (const auto& [model, entry] : before) {
    if (present.count(model) != 0 || entry.free_cards() == 0) continue;
    v1::CapacityEntry gone;
    gone.set_model(model);
    out.push_back(std::move(gone));
  }
  return out;
}

bool AdvertFits(const v1::CapacityEntry& entry, const v1::JobSpec& spec) {
  if (!ModelRequested(spec, entry.model())) return false;
  if (spec.max_price_per_card_hour() > 0 &&
      entry.lowest_price() > spec.max_price_per_card_hour()) {
    return false;
  }
  const uint32_t nodes = std::max<uint32_t>(1, spec.nodes());
  const uint32_t cards = spec.cards_per_node();
  if (cards == 0 || entry.free_cards() < nodes * cards) return false;
  // The smallest advertised shape that holds cards_per_node.
  for (const auto& gang : entry.gangs()) {
    if (gang.cards_per_node() >= cards) return gang.nodes() >= nodes;
  }
  return false;
}

}  // namespace computenet::broker
