// CapacityIndex: the broker's capacity snapshot, indexed so that a placement
// decision does not scan every node. It holds every provider that ever
// registered (online or not), their nodes, fabrics and cards, the price and
// normalized compute of each (provider, model) offer, and which device
// shares each placed job holds (per card, in thousandths, so fractional jobs
// can share a card).
//
// Structure (docs/matching.md, "Index"):
//  - a *shelf* is the cards of one provider, one model, one memory size and
//    one offer kind (dedicated or spare): one price and one compute figure,
//    so every placement lies on exactly one shelf;
//  - per model, and once more across all models, the active shelves
//    (provider online, shelf not empty) are kept sorted by (cost per
//    A100-hour, provider name) with a segment tree of their free capacity
//    and static facts (regions, vendor classes, offer kinds, memory, price),
//    so "the cheapest shelf with room for C cards in region R" is
//    O(log shelves);
//  - inside a shelf, card groups are bucketed by free whole cards (best fit
//    is the first non-empty bucket >= C) and partially used cards are kept
//    ordered by free thousandths (best-fit packing of fractional jobs).
//
// Allocations are recorded by node name and device index, so they survive a
// provider re-registering (or changing prices or spare capacity): its shelves
// are rebuilt and its allocations applied again.
//
// Thread safety: not thread-safe, not even for concurrent const readers (a
// read may rebuild the cached rank orders); owned by one thread (the broker's
// core loop, or a benchmark). Matchers read it through const methods only.
#ifndef COMPUTENET_MATCHING_CAPACITY_INDEX_H_
#define COMPUTENET_MATCHING_CAPACITY_INDEX_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/matching/accelerator_catalog.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::matching {

inline constexpr uint32_t kWholeCardMilli = 1000;
// Reliability of a provider without history (see ProviderStats).
inline constexpr uint32_t kDefaultReliabilityPermille = 500;

// What one job holds: by names, so it can be applied again after the
// provider's nodes were re-indexed.
struct JobAllocation {
  std::string provider;
  std::vector<v1::NodeAssignment> assignments;  // milli 0 = whole cards
  uint32_t cpu_milli_per_card = 0;
  uint64_t host_memory_mib_per_card = 0;
};

class CapacityIndex {
 public:
  // --- read-only structure, for matchers ------------------------------------
  struct CardGroup {
    uint32_t model = 0;        // model id (see model_name)
    uint32_t first_index = 0;  // device indices first_index .. +count-1
    uint32_t count = 0;
    uint64_t memory_mib = 0;
    std::vector<uint16_t> used_milli;  // per device, 0..1000
    uint32_t free_whole = 0;           // devices with used_milli == 0
    uint32_t shelf = UINT32_MAX;       // within the provider; none if withdrawn
    uint32_t slot = 0;                 // position in the shelf's members
  };
  struct Node {
    std::string name;
    uint32_t fabric = 0;  // within the provider
    v1::CapacityOffer offer = v1::CAPACITY_OFFER_DEDICATED;
    uint64_t cpu_milli_total = 0;  // 0 = not declared
    uint64_t cpu_milli_used = 0;
    uint64_t memory_mib_total = 0;  // 0 = not declared
    uint64_t memory_mib_used = 0;
    std::vector<CardGroup> groups;
  };
  struct Fabric {
    std::string id;
    std::vector<uint32_t> nodes;
  };
  struct Member {  // one card group on a shelf
    uint32_t node = 0;
    uint32_t group = 0;
    uint32_t bucket_pos = 0;   // position in buckets[free_whole]
    uint32_t fabric_slot = 0;  // index into the shelf's fabric counters
  };
  // Gang room is tracked for free-card thresholds 1, 2, 4, ... 64.
  static constexpr int kGangLevels = 7;
  struct Shelf {
    uint32_t model = 0;
    uint64_t memory_mib = 0;
    bool spare = false;
    int64_t price_per_card_hour = 0;
    uint64_t dense_gflops = 0;
    uint32_t a100_milli_per_card = 0;
    std::string vendor_class;
    std::string compute_basis;
    // Price per A100-equivalent-hour, in thousandths of a minor unit:
    // price * reference_gflops * 1000 / dense_gflops (integer, exact order).
    int64_t cost_key = 0;
    uint32_t max_cards_per_group = 0;
    std::vector<Member> members;
    // buckets[k]: member slots with exactly k free whole cards.
    std::vector<std::vector<uint32_t>> buckets;
    // Partially used cards: (free milli, member slot, device offset).
    std::set<std::tuple<uint16_t, uint32_t, uint32_t>> partial;
    uint64_t free_whole_total = 0;
    // Positions in the cached orders (rebuilt lazily, see OrderOf).
    mutable int32_t order_pos = -1;  // in its model's order; -1 inactive
    mutable int32_t all_pos = -1;    // in the all-models order
    uint64_t region_bit = 0;
    uint64_t class_bit = 0;
    // Per fabric of the shelf, per level j: members with >= 2^j free whole
    // cards; gang_hist[j][v] counts fabrics at v, gang_max[j] is the most.
    std::vector<std::array<uint32_t, kGangLevels>> fabric_counts;
    std::array<std::vector<uint32_t>, kGangLevels> gang_hist;
    std::array<uint32_t, kGangLevels> gang_max{};
  };
  struct Provider {
    std::string name;
    std::string region;
    std::string currency;
    bool online = false;
    uint32_t reliability_permille = kDefaultReliabilityPermille;
    v1::RegisterProvider registration;
    std::vector<Node> nodes;
    std::vector<Fabric> fabrics;
    std::vector<Shelf> shelves;
    std::unordered_map<std::string, uint32_t> node_by_name;
  };
  struct ShelfRef {
    uint32_t provider = 0;
    uint32_t shelf = 0;
  };
  // What a segment-tree node knows about the shelves below it: free room
  // (changes with allocations) and static facts that let a search skip
  // whole subtrees of shelves the request may not use.
  struct Room {
    uint32_t max_free_whole = 0;    // most free whole cards in one group
    uint32_t max_free_milli = 0;    // largest free share of one card
    uint64_t free_whole_total = 0;  // most free whole cards on one shelf
    uint64_t region_mask = 0;       // regions present (see RegionBit)
    uint64_t class_mask = 0;        // vendor classes present (ClassBit)
    uint8_t kinds = 0;              // kDedicated | kSpare present
    uint64_t max_memory_mib = 0;    // largest card memory
    int64_t min_price = INT64_MAX;  // lowest price per card-hour
    // Most nodes in one fabric with >= 2^j free whole cards.
    std::array<uint32_t, kGangLevels> gang_nodes{};
  };
  static constexpr uint8_t kDedicated = 1;
  static constexpr uint8_t kSpare = 2;
  // A search's bounds, in the same struct: free fields and max_memory_mib
  // are lower bounds, min_price an upper bound, masks must intersect.
  using Need = Room;

