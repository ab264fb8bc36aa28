// Capacity adverts: the summary of free capacity a broker publishes to its
// peers, per accelerator model, without naming any provider or node, and the
// test of whether a peer's summary can take a job.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BROKER_FEDERATION_CAPACITY_ADVERT_H_
#define COMPUTENET_BROKER_FEDERATION_CAPACITY_ADVERT_H_

#include <map>
#include <string>
#include <vector>

#include "core/imports.h"
#include "computenet/matching/matcher.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::broker {

// One entry per model offered by any of providers, in model order. Gang
// capacity is reported for cards_per_node 1, 2, 4, ... up to the largest
// node: for each, the most nodes in one fabric with that many free cards.
//
// Effective compute (fields 20-22, docs/federation.md "Routing"): each
// provider's card throughput is its ProviderCapacity::dense_gflops entry,
// else the catalog's nominal figure for the model (catalog null = the
// built-in one); a model known to neither gets no compute figures. Among
// the offers with free cards, the one with the lowest price per
// A100-equivalent-hour (then the most reliable provider) sets
// lowest_price_per_a100_hour_milli, a100_milli_per_card and reliability_bp:
// the offer the peer's own matcher would try first.
std::vector<v1::CapacityEntry> SummarizeCapacity(
    const std::vector<ProviderCapacity>& providers,
    const AcceleratorCatalog* catalog = nullptr);

// The entries of `now` that differ from `before` (by model), plus an entry
// with free_cards 0 for each model of `before` missing from `now`.
std::vector<v1::CapacityEntry> AdvertDelta(
    const std::map<std::string, v1::CapacityEntry>& before,
    const std::vector<v1::CapacityEntry>& now);

// Whether `entry` can take spec right now: a requested model of an allowed
// vendor class (when the entry names its class), within the price ceilings
// (per card-hour; per A100-hour when the entry carries compute figures),
// and either a gang of spec.nodes nodes x spec.cards_per_node cards inside
// one fabric or, for compute equivalence, at least
// spec.a100_equivalents_milli free at one provider. A fractional job
// (gpu_milli) is never forwarded: adverts do not describe shared cards.
bool AdvertFits(const v1::CapacityEntry& entry, const v1::JobSpec& spec);

// What a placement of spec on entry's cheapest offer would cost per
// A100-equivalent-hour asked for, in thousandths of a minor unit (the
// matcher's cost key, Placement::cost_key): the advertised figure, raised
// for a compute-equivalence job by its cards' rounding up. For an entry
// without compute figures (a peer before routing v2), the catalog's nominal
// figure for the model (catalog null = none); failing that, the price per
// card-hour counts as per A100-hour, the old rule.
int64_t AdvertCostPerA100Hour(const v1::CapacityEntry& entry,
                              const v1::JobSpec& spec,
                              const AcceleratorCatalog* catalog);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_FEDERATION_CAPACITY_ADVERT_H_
