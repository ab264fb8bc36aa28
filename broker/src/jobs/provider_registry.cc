#include "core/imports.h"
#include "jobs/provider_registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace computenet::broker {

ProviderRegistry::ProviderRegistry(
    std::shared_ptr<const AcceleratorCatalog> catalog)
    : capacity_(std::move(catalog)) {}

ProviderEntry* ProviderRegistry::Find(const std::string& name) {
  auto it = providers_.find(name);
  return it == providers_.end() ? nullptr : &it->second;
}

ProviderEntry& ProviderRegistry::Register(
    const std::string& name, const v1::RegisterProvider& registration,
    const std::string& routing_id, int64_t now_ms) {
  ProviderEntry& entry = providers_[name];
  entry.name = name;
  entry.registration = registration;
  entry.online = true;
  entry.routing_id = routing_id;
  entry.last_heard_ms = now_ms;
  entry.lost_since_ms = 0;
  Status indexed = capacity_.UpsertProvider(name, registration);
  if (!indexed.ok()) {
    spdlog::error("provider {} left out of matching: {}", name,
                  indexed.ToString());
  }
  capacity_.SetOnline(name, true);
  return entry;
}

Status ProviderRegistry::UpdateRegistration(
    const std::string& name, const v1::RegisterProvider& registration) {
  ProviderEntry* entry = Find(name);
  if (entry == nullptr) return NotFoundError("provider " + name);
  CN_RETURN_IF_ERROR(capacity_.UpsertProvider(name, registration));
  entry->registration = registration;
  return OkStatus();
}

void ProviderRegistry::SetOnline(const std::string& name, bool online,
                                 int64_t now_ms) {
  ProviderEntry* entry = Find(name);
  if (entry == nullptr) return;
  if (entry->online && !online) entry->lost_since_ms = now_ms;
  entry->online = online;
  capacity_.SetOnline(name, online);
}

std::vector<ProviderEntry*> ProviderRegistry::All() {
  std::vector<ProviderEntry*> out;
  for (auto& [name, entry] : providers_) out.push_back(&entry);
  return out;
}

void ProviderRegistry::Allocate(
    const std::string& job_id, const std::string& provider,
    const std::vector<v1::NodeAssignment>& assignments,
    uint32_t cpu_milli_per_card, uint64_t host_memory_mib_per_card) {
  allocations_[job_id] = Allocation{provider, assignments};
  JobAllocation allocation{provider, assignments, cpu_milli_per_card,
                           host_memory_mib_per_card};
  if (const JobAllocation* held = capacity_.FindAllocation(job_id)) {
    auto same = [](const std::vector<v1::NodeAssignment>& a,
                   const std::vector<v1::NodeAssignment>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].SerializeAsString() != b[i].SerializeAsString()) return false;
      }
      return true;
    };
    // Already taken by the queue as it placed the job: keep it as it is.
    if (held->provider == provider && same(held->assignments, assignments)) {
      return;
    }
    capacity_.Release(job_id);
  }
  Status taken = capacity_.Allocate(job_id, allocation);
  if (!taken.ok()) {
    spdlog::warn("job {}: capacity index: {}", job_id, taken.ToString());
  }
}

void ProviderRegistry::Release(const std::string& job_id) {
  allocations_.erase(job_id);
  capacity_.Release(job_id);
}

std::vector<ProviderCapacity> ProviderRegistry::OnlineCapacity() const {
  // Devices in use, per provider and node.
  std::map<std::string, std::map<std::string, std::set<uint32_t>>> used;
  for (const auto& [job_id, allocation] : allocations_) {
    for (const auto& assignment : allocation.assignments) {
      auto& devices = used[allocation.provider][assignment.node()];
      devices.insert(assignment.device_indices().begin(),
                     assignment.device_indices().end());
    }
  }
  std::vector<ProviderCapacity> out;
  for (const auto& [name, entry] : providers_) {
    if (!entry.online) continue;
    ProviderCapacity capacity;
    capacity.provider = name;
    capacity.region = entry.registration.region();
    capacity.currency = entry.registration.currency();
    for (const auto& price : entry.registration.prices()) {
      capacity.price_per_card_hour[price.model()] = price.per_card_hour();
    }
    // The figures the matcher ranks by, so that adverts let peers rank
    // this broker's offers the same way (docs/federation.md, "Routing").
    if (auto id = capacity_.ProviderId(name)) {
      const auto& indexed = capacity_.providers()[*id];
      capacity.reliability_permille = indexed.reliability_permille;
      for (const auto& shelf : indexed.shelves) {
        if (shelf.spare) continue;  // adverts carry the dedicated offers
        const std::string& model = capacity_.model_name(shelf.model);
        // Shelves of one model differ by card memory; the slowest card is
        // the one a peer can count on.
        auto [gflops, fresh] =
            capacity.dense_gflops.emplace(model, shelf.dense_gflops);
        if (!fresh) {
          gflops->second = std::min(gflops->second, shelf.dense_gflops);
        }
        capacity.vendor_class.emplace(model, shelf.vendor_class);
      }
    }
    const auto& provider_used = used[name];
    for (const auto& node : entry.registration.nodes()) {
      NodeCapacity node_capacity;
      node_capacity.name = node.name();
      node_capacity.fabric_id = node.fabric_id();
      auto node_used = provider_used.find(node.name());
      // Device indices run across the node's accelerator groups in order,
      // as CUDA numbers them.
      uint32_t next_index = 0;
      for (const auto& accelerator : node.accelerators()) {
        DeviceGroup group;
        group.model = accelerator.model();
        group.memory_mib = accelerator.memory_mib();
        group.total = accelerator.count();
        for (uint32_t i = 0; i < accelerator.count(); ++i, ++next_index) {
          if (node_used != provider_used.end() &&
              node_used->second.count(next_index) != 0) {
            continue;
          }
          group.free_devices.push_back(next_index);
        }
        node_capacity.groups.push_back(std::move(group));
      }
      capacity.nodes.push_back(std::move(node_capacity));
    }
    out.push_back(std::move(capacity));
  }
  return out;
}

}  // namespace computenet::broker