  explicit CapacityIndex(std::shared_ptr<const AcceleratorCatalog> catalog =
                             AcceleratorCatalog::BuiltIn());

  // --- providers -----------------------------------------------------------
  // Adds or replaces a provider's nodes, prices and offers; keeps its
  // online flag and reliability, and applies its jobs' allocations again
  // (dropping any whose node or device no longer exists). INVALID_ARGUMENT
  // if the catalog cannot resolve one of its models (nothing changes then).
  Status UpsertProvider(const std::string& name,
                        const v1::RegisterProvider& registration);
  // No-ops for unknown providers.
  void SetOnline(const std::string& name, bool online);
  void SetReliability(const std::string& name, uint32_t permille);

  // Rank orders are rebuilt lazily, on the first read after a change; a
  // BulkUpdate also rebuilds them once at its end, so the first match after
  // loading thousands of providers does not pay for it.
  class BulkUpdate {
   public:
    explicit BulkUpdate(CapacityIndex& index);
    ~BulkUpdate();
    BulkUpdate(const BulkUpdate&) = delete;
    BulkUpdate& operator=(const BulkUpdate&) = delete;

   private:
    CapacityIndex& index_;
  };

  // --- allocations ---------------------------------------------------------
  // Records what a job holds and takes it from the free capacity.
  // ALREADY_EXISTS if the job holds something already; NOT_FOUND for an
  // unknown provider; FAILED_PRECONDITION if a share would exceed a card
  // (nothing is taken then). Unknown nodes/devices are recorded but take
  // nothing (the provider may re-register with them).
  Status Allocate(const std::string& job_id, const JobAllocation& allocation);
  // Gives the job's capacity back; returns what it held (nullopt if none).
  std::optional<JobAllocation> Release(const std::string& job_id);
  const JobAllocation* FindAllocation(const std::string& job_id) const;
  // The jobs holding capacity on a provider (empty for an unknown one).
  const std::set<std::string>& JobsOn(const std::string& provider) const;

