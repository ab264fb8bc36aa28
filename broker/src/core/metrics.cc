#include "core/metrics.h"

#include <prometheus/text_serializer.h>

#include "computenet/common/job_state.h"
#include "computenet/common/version.h"

namespace computenet::broker {
namespace {

// Names by Prometheus conventions: a computenet_ prefix, base units in the
// name (_seconds), _total on counters.
prometheus::Family<prometheus::Counter>& Counter(prometheus::Registry& registry,
                                                 const std::string& name,
                                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& registry,
                                             const std::string& name,
                                             const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

prometheus::Histogram& Histogram(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help, prometheus::Histogram::BucketBoundaries buckets) {
  return prometheus::BuildHistogram()
      .Name(name)
      .Help(help)
      .Register(registry)
      .Add({}, std::move(buckets));
}

// "JOB_STATE_RUNNING" -> "running", as the CLI prints it.
std::string StateLabel(v1::JobState state) { return JobStateName(state); }

}  // namespace

BrokerMetrics::BrokerMetrics(const std::string& broker_id,
                             const std::string& region)
    : registry_(std::make_shared<prometheus::Registry>()),
      transitions_(Counter(*registry_, "computenet_job_transitions_total",
                           "Jobs that entered each state here")),
      requests_(Counter(*registry_, "computenet_requests_total",
                        "Authenticated requests dispatched, by message type")),
      refused_(Counter(*registry_, "computenet_requests_refused_total",
                       "Requests answered with an error, by status code")),
      submit_to_placed_(Histogram(
          *registry_, "computenet_submit_to_placed_seconds",
          "From submission to the first placement",
          {0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 21600})),
      commit_seconds_(Histogram(
          *registry_, "computenet_commit_duration_seconds",
          "Group commit of one loop iteration",
          {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1})),
      commit_messages_(
          Histogram(*registry_, "computenet_commit_batch_messages",
                    "Messages one group commit held",
                    {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})),
      jobs_(Gauge(*registry_, "computenet_jobs",
                  "Unfinished jobs held here, by state (queued, active)")),
      providers_(Gauge(*registry_, "computenet_providers",
                       "Registered providers, by state (online, offline)")),
      cards_(
          Gauge(*registry_, "computenet_cards",
                "Cards of online providers, by model and state (free, used)")),
      provider_silence_(
          Gauge(*registry_, "computenet_provider_silence_max_seconds",
                "The longest time an online provider has not been heard from")
              .Add({})),
      peer_up_(Gauge(*registry_, "computenet_peer_link_up",
                     "1 while the link to a pinned peer broker is up")),
      advert_age_(Gauge(*registry_, "computenet_peer_advert_age_seconds",
                        "Age of the latest capacity advert from a peer")),
      forwarded_(
          Gauge(*registry_, "computenet_forwarded_jobs",
                "Jobs held here that run at a peer (state: all, in_doubt)")),
      ledger_entries_(Gauge(*registry_, "computenet_ledger_entries",
                            "Entries in this broker's ledger")
                          .Add({})),
      open_holds_(Gauge(*registry_, "computenet_ledger_open_holds",
                        "Open holds (jobs' worst cases reserved)")
                      .Add({})),
      open_holds_minor_(Gauge(*registry_,
                              "computenet_ledger_open_holds_minor_units",
                              "The sum of the open holds, in minor units")
                            .Add({})) {
  Gauge(*registry_, "computenet_broker_info",
        "The broker's identity and version")
      .Add({{"broker_id", broker_id},
            {"region", region},
            {"version", COMPUTENET_VERSION_STRING}})
      .Set(1);
}

void BrokerMetrics::JobChanged(const v1::JobInfo& job, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto last = last_state_.find(job.job_id());
  const bool seen = last != last_state_.end();
  if (seen && last->second == job.state()) return;  // a re-save
  transitions_.Add({{"state", StateLabel(job.state())}}).Increment();
  if (job.state() == v1::JOB_STATE_PLACED && job.attempts() <= 1 &&
      job.created_ms() > 0 && now_ms >= job.created_ms()) {
    submit_to_placed_.Observe(static_cast<double>(now_ms - job.created_ms()) /
                              1000.0);
  }
  if (IsTerminal(job.state())) {
    if (seen) last_state_.erase(last);
  } else if (seen) {
    last->second = job.state();
  } else {
    last_state_.emplace(job.job_id(), job.state());
  }
}

void BrokerMetrics::Request(v1::MessageType type) {
  // An out-of-range number is one label, not one per value sent.
  const std::string name =
      v1::MessageType_IsValid(type) ? v1::MessageType_Name(type) : "UNKNOWN";
  requests_.Add({{"type", name}}).Increment();
}

void BrokerMetrics::Refused(StatusCode code) {
  refused_.Add({{"code", std::string(StatusCodeName(code))}}).Increment();
}

void BrokerMetrics::Committed(uint64_t messages, double seconds) {
  commit_seconds_.Observe(seconds);
  commit_messages_.Observe(static_cast<double>(messages));
}

prometheus::Gauge& BrokerMetrics::ModelGauge(const std::string& model,
                                             const char* state) {
  std::string label = model;
  if (models_.count(model) == 0) {
    if (models_.size() < kMaxModelLabels) {
      models_.insert(model);
    } else {
      label = "other";
    }
  }
  return cards_.Add({{"model", label}, {"state", state}});
}

void BrokerMetrics::Set(const MetricsSample& sample) {
  std::lock_guard<std::mutex> lock(mutex_);
  jobs_.Add({{"state", "queued"}}).Set(static_cast<double>(sample.jobs_queued));
  jobs_.Add({{"state", "active"}}).Set(static_cast<double>(sample.jobs_active));
  providers_.Add({{"state", "online"}})
      .Set(static_cast<double>(sample.providers_online));
  providers_.Add({{"state", "offline"}})
      .Set(static_cast<double>(sample.providers_offline));
  // Every model labelled so far is set, to 0 when it has gone, so a gauge
  // never shows cards that left.
  std::map<std::string, MetricsSample::Cards> cards;
  for (const std::string& model : models_) cards[model];
  for (const auto& [model, figures] : sample.cards_by_model) {
    auto& slot = models_.count(model) != 0 || models_.size() < kMaxModelLabels
                     ? cards[model]
                     : cards["other"];
    slot.free += figures.free;
    slot.used += figures.used;
  }
  for (const auto& [model, figures] : cards) {
    ModelGauge(model, "free").Set(static_cast<double>(figures.free));
    ModelGauge(model, "used").Set(static_cast<double>(figures.used));
  }
  provider_silence_.Set(static_cast<double>(sample.max_provider_silence_ms) /
                        1000.0);
  for (const auto& peer : sample.peers) {
    peer_up_.Add({{"peer", peer.broker_id}}).Set(peer.link_up ? 1 : 0);
    if (peer.advert_age_ms >= 0) {
      advert_age_.Add({{"peer", peer.broker_id}})
          .Set(static_cast<double>(peer.advert_age_ms) / 1000.0);
    }
  }
  if (sample.jobs_forwarded_out) {
    forwarded_.Add({{"state", "all"}})
        .Set(static_cast<double>(*sample.jobs_forwarded_out));
  }
  if (sample.jobs_in_doubt) {
    forwarded_.Add({{"state", "in_doubt"}})
        .Set(static_cast<double>(*sample.jobs_in_doubt));
  }
  if (sample.ledger_entries) {
    ledger_entries_.Set(static_cast<double>(*sample.ledger_entries));
  }
  if (sample.open_holds)
    open_holds_.Set(static_cast<double>(*sample.open_holds));
  if (sample.open_holds_minor) {
    open_holds_minor_.Set(static_cast<double>(*sample.open_holds_minor));
  }
}

std::string BrokerMetrics::Render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace computenet::broker
