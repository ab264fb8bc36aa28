// Matcher: chooses where a job runs. A pure function of the capacity
// snapshot it is shown (a CapacityIndex) and the job's request: no I/O, no
// clock, so it can be tested and benchmarked on its own. The broker owns the
// state and applies the result.
//
// PlacementMatcher is the network's matcher (docs/matching.md): among the
// feasible placements it takes the lowest cost per effective compute-hour
// (price per A100-equivalent-hour), then the most reliable provider, then
// the least fragmentation, so whole nodes and whole fabrics stay free for
// gang jobs. Fragmentation is measured one of two ways:
//  - given a WorkloadSummary (MatchContext::workload; the queue learns one
//    from arrivals), a single-node request goes where the *expected*
//    fragmentation of the node grows least: the GPU share that tasks of the
//    summary's shapes could no longer use, weighted by how often each shape
//    arrives (fragmentation gradient descent, Weng et al., USENIX ATC '23),
//    evaluated on a bounded sample of candidate nodes per shelf;
//  - otherwise, and for gangs and compute equivalence always, best fit:
//    fewest cards left over on the nodes it uses, smallest fabric that holds
//    a gang.
//
// Two-sided: a provider whose SitePolicy (RegisterProvider.policy) does not
// admit the job is not considered; ExplainNoFit and CheckEverFits name the
// policy when that is what rules the job out.
//
// Thread safety: Matchers are stateless; their methods are const and read
// only their arguments, so a Matcher may be shared across threads (the
// CapacityIndex it reads may not be mutated meanwhile).
#ifndef COMPUTENET_MATCHING_MATCHER_H_
#define COMPUTENET_MATCHING_MATCHER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "computenet/matching/capacity_index.h"
#include "computenet/matching/workload_summary.h"
#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::matching {

enum class RequestShape { kWholeCards, kFractional, kComputeEquivalent };

// A job's placement request, parsed once from its (validated) JobSpec.
struct PlacementRequest {
  RequestShape shape = RequestShape::kWholeCards;
  uint32_t nodes = 1;           // whole cards: nodes of the gang
  uint32_t cards_per_node = 1;  // whole cards
  uint32_t gpu_milli = 0;       // fractional: share of one card
  uint32_t a100_milli = 0;      // compute equivalence
  std::vector<std::string> models;          // any of; empty = any
  std::vector<std::string> vendor_classes;  // any of; empty = any
  uint64_t min_memory_mib = 0;
  uint32_t cpu_milli_per_card = 0;
  uint64_t host_memory_mib_per_card = 0;
  std::vector<std::string> allowed_regions;    // empty = any
  std::vector<std::string> preferred_regions;
  std::set<std::string> excluded_providers;
  int64_t max_price_per_card_hour = 0;  // 0 = none
  int64_t max_price_per_a100_hour = 0;  // 0 = none
  bool preemptible = false;
  // What site policies look at (site_policy.h). organization is not in the
  // spec: the caller sets it from the job (its consumer's enrollment).
  std::string organization;
  uint32_t max_duration_s = 0;
  bool network_access = false;

  // Everything but organization.
  static PlacementRequest FromSpec(const v1::JobSpec& spec);
  // The cards (in thousandths) the job would hold, for fair share: its
  // cards, its share, or (compute equivalence) its A100-equivalents.
  uint64_t DemandMilli() const;
  // "2 node(s) x 8 card(s)", "0.500 of a card", "8.000 A100-equivalents".
  std::string Describe() const;
};

struct Placement {
  std::string provider;
  std::string model;
  std::vector<v1::NodeAssignment> assignments;
  // Fixed at placement. For a fractional job: the card's price scaled to
  // its share, (price * milli + 500) / 1000, so the usage path bills the
  // one device it holds at that price.
  int64_t price_per_card_hour = 0;
  std::string currency;
  bool spare = false;       // on reclaimable spare capacity
  uint32_t cards = 0;       // devices held
  uint32_t a100_milli = 0;  // compute placed, thousandths of an A100
  std::string compute_basis;
  // How it ranked: price per A100-hour (thousandths of a minor unit), the
  // provider's reliability, and the fragmentation it leaves (lower better:
  // best fit's cards and thousandths left over, or by a WorkloadSummary the
  // change in expected fragmentation, which is negative when the placement
  // fills a fragment that no common shape could use).
  int64_t cost_key = 0;
  uint32_t reliability_permille = 0;
  int64_t fragmentation = 0;
};

// Per-decision context the request itself does not carry.
struct MatchContext {
  // Providers that must not get the job (e.g. they rejected it).
  const std::set<std::string>* excluded = nullptr;
  // Nodes the job must avoid: (provider id << 32 | node id), e.g. nodes
  // reserved for the job at the head of the queue.
  const std::unordered_set<uint64_t>* avoid_nodes = nullptr;
  // The demand to pack for; null or empty = best fit.
  const WorkloadSummary* workload = nullptr;
};

inline uint64_t NodeKey(uint32_t provider, uint32_t node) {
  return (uint64_t{provider} << 32) | node;
}

class Matcher {
 public:
  virtual ~Matcher() = default;
  // The best placement on free capacity of online providers; nullopt if
  // none fits now.
  virtual std::optional<Placement> Match(const PlacementRequest& request,
                                         const CapacityIndex& capacity,
                                         const MatchContext& context) const = 0;
  // Why a request does not fit now, in words a consumer understands: which
  // constraint rules out every offer, or that it waits for capacity.
  virtual std::string ExplainNoFit(const PlacementRequest& request,
                                   const CapacityIndex& capacity,
                                   const MatchContext& context) const = 0;
  // FAILED_PRECONDITION (with the reason) if the request could not fit on
  // the known providers even if all their cards were free and offered
  // (e.g. 2,000 cards in one fabric when the largest has 1,024). OK if it
  // could, or if no provider is known yet. Prices and online state are not
  // considered: they change.
  virtual Status CheckEverFits(const PlacementRequest& request,
                               const CapacityIndex& capacity) const = 0;
};

class PlacementMatcher final : public Matcher {
 public:
  std::optional<Placement> Match(const PlacementRequest& request,
                                 const CapacityIndex& capacity,
                                 const MatchContext& context) const override;
  std::string ExplainNoFit(const PlacementRequest& request,
                           const CapacityIndex& capacity,
                           const MatchContext& context) const override;
  Status CheckEverFits(const PlacementRequest& request,
                       const CapacityIndex& capacity) const override;
};

// --- a plain snapshot, for capacity adverts and tools -----------------------

// Cards of one model on one node, with the device indices still wholly free.
struct DeviceGroup {
  std::string model;
  uint64_t memory_mib = 0;
  std::vector<uint32_t> free_devices;  // ascending
  uint32_t total = 0;
};

struct NodeCapacity {
  std::string name;
  std::string fabric_id;
  std::vector<DeviceGroup> groups;
};

struct ProviderCapacity {
  std::string provider;
  std::string region;
  std::string currency;
  std::map<std::string, int64_t> price_per_card_hour;  // by model
  std::vector<NodeCapacity> nodes;
  // What routing between brokers compares (capacity adverts), by model, as
  // the capacity index resolved them: a card's dense FP16/BF16 throughput
  // (catalog nominal or the provider's measured figure) and vendor class.
  // A model missing here is resolved from the catalog by whoever reads it.
  std::map<std::string, uint64_t> dense_gflops;
  std::map<std::string, std::string> vendor_class;
  // The matcher's score (provider_stats.h); 0 = unknown, read as
  // kDefaultReliabilityPermille.
  uint32_t reliability_permille = 0;
};

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_MATCHER_H_
