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
std::vector<v1::CapacityEntry> SummarizeCapacity(
    const std::vector<ProviderCapacity>& providers);

// The entries of `now` that differ from `before` (by model), plus an entry
// with free_cards 0 for each model of `before` missing from `now`.
std::vector<v1::CapacityEntry> AdvertDelta(
    const std::map<std::string, v1::CapacityEntry>& before,
    const std::vector<v1::CapacityEntry>& now);

// Whether `entry` can take spec right now: a requested model, within the
// price ceiling, and a gang of spec.nodes nodes x spec.cards_per_node cards
// inside one fabric.
bool AdvertFits(const v1::CapacityEntry& entry, const v1::JobSpec& spec);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_FEDERATION_CAPACITY_ADVERT_H_
