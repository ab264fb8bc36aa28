// PlacementMatcher: the objective and the search over a CapacityIndex.
// docs/matching.md explains the rules with a worked example.
#include <algorithm>
#include <array>
#include <map>

#include "computenet/matching/matcher.h"
#include "computenet/matching/site_policy.h"

namespace computenet::matching {

// Wide intermediates keep products of prices and FLOPS exact.
__extension__ using Int128 = __int128;
namespace {

using Index = CapacityIndex;

// Among shelves of equal cost and reliability, at most this many are
// compared on fragmentation: enough for real ties, bounded for speed.
constexpr int kMaxTiedShelves = 8;

// Packing by expected fragmentation looks at this many candidate nodes per
// free-card bucket of a shelf, and at this many partly used cards: the
// decision stays bounded however large the shelf (matcher_bench).
constexpr int kCandidatesPerBucket = 8;
constexpr int kPartialCandidates = 16;
// A summary's weights are scaled to sum to this, so expected fragmentation
// (weight x thousandths of a card) stays well inside 64 bits.
constexpr uint64_t kShapeWeightScale = 1 << 16;
// Nodes with more cards than this are packed by best fit.
constexpr size_t kMaxPackedDevices = 64;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += "|";
    out += item;
  }
  return out;
}

std::string Milli(uint64_t milli) {
  std::string fraction = std::to_string(milli % 1000);
  return std::to_string(milli / 1000) + "." +
         std::string(3 - fraction.size(), '0') + fraction;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Cards a compute-equivalence request needs on cards of `gflops`:
// the least n with n * gflops >= a100_milli/1000 * reference.
uint64_t CardsForCompute(uint32_t a100_milli, uint64_t reference_gflops,
                         uint64_t gflops) {
  if (gflops == 0) return UINT64_MAX;
  const Int128 need = static_cast<Int128>(a100_milli) * reference_gflops;
  const Int128 per_card = static_cast<Int128>(gflops) * 1000;
  const Int128 cards = (need + per_card - 1) / per_card;
  return cards > 1'000'000 ? UINT64_MAX : static_cast<uint64_t>(cards);
}

// What one search may use: the request with its names resolved to ids.
struct Search {
  const PlacementRequest& request;
  const Index& index;
  std::vector<uint32_t> models;
  std::set<uint32_t> excluded;
  const std::unordered_set<uint64_t>* avoid = nullptr;
  const std::vector<std::string>* regions = nullptr;  // null = any
  // The workload to pack for, weights scaled to sum to kShapeWeightScale;
  // empty = best fit.
  std::vector<WeightedShape> shapes;
};

PolicySubject SubjectOf(const PlacementRequest& request) {
  PolicySubject subject;
  subject.organization = request.organization;
  subject.max_duration_s = request.max_duration_s;
  subject.preemptible = request.preemptible;
  subject.nodes = request.shape == RequestShape::kWholeCards ? request.nodes : 1;
  subject.network_access = request.network_access;
  return subject;
}

bool PolicyAdmits(const PlacementRequest& request, const Index::Provider& provider) {
  const v1::SitePolicy& policy = provider.registration.policy();
  return PolicyIsOpen(policy) || CheckSitePolicy(policy, SubjectOf(request)).ok();
}

struct Candidate {
  Index::ShelfRef ref;
  std::vector<v1::NodeAssignment> assignments;
  uint32_t cards = 0;
  int64_t fragmentation = 0;
  // Price per effective A100-hour in thousandths of a minor unit: the
  // shelf's, or for compute equivalence the placement's total price per
  // hour over the compute asked for (the cards' rounding up is paid for).
  int64_t cost_key = 0;
};

Search Prepare(const PlacementRequest& request, const Index& index,
               const MatchContext& context) {
  Search search{request, index, {}, {}, context.avoid_nodes, nullptr, {}};
  if (request.models.empty()) {
    for (uint32_t m = 0; m < index.model_count(); ++m) search.models.push_back(m);
  } else {
    for (const auto& name : request.models) {
      if (auto id = index.ModelId(name)) search.models.push_back(*id);
    }
  }
  for (const auto& name : request.excluded_providers) {
    if (auto id = index.ProviderId(name)) search.excluded.insert(*id);
  }
  if (context.excluded != nullptr) {
    for (const auto& name : *context.excluded) {
      if (auto id = index.ProviderId(name)) search.excluded.insert(*id);
    }
  }
  if (context.workload != nullptr) {
    const auto& top = context.workload->Top();
    Int128 total = 0;
    for (const auto& weighted : top) total += weighted.weight;
    for (const auto& weighted : top) {
      const auto scaled = static_cast<uint64_t>(
          static_cast<Int128>(weighted.weight) * kShapeWeightScale / total);
      if (scaled > 0) search.shapes.push_back({weighted.shape, scaled});
    }
  }
  return search;
}

// Constraints that depend on the offer, not on free capacity.
bool ClassAndMemoryPass(const PlacementRequest& request,
                        const Index::Shelf& shelf) {
  if (!request.vendor_classes.empty() &&
      !Contains(request.vendor_classes, shelf.vendor_class)) {
    return false;
  }
  return shelf.memory_mib >= request.min_memory_mib;
}

bool PricePasses(const PlacementRequest& request, const Index::Shelf& shelf) {
  if (request.max_price_per_card_hour > 0 &&
      shelf.price_per_card_hour > request.max_price_per_card_hour) {
    return false;
  }
  return request.max_price_per_a100_hour == 0 ||
         shelf.cost_key <= request.max_price_per_a100_hour * 1000;
}

bool ShelfPasses(const Search& search, const Index::ShelfRef& ref,
                 const Index::Shelf& shelf) {
  const Index::Provider& provider = search.index.providers()[ref.provider];
  if (search.excluded.count(ref.provider) != 0) return false;
  if (search.regions != nullptr && !search.regions->empty() &&
      !Contains(*search.regions, provider.region)) {
    return false;
  }
  if (shelf.spare && !search.request.preemptible) return false;
  return ClassAndMemoryPass(search.request, shelf) &&
         PricePasses(search.request, shelf) && PolicyAdmits(search.request, provider);
}

// How many cards the node's free host resources allow this job.
uint64_t HostCards(const PlacementRequest& request, const Index::Node& node) {
  uint64_t cards = UINT64_MAX;
  if (request.cpu_milli_per_card > 0) {
    cards = (node.cpu_milli_total - std::min(node.cpu_milli_total,
                                             node.cpu_milli_used)) /
            request.cpu_milli_per_card;
  }
  if (request.host_memory_mib_per_card > 0) {
    cards = std::min<uint64_t>(
        cards, (node.memory_mib_total -
                std::min(node.memory_mib_total, node.memory_mib_used)) /
                   request.host_memory_mib_per_card);
  }
  return cards;
}

bool Avoided(const Search& search, uint32_t provider, uint32_t node) {
  return search.avoid != nullptr &&
         search.avoid->count(NodeKey(provider, node)) != 0;
}

// --- packing by expected fragmentation -----------------------------------
// Weng et al., "Beware of Fragmentation" (USENIX ATC '23): a node's
// fragmentation for a task shape is the GPU share on it that a task of that
// shape could not use: all of its free share if the task does not fit there
// at all (too few cards, CPU or memory), else the free share of the cards
// too full for the task (less free than its share, or any partly used card
// for a whole-card task). Weighted by how often each shape arrives, that is
// the node's expected fragmentation; a placement is scored by how much it
// raises it.

// A node's free resources, with a placement applied or not.
struct NodeFree {
  std::array<uint16_t, kMaxPackedDevices> free{};  // thousandths per card
  size_t cards = 0;
  uint64_t cpu_milli = UINT64_MAX;  // undeclared = unlimited
  uint64_t memory_mib = UINT64_MAX;
};

// nullopt for a node with more cards than kMaxPackedDevices.
std::optional<NodeFree> FreeOf(const Index::Node& node) {
  NodeFree out;
  for (const auto& group : node.groups) {
    for (uint16_t used : group.used_milli) {
      if (out.cards == kMaxPackedDevices) return std::nullopt;
      out.free[out.cards++] =
          static_cast<uint16_t>(kWholeCardMilli - std::min<uint32_t>(used, kWholeCardMilli));
    }
  }
  if (node.cpu_milli_total > 0) {
    out.cpu_milli = node.cpu_milli_total - std::min(node.cpu_milli_total, node.cpu_milli_used);
  }
  if (node.memory_mib_total > 0) {
    out.memory_mib =
        node.memory_mib_total - std::min(node.memory_mib_total, node.memory_mib_used);
  }
  return out;
}

// The card's position in NodeFree::free: groups are laid out in order.
size_t CardPosition(const Index::Node& node, uint32_t group, uint32_t device) {
  size_t position = 0;
  for (uint32_t g = 0; g < group; ++g) position += node.groups[g].count;
  return position + device;
}

int64_t ExpectedFragment(const Search& search, const NodeFree& node) {
  // Sorted free shares with prefix sums, so each shape costs a short scan
  // instead of a pass over the cards.
  std::array<uint16_t, kMaxPackedDevices> sorted = node.free;
  std::sort(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(node.cards));
  std::array<uint32_t, kMaxPackedDevices + 1> below{};  // below[i]: sum of first i
  uint32_t whole = 0;
  for (size_t c = 0; c < node.cards; ++c) {
    below[c + 1] = below[c] + sorted[c];
    whole += sorted[c] == kWholeCardMilli;
  }
  const uint32_t total = below[node.cards];
  const uint32_t largest = node.cards == 0 ? 0 : sorted[node.cards - 1];
  uint64_t sum = 0;
  for (const auto& weighted : search.shapes) {
    const TaskShape& shape = weighted.shape;
    const bool fits = node.cpu_milli >= shape.cpu_milli &&
                      node.memory_mib >= shape.memory_mib &&
                      (shape.gpu_milli < kWholeCardMilli ? largest >= shape.gpu_milli
                                                         : whole >= shape.cards);
    uint32_t unusable = total;
    if (fits) {
      // The free share of cards too full for the shape.
      const uint32_t threshold = std::min(shape.gpu_milli, kWholeCardMilli);
      size_t i = 0;
      while (i < node.cards && sorted[i] < threshold) ++i;
      unusable = below[i];
    }
    sum += weighted.weight * unusable;
  }
  return static_cast<int64_t>(sum / kShapeWeightScale);
}

// How much expected fragmentation rises if the request takes, in group
// `group_id` of the node, `milli` of card `device`, or (device = kWholeCards)
// its first `cards` wholly free cards, with its CPU and memory.
constexpr uint32_t kFirstFreeCards = UINT32_MAX;
int64_t FragmentDelta(const Search& search, const Index::Node& node, uint32_t group_id,
                      uint32_t device, uint32_t milli, uint32_t cards) {
  std::optional<NodeFree> before = FreeOf(node);
  if (!before) return 0;
  NodeFree after = *before;
  const size_t base = CardPosition(node, group_id, 0);
  if (device == kFirstFreeCards) {
    const Index::CardGroup& group = node.groups[group_id];
    uint32_t taken = 0;
    for (uint32_t d = 0; d < group.count && taken < cards; ++d) {
      if (group.used_milli[d] != 0) continue;
      after.free[base + d] = 0;
      ++taken;
    }
  } else {
    after.free[base + device] = static_cast<uint16_t>(after.free[base + device] - milli);
  }
  const uint64_t cpu = uint64_t{search.request.cpu_milli_per_card} * cards;
  const uint64_t memory = search.request.host_memory_mib_per_card * cards;
  if (after.cpu_milli != UINT64_MAX) after.cpu_milli -= std::min(after.cpu_milli, cpu);
  if (after.memory_mib != UINT64_MAX) {
    after.memory_mib -= std::min(after.memory_mib, memory);
  }
  return ExpectedFragment(search, after) - ExpectedFragment(search, *before);
}

v1::NodeAssignment WholeCards(const Index::Node& node,
                              const Index::CardGroup& group, uint64_t cards) {
  v1::NodeAssignment assignment;
  assignment.set_node(node.name);
  for (uint32_t d = 0; d < group.count && cards > 0; ++d) {
    if (group.used_milli[d] != 0) continue;
    assignment.add_device_indices(group.first_index + d);
    --cards;
  }
  return assignment;
}

// One node with `cards` free whole cards. Best fit (fewest left over), or
// with a workload to pack for, the sampled node whose expected
// fragmentation rises least (ties: fewest left over).
std::optional<Candidate> FitOneNode(const Search& search,
                                    const Index::ShelfRef& ref,
                                    const Index::Shelf& shelf, uint64_t cards,
                                    bool by_workload) {
  const Index::Provider& provider = search.index.providers()[ref.provider];
  // The best so far, built into a Candidate only once at the end.
  std::optional<uint32_t> best_slot;
  int64_t best_fragmentation = 0;
  for (uint64_t k = cards; k < shelf.buckets.size(); ++k) {
    int sampled = 0;
    for (uint32_t slot : shelf.buckets[k]) {
      const Index::Member& member = shelf.members[slot];
      const Index::Node& node = provider.nodes[member.node];
      if (Avoided(search, ref.provider, member.node)) continue;
      if (HostCards(search.request, node) < cards) continue;
      int64_t fragmentation = static_cast<int64_t>(k - cards);
      if (by_workload) {
        if (sampled++ == kCandidatesPerBucket) break;
        fragmentation = FragmentDelta(search, node, member.group, kFirstFreeCards,
                                      kWholeCardMilli, static_cast<uint32_t>(cards));
        if (best_slot && fragmentation >= best_fragmentation) continue;
      }
      best_slot = slot;
      best_fragmentation = fragmentation;
      if (!by_workload) break;
    }
    if (best_slot && !by_workload) break;
  }
  if (!best_slot) return std::nullopt;
  const Index::Member& member = shelf.members[*best_slot];
  const Index::Node& node = provider.nodes[member.node];
  Candidate candidate;
  candidate.ref = ref;
  candidate.assignments.push_back(WholeCards(node, node.groups[member.group], cards));
  candidate.cards = static_cast<uint32_t>(cards);
  candidate.fragmentation = best_fragmentation;
  return candidate;
}

// `nodes` nodes of one fabric with `cards` free whole cards each: the
// fabric with the fewest eligible nodes (keep big fabrics whole), and in it
// the nodes with the fewest free cards.
std::optional<Candidate> FitGang(const Search& search, const Index::ShelfRef& ref,
                                 const Index::Shelf& shelf, uint32_t nodes,
                                 uint32_t cards) {
  size_t eligible_total = 0;
  for (size_t k = cards; k < shelf.buckets.size(); ++k) {
    eligible_total += shelf.buckets[k].size();
  }
  if (eligible_total < nodes) return std::nullopt;
  const Index::Provider& provider = search.index.providers()[ref.provider];
  std::map<uint32_t, std::vector<std::pair<uint32_t, uint32_t>>> by_fabric;
  for (size_t k = cards; k < shelf.buckets.size(); ++k) {
    for (uint32_t slot : shelf.buckets[k]) {
      const Index::Member& member = shelf.members[slot];
      const Index::Node& node = provider.nodes[member.node];
      if (Avoided(search, ref.provider, member.node)) continue;
      if (HostCards(search.request, node) < cards) continue;
      by_fabric[node.fabric].push_back({static_cast<uint32_t>(k), slot});
    }
  }
  const std::vector<std::pair<uint32_t, uint32_t>>* best = nullptr;
  for (const auto& [fabric, members] : by_fabric) {
    if (members.size() < nodes) continue;
    if (best == nullptr || members.size() < best->size()) best = &members;
  }
  if (best == nullptr) return std::nullopt;
  std::vector<std::pair<uint32_t, uint32_t>> chosen = *best;
  // Best fit inside the fabric, then node order for a stable rank order.
  std::sort(chosen.begin(), chosen.end(), [&](const auto& a, const auto& b) {
    const auto& na = shelf.members[a.second];
    const auto& nb = shelf.members[b.second];
    return std::tie(a.first, na.node) < std::tie(b.first, nb.node);
  });
  chosen.resize(nodes);
  std::sort(chosen.begin(), chosen.end(), [&](const auto& a, const auto& b) {
    return shelf.members[a.second].node < shelf.members[b.second].node;
  });
  Candidate candidate;
  candidate.ref = ref;
  candidate.cards = nodes * cards;
  candidate.fragmentation = static_cast<int64_t>((best->size() - nodes) * 1000);
  for (const auto& [k, slot] : chosen) {
    const Index::Member& member = shelf.members[slot];
    const Index::Node& node = provider.nodes[member.node];
    candidate.assignments.push_back(
        WholeCards(node, node.groups[member.group], cards));
    candidate.fragmentation += static_cast<int64_t>(k - cards);
  }
  return candidate;
}

// A share of one card: the partly used card with the least room that
// fits (packing), else a whole free card on the fullest node. With a
// workload to pack for: among a sample of both, the card whose node's
// expected fragmentation rises least (ties: that order).
std::optional<Candidate> FitShare(const Search& search,
                                  const Index::ShelfRef& ref,
                                  const Index::Shelf& shelf, uint32_t milli) {
  const Index::Provider& provider = search.index.providers()[ref.provider];
  const bool by_workload = !search.shapes.empty();
  auto make = [&](uint32_t slot, uint32_t device, int64_t fragmentation) {
    const Index::Member& member = shelf.members[slot];
    const Index::Node& node = provider.nodes[member.node];
    Candidate candidate;
    candidate.ref = ref;
    v1::NodeAssignment assignment;
    assignment.set_node(node.name);
    assignment.add_device_indices(node.groups[member.group].first_index + device);
    assignment.set_milli(milli);
    candidate.assignments.push_back(std::move(assignment));
    candidate.cards = 1;
    candidate.fragmentation = fragmentation;
    return candidate;
  };
  struct Best {
    uint32_t slot;
    uint32_t device;
    int64_t fragmentation;
  };
  std::optional<Best> best;  // built into a Candidate once, at the end
  auto consider = [&](uint32_t slot, uint32_t device) {
    const Index::Member& member = shelf.members[slot];
    const Index::Node& node = provider.nodes[member.node];
    const int64_t delta = FragmentDelta(search, node, member.group, device, milli, 1);
    if (!best || delta < best->fragmentation) best = Best{slot, device, delta};
  };
  int sampled = 0;
  for (auto it = shelf.partial.lower_bound({static_cast<uint16_t>(milli), 0, 0});
       it != shelf.partial.end(); ++it) {
    const auto& [free, slot, device] = *it;
    const Index::Member& member = shelf.members[slot];
    if (Avoided(search, ref.provider, member.node)) continue;
    if (HostCards(search.request, provider.nodes[member.node]) < 1) continue;
    if (!by_workload) return make(slot, device, free - milli);
    consider(slot, device);
    if (++sampled == kPartialCandidates) break;
  }
  for (size_t k = 1; k < shelf.buckets.size(); ++k) {
    sampled = 0;
    for (uint32_t slot : shelf.buckets[k]) {
      const Index::Member& member = shelf.members[slot];
      if (Avoided(search, ref.provider, member.node)) continue;
      if (HostCards(search.request, provider.nodes[member.node]) < 1) continue;
      const Index::CardGroup& group =
          provider.nodes[member.node].groups[member.group];
      for (uint32_t d = 0; d < group.count; ++d) {
        if (group.used_milli[d] != 0) continue;
        if (!by_workload) {
          return make(slot, d,
                      static_cast<int64_t>(kWholeCardMilli - milli + (k - 1) * 1000));
        }
        consider(slot, d);
        break;
      }
      if (by_workload && ++sampled == kCandidatesPerBucket) break;
    }
  }
  if (!best) return std::nullopt;
  return make(best->slot, best->device, best->fragmentation);
}

// Cards of this shelf adding up to the requested compute: one node if one
// has room, else one fabric, else any of the provider's nodes; fewest
// nodes first.
std::optional<Candidate> FitCompute(const Search& search,
                                    const Index::ShelfRef& ref,
                                    const Index::Shelf& shelf) {
  const uint64_t cards = CardsForCompute(
      search.request.a100_milli, search.index.catalog().reference_gflops(),
      shelf.dense_gflops);
  if (cards > shelf.free_whole_total) return std::nullopt;
  if (cards < shelf.buckets.size()) {
    if (auto one = FitOneNode(search, ref, shelf, cards, /*by_workload=*/false)) {
      return one;
    }
  }
  const Index::Provider& provider = search.index.providers()[ref.provider];
  struct Usable {
    uint64_t cards;
    uint32_t slot;
  };
  std::map<uint32_t, std::vector<Usable>> by_fabric;
  std::vector<Usable> all;
  for (size_t k = 1; k < shelf.buckets.size(); ++k) {
    for (uint32_t slot : shelf.buckets[k]) {
      const Index::Member& member = shelf.members[slot];
      const Index::Node& node = provider.nodes[member.node];
      if (Avoided(search, ref.provider, member.node)) continue;
      const uint64_t usable = std::min<uint64_t>(k, HostCards(search.request, node));
      if (usable == 0) continue;
      by_fabric[node.fabric].push_back({usable, slot});
      all.push_back({usable, slot});
    }
  }
  auto take = [&](std::vector<Usable> members,
                  uint64_t penalty) -> std::optional<Candidate> {
    std::sort(members.begin(), members.end(), [&](const Usable& a, const Usable& b) {
      return std::tie(b.cards, shelf.members[a.slot].node) <
             std::tie(a.cards, shelf.members[b.slot].node);
    });
    Candidate candidate;
    candidate.ref = ref;
    uint64_t left = cards;
    for (const Usable& usable : members) {
      if (left == 0) break;
      const Index::Member& member = shelf.members[usable.slot];
      const Index::Node& node = provider.nodes[member.node];
      const uint64_t here = std::min(left, usable.cards);
      candidate.assignments.push_back(
          WholeCards(node, node.groups[member.group], here));
      left -= here;
    }
    if (left > 0) return std::nullopt;
    candidate.cards = static_cast<uint32_t>(cards);
    candidate.fragmentation =
        static_cast<int64_t>(penalty + candidate.assignments.size() * 1000);
    return candidate;
  };
  const std::vector<Usable>* best = nullptr;
  uint64_t best_sum = UINT64_MAX;
  for (const auto& [fabric, members] : by_fabric) {
    uint64_t sum = 0;
    for (const auto& usable : members) sum += usable.cards;
    if (sum >= cards && sum < best_sum) {
      best = &members;
      best_sum = sum;
    }
  }
  if (best != nullptr) return take(*best, 0);
  // Across fabrics of one provider: allowed, but ranked behind one fabric.
  return take(std::move(all), 1'000'000);
}

std::optional<Candidate> FitInShelf(const Search& search,
                                    const Index::ShelfRef& ref,
                                    const Index::Shelf& shelf) {
  const PlacementRequest& request = search.request;
  switch (request.shape) {
    case RequestShape::kWholeCards:
      if (request.nodes <= 1) {
        return FitOneNode(search, ref, shelf, request.cards_per_node,
                          !search.shapes.empty());
      }
      return FitGang(search, ref, shelf, request.nodes, request.cards_per_node);
    case RequestShape::kFractional:
      return FitShare(search, ref, shelf, request.gpu_milli);
    case RequestShape::kComputeEquivalent:
      return FitCompute(search, ref, shelf);
  }
  return std::nullopt;
}

Index::Need NeedOf(const Search& search) {
  const PlacementRequest& request = search.request;
  Index::Need need;
  // Static bounds first: the tree skips shelves outside them wholesale.
  need.region_mask = ~uint64_t{0};
  if (search.regions != nullptr && !search.regions->empty()) {
    need.region_mask = 0;
    for (const auto& region : *search.regions) {
      need.region_mask |= search.index.RegionBit(region);
    }
  }
  need.class_mask = ~uint64_t{0};
  if (!request.vendor_classes.empty()) {
    need.class_mask = 0;
    for (const auto& vendor_class : request.vendor_classes) {
      need.class_mask |= search.index.ClassBit(vendor_class);
    }
  }
  need.kinds = request.preemptible ? (Index::kDedicated | Index::kSpare)
                                   : Index::kDedicated;
  need.max_memory_mib = request.min_memory_mib;
  need.min_price = request.max_price_per_card_hour > 0
                       ? request.max_price_per_card_hour
                       : INT64_MAX;
  switch (request.shape) {
    case RequestShape::kWholeCards:
      need.max_free_whole = request.cards_per_node;
      if (request.nodes > 1) {
        // n nodes with >= c free cards in one fabric; the tree knows, per
        // power of two 2^j <= c, the most such nodes in a fabric.
        int level = 0;
        while (level + 1 < Index::kGangLevels &&
               (1u << (level + 1)) <= request.cards_per_node) {
          ++level;
        }
        need.gang_nodes[static_cast<size_t>(level)] = request.nodes;
      }
      break;
    case RequestShape::kFractional:
      need.max_free_milli = request.gpu_milli;
      break;
    case RequestShape::kComputeEquivalent:
      need.max_free_whole = 1;
      break;
  }
  return need;
}

// For compute equivalence on one model: no shelf of it can do with fewer
// cards than its fastest card needs.
Index::Need ComputeNeed(const Search& search, Index::Need need, uint32_t model) {
  need.free_whole_total = CardsForCompute(
      search.request.a100_milli, search.index.catalog().reference_gflops(),
      search.index.ModelMaxGflops(model));
  return need;
}

// Lexicographic: cost, reliability (higher first), fragmentation, then
// names so that the choice is deterministic.
bool Better(const Search& search, const Candidate& a, const Candidate& b) {
  const Index::Shelf& sa = search.index.shelf(a.ref);
  const Index::Shelf& sb = search.index.shelf(b.ref);
  const auto& pa = search.index.providers()[a.ref.provider];
  const auto& pb = search.index.providers()[b.ref.provider];
  return std::tie(a.cost_key, pb.reliability_permille, a.fragmentation,
                  pa.name, sa.model) <
         std::tie(b.cost_key, pa.reliability_permille, b.fragmentation,
                  pb.name, sb.model);
}

int64_t CostKeyOf(const Search& search, const Index::Shelf& shelf,
                  uint32_t cards) {
  if (search.request.shape != RequestShape::kComputeEquivalent) {
    return shelf.cost_key;
  }
  const Int128 key = static_cast<Int128>(cards) * shelf.price_per_card_hour *
                     1'000'000 / std::max<uint32_t>(1, search.request.a100_milli);
  return key > INT64_MAX ? INT64_MAX : static_cast<int64_t>(key);
}

// Walks one rank order (a model's, or all models') from the cheapest shelf
// that may fit, keeping the best candidate.
void SearchOrder(const Search& search, uint32_t order_id, Index::Need need,
                 std::optional<Candidate>* best) {
  const Index& index = search.index;
  const auto& order = index.Order(order_id);
  // Compute equivalence: a shelf of this order needs at least
  // free_whole_total cards, so above a price per card it cannot beat the
  // best so far: let the tree skip those shelves.
  auto tighten = [&]() {
    if (search.request.shape != RequestShape::kComputeEquivalent || !*best ||
        need.free_whole_total == 0) {
      return;
    }
    const Int128 bound = static_cast<Int128>((*best)->cost_key) *
                         search.request.a100_milli /
                         (static_cast<Int128>(need.free_whole_total) * 1'000'000);
    need.min_price = std::min<int64_t>(
        need.min_price, bound > INT64_MAX ? INT64_MAX : static_cast<int64_t>(bound));
  };
  tighten();
  int tied = 0;
  for (int pos = index.FindShelf(order_id, 0, need); pos >= 0;
       pos = index.FindShelf(order_id, pos + 1, need)) {
    const Index::ShelfRef& ref = order[static_cast<size_t>(pos)];
    const Index::Shelf& shelf = index.shelf(ref);
    // Shelves are in cost order, and a shelf's own cost is a lower bound on
    // any placement on it (a compute-equivalence placement can only cost
    // more per A100-hour asked, by rounding cards up): stop once nothing
    // later can win. Equal-cost shelves are compared on reliability and
    // fragmentation, at most kMaxTiedShelves of them.
    if (search.request.max_price_per_a100_hour > 0 &&
        shelf.cost_key > search.request.max_price_per_a100_hour * 1000) {
      break;
    }
    if (*best && (shelf.cost_key > (*best)->cost_key || tied >= kMaxTiedShelves)) {
      break;
    }
    if (!ShelfPasses(search, ref, shelf)) continue;
    if (search.request.shape == RequestShape::kComputeEquivalent && *best) {
      // The placement's cost is known before choosing nodes: skip the
      // shelves that cannot beat the best so far.
      const uint64_t cards = CardsForCompute(
          search.request.a100_milli, index.catalog().reference_gflops(),
          shelf.dense_gflops);
      if (cards > shelf.free_whole_total ||
          CostKeyOf(search, shelf, static_cast<uint32_t>(cards)) >
              (*best)->cost_key) {
        continue;
      }
    }
    auto candidate = FitInShelf(search, ref, shelf);
    if (!candidate) continue;
    candidate->cost_key = CostKeyOf(search, shelf, candidate->cards);
    ++tied;
    if (!*best || Better(search, *candidate, **best)) *best = std::move(candidate);
    tighten();
  }
}

std::optional<Candidate> Best(const Search& search) {
  const Index& index = search.index;
  const Index::Need need = NeedOf(search);
  std::optional<Candidate> best;
  if (search.request.models.empty() &&
      search.request.shape != RequestShape::kComputeEquivalent) {
    // Any model: one walk over the all-models order.
    SearchOrder(search, Index::kAllModels, need, &best);
    return best;
  }
  for (uint32_t model : search.models) {
    if (!search.request.vendor_classes.empty()) {
      const auto& classes = index.ModelClasses(model);
      if (std::none_of(search.request.vendor_classes.begin(),
                       search.request.vendor_classes.end(),
                       [&](const std::string& c) { return classes.count(c) != 0; })) {
        continue;  // no shelf of this model can have the class
      }
    }
    SearchOrder(search, model,
                search.request.shape == RequestShape::kComputeEquivalent
                    ? ComputeNeed(search, need, model)
                    : need,
                &best);
  }
  return best;
}

Placement ToPlacement(const Search& search, const Candidate& candidate) {
  const Index& index = search.index;
  const Index::Shelf& shelf = index.shelf(candidate.ref);
  const Index::Provider& provider = index.providers()[candidate.ref.provider];
  Placement placement;
  placement.provider = provider.name;
  placement.model = index.model_name(shelf.model);
  placement.assignments = candidate.assignments;
  placement.currency = provider.currency;
  placement.spare = shelf.spare;
  placement.cards = candidate.cards;
  placement.compute_basis = shelf.compute_basis;
  placement.cost_key = candidate.cost_key;
  placement.reliability_permille = provider.reliability_permille;
  placement.fragmentation = candidate.fragmentation;
  if (search.request.shape == RequestShape::kFractional) {
    const int64_t milli = search.request.gpu_milli;
    placement.price_per_card_hour =
        (shelf.price_per_card_hour * milli + 500) / 1000;
    placement.a100_milli = static_cast<uint32_t>(
        uint64_t{shelf.a100_milli_per_card} * search.request.gpu_milli / 1000);
  } else {
    placement.price_per_card_hour = shelf.price_per_card_hour;
    placement.a100_milli = static_cast<uint32_t>(std::min<uint64_t>(
        UINT32_MAX, uint64_t{shelf.a100_milli_per_card} * candidate.cards));
  }
  return placement;
}

// Static facts about whether a shelf's shape could ever hold the request
// (all its cards free). `nodes_of` gives the groups to consider.
bool ShapeFits(const PlacementRequest& request, const Index& index,
               const Index::Provider& provider, uint64_t dense_gflops,
               const std::vector<std::pair<uint32_t, uint32_t>>& groups) {
  auto host_ok = [&](const Index::Node& node, uint64_t cards) {
    if (request.cpu_milli_per_card > 0 &&
        node.cpu_milli_total < uint64_t{request.cpu_milli_per_card} * cards) {
      return false;
    }
    return request.host_memory_mib_per_card == 0 ||
           node.memory_mib_total >= request.host_memory_mib_per_card * cards;
  };
  switch (request.shape) {
    case RequestShape::kFractional:
      for (const auto& [node, group] : groups) {
        if (host_ok(provider.nodes[node], 1)) return true;
      }
      return false;
    case RequestShape::kWholeCards: {
      std::map<uint32_t, uint32_t> per_fabric;
      for (const auto& [node, group] : groups) {
        const Index::Node& n = provider.nodes[node];
        if (n.groups[group].count < request.cards_per_node) continue;
        if (!host_ok(n, request.cards_per_node)) continue;
        if (++per_fabric[n.fabric] >= std::max<uint32_t>(1, request.nodes)) {
          return true;
        }
      }
      return false;
    }
    case RequestShape::kComputeEquivalent: {
      const uint64_t cards = CardsForCompute(
          request.a100_milli, index.catalog().reference_gflops(), dense_gflops);
      uint64_t total = 0;
      for (const auto& [node, group] : groups) {
        const Index::Node& n = provider.nodes[node];
        uint64_t usable = n.groups[group].count;
        if (request.cpu_milli_per_card > 0) {
          usable = std::min<uint64_t>(usable,
                                      n.cpu_milli_total / request.cpu_milli_per_card);
        }
        if (request.host_memory_mib_per_card > 0) {
          usable = std::min<uint64_t>(
              usable, n.memory_mib_total / request.host_memory_mib_per_card);
        }
        total += usable;
        if (total >= cards) return true;
      }
      return false;
    }
  }
  return false;
}

std::vector<std::pair<uint32_t, uint32_t>> GroupsOf(const Index::Shelf& shelf) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  out.reserve(shelf.members.size());
  for (const auto& member : shelf.members) out.push_back({member.node, member.group});
  return out;
}

}  // namespace

