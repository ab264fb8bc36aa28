#include "core/imports.h"
#include "federation/capacity_advert.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <climits>
#include <optional>

namespace computenet::broker {
namespace {

__extension__ using Wide = __int128;

int64_t Saturate(Wide value) {
  return value > INT64_MAX ? INT64_MAX : static_cast<int64_t>(value);
}

// The matcher's cost key (capacity_index.cc): price per A100-equivalent-hour
// in thousandths of a minor unit, exact in integers.
int64_t CostKey(int64_t price, uint64_t reference_gflops, uint64_t gflops) {
  if (gflops == 0) return INT64_MAX;
  return Saturate(static_cast<Wide>(price) * reference_gflops * 1000 /
                  static_cast<Wide>(gflops));
}

bool ModelRequested(const v1::JobSpec& spec, const std::string& model) {
  return spec.accelerator_models().empty() ||
         std::find(spec.accelerator_models().begin(),
                   spec.accelerator_models().end(),
                   model) != spec.accelerator_models().end();
}

}  // namespace

std::vector<v1::CapacityEntry> SummarizeCapacity(
    const std::vector<ProviderCapacity>& providers,
    const AcceleratorCatalog* catalog) {
  if (catalog == nullptr) catalog = AcceleratorCatalog::BuiltIn().get();
  // The offer that ranks first for effective compute: (cost, reliability).
  struct Offer {
    int64_t cost = INT64_MAX;
    uint32_t reliability_permille = 0;
    uint32_t a100_milli_per_card = 0;
  };
  struct Totals {
    v1::CapacityEntry entry;
    // fabric key -> free cards on each of its nodes
    std::map<std::string, std::vector<uint32_t>> fabrics;
    bool priced = false;
    std::optional<Offer> best;
    uint32_t best_price_reliability = 0;  // of the lowest card-hour price
    uint64_t largest_provider_a100_milli = 0;
  };
  std::map<std::string, Totals> by_model;
  for (const auto& provider : providers) {
    const uint32_t reliability = provider.reliability_permille > 0
                                     ? provider.reliability_permille
                                     : kDefaultReliabilityPermille;
    std::map<std::string, uint64_t> free_here;  // by model, this provider
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
        entry.set_largest_node_cards(
            std::max(entry.largest_node_cards(), free));
        if (!totals.priced || price->second < entry.lowest_price() ||
            (price->second == entry.lowest_price() &&
             reliability > totals.best_price_reliability)) {
          entry.set_lowest_price(price->second);
          entry.set_currency(provider.currency);
          totals.best_price_reliability = reliability;
        }
        entry.set_highest_price(
            totals.priced ? std::max(entry.highest_price(), price->second)
                          : price->second);
        totals.priced = true;
        free_here[group.model] += free;
        if (free > 0) totals.fabrics[fabric].push_back(free);
      }
    }
    for (const auto& [model, free] : free_here) {
      Totals& totals = by_model[model];
      const int64_t price = provider.price_per_card_hour.at(model);
      uint64_t gflops = 0;
      if (auto it = provider.dense_gflops.find(model);
          it != provider.dense_gflops.end()) {
        gflops = it->second;
      } else if (const AcceleratorSpec* spec = catalog->Find(model)) {
        gflops = spec->dense_gflops;
      }
      if (totals.entry.vendor_class().empty()) {
        if (auto it = provider.vendor_class.find(model);
            it != provider.vendor_class.end()) {
          totals.entry.set_vendor_class(it->second);
        } else if (const AcceleratorSpec* spec = catalog->Find(model)) {
          totals.entry.set_vendor_class(spec->vendor_class);
        }
      }
      if (gflops == 0 || free == 0) continue;
      const uint32_t per_card = catalog->A100MilliOf(gflops);
      totals.largest_provider_a100_milli =
          std::max(totals.largest_provider_a100_milli, free * per_card);
      const Offer offer{CostKey(price, catalog->reference_gflops(), gflops),
                        reliability, per_card};
      if (!totals.best || offer.cost < totals.best->cost ||
          (offer.cost == totals.best->cost &&
           offer.reliability_permille > totals.best->reliability_permille)) {
        totals.best = offer;
      }
    }
  }
  std::vector<v1::CapacityEntry> out;
  for (auto& [model, totals] : by_model) {
    v1::CapacityEntry& entry = totals.entry;
    // The score of the offer a peer's matcher would try first; without
    // compute figures, of the cheapest per card-hour.
    entry.set_reliability_bp(10 * (totals.best
                                       ? totals.best->reliability_permille
                                       : totals.best_price_reliability));
    if (totals.best) {
      entry.set_lowest_price_per_a100_hour_milli(totals.best->cost);
      entry.set_a100_milli_per_card(totals.best->a100_milli_per_card);
      entry.set_largest_provider_a100_milli(totals.largest_provider_a100_milli);
    }
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
  if (!spec.vendor_classes().empty() && !entry.vendor_class().empty() &&
      std::find(spec.vendor_classes().begin(), spec.vendor_classes().end(),
                entry.vendor_class()) == spec.vendor_classes().end()) {
    return false;
  }
  if (spec.max_price_per_card_hour() > 0 &&
      entry.lowest_price() > spec.max_price_per_card_hour()) {
    return false;
  }
  // As the matcher's ceiling: the offer's own cost, before any rounding up.
  if (spec.max_price_per_a100_hour() > 0 &&
      entry.lowest_price_per_a100_hour_milli() > 0 &&
      entry.lowest_price_per_a100_hour_milli() >
          Saturate(static_cast<Wide>(spec.max_price_per_a100_hour()) * 1000)) {
    return false;
  }
  if (spec.a100_equivalents_milli() > 0) {
    // One model at one provider (docs/matching.md): a peer that does not
    // say how much compute it has free cannot be counted on.
    return entry.largest_provider_a100_milli() >= spec.a100_equivalents_milli();
  }
  if (spec.gpu_milli() > 0) return false;
  const uint32_t nodes = std::max<uint32_t>(1, spec.nodes());
  const uint32_t cards = spec.cards_per_node();
  if (cards == 0 || entry.free_cards() < nodes * cards) return false;
  // The smallest advertised shape that holds cards_per_node.
  for (const auto& gang : entry.gangs()) {
    if (gang.cards_per_node() >= cards) return gang.nodes() >= nodes;
  }
  return false;
}

int64_t AdvertCostPerA100Hour(const v1::CapacityEntry& entry,
                              const v1::JobSpec& spec,
                              const AcceleratorCatalog* catalog) {
  int64_t cost = entry.lowest_price_per_a100_hour_milli();
  uint32_t per_card = entry.a100_milli_per_card();
  if (cost <= 0) {
    const AcceleratorSpec* known =
        catalog != nullptr ? catalog->Find(entry.model()) : nullptr;
    if (known == nullptr) {
      return Saturate(static_cast<Wide>(entry.lowest_price()) * 1000);
    }
    cost = CostKey(entry.lowest_price(), catalog->reference_gflops(),
                   known->dense_gflops);
    per_card = catalog->A100MilliOf(known->dense_gflops);
  }
  const uint32_t asked = spec.a100_equivalents_milli();
  if (asked == 0 || per_card == 0) return cost;
  // Whole cards are paid for: ceil(asked / per_card) of them.
  const Wide cards = (static_cast<Wide>(asked) + per_card - 1) / per_card;
  return Saturate(static_cast<Wide>(cost) * cards * per_card / asked);
}

}  // namespace computenet::broker
