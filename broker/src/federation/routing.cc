#include "core/imports.h"
#include "federation/routing.h"

#include <algorithm>
#include <tuple>

#include "federation/capacity_advert.h"

namespace computenet::broker {
namespace {

__extension__ using Wide = __int128;

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Tier 0 for a preferred (and allowed) region, 1 otherwise: preferences
// rank before price, as in the matcher.
int TierOf(const v1::JobSpec& spec, const std::string& region) {
  return Contains(spec.preferred_regions(), region) &&
                 RegionAllowed(spec, region)
             ? 0
             : 1;
}

// "631.234": thousandths of a minor unit as a decimal, for reasons.
std::string PerA100Hour(int64_t milli) {
  std::string fraction = std::to_string(milli % 1000);
  return std::to_string(milli / 1000) + "." +
         std::string(3 - fraction.size(), '0') + fraction;
}

}  // namespace

bool RegionAllowed(const v1::JobSpec& spec, const std::string& region) {
  return spec.allowed_regions().empty() ||
         Contains(spec.allowed_regions(), region);
}

RoutingDecision Route(const v1::JobInfo& job,
                      const std::optional<Placement>& local,
                      const std::vector<PeerView>& peers,
                      const std::set<std::string>& declined,
                      const RoutingOptions& options) {
  using Kind = RoutingDecision::Kind;
  const v1::JobSpec& spec = job.spec();
  const bool home_allowed = RegionAllowed(spec, options.home_region);
  if (!job.home_broker().empty()) {
    // Rule 1: forwarded here; never forwarded on.
    if (local) return {Kind::kLocal, "", ""};
    return {Kind::kWait, "", "no capacity here for a forwarded job"};
  }

  // The best fitting advert of each eligible peer, ranked as the matcher
  // ranks offers.
  struct Candidate {
    const PeerView* peer;
    int tier;
    int64_t cost;  // per A100-equivalent-hour, thousandths of a minor unit
    uint32_t reliability_bp;
  };
  auto rank = [](const Candidate& c) {
    return std::make_tuple(c.tier, c.cost,
                           -static_cast<int64_t>(c.reliability_bp),
                           c.peer->broker_id);
  };
  const AcceleratorCatalog* catalog = options.catalog.get();
  std::vector<Candidate> candidates;
  bool any_region_served = home_allowed;
  for (const auto& peer : peers) {
    if (!RegionAllowed(spec, peer.region)) continue;
    any_region_served = true;
    if (!peer.link_up || declined.count(peer.broker_id) != 0) continue;
    if (Contains(job.path(), peer.broker_id)) continue;
    std::optional<Candidate> best;
    for (const auto& entry : peer.entries) {
      if (!AdvertFits(entry, spec)) continue;
      Candidate candidate{&peer, TierOf(spec, peer.region),
                          AdvertCostPerA100Hour(entry, spec, catalog),
                          entry.reliability_bp()};
      if (!best || rank(candidate) < rank(*best)) best = candidate;
    }
    if (best) candidates.push_back(*best);
  }
  std::sort(candidates.begin(), candidates.end(),
            [&](const Candidate& a, const Candidate& b) {
              return rank(a) < rank(b);
            });

  if (home_allowed && local) {
    const int local_tier = TierOf(spec, options.home_region);
    if (candidates.empty() || candidates.front().tier > local_tier) {
      return {Kind::kLocal, "", ""};
    }
    const Candidate& best = candidates.front();
    if (best.tier < local_tier) {
      // Rule 2: a preferred region beats a placement elsewhere.
      return {Kind::kForward, best.peer->broker_id,
              "preferred region " + best.peer->region + ": " +
                  best.peer->broker_id + " advertises it (" +
                  PerA100Hour(best.cost) + " per A100-hour)"};
    }
    // Rule 3: here, unless the peer is cheaper by more than the margin.
    // A Placement made without a cost key (tests, tools) counts its price
    // per card-hour as per A100-hour.
    const int64_t local_cost = local->cost_key > 0
                                   ? local->cost_key
                                   : local->price_per_card_hour * 1000;
    const uint32_t local_reliability_bp =
        10 * (local->reliability_permille > 0 ? local->reliability_permille
                                              : kDefaultReliabilityPermille);
    const Wide peer_scaled =
        static_cast<Wide>(best.cost) * (10000 + options.forward_margin_bp);
    const Wide local_scaled = static_cast<Wide>(local_cost) * 10000;
    if (std::make_tuple(peer_scaled,
                        -static_cast<int64_t>(best.reliability_bp)) <
        std::make_tuple(local_scaled,
                        -static_cast<int64_t>(local_reliability_bp))) {
      return {Kind::kForward, best.peer->broker_id,
              "cheaper at " + best.peer->broker_id + " (" +
                  PerA100Hour(best.cost) + " vs " + PerA100Hour(local_cost) +
                  " per A100-hour)"};
    }
    return {Kind::kLocal, "", ""};
  }
  // Rule 4.
  if (!candidates.empty()) {
    const auto& chosen = candidates.front();
    const std::string offer = chosen.peer->broker_id + " (" +
                              chosen.peer->region + ") advertises it at " +
                              PerA100Hour(chosen.cost) + " per A100-hour";
    return {Kind::kForward, chosen.peer->broker_id,
            home_allowed
                ? "no capacity here; " + offer
                : "region " + options.home_region + " not allowed; " + offer};
  }
  // Rule 5.
  if (!any_region_served) {
    return {Kind::kReject, "",
            "no broker in this federation serves the allowed regions"};
  }
  std::string reason = home_allowed ? "waiting for capacity here or at a peer"
                                    : "waiting for a peer in an allowed region "
                                      "with capacity";
  if (!declined.empty()) {
    reason += " (declined by";
    for (const auto& peer : declined) reason += " " + peer;
    reason += ")";
  }
  return {Kind::kWait, "", reason};
}

}  // namespace computenet::broker