PlacementRequest PlacementRequest::FromSpec(const v1::JobSpec& spec) {
  PlacementRequest request;
  if (spec.a100_equivalents_milli() > 0) {
    request.shape = RequestShape::kComputeEquivalent;
    request.a100_milli = spec.a100_equivalents_milli();
    request.nodes = 0;
    request.cards_per_node = 0;
  } else if (spec.gpu_milli() > 0) {
    request.shape = RequestShape::kFractional;
    request.gpu_milli = spec.gpu_milli();
    request.nodes = 1;
    request.cards_per_node = 1;
  } else {
    request.nodes = std::max<uint32_t>(1, spec.nodes());
    request.cards_per_node = spec.cards_per_node();
  }
  request.models.assign(spec.accelerator_models().begin(),
                        spec.accelerator_models().end());
  request.vendor_classes.assign(spec.vendor_classes().begin(),
                                spec.vendor_classes().end());
  request.min_memory_mib = spec.min_memory_mib();
  request.cpu_milli_per_card = spec.cpu_milli_per_card();
  request.host_memory_mib_per_card = spec.host_memory_mib_per_card();
  request.allowed_regions.assign(spec.allowed_regions().begin(),
                                 spec.allowed_regions().end());
  request.preferred_regions.assign(spec.preferred_regions().begin(),
                                   spec.preferred_regions().end());
  request.excluded_providers.insert(spec.excluded_providers().begin(),
                                    spec.excluded_providers().end());
  request.max_price_per_card_hour = spec.max_price_per_card_hour();
  request.max_price_per_a100_hour = spec.max_price_per_a100_hour();
  request.preemptible = spec.preemptible();
  request.max_duration_s = spec.max_duration_s();
  request.network_access = spec.network_access();
  return request;
}