  // --- reading -----------------------------------------------------------
  const AcceleratorCatalog& catalog() const { return *catalog_; }
  // The same catalog, to build another index that ranks alike.
  const std::shared_ptr<const AcceleratorCatalog>& shared_catalog() const {
    return catalog_;
  }
  const std::vector<Provider>& providers() const { return providers_; }
  std::optional<uint32_t> ProviderId(const std::string& name) const;
  // Order()/FindShelf() over the shelves of every model.
  static constexpr uint32_t kAllModels = UINT32_MAX;
  // Model ids by registered model name; nullopt if no provider has it.
  std::optional<uint32_t> ModelId(const std::string& model) const;
  const std::string& model_name(uint32_t model) const {
    return model_names_[model];
  }
  size_t model_count() const { return model_names_.size(); }
  // Active shelves of a model (or kAllModels) in rank order.
  const std::vector<ShelfRef>& Order(uint32_t model) const;
  // The first position >= from in the model's order whose shelf may meet
  // `need`, or -1. O(log shelves) per result.
  int FindShelf(uint32_t model, int from, const Need& need) const;
  // The bit for a region in Room::region_mask; regions beyond the 63rd
  // share bit 63 (the search then checks them exactly). 0 if unknown.
  uint64_t RegionBit(const std::string& region) const;
  // Likewise for vendor classes in Room::class_mask.
  uint64_t ClassBit(const std::string& vendor_class) const;
  // The highest FLOPS any provider's card of the model has (a bound for
  // compute-equivalence searches).
  uint64_t ModelMaxGflops(uint32_t model) const {
    return model_max_gflops_[model];
  }
  // Vendor classes offered for a model by any provider.
  const std::set<std::string>& ModelClasses(uint32_t model) const {
    return model_classes_[model];
  }
  const Shelf& shelf(const ShelfRef& ref) const {
    return providers_[ref.provider].shelves[ref.shelf];
  }

  // Changes whenever providers, prices, offers or online flags change (not
  // on allocations or reliability): cached explanations of why a job waits
  // are valid while it stays the same.
  uint64_t offer_generation() const { return offer_generation_; }
  // Changes only when some provider's nodes or cards change.
  uint64_t topology_generation() const { return topology_generation_; }

  struct CardTotals {
    uint64_t cards = 0;            // on nodes that are offered, online
    uint64_t allocated_milli = 0;  // thousandths of those cards held
  };
  CardTotals Totals() const;

 private:
  struct ModelOrder {
    std::vector<ShelfRef> shelves;
    std::vector<Room> tree;  // segment tree over shelves, 1-based
    size_t leaves = 0;
    std::set<std::pair<uint32_t, uint32_t>> all;  // every shelf of the model
    bool dirty = false;
  };

  uint32_t InternModel(const std::string& model);
  ModelOrder& OrderOf(uint32_t model) {
    return model == kAllModels ? all_order_ : orders_[model];
  }
  // Rebuilds the order first if a change left it dirty.
  const ModelOrder& OrderOf(uint32_t model) const {
    ModelOrder& order = model == kAllModels ? all_order_ : orders_[model];
    if (order.dirty) RebuildOrder(model);
    return order;
  }
  void GangCountsChanged(Shelf& shelf, uint32_t fabric_slot, uint32_t old_free,
                         uint32_t new_free);
  Status BuildProvider(Provider& provider,
                       const v1::RegisterProvider& registration);
  bool ApplyAllocation(Provider& provider, const JobAllocation& allocation,
                       int sign, bool check_only);
  void GroupChanged(uint32_t provider, uint32_t node, uint32_t group,
                    uint32_t old_free_whole);
  void UpdateShelfRoom(uint32_t provider, uint32_t shelf);
  Room RoomOf(const Shelf& shelf) const;
  void MarkModelsDirty(const Provider& provider);
  void RebuildDirtyOrders();
  void RebuildOrder(uint32_t model) const;
  void UpdateTreeLeaf(ModelOrder& order, size_t pos, const Room& room);
  int FindInTree(const ModelOrder& order, size_t node, size_t lo, size_t hi,
                 size_t from, const Need& need) const;

  std::shared_ptr<const AcceleratorCatalog> catalog_;
  std::vector<Provider> providers_;
  std::unordered_map<std::string, uint32_t> provider_by_name_;
  std::vector<std::string> model_names_;
  std::unordered_map<std::string, uint32_t> model_by_name_;
  // The rank orders are a cache of the shelves: a change marks them dirty
  // and the first read after it rebuilds them, so a burst of registrations
  // (thousands of providers after a restart) costs one sort, not one each.
  mutable std::vector<ModelOrder> orders_;
  mutable ModelOrder all_order_;
  std::vector<std::set<std::string>> model_classes_;  // by model id
  std::vector<uint64_t> model_max_gflops_;            // by model id
  std::unordered_map<std::string, uint32_t> region_bits_;
  std::unordered_map<std::string, uint32_t> class_bits_;
  std::map<std::string, JobAllocation> allocations_;
  // Jobs per provider, to apply again after an upsert.
  std::map<std::string, std::set<std::string>> jobs_by_provider_;
  int bulk_depth_ = 0;
  uint64_t offer_generation_ = 1;
  uint64_t topology_generation_ = 1;
};

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_CAPACITY_INDEX_H_
