// ProviderRegistry: the broker's in-memory view of providers: who is online,
// where to reach them, what they registered, and which cards are allocated
// to which job. Rebuilt from the Store at start; the Store stays the truth.
// It keeps the CapacityIndex the matcher reads in step with all of that.
//
// Thread safety: owned by the broker's core-loop thread; not thread-safe.
#ifndef COMPUTENET_BROKER_JOBS_PROVIDER_REGISTRY_H_
#define COMPUTENET_BROKER_JOBS_PROVIDER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/imports.h"
#include "computenet/matching/capacity_index.h"
#include "computenet/matching/matcher.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::broker {

struct ProviderEntry {
  std::string name;
  v1::RegisterProvider registration;
  bool online = false;
  std::string routing_id;
  int64_t last_heard_ms = 0;  // any message from it
  int64_t last_sent_ms = 0;   // any message to it
  int64_t lost_since_ms = 0;  // when it went silent; 0 while online
};

class ProviderRegistry {
 public:
  // catalog: how models' compute is normalized; null = the built-in one.
  explicit ProviderRegistry(
      std::shared_ptr<const AcceleratorCatalog> catalog = nullptr);

  // nullptr if the provider never registered since the broker started.
  ProviderEntry* Find(const std::string& name);
  // Records a (re)registration and marks the provider online.
  // Records a (re)registration and marks the provider online. Models the
  // catalog cannot resolve leave the provider out of the capacity index
  // (check with AcceleratorCatalog::CheckRegistration first).
  ProviderEntry& Register(const std::string& name,
                          const v1::RegisterProvider& registration,
                          const std::string& routing_id, int64_t now_ms);
  // New prices or node offers of a registered provider (UpdateOffer).
  // NOT_FOUND if it never registered; INVALID_ARGUMENT from the catalog.
  Status UpdateRegistration(const std::string& name,
                            const v1::RegisterProvider& registration);
  // Marks a provider online or offline (no-op if unknown).
  void SetOnline(const std::string& name, bool online, int64_t now_ms);
  std::vector<ProviderEntry*> All();

  // Marks the job's cards (and host resources) as taken. A job holds one
  // allocation at a time; if the capacity index already holds it (the queue
  // allocated it while placing), it is kept as it is.
  void Allocate(const std::string& job_id, const std::string& provider,
                const std::vector<v1::NodeAssignment>& assignments,
                uint32_t cpu_milli_per_card = 0,
                uint64_t host_memory_mib_per_card = 0);
  void Release(const std::string& job_id);

  // What the matcher reads.
  CapacityIndex& capacity() { return capacity_; }
  const CapacityIndex& capacity() const { return capacity_; }

  // Free capacity of the online providers, in name order.
  std::vector<ProviderCapacity> OnlineCapacity() const;

 private:
  struct Allocation {
    std::string provider;
    std::vector<v1::NodeAssignment> assignments;
  };
  std::map<std::string, ProviderEntry> providers_;
  std::map<std::string, Allocation> allocations_;  // by job id
  CapacityIndex capacity_;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_JOBS_PROVIDER_REGISTRY_H_