uint64_t PlacementRequest::DemandMilli() const {
  switch (shape) {
    case RequestShape::kWholeCards:
      return uint64_t{nodes} * cards_per_node * kWholeCardMilli;
    case RequestShape::kFractional:
      return gpu_milli;
    case RequestShape::kComputeEquivalent:
      return a100_milli;
  }
  return 0;
}

std::string PlacementRequest::Describe() const {
  std::string what;
  switch (shape) {
    case RequestShape::kWholeCards:
      what = std::to_string(nodes) + " node(s) x " +
             std::to_string(cards_per_node) + " card(s)";
      break;
    case RequestShape::kFractional:
      what = Milli(gpu_milli) + " of a card";
      break;
    case RequestShape::kComputeEquivalent:
      what = Milli(a100_milli) + " A100-equivalents";
      break;
  }
  if (!models.empty()) what += " of " + Join(models);
  return what;
}

std::optional<Placement> PlacementMatcher::Match(
    const PlacementRequest& request, const CapacityIndex& capacity,
    const MatchContext& context) const {
  Search search = Prepare(request, capacity, context);
  if (search.models.empty()) return std::nullopt;
  if (!request.preferred_regions.empty()) {
    std::vector<std::string> preferred;
    for (const auto& region : request.preferred_regions) {
      if (request.allowed_regions.empty() ||
          Contains(request.allowed_regions, region)) {
        preferred.push_back(region);
      }
    }
    if (!preferred.empty()) {
      search.regions = &preferred;
      if (auto found = Best(search)) return ToPlacement(search, *found);
    }
  }
  search.regions = &request.allowed_regions;
  auto found = Best(search);
  if (!found) return std::nullopt;
  return ToPlacement(search, *found);
}

