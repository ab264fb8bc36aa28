// Routing: whether a queued job runs here, goes to a peer broker, waits or
// is rejected. A pure function of the job, the local matcher's answer and
// the peers' adverts, so the rule is testable and documented in one place
// (docs/federation.md, "Routing"):
//   1. A job that arrived from a peer is never forwarded again: it runs here
//      or its home is told no. With the path check this makes forwarding
//      loops impossible by construction.
//   Every candidate (the local placement, and each up peer in an allowed
//   region whose adverts fit the job, not already on the job's path and
//   not one that declined it) is ranked as the local matcher ranks offers:
//   by price per A100-equivalent-hour (Placement::cost_key; a peer's from
//   its adverts, AdvertCostPerA100Hour), then reliability, then broker id.
//   A peer's figures are those of its best fitting advert entry.
//   2. Preferred regions first, as in the matcher: if any candidate is in
//      one of the job's preferred (and allowed) regions, only those compete;
//      the others are considered only when none of those fits now. Within
//      that tier the price rule below holds, so a preference never lifts a
//      job over its price ceilings and never moves it off a preferred home
//      unless a preferred peer is cheaper by the margin.
//   3. If the local placement is in the tier, the job runs here unless the
//      best peer is cheaper per A100-equivalent-hour by more than
//      forward_margin_bp (basis points of the local cost), or costs the
//      same with the margin and is more reliable.
//   4. Otherwise it goes to the best peer of the tier.
//   5. If no configured broker serves an allowed region, it is rejected;
//      otherwise it waits, and the reason says why.
//
// Thread safety: stateless; safe from any thread.
#ifndef COMPUTENET_BROKER_FEDERATION_ROUTING_H_
#define COMPUTENET_BROKER_FEDERATION_ROUTING_H_

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/imports.h"
#include "computenet/matching/matcher.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::broker {

struct PeerView {
  std::string broker_id;
  std::string region;
  bool link_up = false;
  std::vector<v1::CapacityEntry> entries;  // current adverts
};

struct RoutingOptions {
  std::string broker_id;
  std::string home_region;
  // A peer must be this much cheaper (basis points of the local price) to
  // take a job that could run here. Default 2000 (20%).
  int64_t forward_margin_bp = 2000;
  // Resolves the compute of a peer's advert entry that carries no compute
  // figures (a broker before routing v2); null = such an entry's price per
  // card-hour counts as per A100-hour.
  std::shared_ptr<const AcceleratorCatalog> catalog;
};

struct RoutingDecision {
  enum class Kind { kLocal, kForward, kWait, kReject };
  Kind kind = Kind::kWait;
  std::string peer;    // for kForward
  std::string reason;  // for kWait / kReject, and why a forward was chosen
};

// True if regions is empty or holds region.
bool RegionAllowed(const v1::JobSpec& spec, const std::string& region);

RoutingDecision Route(const v1::JobInfo& job,
                      const std::optional<Placement>& local,
                      const std::vector<PeerView>& peers,
                      const std::set<std::string>& declined,
                      const RoutingOptions& options);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_FEDERATION_ROUTING_H_
