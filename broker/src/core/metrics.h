// BrokerMetrics: what a hub operator monitors, as Prometheus metrics
// (docs/operations.md, "What to monitor", lists every name). The broker's
// loop records events as they happen (job state changes, requests, refusals,
// commits) and sets the gauges from a periodic Sample; Render() produces the
// Prometheus text format for GET /metrics.
//
// Labels take only bounded values: states, status codes and message types
// from fixed enums, the broker's own peers from its config, and at most
// kMaxModelLabels accelerator models (the rest are counted as "other"), so
// no party can grow the metric set by what it sends.
//
// Thread safety: every method may be called from any thread (prometheus-cpp
// metrics are atomic or locked); in the broker the loop thread records and
// the HTTP thread renders.
#ifndef COMPUTENET_BROKER_CORE_METRICS_H_
#define COMPUTENET_BROKER_CORE_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/envelope.pb.h"
#include "computenet/v1/job.pb.h"

namespace computenet::broker {

// What the loop measures periodically (cheap, in memory, except the ledger
// figures, which it reads less often and leaves unset in between).
struct MetricsSample {
  uint64_t jobs_queued = 0;
  uint64_t jobs_active = 0;  // placed or running here
  uint64_t providers_online = 0;
  uint64_t providers_offline = 0;  // registered before, silent or gone now
  struct Cards {
    uint64_t free = 0;
    uint64_t used = 0;
  };
  std::map<std::string, Cards> cards_by_model;
  // The longest silence of an online provider: how close one is to being
  // declared lost.
  int64_t max_provider_silence_ms = 0;
  struct Peer {
    std::string broker_id;
    bool link_up = false;
    int64_t advert_age_ms = -1;  // -1: none received yet
  };
  std::vector<Peer> peers;
  std::optional<uint64_t> jobs_forwarded_out;  // held here, at a peer
  std::optional<uint64_t> jobs_in_doubt;       // of those, link lost
  std::optional<uint64_t> ledger_entries;
  std::optional<uint64_t> open_holds;
  std::optional<int64_t> open_holds_minor;  // their sum, minor units
};

class BrokerMetrics {
 public:
  // Models beyond this many get the label "other".
  static constexpr size_t kMaxModelLabels = 64;

  BrokerMetrics(const std::string& broker_id, const std::string& region);
  BrokerMetrics(const BrokerMetrics&) = delete;
  BrokerMetrics& operator=(const BrokerMetrics&) = delete;

  // A job's stored row changed (JobEvents::JobChanged). Counts each state a
  // job enters once, and for its first placement the time since submission.
  void JobChanged(const v1::JobInfo& job, int64_t now_ms);
  // An authenticated, decoded request of this type was dispatched.
  void Request(v1::MessageType type);
  // A request was answered with this error.
  void Refused(StatusCode code);
  // A group commit of a loop iteration: how many messages it held and how
  // long the commit took.
  void Committed(uint64_t messages, double seconds);
  void Set(const MetricsSample& sample);

  // The Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  prometheus::Gauge& ModelGauge(const std::string& model, const char* state);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& transitions_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Histogram& submit_to_placed_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Histogram& commit_messages_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& providers_;
  prometheus::Family<prometheus::Gauge>& cards_;
  prometheus::Gauge& provider_silence_;
  prometheus::Family<prometheus::Gauge>& peer_up_;
  prometheus::Family<prometheus::Gauge>& advert_age_;
  prometheus::Family<prometheus::Gauge>& forwarded_;
  prometheus::Gauge& ledger_entries_;
  prometheus::Gauge& open_holds_;
  prometheus::Gauge& open_holds_minor_;

  std::mutex mutex_;  // the maps below
  // The last state seen per unfinished job, so each entry is counted once.
  std::unordered_map<std::string, v1::JobState> last_state_;
  std::set<std::string> models_;  // labelled so far
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_METRICS_H_