std::string PlacementMatcher::ExplainNoFit(const PlacementRequest& request,
                                           const CapacityIndex& capacity,
                                           const MatchContext& context) const {
  Search search = Prepare(request, capacity, context);
  search.regions = &request.allowed_regions;
  // Each stage counts the active offers that pass it and every stage
  // before it; the first stage nothing passes names the reason.
  enum Stage { kModel, kClassMemory, kRegion, kExcluded, kPolicy, kSpare, kPrice,
               kShape, kStages };
  std::string refusal;  // the first site policy that refused it
  size_t passed[kStages] = {};
  for (uint32_t model : search.models) {
    // One offer that passes every stage settles it: capacity is the reason.
    if (passed[kShape] > 0) break;
    for (const auto& ref : capacity.Order(model)) {
      if (passed[kShape] > 0) break;
      const auto& shelf = capacity.shelf(ref);
      const auto& provider = capacity.providers()[ref.provider];
      ++passed[kModel];
      if (!ClassAndMemoryPass(request, shelf)) continue;
      ++passed[kClassMemory];
      if (!request.allowed_regions.empty() &&
          !Contains(request.allowed_regions, provider.region)) {
        continue;
      }
      ++passed[kRegion];
      if (search.excluded.count(ref.provider) != 0) continue;
      ++passed[kExcluded];
      if (!PolicyIsOpen(provider.registration.policy())) {
        Status admitted =
            CheckSitePolicy(provider.registration.policy(), SubjectOf(request));
        if (!admitted.ok()) {
          if (refusal.empty()) refusal = provider.name + ": " + std::string(admitted.message());
          continue;
        }
      }
      ++passed[kPolicy];
      if (shelf.spare && !request.preemptible) continue;
      ++passed[kSpare];
      if (!PricePasses(request, shelf)) continue;
      ++passed[kPrice];
      if (!ShapeFits(request, capacity, provider, shelf.dense_gflops,
                     GroupsOf(shelf))) {
        continue;
      }
      ++passed[kShape];
    }
  }
  std::string what = request.models.empty() ? "any accelerator"
                                            : Join(request.models);
  if (passed[kModel] == 0) {
    return "no online provider offers " + what;
  }
  if (passed[kClassMemory] == 0) {
    std::string constraint;
    if (!request.vendor_classes.empty()) {
      constraint = "vendor class " + Join(request.vendor_classes);
    }
    if (request.min_memory_mib > 0) {
      if (!constraint.empty()) constraint += " and ";
      constraint += ">= " + std::to_string(request.min_memory_mib) +
                    " MiB per card";
    }
    return "no online provider offers " + what + " with " + constraint;
  }
  if (passed[kRegion] == 0) {
    return "no matching offer in the allowed region(s) " +
           Join(request.allowed_regions);
  }
  if (passed[kExcluded] == 0) {
    return "every matching offer is from an excluded provider";
  }
  if (passed[kPolicy] == 0) {
    return "no site with a matching offer admits the job (" + refusal + ")";
  }
  if (passed[kSpare] == 0) {
    return "the matching capacity is spare (reclaimable) and the job is not "
           "preemptible";
  }
  if (passed[kPrice] == 0) {
    return "every matching offer is above the price ceiling";
  }
  if (passed[kShape] == 0) {
    std::string shape;
    switch (request.shape) {
      case RequestShape::kWholeCards:
        shape = "has " + std::to_string(request.nodes) + " node(s) with " +
                std::to_string(request.cards_per_node) +
                " card(s) of a matching model in one fabric";
        break;
      case RequestShape::kFractional:
        shape = "has a node with the host resources asked per card";
        break;
      case RequestShape::kComputeEquivalent:
        shape = "has cards of one matching model adding up to " +
                Milli(request.a100_milli) + " A100-equivalents";
        break;
    }
    if (request.cpu_milli_per_card > 0 || request.host_memory_mib_per_card > 0) {
      shape += " (with the CPU/memory asked per card)";
    }
    return "no online provider " + shape;
  }
  return "waiting for capacity: " + request.Describe() +
         " not free on any matching offer now";
}

