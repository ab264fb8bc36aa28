#include "computenet/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <unordered_map>

#include "computenet/ledger/ledger.h"
#include "computenet/matching/capacity_index.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"
#include "computenet/sim/event_loop.h"
// The broker's real routing rule and advert summaries (private headers of
// broker/, through computenet_broker_internal).
#include "federation/capacity_advert.h"
#include "federation/routing.h"

namespace computenet::sim {
namespace {

namespace broker = ::computenet::broker;
namespace matching = ::computenet::matching;

// Large enough that no peer is ever "cheaper by the margin": Route then
// forwards only what cannot run at home (local-first).
constexpr int64_t kNoPriceForwardBp = int64_t{1} << 40;

// What a policy decided for one job.
struct Decision {
  enum class Kind { kLocal, kForward, kWait, kReject };
  Kind kind = Kind::kWait;
  int target = -1;  // for kForward
  std::string reason;
};

class Simulation {
 public:
  Simulation(const Topology& topology, const Workload& workload, Policy policy,
             const SimOptions& options)
      : topology_(topology),
        workload_(workload),
        policy_(policy),
        options_(options),
        catalog_(matching::AcceleratorCatalog::BuiltIn()) {}

  StatusOr<SimResult> Run();

 private:
  struct Broker {
    std::string name;
    std::unique_ptr<matching::CapacityIndex> index;
    std::unique_ptr<matching::JobQueue> queue;
    std::vector<uint16_t> peers;
    std::vector<broker::PeerView> peer_views;  // what it knows of its peers
    std::vector<v1::CapacityEntry> advert;     // what it last published
    // The plain snapshot adverts are summarized from, per provider (by its
    // id in the index), rebuilt only for providers whose cards changed.
    std::vector<matching::ProviderCapacity> snapshot;
    std::vector<uint32_t> stale;  // provider ids changed since the last advert
    bool all_stale = true;
    uint64_t cards = 0;
    uint64_t held_milli = 0;
    int64_t busy_since_ms = 0;
    long double busy_milli_ms = 0;
    uint64_t queued_milli = 0;
    int64_t backlog_pct = 0;  // published with the advert (sim extension)
    // wait-aware: demand this broker forwarded to each region since that
    // region's last advert, which the advert cannot show yet.
    std::vector<uint64_t> sent_milli;
    bool pass_scheduled = false;
    std::set<uint32_t> home_waiting;  // its own jobs in its queue
    std::vector<uint32_t> parked;     // its own jobs it may not run, unrouted
    // (model, cards per node, most nodes in one fabric), for "could ever
    // hold it" in wait-aware (a static fact a broker could advertise).
    std::vector<std::tuple<std::string, uint32_t, uint32_t>> shapes;
  };
  struct Live {
    int16_t queued_at = -1;
    bool parked = false;
    int64_t queued_since = 0;
    uint64_t declined = 0;  // regions that declined it
    int64_t price = 0;
    uint32_t cards = 0;
    uint32_t provider = 0;  // site index
  };

  Status Build();
  void Arrive(uint32_t job);
  void AtHome(uint32_t job);
  Decision Decide(uint32_t job, bool allow_local_now);
  Decision DecideLocalFirst(uint32_t job, const v1::JobSpec& spec,
                            const std::optional<matching::Placement>& local);
  Decision DecideCheapest(uint32_t job, const v1::JobSpec& spec,
                          const std::optional<matching::Placement>& local,
                          bool wait_aware);
  bool CouldEverHold(const Broker& b, const SimJob& job) const;
  int64_t AdvertCost(const v1::CapacityEntry& entry) const;
  void Apply(uint32_t job, const Decision& decision);
  void Enqueue(uint32_t job, int region);
  void Forward(uint32_t job, int from, int to);
  void Park(uint32_t job);
  void Refuse(uint32_t job, const std::string& reason);
  void MarkDirty(int region);
  void Decline(uint32_t job, int region);
  void Pass(int region);
  void Start(uint32_t job, int region, const matching::Placement& placement);
  void End(uint32_t job);
  void Tick();
  void Sample();
  void Publish(int region);
  void Touch(int region, const std::string& provider);
  void Drain();
  void Busy(Broker& b, int64_t delta_milli);
  Status Post(int region,
              const std::vector<std::pair<std::string, int64_t>>& postings);

  bool Forwards() const { return policy_ != Policy::kLocalOnly; }
  std::string Org(const SimJob& job) const {
    return topology_.regions[job.home].name + "-org" +
           std::to_string(job.organization);
  }
  int32_t ReasonIndex(const std::string& reason) {
    auto [it, inserted] = reason_index_.emplace(
        reason, static_cast<int32_t>(result_.reasons.size()));
    if (inserted) result_.reasons.push_back(reason);
    return it->second;
  }

