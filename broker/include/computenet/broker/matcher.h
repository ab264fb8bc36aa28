// Matcher: chooses where a job runs. A pure function of the capacity it is
// shown and the job's spec: no I/O, no clock, so it can be tested and
// benchmarked on its own. The broker owns the state and applies the result.
//
// Thread safety: Match is const and touches only its arguments; a Matcher may
// be shared across threads.
#ifndef COMPUTENET_BROKER_MATCHER_H_
#define COMPUTENET_BROKER_MATCHER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "computenet/v1/job.pb.h"

namespace computenet::broker {

// Cards of one model on one node, with the device indices still free.
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
};

struct Placement {
  std::string provider;
  std::string model;
  std::vector<v1::NodeAssignment> assignments;
  int64_t price_per_card_hour = 0;
  std::string currency;
};

struct MatchOutcome {
  std::optional<Placement> placement;
  // When nothing fits: why, in words a consumer understands.
  std::string reason;
};

class Matcher {
 public:
  virtual ~Matcher() = default;
  // providers are offered in the broker's order; excluded names are skipped
  // (e.g. providers that already rejected this job).
  virtual MatchOutcome Match(const v1::JobSpec& spec,
                             const std::vector<ProviderCapacity>& providers,
                             const std::set<std::string>& excluded) const = 0;
};

// The foundation's matcher: the first provider, node (or fabric, for gangs)
// and model that satisfy the spec and its price ceiling. The matching issue
// replaces it with a cost/reliability/fragmentation objective.
class FirstFitMatcher final : public Matcher {
 public:
  MatchOutcome Match(const v1::JobSpec& spec,
                     const std::vector<ProviderCapacity>& providers,
                     const std::set<std::string>& excluded) const override;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_MATCHER_H_