Status PlacementMatcher::CheckEverFits(const PlacementRequest& request,
                                       const CapacityIndex& capacity) const {
  if (capacity.providers().empty()) return OkStatus();
  Search search = Prepare(request, capacity, MatchContext{});
  std::set<uint32_t> models(search.models.begin(), search.models.end());
  uint32_t largest = 0;  // for the message: most eligible nodes in a fabric
  std::string refusal;   // the first site policy that refused it
  for (uint32_t p = 0; p < capacity.providers().size(); ++p) {
    const auto& provider = capacity.providers()[p];
    if (search.excluded.count(p) != 0) continue;
    if (!request.allowed_regions.empty() &&
        !Contains(request.allowed_regions, provider.region)) {
      continue;
    }
    if (!PolicyIsOpen(provider.registration.policy())) {
      Status admitted = CheckSitePolicy(provider.registration.policy(), SubjectOf(request));
      if (!admitted.ok()) {
        if (refusal.empty()) refusal = provider.name + ": " + std::string(admitted.message());
        continue;
      }
    }
    // Groups by (model, memory, figure), whatever their offer today: spare
    // and withdrawn capacity may be offered again.
    std::map<std::pair<uint32_t, uint64_t>,
             std::vector<std::pair<uint32_t, uint32_t>>> groups;
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> gflops;
    for (uint32_t n = 0; n < provider.nodes.size(); ++n) {
      const auto& node = provider.nodes[n];
      for (uint32_t g = 0; g < node.groups.size(); ++g) {
        const auto& group = node.groups[g];
        if (models.count(group.model) == 0) continue;
        if (group.memory_mib < request.min_memory_mib) continue;
        groups[{group.model, group.memory_mib}].push_back({n, g});
      }
    }
    for (const auto& [key, list] : groups) {
      // The figures and class come from the catalog (or the provider).
      v1::Accelerator accelerator;
      for (const auto& node : provider.registration.nodes()) {
        for (const auto& a : node.accelerators()) {
          if (a.model() == capacity.model_name(key.first) &&
              a.memory_mib() == key.second) {
            accelerator = a;
          }
        }
      }
      auto compute = capacity.catalog().Resolve(accelerator);
      if (!compute.ok()) continue;
      if (!request.vendor_classes.empty() &&
          !Contains(request.vendor_classes, compute->vendor_class)) {
        continue;
      }
      if (ShapeFits(request, capacity, provider, compute->dense_gflops, list)) {
        return OkStatus();
      }
      std::map<uint32_t, uint32_t> per_fabric;
      for (const auto& [n, g] : list) {
        if (provider.nodes[n].groups[g].count >= request.cards_per_node) {
          largest = std::max(largest, ++per_fabric[provider.nodes[n].fabric]);
        }
      }
    }
  }
  if (!refusal.empty() && largest == 0) {
    return FailedPreconditionError(
        "can never fit: no known site admits the job by its policy (" + refusal + ")");
  }
  std::string detail;
  if (request.shape == RequestShape::kWholeCards && request.nodes > 1) {
    detail = "; the largest fabric has " + std::to_string(largest) +
             " node(s) with " + std::to_string(request.cards_per_node) +
             " matching card(s)";
  }
  return FailedPreconditionError(
      "can never fit: no known provider could hold " + request.Describe() +
      " within the request's constraints even with all its cards free" +
      detail);
}

}  // namespace computenet::matching