  const Topology& topology_;
  const Workload& workload_;
  Policy policy_;
  SimOptions options_;
  std::shared_ptr<const matching::AcceleratorCatalog> catalog_;
  matching::PlacementMatcher matcher_;
  EventLoop loop_;
  std::vector<Broker> brokers_;
  std::vector<Live> live_;
  std::unordered_map<std::string, uint32_t> site_by_name_;
  std::unordered_map<std::string, int32_t> reason_index_;
  std::unordered_map<std::string, uint64_t> model_gflops_;
  SimResult result_;
  Status failure_;  // the first ledger-rule failure, reported by Run
  uint64_t sequence_ = 0;
  uint64_t running_ = 0;
  uint64_t unsettled_ = 0;  // jobs neither ended nor refused
  int64_t last_arrival_ms_ = 0;
};

Status Simulation::Build() {
  const size_t regions = topology_.regions.size();
  brokers_.resize(regions);
  result_.policy = policy_;
  result_.clearing.assign(regions, std::vector<int64_t>(regions, 0));
  result_.books.resize(regions);
  result_.cards.resize(regions);
  result_.busy_milli_ms.resize(regions);
  for (const auto& spec : catalog_->entries())
    model_gflops_[spec.model] = spec.dense_gflops;
  matching::JobQueueOptions queue_options;
  queue_options.max_reservation_steps = options_.max_reservation_steps;
  for (size_t r = 0; r < regions; ++r) {
    Broker& b = brokers_[r];
    b.name = topology_.regions[r].name;
    b.index = std::make_unique<matching::CapacityIndex>(catalog_);
    b.queue =
        std::make_unique<matching::JobQueue>(queue_options, loop_.clock());
    b.sent_milli.assign(regions, 0);
  }
  for (const auto& link : topology_.links) {
    const auto a = *topology_.RegionIndex(link.a),
               bb = *topology_.RegionIndex(link.b);
    brokers_[a].peers.push_back(static_cast<uint16_t>(bb));
    brokers_[bb].peers.push_back(static_cast<uint16_t>(a));
  }
  std::vector<std::unique_ptr<matching::CapacityIndex::BulkUpdate>> bulk;
  for (auto& b : brokers_)
    bulk.push_back(
        std::make_unique<matching::CapacityIndex::BulkUpdate>(*b.index));
  for (size_t s = 0; s < topology_.sites.size(); ++s) {
    const Site& site = topology_.sites[s];
    const size_t r = *topology_.RegionIndex(site.region);
    Broker& b = brokers_[r];
    v1::RegisterProvider registration;
    registration.set_site(site.name);
    registration.set_region(site.region);
    registration.set_currency(topology_.currency);
    auto* price = registration.add_prices();
    price->set_model(site.model);
    price->set_per_card_hour(site.price_per_card_hour);
    const auto* spec = catalog_->Find(site.model);
    for (uint32_t n = 0; n < site.nodes; ++n) {
      v1::Node* node = registration.add_nodes();
      node->set_name("n" + std::to_string(n));
      node->set_fabric_id("f" + std::to_string(n / site.nodes_per_fabric));
      auto* card = node->add_accelerators();
      card->set_model(site.model);
      card->set_count(site.cards_per_node);
      if (spec != nullptr) card->set_memory_mib(spec->memory_mib);
    }
    Status added = b.index->UpsertProvider(site.name, registration);
    if (!added.ok())
      return InternalError("site " + site.name + ": " + added.ToString());
    b.index->SetOnline(site.name, true);
    b.index->SetReliability(site.name, site.reliability_permille);
    b.cards += site.cards();
    site_by_name_[site.name] = static_cast<uint32_t>(s);
    const uint32_t fabric_nodes = std::min(site.nodes, site.nodes_per_fabric);
    bool merged = false;
    for (auto& [model, cards, nodes] : b.shapes) {
      if (model == site.model && cards == site.cards_per_node) {
        nodes = std::max(nodes, fabric_nodes);
        merged = true;
      }
    }
    if (!merged)
      b.shapes.emplace_back(site.model, site.cards_per_node, fabric_nodes);
  }
  bulk.clear();
  for (size_t r = 0; r < regions; ++r) result_.cards[r] = brokers_[r].cards;
  live_.resize(workload_.jobs.size());
  result_.outcomes.resize(workload_.jobs.size());
  return OkStatus();
}

void Simulation::Busy(Broker& b, int64_t delta_milli) {
  const int64_t now = loop_.now_ms();
  // Counted over the arrival window only: the drain after it (a few long
  // jobs ending) would make every policy look idle.
  const int64_t until = std::min(now, last_arrival_ms_);
  const int64_t from = std::min(b.busy_since_ms, last_arrival_ms_);
  b.busy_milli_ms += static_cast<long double>(b.held_milli) *
                     static_cast<long double>(until - from);
  b.busy_since_ms = now;
  b.held_milli =
      static_cast<uint64_t>(static_cast<int64_t>(b.held_milli) + delta_milli);
}

Status Simulation::Post(
    int region, const std::vector<std::pair<std::string, int64_t>>& postings) {
  // Double entry: an entry whose postings do not sum to zero is refused,
  // as the ledger refuses it.
  int64_t sum = 0;
  for (const auto& [account, amount] : postings) sum += amount;
  if (sum != 0)
    return InternalError("unbalanced entry at " + brokers_[region].name);
  auto& books = result_.books[region];
  for (const auto& [account, amount] : postings) books[account] += amount;
  return OkStatus();
}

void Simulation::Arrive(uint32_t job) {
  ++result_.events;
  AtHome(job);
  if (job + 1 < workload_.jobs.size()) {
    loop_.At(workload_.jobs[job + 1].arrival_ms,
             [this, job] { Arrive(job + 1); });
  }
}

void Simulation::AtHome(uint32_t job) { Apply(job, Decide(job, true)); }

int64_t Simulation::AdvertCost(const v1::CapacityEntry& entry) const {
  // The index's cost key (capacity_index.h): price * reference GFLOPS *
  // 1000 / the model's GFLOPS: thousandths of a minor unit per A100-hour.
  auto it = model_gflops_.find(entry.model());
  if (it == model_gflops_.end() || it->second == 0) return INT64_MAX;
  __extension__ using Wide = __int128;
  return static_cast<int64_t>(static_cast<Wide>(entry.lowest_price()) *
                              static_cast<Wide>(catalog_->reference_gflops()) *
                              1000 / static_cast<Wide>(it->second));
}

bool Simulation::CouldEverHold(const Broker& b, const SimJob& job) const {
  const auto& models = workload_.model_sets[job.model_set];
  for (const auto& [model, cards, nodes] : b.shapes) {
    if (!models.empty() &&
        std::find(models.begin(), models.end(), model) == models.end()) {
      continue;
    }
    if (cards >= job.cards_per_node && nodes >= job.nodes) return true;
  }
  return false;
}

Decision Simulation::Decide(uint32_t job_index, bool allow_local_now) {
  const SimJob& job = workload_.jobs[job_index];
  const int home = job.home;
  const bool home_allowed = job.Allows(home);
  if (policy_ == Policy::kLocalOnly) {
    if (!home_allowed) {
      return {Decision::Kind::kReject, -1,
              "local-only: the job's regions do not include its home region"};
    }
    return {Decision::Kind::kLocal, -1, ""};
  }
  const v1::JobSpec spec = SpecOf(job, workload_, topology_);
  std::optional<matching::Placement> local;
  if (home_allowed && allow_local_now) {
    // The real matcher on the home broker's index: would it place it now?
    local = matcher_.Match(matching::PlacementRequest::FromSpec(spec),
                           *brokers_[home].index, matching::MatchContext{});
  }
  if (policy_ == Policy::kLocalFirst)
    return DecideLocalFirst(job_index, spec, local);
  return DecideCheapest(job_index, spec, local, policy_ == Policy::kWaitAware);
}

Decision Simulation::DecideLocalFirst(
    uint32_t job_index, const v1::JobSpec& spec,
    const std::optional<matching::Placement>& local) {
  // The broker's real Route(), unchanged, over the adverts this broker holds.
  const SimJob& job = workload_.jobs[job_index];
  const Broker& b = brokers_[job.home];
  v1::JobInfo info;
  info.set_job_id(JobId(job_index));
  *info.mutable_spec() = spec;
  std::set<std::string> declined;
  for (size_t r = 0; r < brokers_.size(); ++r) {
    if ((live_[job_index].declined >> r & 1) != 0)
      declined.insert(brokers_[r].name);
  }
  broker::RoutingOptions routing;
  routing.broker_id = b.name;
  routing.home_region = b.name;
  routing.forward_margin_bp = kNoPriceForwardBp;
  const broker::RoutingDecision decision =
      broker::Route(info, local, b.peer_views, declined, routing);
  switch (decision.kind) {
    case broker::RoutingDecision::Kind::kLocal:
      return {Decision::Kind::kLocal, -1, ""};
    case broker::RoutingDecision::Kind::kForward:
      return {Decision::Kind::kForward,
              static_cast<int>(*topology_.RegionIndex(decision.peer)),
              decision.reason};
    case broker::RoutingDecision::Kind::kWait:
      return {Decision::Kind::kWait, -1, decision.reason};
    case broker::RoutingDecision::Kind::kReject:
      return {Decision::Kind::kReject, -1, decision.reason};
  }
  return {Decision::Kind::kWait, -1, ""};
}

// global-cheapest and wait-aware: simulated policies (not the broker's
// Route, which compares price per card-hour; issue 15 item 3 moves the
// broker to these terms). Both use the real AdvertFits on the real adverts.
Decision Simulation::DecideCheapest(
    uint32_t job_index, const v1::JobSpec& spec,
    const std::optional<matching::Placement>& local, bool wait_aware) {
  const SimJob& job = workload_.jobs[job_index];
  const int home = job.home;
  const Broker& hb = brokers_[home];
  const uint64_t declined = live_[job_index].declined;
  // The target's published backlog plus what this broker sent it since.
  auto backlog_of = [&](int r) -> int64_t {
    const Broker& target = brokers_[r];
    if (target.cards == 0) return 0;
    return target.backlog_pct +
           static_cast<int64_t>(hb.sent_milli[static_cast<size_t>(r)] * 100 /
                                (target.cards * 1000));
  };
  auto penalized = [&](int64_t cost, int64_t backlog_pct) -> int64_t {
    if (!wait_aware) return cost;
    __extension__ using Wide = __int128;
    return static_cast<int64_t>(
        static_cast<Wide>(cost) *
        (10'000 + options_.wait_aware_penalty_bp_per_pct *
                      std::max<int64_t>(0, backlog_pct)) /
        10'000);
  };
  int best = -1;
  int64_t best_cost = INT64_MAX;
  int64_t home_cost = INT64_MAX;
  if (local) {
    const int64_t backlog =
        hb.cards == 0
            ? 0
            : static_cast<int64_t>(hb.queued_milli * 100 / (hb.cards * 1000));
    home_cost = penalized(local->cost_key, backlog);
    best = home;
    best_cost = home_cost;
  }
  for (size_t p = 0; p < hb.peers.size(); ++p) {
    const int r = hb.peers[p];
    if (!job.Allows(static_cast<size_t>(r)) || (declined >> r & 1) != 0)
      continue;
    int64_t cheapest = INT64_MAX;
    for (const auto& entry : hb.peer_views[p].entries) {
      if (broker::AdvertFits(entry, spec))
        cheapest = std::min(cheapest, AdvertCost(entry));
    }
    if (cheapest == INT64_MAX) continue;
    const int64_t cost = penalized(cheapest, backlog_of(r));
    if (cost < best_cost) {
      best_cost = cost;
      best = r;
    }
  }
  if (wait_aware && best != home && home_cost != INT64_MAX) {
    // Keep it home unless the peer is better by the margin: a forward costs
    // latency and a clearing line.
    __extension__ using Wide = __int128;
    if (static_cast<Wide>(best_cost) *
            (10'000 + options_.wait_aware_margin_bp) >=
        static_cast<Wide>(home_cost) * 10'000) {
      best = home;
    }
  }
  if (best == home) return {Decision::Kind::kLocal, -1, ""};
  if (best >= 0)
    return {Decision::Kind::kForward, best, "cheapest per A100-hour"};
  // Nothing fits anywhere now.
  if (wait_aware) {
    // Queue where the backlog per card is least among the allowed regions
    // that could ever hold it, rather than wait at home for a chance.
    int target = -1;
    long double target_load = 0;
    auto consider = [&](int r) {
      const Broker& b = brokers_[r];
      if (!job.Allows(static_cast<size_t>(r)) || (declined >> r & 1) != 0 ||
          b.cards == 0 || !CouldEverHold(b, job)) {
        return;
      }
      const uint64_t queued =
          r == home ? b.queued_milli
                    : static_cast<uint64_t>(backlog_of(r)) * b.cards * 10;
      const long double load =
          static_cast<long double>(queued + job.DemandMilli()) /
          static_cast<long double>(b.cards * 1000);
      // Home wins ties and near-ties (within the margin).
      const long double margin =
          r == home
              ? 1.0L + static_cast<long double>(options_.wait_aware_margin_bp) /
                           10'000
              : 1.0L;
      if (target < 0 || load / margin < target_load) {
        target = r;
        target_load = load / margin;
      }
    };
    consider(home);
    for (int r : hb.peers) consider(r);
    if (target < 0) {
      return {Decision::Kind::kReject, -1,
              "no allowed region has a fabric that could ever hold it"};
    }
    if (target == home) return {Decision::Kind::kWait, -1, "queued at home"};
    return {Decision::Kind::kForward, target, "least backlog per card"};
  }
  bool any_served = job.Allows(static_cast<size_t>(home));
  for (int r : hb.peers)
    any_served = any_served || job.Allows(static_cast<size_t>(r));
  if (!any_served) {
    return {Decision::Kind::kReject, -1,
            "no broker in this federation serves the allowed regions"};
  }
  return {Decision::Kind::kWait, -1, "waiting for capacity here or at a peer"};
}

void Simulation::Apply(uint32_t job, const Decision& decision) {
  const int home = workload_.jobs[job].home;
  switch (decision.kind) {
    case Decision::Kind::kLocal:
      Enqueue(job, home);
      return;
    case Decision::Kind::kForward:
      Forward(job, home, decision.target);
      return;
    case Decision::Kind::kWait:
      if (workload_.jobs[job].Allows(static_cast<size_t>(home))) {
        Enqueue(job, home);
      } else {
        Park(job);
      }
      return;
    case Decision::Kind::kReject:
      Refuse(job, decision.reason);
      return;
  }
}

void Simulation::Enqueue(uint32_t job_index, int region) {
  const SimJob& job = workload_.jobs[job_index];
  Broker& b = brokers_[region];
  if (options_.max_queued_per_broker > 0 &&
      b.queue->size() >= options_.max_queued_per_broker) {
    // A peer with a full queue declines a forward (its home routes it
    // again); a home broker refuses its own consumer's job.
    if (region != job.home) {
      Decline(job_index, region);
    } else {
      Refuse(job_index, "queue full at " + b.name);
    }
    return;
  }
  matching::QueuedJob queued;
  queued.job_id = JobId(job_index);
  queued.organization = Org(job);
  queued.priority = job.priority;
  queued.submitted_ms = loop_.now_ms();
  queued.sequence = ++sequence_;
  queued.request =
      matching::PlacementRequest::FromSpec(SpecOf(job, workload_, topology_));
  queued.request.organization = queued.organization;
  queued.max_duration_s = job.max_duration_s;
  Status added = b.queue->Add(std::move(queued));
  if (!added.ok()) {
    Refuse(job_index, "queue refused it: " + added.ToString());
    return;
  }
  Live& live = live_[job_index];
  live.queued_at = static_cast<int16_t>(region);
  live.queued_since = loop_.now_ms();
  b.queued_milli += job.DemandMilli();
  if (region == job.home) b.home_waiting.insert(job_index);
  MarkDirty(region);
}

void Simulation::Forward(uint32_t job, int from, int to) {
  ++result_.forwards;
  brokers_[from].sent_milli[static_cast<size_t>(to)] +=
      workload_.jobs[job].DemandMilli();
  live_[job].queued_at = -1;
  const int64_t latency =
      topology_.Latency(brokers_[from].name, brokers_[to].name).value_or(0);
  loop_.At(loop_.now_ms() + latency, [this, job, to] {
    ++result_.events;
    Enqueue(job, to);
  });
}

void Simulation::Park(uint32_t job) {
  live_[job].parked = true;
  live_[job].queued_since = loop_.now_ms();
  brokers_[workload_.jobs[job].home].parked.push_back(job);
}

void Simulation::Refuse(uint32_t job, const std::string& reason) {
  result_.outcomes[job].refusal =
      ReasonIndex(reason.empty() ? "refused" : reason);
  --unsettled_;
}

void Simulation::Decline(uint32_t job, int region) {
  // The peer declines; the home broker routes it again without it.
  ++result_.declines;
  live_[job].declined |= uint64_t{1} << region;
  const int home = workload_.jobs[job].home;
  const int64_t latency =
      topology_.Latency(brokers_[region].name, brokers_[home].name).value_or(0);
  loop_.At(loop_.now_ms() + latency, [this, job] {
    ++result_.events;
    Apply(job, Decide(job, true));
  });
}

void Simulation::MarkDirty(int region) {
  Broker& b = brokers_[region];
  if (b.pass_scheduled) return;
  b.pass_scheduled = true;
  const int64_t interval = std::max<int64_t>(1, options_.pass_interval_ms);
  const int64_t at = (loop_.now_ms() + interval - 1) / interval * interval;
  loop_.At(at, [this, region] { Pass(region); });
}

void Simulation::Pass(int region) {
  ++result_.events;
  Broker& b = brokers_[region];
  b.pass_scheduled = false;
  if (b.queue->size() == 0) return;
  ++result_.passes;
  auto pass = b.queue->Schedule(*b.index, matcher_);
  result_.match_calls += pass.match_calls;
  result_.decisions +=
      pass.placed.size() + pass.waiting.size() + pass.never_fit.size();
  for (const auto& outcome : pass.placed) {
    Start(static_cast<uint32_t>(std::stoul(outcome.job_id.substr(1))), region,
          *outcome.placement);
  }
  for (const auto& outcome : pass.never_fit) {
    const uint32_t job =
        static_cast<uint32_t>(std::stoul(outcome.job_id.substr(1)));
    const SimJob& spec = workload_.jobs[job];
    b.queued_milli -= spec.DemandMilli();
    b.home_waiting.erase(job);
    live_[job].queued_at = -1;
    if (region != spec.home) {
      Decline(job, region);
      continue;
    }
    if (Forwards()) {
      Decision decision = Decide(job, false);
      if (decision.kind == Decision::Kind::kForward) {
        Forward(job, region, decision.target);
        continue;
      }
      if (decision.kind == Decision::Kind::kWait &&
          policy_ == Policy::kLocalFirst) {
        // Route says a peer in an allowed region may take it later.
        Park(job);
        continue;
      }
    }
    Refuse(job, "never fits at " + b.name + ": " + outcome.reason);
  }
}

void Simulation::Start(uint32_t job_index, int region,
                       const matching::Placement& placement) {
  const SimJob& job = workload_.jobs[job_index];
  Broker& b = brokers_[region];
  Live& live = live_[job_index];
  JobOutcome& outcome = result_.outcomes[job_index];
  outcome.start_ms = loop_.now_ms();
  outcome.region = static_cast<int16_t>(region);
  outcome.a100_milli = placement.a100_milli;
  live.queued_at = -1;
  live.price = placement.price_per_card_hour;
  live.cards = std::max<uint32_t>(1, placement.cards);
  live.provider = site_by_name_[placement.provider];
  Touch(region, placement.provider);
  auto hold = ledger::ChargeForCardSeconds(
      uint64_t{live.cards} * job.max_duration_s, live.price);
  if (!hold.ok() && failure_.ok()) failure_ = hold.status();
  outcome.hold = hold.ok() ? *hold : 0;
  b.queued_milli -= job.DemandMilli();
  b.home_waiting.erase(job_index);
  Busy(b, static_cast<int64_t>(job.DemandMilli()));
  ++running_;
  loop_.At(loop_.now_ms() + job.runtime_ms,
           [this, job_index] { End(job_index); });
}

void Simulation::End(uint32_t job_index) {
  ++result_.events;
  const SimJob& job = workload_.jobs[job_index];
  JobOutcome& outcome = result_.outcomes[job_index];
  const int region = outcome.region;
  Broker& b = brokers_[region];
  const std::string id = JobId(job_index);
  b.index->Release(id);
  b.queue->MarkStopped(id);
  Touch(region, topology_.sites[live_[job_index].provider].name);
  Busy(b, -static_cast<int64_t>(job.DemandMilli()));
  --running_;
  --unsettled_;
  outcome.end_ms = loop_.now_ms();
  result_.end_ms = std::max(result_.end_ms, outcome.end_ms);
  // The ledger's rules: card-seconds (a share of a card bills its one
  // device at the share's scaled price) times the price, rounded half up;
  // the fee rounded down.
  const Live& live = live_[job_index];
  const uint64_t seconds = static_cast<uint64_t>((job.runtime_ms + 999) / 1000);
  auto charge =
      ledger::ChargeForCardSeconds(uint64_t{live.cards} * seconds, live.price);
  auto fee = charge.ok()
                 ? ledger::FeeFor(*charge, topology_.regions[region].fee_bps)
                 : StatusOr<int64_t>(charge.status());
  if (!fee.ok()) {
    if (failure_.ok()) failure_ = fee.status();
    MarkDirty(region);
    return;
  }
  outcome.charge = *charge;
  const std::string consumer = ledger::ConsumerAccount(Org(job));
  const std::string provider =
      ledger::ProviderAccount(topology_.sites[live.provider].name);
  const std::string fee_account = ledger::FeeAccount(b.name);
  Status posted;
  if (region == job.home) {
    posted = Post(region, {{consumer, -*charge},
                           {provider, *charge - *fee},
                           {fee_account, *fee}});
  } else {
    const int home = job.home;
    posted = Post(home, {{consumer, -*charge},
                         {ledger::ClearingAccount(b.name), *charge}});
    if (posted.ok()) {
      posted = Post(region,
                    {{ledger::ClearingAccount(brokers_[home].name), -*charge},
                     {provider, *charge - *fee},
                     {fee_account, *fee}});
    }
    result_.clearing[home][region] += *charge;
  }
  if (!posted.ok() && failure_.ok()) failure_ = posted;
  MarkDirty(region);
}

void Simulation::Touch(int region, const std::string& provider) {
  Broker& b = brokers_[region];
  if (auto id = b.index->ProviderId(provider)) b.stale.push_back(*id);
}

void Simulation::Publish(int region) {
  Broker& b = brokers_[region];
  b.backlog_pct =
      b.cards == 0
          ? 0
          : static_cast<int64_t>(b.queued_milli * 100 / (b.cards * 1000));
  // Its new backlog counts what peers sent it so far.
  for (auto& peer : brokers_) peer.sent_milli[static_cast<size_t>(region)] = 0;
  if (!b.all_stale && b.stale.empty()) return;  // nothing changed: same advert
  // The index as the plain snapshot the broker builds its adverts from.
  const auto& providers = b.index->providers();
  auto rebuild = [&](uint32_t id) {
    const auto& provider = providers[id];
    matching::ProviderCapacity capacity;
    capacity.provider = provider.name;
    capacity.region = provider.region;
    capacity.currency = provider.currency;
    for (const auto& price : provider.registration.prices()) {
      capacity.price_per_card_hour[price.model()] = price.per_card_hour();
    }
    for (const auto& node : provider.nodes) {
      matching::NodeCapacity out;
      out.name = node.name;
      out.fabric_id = provider.fabrics[node.fabric].id;
      for (const auto& group : node.groups) {
        if (group.shelf == UINT32_MAX) continue;
        matching::DeviceGroup devices;
        devices.model = b.index->model_name(group.model);
        devices.memory_mib = group.memory_mib;
        devices.total = group.count;
        for (uint32_t d = 0; d < group.count; ++d) {
          if (group.used_milli[d] == 0)
            devices.free_devices.push_back(group.first_index + d);
        }
        out.groups.push_back(std::move(devices));
      }
      capacity.nodes.push_back(std::move(out));
    }
    b.snapshot[id] = std::move(capacity);
  };
  if (b.all_stale) {
    b.snapshot.assign(providers.size(), {});
    for (uint32_t id = 0; id < providers.size(); ++id) rebuild(id);
    b.all_stale = false;
  } else {
    std::sort(b.stale.begin(), b.stale.end());
    b.stale.erase(std::unique(b.stale.begin(), b.stale.end()), b.stale.end());
    for (uint32_t id : b.stale) rebuild(id);
  }
  b.stale.clear();
  b.advert = broker::SummarizeCapacity(b.snapshot);
}

void Simulation::Sample() {
  std::vector<double> values;
  for (const auto& b : brokers_) {
    values.push_back(b.cards == 0 ? 0
                                  : static_cast<double>(b.held_milli) /
                                        static_cast<double>(b.cards * 1000));
  }
  result_.samples.emplace_back(loop_.now_ms(), std::move(values));
}

void Simulation::Tick() {
  ++result_.events;
  const int64_t now = loop_.now_ms();
  if (Forwards()) {
    for (size_t r = 0; r < brokers_.size(); ++r) Publish(static_cast<int>(r));
    for (auto& b : brokers_) {
      for (size_t p = 0; p < b.peers.size(); ++p) {
        if (b.peer_views.size() <= p) b.peer_views.resize(b.peers.size());
        broker::PeerView& view = b.peer_views[p];
        const Broker& peer = brokers_[b.peers[p]];
        view.broker_id = peer.name;
        view.region = peer.name;
        view.link_up = true;
        view.entries = peer.advert;
      }
    }
    // The waiting jobs a broker routes again: its own, queued at home for
    // reroute_after, and those it may not run itself.
    for (size_t r = 0; r < brokers_.size(); ++r) {
      Broker& b = brokers_[r];
      std::vector<uint32_t> waiting(b.home_waiting.begin(),
                                    b.home_waiting.end());
      for (uint32_t job : waiting) {
        if (now - live_[job].queued_since < options_.reroute_after_ms) continue;
        const Decision decision = Decide(job, false);
        if (decision.kind != Decision::Kind::kForward) continue;
        b.queue->Remove(JobId(job));
        b.queued_milli -= workload_.jobs[job].DemandMilli();
        b.home_waiting.erase(job);
        Forward(job, static_cast<int>(r), decision.target);
      }
      std::vector<uint32_t> parked;
      parked.swap(b.parked);
      for (uint32_t job : parked) {
        const Decision decision = Decide(job, false);
        if (decision.kind == Decision::Kind::kForward) {
          live_[job].parked = false;
          Forward(job, static_cast<int>(r), decision.target);
        } else if (decision.kind == Decision::Kind::kReject) {
          live_[job].parked = false;
          Refuse(job, decision.reason);
        } else {
          b.parked.push_back(job);
        }
      }
    }
  }
  // Past the drain limit every tick refuses what still waits, including
  // forwards that were in flight at the first drain.
  if (now >= last_arrival_ms_ + options_.drain_limit_ms) Drain();
  if (unsettled_ > 0)
    loop_.At(now + options_.advert_interval_ms, [this] { Tick(); });
}

void Simulation::Drain() {
  for (auto& b : brokers_) {
    for (const auto& id : b.queue->Order()) {
      const uint32_t job = static_cast<uint32_t>(std::stoul(id.substr(1)));
      b.queue->Remove(id);
      b.queued_milli -= workload_.jobs[job].DemandMilli();
      b.home_waiting.erase(job);
      Refuse(job, "still waiting at " + b.name + " when the simulation ended");
    }
    for (uint32_t job : b.parked) {
      Refuse(job, "no allowed region took it before the simulation ended");
    }
    b.parked.clear();
  }
}

StatusOr<SimResult> Simulation::Run() {
  const auto started = std::chrono::steady_clock::now();
  CN_RETURN_IF_ERROR(Build());
  unsettled_ = workload_.jobs.size();
  if (!workload_.jobs.empty()) {
    last_arrival_ms_ = workload_.jobs.back().arrival_ms;
    loop_.At(workload_.jobs.front().arrival_ms, [this] { Arrive(0); });
  }
  loop_.At(0, [this] { Tick(); });
  std::function<void()> sample = [&] {
    Sample();
    if (unsettled_ > 0)
      loop_.At(loop_.now_ms() + options_.sample_interval_ms, sample);
  };
  loop_.At(0, sample);
  loop_.Run();
  CN_RETURN_IF_ERROR(failure_);
  for (size_t r = 0; r < brokers_.size(); ++r) {
    Broker& b = brokers_[r];
    Busy(b, 0);
    result_.busy_milli_ms[r] = b.busy_milli_ms;
  }
  result_.window_ms = last_arrival_ms_;
  result_.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  return std::move(result_);
}

}  // namespace

std::string_view PolicyName(Policy policy) {
  switch (policy) {
    case Policy::kLocalOnly:
      return "local-only";
    case Policy::kLocalFirst:
      return "local-first";
    case Policy::kGlobalCheapest:
      return "global-cheapest";
    case Policy::kWaitAware:
      return "wait-aware";
  }
  return "?";
}

std::optional<Policy> ParsePolicy(std::string_view name) {
  for (Policy policy : kAllPolicies) {
    if (PolicyName(policy) == name) return policy;
  }
  return std::nullopt;
}

StatusOr<SimResult> Simulate(const Topology& topology, const Workload& workload,
                             Policy policy, const SimOptions& options) {
  if (topology.regions.size() > 64) {
    return InvalidArgumentError("the simulator handles at most 64 regions");
  }
  Simulation simulation(topology, workload, policy, options);
  return simulation.Run();
}

Status CheckInvariants(const Topology& topology, const Workload& workload,
                       const SimResult& result) {
  if (result.outcomes.size() != workload.jobs.size()) {
    return FailedPreconditionError("outcomes do not cover the jobs");
  }
  for (size_t i = 0; i < workload.jobs.size(); ++i) {
    const SimJob& job = workload.jobs[i];
    const JobOutcome& outcome = result.outcomes[i];
    const std::string id = JobId(static_cast<uint32_t>(i));
    const bool ran = outcome.start_ms >= 0;
    const bool refused = outcome.refusal >= 0;
    if (ran == refused) {
      return FailedPreconditionError(
          id +
          (ran ? " both ran and was refused" : " neither ran nor was refused"));
    }
    if (refused) {
      if (static_cast<size_t>(outcome.refusal) >= result.reasons.size() ||
          result.reasons[static_cast<size_t>(outcome.refusal)].empty()) {
        return FailedPreconditionError(id + " was refused without a reason");
      }
      continue;
    }
    if (outcome.end_ms < outcome.start_ms ||
        outcome.start_ms < job.arrival_ms) {
      return FailedPreconditionError(id + " ran outside its arrival and end");
    }
    if (outcome.region < 0 ||
        !job.Allows(static_cast<size_t>(outcome.region))) {
      return FailedPreconditionError(
          id + " ran in region " +
          (outcome.region < 0
               ? std::string("?")
               : topology.regions[static_cast<size_t>(outcome.region)].name) +
          ", which it does not allow");
    }
    if (outcome.charge < 0 || outcome.charge > outcome.hold) {
      return FailedPreconditionError(
          id + " was charged " + std::to_string(outcome.charge) +
          ", outside its hold of " + std::to_string(outcome.hold));
    }
  }
  const size_t regions = topology.regions.size();
  for (size_t r = 0; r < regions; ++r) {
    int64_t sum = 0;
    for (const auto& [account, balance] : result.books[r]) sum += balance;
    if (sum != 0) {
      return FailedPreconditionError("the books of " +
                                     topology.regions[r].name + " sum to " +
                                     std::to_string(sum) + ", not zero");
    }
  }
  for (size_t h = 0; h < regions; ++h) {
    for (size_t r = 0; r < regions; ++r) {
      if (h == r) {
        if (result.clearing[h][r] != 0) {
          return FailedPreconditionError("a region owes itself");
        }
        continue;
      }
      auto balance = [&](size_t at, size_t peer) -> int64_t {
        auto it = result.books[at].find(
            ledger::ClearingAccount(topology.regions[peer].name));
        return it == result.books[at].end() ? 0 : it->second;
      };
      // h's clearing:r holds what h owes r for h's jobs there, less what r
      // owes h for r's jobs at h; r's clearing:h is its negation.
      const int64_t net = result.clearing[h][r] - result.clearing[r][h];
      if (balance(h, r) != net || balance(r, h) != -net) {
        return FailedPreconditionError(
            "clearing between " + topology.regions[h].name + " and " +
            topology.regions[r].name + " does not match both books");
      }
    }
  }
  return OkStatus();
}

}  // namespace computenet::sim
