#include "computenet/matching/capacity_index.h"

#include <algorithm>

namespace computenet::matching {

// Wide intermediates keep products of prices and FLOPS exact.
__extension__ using Int128 = __int128;
namespace {

constexpr uint32_t kNoShelf = UINT32_MAX;

bool RoomFits(const CapacityIndex::Room& room,
              const CapacityIndex::Need& need) {
  return room.max_free_whole >= need.max_free_whole &&
         room.max_free_milli >= need.max_free_milli &&
         room.free_whole_total >= need.free_whole_total &&
         (room.region_mask & need.region_mask) != 0 &&
         (room.class_mask & need.class_mask) != 0 &&
         (room.kinds & need.kinds) != 0 &&
         room.max_memory_mib >= need.max_memory_mib &&
         room.min_price <= need.min_price &&
         std::equal(need.gang_nodes.begin(), need.gang_nodes.end(),
                    room.gang_nodes.begin(),
                    [](uint32_t need_nodes, uint32_t room_nodes) {
                      return room_nodes >= need_nodes;
                    });
}

CapacityIndex::Room MaxRoom(const CapacityIndex::Room& a,
                            const CapacityIndex::Room& b) {
  CapacityIndex::Room out;
  out.max_free_whole = std::max(a.max_free_whole, b.max_free_whole);
  out.max_free_milli = std::max(a.max_free_milli, b.max_free_milli);
  out.free_whole_total = std::max(a.free_whole_total, b.free_whole_total);
  out.region_mask = a.region_mask | b.region_mask;
  out.class_mask = a.class_mask | b.class_mask;
  out.kinds = a.kinds | b.kinds;
  for (int j = 0; j < CapacityIndex::kGangLevels; ++j) {
    out.gang_nodes[j] = std::max(a.gang_nodes[j], b.gang_nodes[j]);
  }
  out.max_memory_mib = std::max(a.max_memory_mib, b.max_memory_mib);
  out.min_price = std::min(a.min_price, b.min_price);
  return out;
}

// price * reference / gflops in thousandths of a minor unit, saturating.
int64_t CostKey(int64_t price, uint64_t reference_gflops, uint64_t gflops) {
  if (gflops == 0) return INT64_MAX;
  Int128 value = static_cast<Int128>(price) * reference_gflops * 1000 /
                 static_cast<Int128>(gflops);
  return value > INT64_MAX ? INT64_MAX : static_cast<int64_t>(value);
}

}  // namespace

CapacityIndex::CapacityIndex(std::shared_ptr<const AcceleratorCatalog> catalog)
    : catalog_(catalog ? std::move(catalog) : AcceleratorCatalog::BuiltIn()) {}

CapacityIndex::BulkUpdate::BulkUpdate(CapacityIndex& index) : index_(index) {
  ++index_.bulk_depth_;
}

CapacityIndex::BulkUpdate::~BulkUpdate() {
  if (--index_.bulk_depth_ == 0) index_.RebuildDirtyOrders();
}

uint32_t CapacityIndex::InternModel(const std::string& model) {
  auto [it, added] =
      model_by_name_.emplace(model, static_cast<uint32_t>(model_names_.size()));
  if (added) {
    model_names_.push_back(model);
    orders_.emplace_back();
    model_classes_.emplace_back();
    model_max_gflops_.push_back(0);
  }
  return it->second;
}

uint64_t CapacityIndex::ClassBit(const std::string& vendor_class) const {
  auto it = class_bits_.find(vendor_class);
  return it == class_bits_.end() ? 0 : uint64_t{1} << it->second;
}

uint64_t CapacityIndex::RegionBit(const std::string& region) const {
  auto it = region_bits_.find(region);
  return it == region_bits_.end() ? 0 : uint64_t{1} << it->second;
}

std::optional<uint32_t> CapacityIndex::ProviderId(
    const std::string& name) const {
  auto it = provider_by_name_.find(name);
  if (it == provider_by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> CapacityIndex::ModelId(const std::string& model) const {
  auto it = model_by_name_.find(model);
  if (it == model_by_name_.end()) return std::nullopt;
  return it->second;
}

const std::vector<CapacityIndex::ShelfRef>& CapacityIndex::Order(
    uint32_t model) const {
  return OrderOf(model).shelves;
}

Status CapacityIndex::UpsertProvider(const std::string& name,
                                     const v1::RegisterProvider& registration) {
  CN_RETURN_IF_ERROR(catalog_->CheckRegistration(registration));
  auto [it, added] =
      provider_by_name_.emplace(name, static_cast<uint32_t>(providers_.size()));
  if (added) {
    providers_.emplace_back();
    providers_.back().name = name;
  }
  const uint32_t id = it->second;
  Provider& provider = providers_[id];
  // The old shelves leave their models' orders.
  for (uint32_t s = 0; s < provider.shelves.size(); ++s) {
    ModelOrder& order = orders_[provider.shelves[s].model];
    order.all.erase({id, s});
    order.dirty = true;
    all_order_.all.erase({id, s});
  }
  all_order_.dirty = true;
  CN_RETURN_IF_ERROR(BuildProvider(provider, registration));
  for (uint32_t s = 0; s < provider.shelves.size(); ++s) {
    ModelOrder& order = orders_[provider.shelves[s].model];
    order.all.insert({id, s});
    order.dirty = true;
    all_order_.all.insert({id, s});
  }
  // Jobs placed here hold their cards again on the new structure.
  auto jobs = jobs_by_provider_.find(name);
  if (jobs != jobs_by_provider_.end()) {
    for (const auto& job_id : jobs->second) {
      auto allocation = allocations_.find(job_id);
      if (allocation == allocations_.end()) continue;
      if (ApplyAllocation(provider, allocation->second, +1, true)) {
        ApplyAllocation(provider, allocation->second, +1, false);
      }
    }
  }
  ++offer_generation_;
  ++topology_generation_;
  return OkStatus();
}

Status CapacityIndex::BuildProvider(Provider& provider,
                                    const v1::RegisterProvider& registration) {
  provider.registration = registration;
  provider.region = registration.region();
  provider.currency = registration.currency();
  const uint32_t region_index =
      region_bits_
          .emplace(provider.region, static_cast<uint32_t>(std::min<size_t>(
                                        region_bits_.size(), 63)))
          .first->second;
  provider.nodes.clear();
  provider.fabrics.clear();
  provider.shelves.clear();
  provider.node_by_name.clear();
  std::map<std::string, std::pair<int64_t, std::optional<int64_t>>> prices;
  for (const auto& price : registration.prices()) {
    std::optional<int64_t> spare;
    if (price.has_spare_per_card_hour()) spare = price.spare_per_card_hour();
    prices[price.model()] = {price.per_card_hour(), spare};
  }
  std::map<std::string, uint32_t> fabric_by_id;
  // (model, memory, spare, gflops) -> shelf
  std::map<std::tuple<uint32_t, uint64_t, bool, uint64_t>, uint32_t>
      shelf_by_key;
  for (const auto& node_in : registration.nodes()) {
    const uint32_t node_id = static_cast<uint32_t>(provider.nodes.size());
    Node node;
    node.name = node_in.name();
    // A node without a fabric id is a fabric of its own.
    const std::string fabric_id = node_in.fabric_id().empty()
                                      ? "node:" + node_in.name()
                                      : node_in.fabric_id();
    auto [fabric_it, new_fabric] = fabric_by_id.emplace(
        fabric_id, static_cast<uint32_t>(provider.fabrics.size()));
    if (new_fabric) provider.fabrics.push_back(Fabric{fabric_id, {}});
    node.fabric = fabric_it->second;
    provider.fabrics[node.fabric].nodes.push_back(node_id);
    node.offer = node_in.offer();
    node.cpu_milli_total = uint64_t{node_in.cpu_cores()} * 1000;
    node.memory_mib_total = node_in.memory_mib();
    uint32_t next_index = 0;
    for (const auto& accelerator : node_in.accelerators()) {
      CardGroup group;
      group.model = InternModel(accelerator.model());
      group.first_index = next_index;
      group.count = accelerator.count();
      group.memory_mib = accelerator.memory_mib();
      group.used_milli.assign(accelerator.count(), 0);
      group.free_whole = accelerator.count();
      next_index += accelerator.count();
      if (node.offer != v1::CAPACITY_OFFER_WITHDRAWN) {
        CN_ASSIGN_OR_RETURN(CardCompute compute,
                            catalog_->Resolve(accelerator));
        const bool spare = node.offer == v1::CAPACITY_OFFER_SPARE;
        auto key = std::make_tuple(group.model, group.memory_mib, spare,
                                   compute.dense_gflops);
        auto [shelf_it, new_shelf] = shelf_by_key.emplace(
            key, static_cast<uint32_t>(provider.shelves.size()));
        if (new_shelf) {
          Shelf shelf;
          shelf.model = group.model;
          shelf.memory_mib = group.memory_mib;
          shelf.spare = spare;
          auto price = prices.find(accelerator.model());
          // Validation guarantees a price; an unpriced model is never cheap.
          int64_t per_hour =
              price == prices.end() ? INT64_MAX / 4 : price->second.first;
          if (spare && price != prices.end() && price->second.second) {
            per_hour = *price->second.second;
          }
          shelf.price_per_card_hour = per_hour;
          shelf.dense_gflops = compute.dense_gflops;
          shelf.a100_milli_per_card =
              catalog_->A100MilliOf(compute.dense_gflops);
          shelf.vendor_class = compute.vendor_class;
          shelf.compute_basis = compute.basis;
          shelf.cost_key = CostKey(per_hour, catalog_->reference_gflops(),
                                   compute.dense_gflops);
          shelf.region_bit = uint64_t{1} << region_index;
          const uint32_t class_index =
              class_bits_
                  .emplace(compute.vendor_class,
                           static_cast<uint32_t>(
                               std::min<size_t>(class_bits_.size(), 63)))
                  .first->second;
          shelf.class_bit = uint64_t{1} << class_index;
          model_classes_[group.model].insert(compute.vendor_class);
          model_max_gflops_[group.model] =
              std::max(model_max_gflops_[group.model], compute.dense_gflops);
          provider.shelves.push_back(std::move(shelf));
        }
        Shelf& shelf = provider.shelves[shelf_it->second];
        group.shelf = shelf_it->second;
        group.slot = static_cast<uint32_t>(shelf.members.size());
        shelf.members.push_back(
            Member{node_id, static_cast<uint32_t>(node.groups.size()), 0});
        shelf.max_cards_per_group =
            std::max(shelf.max_cards_per_group, group.count);
      }
      node.groups.push_back(std::move(group));
    }
    provider.node_by_name[node.name] = node_id;
    provider.nodes.push_back(std::move(node));
  }
  for (auto& shelf : provider.shelves) {
    shelf.buckets.assign(shelf.max_cards_per_group + 1, {});
    std::map<uint32_t, uint32_t> fabric_slots;  // provider fabric -> slot
    for (uint32_t slot = 0; slot < shelf.members.size(); ++slot) {
      Member& member = shelf.members[slot];
      const CardGroup& group = provider.nodes[member.node].groups[member.group];
      member.bucket_pos =
          static_cast<uint32_t>(shelf.buckets[group.free_whole].size());
      shelf.buckets[group.free_whole].push_back(slot);
      shelf.free_whole_total += group.free_whole;
      auto [it, added] = fabric_slots.emplace(
          provider.nodes[member.node].fabric,
          static_cast<uint32_t>(shelf.fabric_counts.size()));
      if (added) shelf.fabric_counts.push_back({});
      member.fabric_slot = it->second;
    }
    for (int j = 0; j < kGangLevels; ++j) {
      shelf.gang_hist[j].assign(shelf.members.size() + 1, 0);
      shelf.gang_hist[j][0] = static_cast<uint32_t>(shelf.fabric_counts.size());
    }
    for (const Member& member : shelf.members) {
      const CardGroup& group = provider.nodes[member.node].groups[member.group];
      GangCountsChanged(shelf, member.fabric_slot, 0, group.free_whole);
    }
  }
  return OkStatus();
}

void CapacityIndex::GangCountsChanged(Shelf& shelf, uint32_t fabric_slot,
                                      uint32_t old_free, uint32_t new_free) {
  for (int j = 0; j < kGangLevels; ++j) {
    const uint32_t level = 1u << j;
    const bool was = old_free >= level;
    const bool now = new_free >= level;
    if (was == now) continue;
    uint32_t& count = shelf.fabric_counts[fabric_slot][j];
    auto& hist = shelf.gang_hist[j];
    --hist[count];
    count = now ? count + 1 : count - 1;
    ++hist[count];
    // Counts move by one, so the maximum moves by at most one.
    if (count > shelf.gang_max[j]) shelf.gang_max[j] = count;
    while (shelf.gang_max[j] > 0 && hist[shelf.gang_max[j]] == 0) {
      --shelf.gang_max[j];
    }
  }
}

void CapacityIndex::SetOnline(const std::string& name, bool online) {
  auto id = ProviderId(name);
  if (!id || providers_[*id].online == online) return;
  providers_[*id].online = online;
  MarkModelsDirty(providers_[*id]);
  ++offer_generation_;
}

void CapacityIndex::SetReliability(const std::string& name, uint32_t permille) {
  auto id = ProviderId(name);
  if (!id || providers_[*id].reliability_permille == permille) return;
  // Not part of the rank order (which then never needs re-sorting when a
  // job ends): the matcher compares reliability among equal-cost offers.
  // Nor does it change why a job waits, so cached explanations stay valid.
  providers_[*id].reliability_permille = permille;
}

void CapacityIndex::MarkModelsDirty(const Provider& provider) {
  for (const auto& shelf : provider.shelves) orders_[shelf.model].dirty = true;
  all_order_.dirty = true;
}

void CapacityIndex::RebuildDirtyOrders() {
  for (uint32_t model = 0; model < orders_.size(); ++model) {
    if (orders_[model].dirty) RebuildOrder(model);
  }
  if (all_order_.dirty) RebuildOrder(kAllModels);
}

void CapacityIndex::RebuildOrder(uint32_t model) const {
  ModelOrder& order = model == kAllModels ? all_order_ : orders_[model];
  const bool all_models = model == kAllModels;
  order.dirty = false;
  order.shelves.clear();
  for (const auto& [provider_id, shelf_id] : order.all) {
    const Provider& provider = providers_[provider_id];
    const Shelf& shelf = provider.shelves[shelf_id];
    (all_models ? shelf.all_pos : shelf.order_pos) = -1;
    if (provider.online && !shelf.members.empty()) {
      order.shelves.push_back(ShelfRef{provider_id, shelf_id});
    }
  }
  // Rank: cheapest per A100-hour, then by name so the order (and so every
  // decision) is deterministic.
  std::sort(order.shelves.begin(), order.shelves.end(),
            [this](const ShelfRef& a, const ShelfRef& b) {
              const Shelf& sa = shelf(a);
              const Shelf& sb = shelf(b);
              const Provider& pa = providers_[a.provider];
              const Provider& pb = providers_[b.provider];
              return std::tie(sa.cost_key, pa.name, sa.model, sa.memory_mib,
                              sa.spare, a.shelf) <
                     std::tie(sb.cost_key, pb.name, sb.model, sb.memory_mib,
                              sb.spare, b.shelf);
            });
  order.leaves = 1;
  while (order.leaves < order.shelves.size()) order.leaves *= 2;
  order.tree.assign(2 * order.leaves, Room{});
  for (size_t pos = 0; pos < order.shelves.size(); ++pos) {
    const Shelf& shelf = providers_[order.shelves[pos].provider]
                             .shelves[order.shelves[pos].shelf];
    (all_models ? shelf.all_pos : shelf.order_pos) = static_cast<int32_t>(pos);
    order.tree[order.leaves + pos] = RoomOf(shelf);
  }
  for (size_t node = order.leaves - 1; node >= 1; --node) {
    order.tree[node] = MaxRoom(order.tree[2 * node], order.tree[2 * node + 1]);
  }
}

CapacityIndex::Room CapacityIndex::RoomOf(const Shelf& shelf) const {
  Room room;
  for (size_t k = shelf.buckets.size(); k-- > 0;) {
    if (!shelf.buckets[k].empty()) {
      room.max_free_whole = static_cast<uint32_t>(k);
      break;
    }
  }
  if (room.max_free_whole > 0) {
    room.max_free_milli = kWholeCardMilli;
  } else if (!shelf.partial.empty()) {
    room.max_free_milli = std::get<0>(*shelf.partial.rbegin());
  }
  room.free_whole_total = shelf.free_whole_total;
  room.region_mask = shelf.region_bit;
  room.class_mask = shelf.class_bit;
  room.kinds = shelf.spare ? kSpare : kDedicated;
  room.gang_nodes = shelf.gang_max;
  room.max_memory_mib = shelf.memory_mib;
  room.min_price = shelf.price_per_card_hour;
  return room;
}

void CapacityIndex::UpdateTreeLeaf(ModelOrder& order, size_t pos,
                                   const Room& room) {
  size_t node = order.leaves + pos;
  order.tree[node] = room;
  for (node /= 2; node >= 1; node /= 2) {
    order.tree[node] = MaxRoom(order.tree[2 * node], order.tree[2 * node + 1]);
  }
}

void CapacityIndex::UpdateShelfRoom(uint32_t provider, uint32_t shelf_id) {
  const Shelf& shelf = providers_[provider].shelves[shelf_id];
  const Room room = RoomOf(shelf);
  ModelOrder& order = orders_[shelf.model];
  if (!order.dirty && shelf.order_pos >= 0) {
    UpdateTreeLeaf(order, static_cast<size_t>(shelf.order_pos), room);
  }
  if (!all_order_.dirty && shelf.all_pos >= 0) {
    UpdateTreeLeaf(all_order_, static_cast<size_t>(shelf.all_pos), room);
  }
}

int CapacityIndex::FindShelf(uint32_t model, int from, const Need& need) const {
  const ModelOrder& order = OrderOf(model);
  if (from < 0 || static_cast<size_t>(from) >= order.shelves.size()) return -1;
  return FindInTree(order, 1, 0, order.leaves - 1, static_cast<size_t>(from),
                    need);
}

int CapacityIndex::FindInTree(const ModelOrder& order, size_t node, size_t lo,
                              size_t hi, size_t from, const Need& need) const {
  if (hi < from || !RoomFits(order.tree[node], need)) return -1;
  if (lo == hi) {
    return lo < order.shelves.size() ? static_cast<int>(lo) : -1;
  }
  const size_t mid = (lo + hi) / 2;
  int found = FindInTree(order, 2 * node, lo, mid, from, need);
  if (found >= 0) return found;
  return FindInTree(order, 2 * node + 1, mid + 1, hi, from, need);
}

bool CapacityIndex::ApplyAllocation(Provider& provider,
                                    const JobAllocation& allocation, int sign,
                                    bool check_only) {
  const uint32_t provider_id = provider_by_name_.at(provider.name);
  for (const auto& assignment : allocation.assignments) {
    auto node_it = provider.node_by_name.find(assignment.node());
    if (node_it == provider.node_by_name.end()) continue;
    Node& node = provider.nodes[node_it->second];
    const uint32_t milli = assignment.milli() == 0
                               ? kWholeCardMilli
                               : std::min(assignment.milli(), kWholeCardMilli);
    uint64_t devices = 0;
    for (uint32_t index : assignment.device_indices()) {
      for (uint32_t g = 0; g < node.groups.size(); ++g) {
        CardGroup& group = node.groups[g];
        if (index < group.first_index ||
            index >= group.first_index + group.count) {
          continue;
        }
        const uint32_t device = index - group.first_index;
        const uint32_t old_used = group.used_milli[device];
        if (sign > 0 && old_used + milli > kWholeCardMilli) return false;
        ++devices;
        if (check_only) break;
        const uint32_t new_used =
            sign > 0 ? old_used + milli
                     : (old_used > milli ? old_used - milli : 0);
        group.used_milli[device] = static_cast<uint16_t>(new_used);
        const uint32_t old_free_whole = group.free_whole;
        if (old_used == 0 && new_used > 0) --group.free_whole;
        if (old_used > 0 && new_used == 0) ++group.free_whole;
        if (group.shelf != kNoShelf) {
          Shelf& shelf = provider.shelves[group.shelf];
          if (old_used > 0 && old_used < kWholeCardMilli) {
            shelf.partial.erase(
                {static_cast<uint16_t>(kWholeCardMilli - old_used), group.slot,
                 device});
          }
          if (new_used > 0 && new_used < kWholeCardMilli) {
            shelf.partial.insert(
                {static_cast<uint16_t>(kWholeCardMilli - new_used), group.slot,
                 device});
          }
        }
        GroupChanged(provider_id, node_it->second, g, old_free_whole);
        break;
      }
    }
    if (check_only) continue;
    const uint64_t cpu = devices * allocation.cpu_milli_per_card;
    const uint64_t memory = devices * allocation.host_memory_mib_per_card;
    if (sign > 0) {
      node.cpu_milli_used += cpu;
      node.memory_mib_used += memory;
    } else {
      node.cpu_milli_used -= std::min(node.cpu_milli_used, cpu);
      node.memory_mib_used -= std::min(node.memory_mib_used, memory);
    }
  }
  return true;
}

void CapacityIndex::GroupChanged(uint32_t provider_id, uint32_t node_id,
                                 uint32_t group_id, uint32_t old_free_whole) {
  Provider& provider = providers_[provider_id];
  CardGroup& group = provider.nodes[node_id].groups[group_id];
  if (group.shelf == kNoShelf) return;
  Shelf& shelf = provider.shelves[group.shelf];
  if (group.free_whole != old_free_whole) {
    // Move the member between buckets (swap-remove keeps it O(1)).
    Member& member = shelf.members[group.slot];
    auto& from = shelf.buckets[old_free_whole];
    const uint32_t moved = from.back();
    from[member.bucket_pos] = moved;
    shelf.members[moved].bucket_pos = member.bucket_pos;
    from.pop_back();
    auto& to = shelf.buckets[group.free_whole];
    member.bucket_pos = static_cast<uint32_t>(to.size());
    to.push_back(group.slot);
    shelf.free_whole_total =
        shelf.free_whole_total + group.free_whole - old_free_whole;
    GangCountsChanged(shelf, member.fabric_slot, old_free_whole,
                      group.free_whole);
  }
  UpdateShelfRoom(provider_id, group.shelf);
}

Status CapacityIndex::Allocate(const std::string& job_id,
                               const JobAllocation& allocation) {
  if (allocations_.count(job_id) != 0) {
    return AlreadyExistsError("job " + job_id + " already holds capacity");
  }
  auto id = ProviderId(allocation.provider);
  if (!id) return NotFoundError("no provider " + allocation.provider);
  Provider& provider = providers_[*id];
  if (!ApplyAllocation(provider, allocation, +1, true)) {
    return FailedPreconditionError("job " + job_id +
                                   ": a card would be over-allocated");
  }
  ApplyAllocation(provider, allocation, +1, false);
  allocations_[job_id] = allocation;
  jobs_by_provider_[allocation.provider].insert(job_id);
  return OkStatus();
}

std::optional<JobAllocation> CapacityIndex::Release(const std::string& job_id) {
  auto it = allocations_.find(job_id);
  if (it == allocations_.end()) return std::nullopt;
  JobAllocation allocation = std::move(it->second);
  allocations_.erase(it);
  jobs_by_provider_[allocation.provider].erase(job_id);
  auto id = ProviderId(allocation.provider);
  if (id) ApplyAllocation(providers_[*id], allocation, -1, false);
  return allocation;
}

const JobAllocation* CapacityIndex::FindAllocation(
    const std::string& job_id) const {
  auto it = allocations_.find(job_id);
  return it == allocations_.end() ? nullptr : &it->second;
}

const std::set<std::string>& CapacityIndex::JobsOn(
    const std::string& provider) const {
  static const std::set<std::string> kNone;
  auto it = jobs_by_provider_.find(provider);
  return it == jobs_by_provider_.end() ? kNone : it->second;
}

CapacityIndex::CardTotals CapacityIndex::Totals() const {
  CardTotals totals;
  for (const auto& provider : providers_) {
    if (!provider.online) continue;
    for (const auto& node : provider.nodes) {
      if (node.offer == v1::CAPACITY_OFFER_WITHDRAWN) continue;
      for (const auto& group : node.groups) {
        totals.cards += group.count;
        for (uint16_t used : group.used_milli) totals.allocated_milli += used;
      }
    }
  }
  return totals;
}

}  // namespace computenet::matching
