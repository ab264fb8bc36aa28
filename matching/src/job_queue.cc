#include "computenet/matching/job_queue.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <tuple>
#include <unordered_map>

namespace computenet::matching {
namespace {

constexpr char kWaitingForCapacity[] = "waiting for capacity";

// LOW 0, NORMAL 1, HIGH 2: a level per class.
int64_t ClassRank(v1::PriorityClass priority) { return PriorityRank(priority) - 1; }

std::vector<std::string> NodeNames(const Placement& placement) {
  std::vector<std::string> out;
  for (const auto& assignment : placement.assignments) {
    out.push_back(placement.provider + "/" + assignment.node());
  }
  return out;
}

std::string FormatTime(int64_t ms) {
  if (ms == INT64_MAX) return "never";
  return std::to_string(ms) + " ms since the epoch";
}

// Everything of a request that decides whether it can be placed, as a map
// key (fields separated so no two requests share one).
std::string RequestKey(const PlacementRequest& request) {
  std::string key;
  auto add = [&key](const auto& value) {
    key += std::to_string(value);
    key += '\x1f';
  };
  auto add_list = [&key](const std::vector<std::string>& values) {
    for (const auto& value : values) {
      key += value;
      key += '\x1e';
    }
    key += '\x1f';
  };
  add(static_cast<int>(request.shape));
  add(request.nodes);
  add(request.cards_per_node);
  add(request.gpu_milli);
  add(request.a100_milli);
  add_list(request.models);
  add_list(request.vendor_classes);
  add(request.min_memory_mib);
  add(request.cpu_milli_per_card);
  add(request.host_memory_mib_per_card);
  add_list(request.allowed_regions);
  add_list(request.preferred_regions);
  add(request.max_price_per_card_hour);
  add(request.max_price_per_a100_hour);
  add(static_cast<int>(request.preemptible));
  return key;
}

}  // namespace

int PriorityRank(v1::PriorityClass priority) {
  switch (priority) {
    case v1::PRIORITY_CLASS_LOW:
      return 1;
    case v1::PRIORITY_CLASS_HIGH:
      return 3;
    default:
      return 2;  // NORMAL and UNSPECIFIED
  }
}

JobQueue::JobQueue(JobQueueOptions options, std::shared_ptr<Clock> clock)
    : options_(options),
      clock_(clock ? std::move(clock) : SystemClock::Shared()),
      workload_(options_.workload) {
  if (options_.fair_share_half_life_ms <= 0) {
    options_.fair_share_half_life_ms =
        JobQueueOptions().fair_share_half_life_ms;
  }
}

Status JobQueue::Add(QueuedJob job) {
  if (job.job_id.empty()) return InvalidArgumentError("queue: empty job id");
  if (jobs_.count(job.job_id) != 0) {
    return AlreadyExistsError("job " + job.job_id + " is already queued");
  }
  if (job.organization.empty()) job.organization = "-";
  explained_.erase(job.job_id);
  ever_.erase(job.job_id);
  if (options_.learn_workload) workload_.Observe(job.request);
  const std::string id = job.job_id;
  jobs_.emplace(id, std::move(job));
  return OkStatus();
}

bool JobQueue::Remove(const std::string& job_id) {
  explained_.erase(job_id);
  ever_.erase(job_id);
  return jobs_.erase(job_id) != 0;
}

bool JobQueue::Contains(const std::string& job_id) const {
  return jobs_.count(job_id) != 0;
}

const QueuedJob* JobQueue::Find(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

double JobQueue::Decayed(const Org& org, int64_t now_ms) const {
  const double half_life_s =
      static_cast<double>(options_.fair_share_half_life_ms) / 1000.0;
  const double elapsed_s =
      static_cast<double>(std::max<int64_t>(0, now_ms - org.usage_ms)) / 1000.0;
  const double decay = std::exp2(-elapsed_s / half_life_s);
  // Usage accrued meanwhile by the cards held, each second decayed from
  // when it was used: integral of r * 2^(-(now - t)/H) dt.
  const double accrued = static_cast<double>(org.running_milli) * half_life_s /
                         std::log(2.0) * (1.0 - decay);
  return org.usage * decay + accrued;
}

double JobQueue::ShareKey(const Org& org, int64_t now_ms) const {
  // Cards held now count as if held for one half-life more, so that
  // within one pass organizations take turns instead of one taking all.
  const double half_life_s =
      static_cast<double>(options_.fair_share_half_life_ms) / 1000.0;
  return Decayed(org, now_ms) +
         static_cast<double>(org.running_milli) * half_life_s;
}

JobQueue::Org& JobQueue::OrgAt(const std::string& organization,
                               int64_t now_ms) {
  Org& org = orgs_[organization];
  org.usage = Decayed(org, now_ms);
  org.usage_ms = now_ms;
  return org;
}

double JobQueue::UsageOf(const std::string& organization) const {
  auto it = orgs_.find(organization);
  if (it == orgs_.end()) return 0;
  return Decayed(it->second, clock_->NowMs());
}

std::vector<StoredUsage> JobQueue::UsageSnapshot() const {
  const int64_t now = clock_->NowMs();
  std::vector<StoredUsage> out;
  for (const auto& [name, org] : orgs_) {
    const double usage = Decayed(org, now);
    // Bounded so that a stored value always fits the column.
    if (!(usage >= 1.0)) continue;
    const uint64_t stored =
        usage >= 9.0e18 ? uint64_t{9'000'000'000'000'000'000u} : static_cast<uint64_t>(usage);
    out.push_back({name, stored, now});
  }
  return out;
}

void JobQueue::RestoreUsage(const StoredUsage& stored) {
  const int64_t now = clock_->NowMs();
  if (stored.usage_milli_s == 0) return;
  Org held;
  held.usage = static_cast<double>(stored.usage_milli_s);
  held.usage_ms = std::min(stored.as_of_ms, now);
  const std::string name = stored.organization.empty() ? "-" : stored.organization;
  OrgAt(name, now).usage += Decayed(held, now);
}

void JobQueue::MarkRunning(const std::string& job_id,
                           const std::string& organization,
                           uint64_t milli_cards, int64_t end_by_ms) {
  const int64_t now = clock_->NowMs();
  MarkStopped(job_id);
  const std::string org_name = organization.empty() ? "-" : organization;
  OrgAt(org_name, now).running_milli += milli_cards;
  running_[job_id] = Running{org_name, milli_cards, end_by_ms};
}

void JobQueue::MarkStopped(const std::string& job_id) {
  auto it = running_.find(job_id);
  if (it == running_.end()) return;
  Org& org = OrgAt(it->second.organization, clock_->NowMs());
  org.running_milli -= std::min(org.running_milli, it->second.milli);
  running_.erase(it);
}

int64_t JobQueue::LevelOf(const QueuedJob& job, int64_t now_ms) const {
  int64_t level = ClassRank(job.priority);
  if (options_.aging_interval_ms > 0 && now_ms > job.submitted_ms) {
    level += (now_ms - job.submitted_ms) / options_.aging_interval_ms;
  }
  return level;
}

template <typename Visit>
void JobQueue::Walk(int64_t now_ms, Visit&& visit) const {
  // level (highest first) -> organization -> its jobs in FIFO order.
  std::map<int64_t, std::map<std::string, std::vector<const QueuedJob*>>,
           std::greater<>>
      levels;
  for (const auto& [id, job] : jobs_) {
    levels[LevelOf(job, now_ms)][job.organization].push_back(&job);
  }
  std::map<std::string, double> keys;
  for (auto& [level, by_org] : levels) {
    using Entry = std::tuple<double, uint64_t, std::string>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> turns;
    std::map<std::string, size_t> next;
    for (auto& [org, list] : by_org) {
      std::sort(list.begin(), list.end(), [](const auto* a, const auto* b) {
        return std::tie(a->sequence, a->job_id) <
               std::tie(b->sequence, b->job_id);
      });
      if (keys.count(org) == 0) {
        // An organization's key is read once, when it is first reached;
        // from then on the walk adds what it places.
        auto known = orgs_.find(org);
        keys[org] =
            known == orgs_.end() ? 0.0 : ShareKey(known->second, now_ms);
      }
      turns.push({keys[org], list.front()->sequence, org});
      next[org] = 0;
    }
    while (!turns.empty()) {
      const std::string org = std::get<2>(turns.top());
      turns.pop();
      const auto& list = by_org[org];
      const QueuedJob* job = list[next[org]++];
      const uint64_t placed_milli = visit(*job);
      if (placed_milli > 0) {
        keys[org] += static_cast<double>(placed_milli) *
                     static_cast<double>(options_.fair_share_half_life_ms) /
                     1000.0;
      }
      if (next[org] < list.size()) {
        turns.push({keys[org], list[next[org]]->sequence, org});
      }
    }
  }
}

std::vector<std::string> JobQueue::Order() const {
  std::vector<std::string> out;
  Walk(clock_->NowMs(), [&](const QueuedJob& job) -> uint64_t {
    out.push_back(job.job_id);
    return 0;
  });
  return out;
}

MatchContext JobQueue::ContextFor(const QueuedJob& job) const {
  MatchContext context;
  context.excluded = &job.excluded_providers;
  if (options_.pack_for_workload) context.workload = &workload_;
  return context;
}

const JobQueue::Cached& JobQueue::Explain(const QueuedJob& job,
                                          const CapacityIndex& capacity,
                                          const Matcher& matcher) {
  Cached& ever = ever_[job.job_id];
  if (ever.generation != capacity.topology_generation()) {
    Status status = matcher.CheckEverFits(job.request, capacity);
    ever.generation = capacity.topology_generation();
    ever.never = !status.ok();
    ever.text = status.message();
  }
  if (ever.never) return ever;
  Cached& explained = explained_[job.job_id];
  if (explained.generation != capacity.offer_generation()) {
    MatchContext context;
    context.excluded = &job.excluded_providers;
    explained.generation = capacity.offer_generation();
    explained.text = matcher.ExplainNoFit(job.request, capacity, context);
  }
  return explained;
}

std::optional<Reservation> JobQueue::Reserve(const QueuedJob& head,
                                             CapacityIndex& capacity,
                                             const Matcher& matcher,
                                             int64_t now_ms,
                                             uint64_t* match_calls) {
  // Let running jobs end, in the order they must end by, until the head
  // fits; then give every job its cards back exactly as they were.
  std::vector<std::pair<int64_t, std::string>> ends;
  ends.reserve(running_.size());
  for (const auto& [job_id, running] : running_) {
    ends.push_back({running.end_by_ms, job_id});
  }
  std::sort(ends.begin(), ends.end());
  Reservation reservation;
  reservation.job_id = head.job_id;
  reservation.start_by_ms = INT64_MAX;
  MatchContext context = ContextFor(head);
  std::vector<std::pair<std::string, JobAllocation>> taken;
  size_t steps = 0;
  for (size_t i = 0; i < ends.size();) {
    const int64_t end_by = ends[i].first;
    for (; i < ends.size() && ends[i].first == end_by; ++i) {
      if (auto allocation = capacity.Release(ends[i].second)) {
        taken.push_back({ends[i].second, std::move(*allocation)});
      }
    }
    if (++steps > options_.max_reservation_steps) {
      reservation.start_by_ms = now_ms;  // unknown: nobody jumps the head
      reservation.nodes.clear();
      break;
    }
    ++*match_calls;
    if (auto placement = matcher.Match(head.request, capacity, context)) {
      reservation.start_by_ms = std::max(end_by, now_ms);
      reservation.nodes = NodeNames(*placement);
      break;
    }
  }
  for (auto& [job_id, allocation] : taken) {
    (void)capacity.Allocate(job_id, allocation);
  }
  return reservation;
}

JobQueue::PassResult JobQueue::Schedule(CapacityIndex& capacity,
                                        const Matcher& matcher) {
  const int64_t now = clock_->NowMs();
  PassResult result;
  const QueuedJob* head = nullptr;
  bool reserved = false;
  bool block_all = false;  // the reservation is unknown: no one jumps
  std::unordered_set<uint64_t> reserved_nodes;
  std::vector<std::string> leaving;

  auto place = [&](const QueuedJob& job, Placement placement) -> uint64_t {
    JobAllocation allocation;
    allocation.provider = placement.provider;
    allocation.assignments = placement.assignments;
    allocation.cpu_milli_per_card = job.request.cpu_milli_per_card;
    allocation.host_memory_mib_per_card = job.request.host_memory_mib_per_card;
    Status allocated = capacity.Allocate(job.job_id, allocation);
    if (!allocated.ok()) {
      result.waiting.push_back({job.job_id, std::nullopt,
                                "internal: " + allocated.message(), false});
      return 0;
    }
    const uint64_t milli = job.request.shape == RequestShape::kComputeEquivalent
                               ? uint64_t{placement.cards} * kWholeCardMilli
                               : job.request.DemandMilli();
    // Running from now: a reservation later in this pass lets it end by
    // its max duration like any other.
    MarkRunning(job.job_id, job.organization, milli,
                now + int64_t{job.max_duration_s} * 1000);
    result.placed.push_back({job.job_id, std::move(placement), "", false});
    leaving.push_back(job.job_id);
    return milli;
  };

  // Within one pass capacity only shrinks (jobs are placed, none end), so a
  // request that found no place finds none later in the same pass: the
  // waiting jobs with the same request (a saturated queue holds thousands
  // of a few shapes) reuse its answer instead of searching again.
  std::unordered_map<std::string, std::string> no_place;  // key -> why
  Walk(now, [&](const QueuedJob& job) -> uint64_t {
    MatchContext context = ContextFor(job);
    const std::string key =
        job.excluded_providers.empty() ? RequestKey(job.request) : "";
    auto known = key.empty() ? no_place.end() : no_place.find(key);
    std::optional<Placement> placement;
    if (known == no_place.end()) {
      ++result.match_calls;
      placement = matcher.Match(job.request, capacity, context);
    }
    if (!placement) {
      std::string reason;
      if (known != no_place.end()) {
        reason = known->second;
      } else {
        const Cached& why = Explain(job, capacity, matcher);
        if (why.never) {
          result.never_fit.push_back(
              {job.job_id, std::nullopt, why.text, true});
          leaving.push_back(job.job_id);
          return 0;
        }
        reason = why.text;
        if (!key.empty()) no_place.emplace(key, why.text);
      }
      if (head == nullptr && reason.rfind(kWaitingForCapacity, 0) == 0) {
        head = &job;  // the first job held back by capacity alone
        reason += " (first in line)";
      }
      result.waiting.push_back({job.job_id, std::nullopt, reason, false});
      return 0;
    }
    if (head == nullptr) return place(job, std::move(*placement));
    // Backfill: may it start before the head without delaying it?
    if (!reserved) {
      reserved = true;
      auto reservation =
          Reserve(*head, capacity, matcher, now, &result.match_calls);
      result.reservation = reservation;
      if (reservation->start_by_ms != INT64_MAX) {
        if (reservation->nodes.empty()) block_all = true;
        for (const auto& name : reservation->nodes) {
          const auto slash = name.find('/');
          auto provider = capacity.ProviderId(name.substr(0, slash));
          if (!provider) continue;
          const auto& nodes = capacity.providers()[*provider].node_by_name;
          auto node = nodes.find(name.substr(slash + 1));
          if (node != nodes.end()) {
            reserved_nodes.insert(NodeKey(*provider, node->second));
          }
        }
      }
    }
    const Reservation& reservation = *result.reservation;
    const int64_t ends_by = now + int64_t{job.max_duration_s} * 1000;
    if (reservation.start_by_ms == INT64_MAX ||
        (!block_all && ends_by <= reservation.start_by_ms)) {
      return place(job, std::move(*placement));
    }
    if (!block_all) {
      context.avoid_nodes = &reserved_nodes;
      ++result.match_calls;
      if (auto elsewhere = matcher.Match(job.request, capacity, context)) {
        return place(job, std::move(*elsewhere));
      }
    }
    result.waiting.push_back({job.job_id, std::nullopt,
                              "waiting behind job " + head->job_id +
                                  ", which is reserved to start by " +
                                  FormatTime(reservation.start_by_ms) +
                                  " (starting now would delay it)",
                              false});
    return 0;
  });

  for (const auto& job_id : leaving) Remove(job_id);
  return result;
}

}  // namespace computenet::matching
