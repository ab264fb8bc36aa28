#include "core/imports.h"
#include "federation/routing.h"

#include <algorithm>

#include "federation/capacity_advert.h"

namespace computenet::broker {

bool RegionAllowed(const v1::JobSpec& spec, const std::string& region) {
  return spec.allowed_regions().empty() ||
         std::find(spec.allowed_regions().begin(),
                   spec.allowed_regions().end(),
                   region) != spec.allowed_regions().end();
}

RoutingDecision Route(const v1::JobInfo& job,
                      const std::optional<Placement>& local,
                      const std::vector<PeerView>& peers,
                      const std::set<std::string>& declined,
                      const RoutingOptions& options) {
  using Kind = RoutingDecision::Kind;
  const bool home_allowed = RegionAllowed(job.spec(), options.home_region);
  if (!job.home_broker().empty()) {
    // Rule 1: forwarded here; never forwarded on.
    if (local) return {Kind::kLocal, "", ""};
    return {Kind::kWait, "", "no capacity here for a forwarded job"};
  }

  // The cheapest fitting advert of each eligible peer.
  struct Candidate {
    const PeerView* peer;
    int64_t price;
    uint32_t reliability_bp;
  };
  std::vector<Candidate> candidates;
  bool any_region_served = home_allowed;
  for (const auto& peer : peers) {
    if (!RegionAllowed(job.spec(), peer.region)) continue;
    any_region_served = true;
    if (!peer.link_up || declined.count(peer.broker_id) != 0) continue;
    if (std::find(job.path().begin(), job.path().end(), peer.broker_id) !=
        job.path().end()) {
      continue;
    }
    const v1::CapacityEntry* best = nullptr;
    for (const auto& entry : peer.entries) {
      if (!AdvertFits(entry, job.spec())) continue;
      if (best == nullptr || entry.lowest_price() < best->lowest_price()) {
        best = &entry;
      }
    }
    if (best != nullptr) {
      candidates.push_back({&peer, best->lowest_price(), best->reliability_bp()});
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) {
              if (a.price != b.price) return a.price < b.price;
              if (a.reliability_bp != b.reliability_bp) {
                return a.reliability_bp > b.reliability_bp;
              }
              return a.peer->broker_id < b.peer->broker_id;
            });

  if (home_allowed && local) {
    // Rule 2: here, unless a peer is cheaper by more than the margin.
    if (!candidates.empty()) {
      const auto& cheapest = candidates.front();
      __extension__ using Wide = __int128;
      const Wide peer_scaled =
          static_cast<Wide>(cheapest.price) * (10000 + options.forward_margin_bp);
      const Wide local_scaled =
          static_cast<Wide>(local->price_per_card_hour) * 10000;
      if (peer_scaled < local_scaled) {
        return {Kind::kForward, cheapest.peer->broker_id,
                "cheaper at " + cheapest.peer->broker_id + " (" +
                    std::to_string(cheapest.price) + " vs " +
                    std::to_string(local->price_per_card_hour) +
                    " per card-hour)"};
      }
    }
    return {Kind::kLocal, "", ""};
  }
  // Rule 3.
  if (!candidates.empty()) {
    const auto& chosen = candidates.front();
    return {Kind::kForward, chosen.peer->broker_id,
            home_allowed ? "no capacity here; " + chosen.peer->broker_id +
                               " advertises it"
                         : "region " + options.home_region +
                               " not allowed; " + chosen.peer->broker_id +
                               " (" + chosen.peer->region + ") advertises it"};
  }
  // Rule 4.
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
