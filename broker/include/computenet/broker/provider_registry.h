// ProviderRegistry: the broker's in-memory view of providers: who is online,
// where to reach them, what they registered, and which cards are allocated
// to which job. Rebuilt from the Store at start; the Store stays the truth.
//
// Thread safety: owned by the broker's core-loop thread; not thread-safe.
#ifndef COMPUTENET_BROKER_PROVIDER_REGISTRY_H_
#define COMPUTENET_BROKER_PROVIDER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "computenet/broker/matcher.h"
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
  // nullptr if the provider never registered since the broker started.
  ProviderEntry* Find(const std::string& name);
  // Records a (re)registration and marks the provider online.
  ProviderEntry& Register(const std::string& name,
                          const v1::RegisterProvider& registration,
                          const std::string& routing_id, int64_t now_ms);
  std::vector<ProviderEntry*> All();

  // Marks the job's cards as taken. A job holds one allocation at a time.
  void Allocate(const std::string& job_id, const std::string& provider,
                const std::vector<v1::NodeAssignment>& assignments);
  void Release(const std::string& job_id);

  // Free capacity of the online providers, in name order.
  std::vector<ProviderCapacity> OnlineCapacity() const;

 private:
  struct Allocation {
    std::string provider;
    std::vector<v1::NodeAssignment> assignments;
  };
  std::map<std::string, ProviderEntry> providers_;
  std::map<std::string, Allocation> allocations_;  // by job id
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_PROVIDER_REGISTRY_H_
