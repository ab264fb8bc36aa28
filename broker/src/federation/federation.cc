// Federation: peer links, capacity adverts, forwarding jobs to peers and
// running peers' jobs here, streaming remote status home, countersigned
// usage, cancel propagation, reconciliation after a link comes back, and the
// operator's view. The rules are in docs/federation.md.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "computenet/common/secrets.h"
#include "computenet/common/utc_time.h"
#include "core/imports.h"
#include "core/broker_impl.h"
#include "computenet/ledger/clearing_statement.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/ledger/replica.h"
#include "federation/capacity_advert.h"
#include "jobs/job_rules.h"
#include "computenet/ledger/remote_usage.h"
#include "computenet/common/usage_record.h"

namespace computenet::broker {
namespace {

constexpr uint32_t kDefaultHopLimit = 1;

}  // namespace

Status BrokerImpl::InitFederation() {
  CN_RETURN_IF_ERROR(ValidatePartyName(options_.region));
  // Pinned peers are exactly the enrolled "peer" keys: enroll new or
  // changed ones, revoke any no longer configured.
  std::set<std::string> configured;
  for (const auto& peer : options_.peers) {
    CN_RETURN_IF_ERROR(ValidatePartyName(peer.broker_id));
    CN_RETURN_IF_ERROR(ValidateCurveKey(peer.curve_public));
    auto signing = VerifyingKey::FromHex(peer.ed25519_public);
    if (!signing.ok()) {
      return signing.status().WithContext("peer " + peer.broker_id);
    }
    if (peer.broker_id == options_.broker_id) {
      return InvalidArgumentError("a broker cannot peer with itself");
    }
    if (!peer.next_curve_public.empty()) {
      CN_RETURN_IF_ERROR(
          ValidateCurveKey(peer.next_curve_public)
              .WithContext("peer " + peer.broker_id + " next key"));
    }
    configured.insert(peer.broker_id);
    Status synced = store_->database().RunInTransaction([&]() -> Status {
      CN_RETURN_IF_ERROR(
          store_->RemovePeerEnrollment(peer.broker_id, peer.curve_public));
      if (!peer.next_curve_public.empty()) {
        CN_RETURN_IF_ERROR(store_->RemovePeerEnrollment(
            peer.broker_id, peer.next_curve_public));
      }
      CN_RETURN_IF_ERROR(
          store_->Enroll(Role::kPeer,
                         PublicIdentity{peer.broker_id, peer.curve_public,
                                        peer.ed25519_public},
                         Now()));
      if (peer.next_curve_public.empty()) return OkStatus();
      // Its next key is the peer too (both active): it may restart on it.
      return store_->AddKey(
          Role::kPeer,
          PublicIdentity{peer.broker_id, peer.next_curve_public,
                         peer.ed25519_public},
          Now());
    });
    CN_RETURN_IF_ERROR(synced.WithContext("pin peer " + peer.broker_id));
    // Its ledger is replicated here under the same pinned key.
    Status followed = ReplicaStore(store_->database()).Follow(
        peer.broker_id, peer.ed25519_public, Now());
    if (!followed.ok()) {
      spdlog::warn("replica of {}: {}", peer.broker_id, followed.ToString());
    }
  }
  CN_ASSIGN_OR_RETURN(auto enrolled, store_->ListEnrollments());
  for (const auto& enrollment : enrolled) {
    if (enrollment.role == Role::kPeer && !enrollment.revoked &&
        configured.count(enrollment.name) == 0) {
      CN_RETURN_IF_ERROR(store_->Revoke(Role::kPeer, enrollment.name));
      spdlog::info("peer {} no longer configured: key revoked", enrollment.name);
    }
  }
  for (const auto& peer : options_.peers) {
    links_[peer.broker_id] = std::make_unique<PeerLink>(
        context_, peer, identity_.curve(), options_.broker_id, options_.region,
        clock_, options_.heartbeat_interval_ms, options_.heartbeat_liveness);
  }
  routing_.broker_id = options_.broker_id;
  routing_.home_region = options_.region;
  routing_.forward_margin_bp = options_.forward_margin_bp;
  // Adverts from brokers before routing v2 carry no compute figures.
  routing_.catalog = registry_.capacity().shared_catalog();
  return OkStatus();
}

const PeerConfig* BrokerImpl::FindPeer(const std::string& broker_id) const {
  for (const auto& peer : options_.peers) {
    if (peer.broker_id == broker_id) return &peer;
  }
  return nullptr;
}

void BrokerImpl::PollPeerLinks() {
  for (auto& [name, link] : links_) {
    for (const auto& envelope : link->Drain()) HandlePeerReply(*link, envelope);
  }
}

std::set<std::string> BrokerImpl::DeclinedNow(const std::string& job_id) const {
  std::set<std::string> peers;
  auto job = declined_by_.find(job_id);
  if (job == declined_by_.end()) return peers;
  const int64_t now = Now();
  for (const auto& [peer, decline] : job->second) {
    if (decline.retry_at_ms > now) peers.insert(peer);
  }
  return peers;
}

std::string BrokerImpl::DeclineNote(const std::string& job_id) const {
  auto job = declined_by_.find(job_id);
  if (job == declined_by_.end()) return "";
  // An absolute time, so the note (and the stored reason) stays the same
  // from pass to pass.
  std::string note;
  for (const auto& [peer, decline] : job->second) {
    note += "; declined by " + peer + " (" + decline.reason.substr(0, 160) +
            "), tried there again from " + FormatUtc(decline.retry_at_ms);
  }
  return note;
}

void BrokerImpl::RecordDecline(const std::string& job_id, const std::string& peer,
                               const std::string& reason) {
  ForwardDecline& decline = declined_by_[job_id][peer];
  const uint32_t declines = decline.job_id.empty() ? 1 : decline.declines + 1;
  int64_t wait = std::max<int64_t>(1, options_.decline_retry_ms);
  for (uint32_t i = 1; i < declines && wait < options_.max_decline_retry_ms; ++i) {
    wait *= 2;
  }
  wait = std::min(wait, std::max<int64_t>(1, options_.max_decline_retry_ms));
  decline = ForwardDecline{job_id, peer, Now() + wait, declines, reason.substr(0, 512)};
  next_decline_retry_ms_ = std::min(next_decline_retry_ms_, decline.retry_at_ms);
  Status saved = store_->SaveDecline(decline);
  if (!saved.ok()) spdlog::warn("storing a decline: {}", saved.ToString());
  spdlog::info("job {} declined by {} ({} time(s)); not offered there for {} ms",
               job_id, peer, declines, wait);
}

void BrokerImpl::ForgetDeclines(const std::string& job_id) {
  if (declined_by_.erase(job_id) == 0) return;
  Status deleted = store_->DeleteDeclines(job_id);
  if (!deleted.ok()) spdlog::warn("forgetting declines: {}", deleted.ToString());
}

void BrokerImpl::RetryExpiredDeclines(int64_t now_ms) {
  if (now_ms < next_decline_retry_ms_) return;
  // Something expired: route the waiting jobs again. The next time to look
  // is the earliest retry still ahead.
  int64_t next = INT64_MAX;
  for (const auto& [job, peers] : declined_by_) {
    for (const auto& [peer, decline] : peers) {
      if (decline.retry_at_ms > now_ms) next = std::min(next, decline.retry_at_ms);
    }
  }
  next_decline_retry_ms_ = next;
  jobs_->RequestSchedule();
}

Status BrokerImpl::LoadDeclines() {
  CN_ASSIGN_OR_RETURN(auto declines, store_->LoadDeclines());
  for (auto& decline : declines) {
    next_decline_retry_ms_ = std::min(next_decline_retry_ms_, decline.retry_at_ms);
    const std::string job_id = decline.job_id;
    const std::string peer = decline.peer;
    declined_by_[job_id][peer] = std::move(decline);
  }
  return OkStatus();
}

void BrokerImpl::TickFederation(int64_t now_ms) {
  RetryExpiredDeclines(now_ms);
  for (auto& [name, link] : links_) {
    switch (link->Tick()) {
      case PeerLink::Event::kUp:
        OnPeerLinkUp(*link);
        break;
      case PeerLink::Event::kDown:
        OnPeerLinkDown(*link);
        break;
      case PeerLink::Event::kNone:
        break;
    }
  }
  // Adverts from silent peers expire.
  const int64_t ttl = options_.advert_ttl_ms > 0
                          ? options_.advert_ttl_ms
                          : 5 * options_.heartbeat_interval_ms;
  for (auto it = adverts_.begin(); it != adverts_.end();) {
    if (now_ms - it->second.received_ms > ttl) {
      spdlog::info("adverts from {} expired", it->first);
      it = adverts_.erase(it);
    } else {
      ++it;
    }
  }
  if (!links_.empty() &&
      now_ms - last_advert_ms_ >= options_.heartbeat_interval_ms) {
    SendAdverts(now_ms);
  }
  SendSettlements(now_ms);
  PullPeerLedgers(now_ms);
}

namespace {
constexpr uint64_t kFullAdvertEvery = 10;
}  // namespace

void BrokerImpl::SendAdverts(int64_t now_ms) {
  last_advert_ms_ = now_ms;
  const auto summary = SummarizeCapacity(registry_.OnlineCapacity(),
                                         &registry_.capacity().catalog());
  const uint32_t ttl = static_cast<uint32_t>(
      options_.advert_ttl_ms > 0 ? options_.advert_ttl_ms
                                 : 5 * options_.heartbeat_interval_ms);
  for (auto& [name, link] : links_) {
    if (!link->up()) continue;
    auto& sent = advert_sent_[name];
    // A full advert after a gap on our side (this loop stalled longer than
    // the peer keeps our entries, so it may have expired them and a delta
    // would never restore them), and every kFullAdvertEvery adverts anyway:
    // adverts are sent unreliably, and a lost delta must not last.
    int64_t& last_sent = advert_sent_ms_[name];
    uint64_t& since_full = adverts_since_full_[name];
    const bool full = advert_full_pending_.erase(name) != 0 ||
                      now_ms - last_sent >= ttl / 2 ||
                      since_full + 1 >= kFullAdvertEvery;
    last_sent = now_ms;
    since_full = full ? 0 : since_full + 1;
    v1::CapacityAdvert advert;
    advert.set_origin(options_.broker_id);
    advert.set_region(options_.region);
    advert.set_sequence(++advert_sequence_);
    advert.set_full(full);
    advert.set_sent_ms(now_ms);
    advert.set_ttl_ms(ttl);
    // An empty delta still goes out: it keeps our adverts from expiring.
    for (const auto& entry : full ? summary : AdvertDelta(sent, summary)) {
      *advert.add_entries() = entry;
    }
    sent.clear();
    for (const auto& entry : summary) sent[entry.model()] = entry;
    link->Send(v1::MESSAGE_TYPE_CAPACITY_ADVERT, advert, /*reliable=*/false);
  }
}

void BrokerImpl::OnPeerLinkUp(PeerLink& link) {
  const std::string& peer = link.config().broker_id;
  advert_full_pending_.insert(peer);
  last_advert_ms_ = 0;  // advertise at once
  // The remote broker is the authority on what ran: ask about every job it
  // accepted that has not ended. A forward still unanswered is its own
  // reconciliation: it goes (again) on this connection and the peer answers
  // accepted, duplicate or declined. Asking about it as well would race the
  // forward, and "unknown" would re-route a job the peer is about to accept.
  auto jobs = store_->JobsInStates(
      {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING});
  if (!jobs.ok()) return;
  v1::ReconcileJobs reconcile;
  for (auto& job : *jobs) {
    if (job.remote_broker() != peer || !job.home_broker().empty()) continue;
    if (job.state() != v1::JOB_STATE_QUEUED) {
      reconcile.add_job_ids(job.job_id());
    } else if (pending_forwards_.count(job.job_id()) == 0) {
      // Forwarded before this broker restarted: ask again.
      Status resent = ForwardJob(job, peer);
      if (!resent.ok()) spdlog::error("{}", resent.ToString());
    }
  }
  if (reconcile.job_ids_size() > 0) {
    spdlog::info("peer {}: reconciling {} forwarded job(s)", peer,
                 reconcile.job_ids_size());
    link.Send(v1::MESSAGE_TYPE_RECONCILE_JOBS, reconcile, /*reliable=*/true);
  }
  jobs_->RequestSchedule();
}

void BrokerImpl::OnPeerLinkDown(PeerLink& link) {
  const std::string& peer = link.config().broker_id;
  adverts_.erase(peer);
  auto jobs = store_->JobsInStates(
      {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING});
  if (!jobs.ok()) return;
  for (auto& job : *jobs) {
    if (job.remote_broker() != peer || !job.home_broker().empty() ||
        job.in_doubt()) {
      continue;
    }
    job.set_in_doubt(true);
    job.set_reason("in doubt: link to " + peer + " lost; kept until it returns");
    Status saved = jobs_->Save(job);
    if (!saved.ok()) spdlog::error("{}", saved.ToString());
  }
}

std::vector<PeerView> BrokerImpl::PeerViews() const {
  std::vector<PeerView> views;
  for (const auto& peer : options_.peers) {
    PeerView view;
    view.broker_id = peer.broker_id;
    view.region = peer.region;
    auto link = links_.find(peer.broker_id);
    view.link_up = link != links_.end() && link->second->up();
    auto adverts = adverts_.find(peer.broker_id);
    if (adverts != adverts_.end()) {
      for (const auto& [model, entry] : adverts->second.entries) {
        if (entry.free_cards() > 0) view.entries.push_back(entry);
      }
    }
    views.push_back(std::move(view));
  }
  return views;
}

Status BrokerImpl::ForwardJob(v1::JobInfo& job, const std::string& peer) {
  auto link = links_.find(peer);
  if (link == links_.end()) return NotFoundError("no peer " + peer);
  // The secret values go to the peer inside the ForwardJob only (a CURVE
  // link); it seals them under its own key. Without them it cannot run.
  std::map<std::string, std::string> secrets;
  if (!job.spec().secret_env().empty()) {
    CN_ASSIGN_OR_RETURN(secrets, store_->JobSecrets(job.job_id()));
    if (secrets.size() != static_cast<size_t>(job.spec().secret_env_size())) {
      return DataLossError("job " + job.job_id() +
                           ": its secret env values are gone");
    }
  }
  // Durable first: after a crash we know which peer may hold the job, and
  // reconcile with it before routing the job anywhere else. The hold on the
  // consumer commits with it: the peer may spend at most that.
  int64_t budget = 0;
  Status saved = store_->database().RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(budget, HoldForForward(job, peer));
    job.set_remote_broker(peer);
    job.set_reason("forwarded to " + peer + "; waiting for its answer");
    return store_->UpdateJob(job, Now());
  });
  if (saved.code() == StatusCode::kFailedPrecondition) {
    return jobs_->WaitForFunds(job, saved);
  }
  CN_RETURN_IF_ERROR(saved);
  Notify(job);
  v1::ForwardJob forward;
  forward.set_budget(budget);
  *forward.mutable_job() = job;
  for (const auto& [name, value] : secrets) {
    (*forward.mutable_job()->mutable_spec()->mutable_secret_env())[name] =
        value;
  }
  forward.add_path(options_.broker_id);
  forward.set_hop_limit(kDefaultHopLimit);
  link->second->Send(v1::MESSAGE_TYPE_FORWARD_JOB, forward, /*reliable=*/true);
  pending_forwards_.insert(job.job_id());
  spdlog::info("job {} forwarded to {}", job.job_id(), peer);
  return OkStatus();
}

void BrokerImpl::HandlePeerReply(PeerLink& link, const v1::Envelope& envelope) {
  const std::string& peer = link.config().broker_id;
  Status status = StatusFromProto(envelope.status());
  switch (envelope.type()) {
    case v1::MESSAGE_TYPE_PEER_PUT_BUNDLE_CHUNK_REPLY:
    case v1::MESSAGE_TYPE_PEER_GET_BUNDLE_CHUNK_REPLY:
    case v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK_REPLY:
      return OnBundleRelayReply(link, envelope);
    case v1::MESSAGE_TYPE_FORWARD_JOB_REPLY: {
      auto reply = DecodeBody<v1::ForwardJobReply>(envelope);
      if (!reply.ok()) return;
      if (status.code() == StatusCode::kUnavailable) return;  // resent
      pending_forwards_.erase(reply->job_id());
      auto job = store_->GetJob(reply->job_id());
      if (!job.ok()) return;
      if (job->remote_broker() != peer) {
        // Accepted after we stopped waiting for this peer: it must not run
        // there as well.
        if (status.ok() && reply->accepted()) {
          v1::CancelRemoteJob cancel;
          cancel.set_job_id(job->job_id());
          link.Send(v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB, cancel, true);
        }
        return;
      }
      if (!status.ok() || !reply->accepted()) {
        if (job->state() != v1::JOB_STATE_QUEUED) return;
        const std::string why = status.ok() ? reply->reason() : status.ToString();
        RecordDecline(job->job_id(), peer, why);
        job->set_remote_broker("");
        job->set_reason("declined by " + peer + ": " + why + DeclineNote(job->job_id()));
        spdlog::info("job {} {}", job->job_id(), job->reason());
        if (jobs_->SaveReleasingHold(*job, "declined by " + peer).ok()) {
          jobs_->Enqueue(*job);
          jobs_->RequestSchedule();
        }
        return;
      }
      if (IsTerminal(job->state())) {
        // Cancelled while the forward was out: stop it there too.
        v1::CancelRemoteJob cancel;
        cancel.set_job_id(job->job_id());
        link.Send(v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB, cancel, true);
        return;
      }
      if (job->state() == v1::JOB_STATE_QUEUED) {
        // Its declines go in JobChanged, like those of any job that leaves
        // the queue.
        job->set_state(v1::JOB_STATE_PLACED);
        job->set_reason("placed at " + peer);
        Status saved = jobs_->Save(*job);
        if (!saved.ok()) spdlog::error("{}", saved.ToString());
      }
      return;
    }
    case v1::MESSAGE_TYPE_PEER_LEDGER_PULL_REPLY: {
      auto stream = DecodeBody<v1::LedgerStream>(envelope);
      if (!status.ok() || !stream.ok()) {
        spdlog::warn("ledger pull from {}: {}", peer,
                     status.ok() ? stream.status().ToString() : status.ToString());
        return;
      }
      OnLedgerStream(peer, *stream);
      return;
    }
    case v1::MESSAGE_TYPE_PEER_COSIGNATURE_REPLY:
      if (!status.ok()) {
        spdlog::warn("cosignature refused by {}: {}", peer, status.ToString());
      }
      return;
    case v1::MESSAGE_TYPE_PEER_SETTLEMENT_REPLY: {
      auto reply = DecodeBody<v1::SettlementReply>(envelope);
      if (!status.ok() || !reply.ok()) {
        spdlog::warn("settlement with {}: {}", peer,
                     status.ok() ? reply.status().ToString() : status.ToString());
        return;
      }
      OnSettlementReply(peer, *reply);
      return;
    }
    case v1::MESSAGE_TYPE_RECONCILE_JOBS_REPLY: {
      auto reply = DecodeBody<v1::ReconcileJobsReply>(envelope);
      if (!status.ok() || !reply.ok()) return;
      // Usage first: a job that ended there releases its hold here, and
      // its usage must be posted against that hold before.
      for (const auto& usage : reply->usages()) {
        Status posted = ApplyRemoteUsage(peer, usage);
        if (!posted.ok() && posted.code() != StatusCode::kAlreadyExists) {
          spdlog::warn("reconcile usage: {}", posted.ToString());
        }
      }
      for (const auto& remote : reply->jobs()) {
        ApplyRemoteJob(peer, remote, std::numeric_limits<uint64_t>::max());
      }
      for (const auto& job_id : reply->unknown_job_ids()) {
        auto job = store_->GetJob(job_id);
        if (!job.ok() || job->remote_broker() != peer ||
            IsTerminal(job->state()) || pending_forwards_.count(job_id) != 0) {
          continue;
        }
        // It never arrived there, so it never ran there: route it afresh.
        job->set_remote_broker("");
        job->set_in_doubt(false);
        job->set_state(v1::JOB_STATE_QUEUED);
        job->set_provider("");
        job->set_reason(peer + " never received it; routing again");
        if (jobs_->SaveReleasingHold(*job, peer + " never received it").ok()) {
          jobs_->Enqueue(*job);
          jobs_->RequestSchedule();
        }
      }
      return;
    }
    default:
      if (!status.ok()) {
        spdlog::warn("peer {} answered {}: {}", peer,
                     MessageTypeName(envelope.type()), status.ToString());
      }
  }
}

// ---- requests from peers (inbound, role peer) -----------------------------

void BrokerImpl::OnPeerHello(const Request& request) {
  v1::PeerHelloReply reply;
  reply.set_broker_id(options_.broker_id);
  reply.set_region(options_.region);
  auto hello = DecodeBody<v1::PeerHello>(request.envelope);
  Status status = hello.status();
  if (status.ok() && hello->broker_id() != request.peer.name) {
    status = PermissionDeniedError("hello names " + hello->broker_id() +
                                   " but your key is pinned as " +
                                   request.peer.name);
  }
  Reply(request, v1::MESSAGE_TYPE_PEER_HELLO_REPLY, reply, status);
}

void BrokerImpl::OnCapacityAdvert(const Request& request) {
  v1::CapacityAdvertReply reply;
  auto advert = DecodeBody<v1::CapacityAdvert>(request.envelope);
  if (!advert.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_CAPACITY_ADVERT_REPLY, reply,
                 advert.status());
  }
  if (advert->origin() != request.peer.name) {
    return Reply(request, v1::MESSAGE_TYPE_CAPACITY_ADVERT_REPLY, reply,
                 PermissionDeniedError("advert origin is not you"));
  }
  ReceivedAdverts& held = adverts_[request.peer.name];
  reply.set_sequence(advert->sequence());
  if (!advert->full() && advert->sequence() <= held.sequence) {
    return Reply(request, v1::MESSAGE_TYPE_CAPACITY_ADVERT_REPLY, reply);
  }
  if (advert->full()) held.entries.clear();
  held.sequence = advert->sequence();
  held.region = advert->region();
  held.received_ms = Now();
  for (const auto& entry : advert->entries()) {
    if (entry.free_cards() == 0 && entry.gangs_size() == 0) {
      held.entries.erase(entry.model());
    } else {
      held.entries[entry.model()] = entry;
    }
  }
  if (!advert->entries().empty()) jobs_->RequestSchedule();
  Reply(request, v1::MESSAGE_TYPE_CAPACITY_ADVERT_REPLY, reply);
}

void BrokerImpl::OnForwardJob(const Request& request) {
  v1::ForwardJobReply reply;
  const std::string& peer = request.peer.name;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_FORWARD_JOB_REPLY, reply, status);
  };
  auto decline = [&](const std::string& reason) {
    reply.set_accepted(false);
    reply.set_reason(reason);
    spdlog::info("declined job {} from {}: {}", reply.job_id(), peer, reason);
    respond(OkStatus());
  };
  auto forward = DecodeBody<v1::ForwardJob>(request.envelope);
  if (!forward.ok()) return respond(forward.status());
  const v1::JobInfo& offered = forward->job();
  reply.set_job_id(offered.job_id());
  // Global ids are "<home broker>-<seq>": a peer forwards only its own jobs.
  if (offered.job_id().rfind(peer + "-", 0) != 0) {
    return respond(PermissionDeniedError("job " + offered.job_id() +
                                         " is not one of " + peer + "'s"));
  }
  Status valid = ValidateJobSpec(offered.spec());
  if (!valid.ok()) return respond(valid);
  if (std::find(forward->path().begin(), forward->path().end(),
                options_.broker_id) != forward->path().end()) {
    return decline("loop: " + options_.broker_id + " is already on the path");
  }
  if (forward->hop_limit() == 0) return decline("hop limit reached");
  auto existing = store_->GetJob(offered.job_id());
  if (existing.ok()) {
    if (existing->home_broker() != peer) {
      return respond(PermissionDeniedError("job id in use"));
    }
    reply.set_accepted(true);
    reply.set_duplicate(true);
    return respond(OkStatus());
  }
  if (existing.status().code() != StatusCode::kNotFound) {
    return respond(existing.status());
  }
  if (!RegionAllowed(offered.spec(), options_.region)) {
    return decline("region " + options_.region + " is not allowed for it");
  }
  PlacementRequest placement_request = PlacementRequest::FromSpec(offered.spec());
  placement_request.organization = offered.organization();
  const MatchContext context;
  std::optional<Placement> placement =
      matcher_->Match(placement_request, registry_.capacity(), context);
  if (!placement) {
    return decline(matcher_->ExplainNoFit(placement_request,
                                          registry_.capacity(), context));
  }

  // Its worst case here must fit what the home broker holds for it.
  Status within_budget = CheckHomeBudget(
      placement->cards, offered.spec().max_duration_s(),
      placement->price_per_card_hour, forward->budget(), peer);
  if (within_budget.code() == StatusCode::kFailedPrecondition) {
    return decline(std::string(within_budget.message()));
  }
  if (!within_budget.ok()) return respond(within_budget);

  v1::JobInfo job;
  job.set_job_id(offered.job_id());
  job.set_consumer(offered.consumer());
  job.set_organization(offered.organization());
  job.set_home_budget(forward->budget());
  *job.mutable_spec() = offered.spec();
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_created_ms(Now());
  job.set_home_broker(peer);
  job.set_region(options_.region);
  *job.mutable_path() = forward->path();
  job.add_path(options_.broker_id);
  Status stored = store_->InsertJobWithId(job, Now());
  if (!stored.ok()) return respond(stored);
  // Stored sealed; from here on (offer aside) only the names travel.
  MaskSecretEnv(job.mutable_spec());
  Status placed = jobs_->Place(job, *placement);
  if (!placed.ok()) return respond(placed);
  reply.set_accepted(true);
  spdlog::info("accepted job {} from {}", job.job_id(), peer);
  respond(OkStatus());
}

StatusOr<v1::JobInfo> BrokerImpl::PeerJob(const std::string& peer,
                                          const std::string& job_id,
                                          bool held_here) {
  auto job = store_->GetJob(job_id);
  if (!job.ok()) return job.status();
  const std::string& owner = held_here ? job->home_broker() : job->remote_broker();
  if (owner != peer) {
    return PermissionDeniedError("job " + job_id + " is not shared with " + peer);
  }
  return job;
}

void BrokerImpl::SendRemoteUpdate(const v1::JobInfo& job) {
  auto link = links_.find(job.home_broker());
  if (link == links_.end()) {
    spdlog::error("job {}: no link to its home broker {}", job.job_id(),
                  job.home_broker());
    return;
  }
  v1::RemoteJobUpdate update;
  *update.mutable_job() = job;
  // Milliseconds and a counter: grows across restarts of this broker.
  update.set_update_sequence(static_cast<uint64_t>(Now()) * 1024 +
                             (++update_counter_ % 1024));
  link->second->Send(v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE, update,
                     /*reliable=*/true);
}

void BrokerImpl::ApplyRemoteJob(const std::string& peer,
                                const v1::JobInfo& remote, uint64_t sequence) {
  auto job = PeerJob(peer, remote.job_id(), /*held_here=*/false);
  if (!job.ok()) {
    spdlog::warn("update from {}: {}", peer, job.status().ToString());
    return;
  }
  uint64_t& seen = remote_update_seen_[job->job_id()];
  if (sequence != std::numeric_limits<uint64_t>::max()) {
    if (sequence <= seen) return;
    seen = sequence;
  }
  if (IsTerminal(job->state())) return;  // final here already
  job->set_in_doubt(false);
  job->set_state(remote.state() == v1::JOB_STATE_QUEUED ? v1::JOB_STATE_PLACED
                                                        : remote.state());
  job->set_provider(remote.provider().empty() ? ""
                                              : peer + ":" + remote.provider());
  job->set_model(remote.model());
  *job->mutable_assignments() = remote.assignments();
  job->set_price_per_card_hour(remote.price_per_card_hour());
  job->set_currency(remote.currency());
  // What compute it got there (a compute-equivalence job's consumer asked
  // for that, not for cards).
  job->set_a100_equivalents_milli(remote.a100_equivalents_milli());
  job->set_compute_source(remote.compute_source());
  job->set_region(remote.region());
  job->set_exit_code(remote.exit_code());
  job->set_started_ms(remote.started_ms());
  job->set_finished_ms(remote.finished_ms());
  if (!remote.stderr_tail().empty()) {
    job->set_stderr_tail(remote.stderr_tail().substr(0, 4 * kStderrTailBytes));
  }
  job->set_sandbox(remote.sandbox());
  job->set_reason(remote.reason().empty() ? "running at " + peer
                                          : remote.reason() + " (at " + peer + ")");
  // A terminal update: its usage came before it on the same link (or first
  // in a reconcile), so what is left of the hold goes back to the consumer,
  // in the same transaction as the job's end.
  Status saved =
      IsTerminal(job->state())
          ? jobs_->SaveReleasingHold(*job, "job " + JobStateName(job->state()) +
                                           " at " + peer)
          : jobs_->Save(*job);
  if (!saved.ok()) spdlog::error("{}", saved.ToString());
  if (IsTerminal(job->state())) {
    spdlog::info("job {} {} at {}", job->job_id(), JobStateName(job->state()),
                 peer);
  }
}

void BrokerImpl::OnRemoteJobUpdate(const Request& request) {
  v1::RemoteJobUpdateReply reply;
  auto update = DecodeBody<v1::RemoteJobUpdate>(request.envelope);
  if (!update.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE_REPLY, reply,
                 update.status());
  }
  reply.set_job_id(update->job().job_id());
  auto job = PeerJob(request.peer.name, update->job().job_id(), false);
  if (!job.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE_REPLY, reply,
                 job.status());
  }
  ApplyRemoteJob(request.peer.name, update->job(), update->update_sequence());
  Reply(request, v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE_REPLY, reply);
}

StatusOr<v1::RemoteUsage> BrokerImpl::CountersignUsage(
    const v1::JobInfo& job, const std::string& record,
    const std::string& provider_signature, const v1::LedgerEntry& posted) {
  v1::RemoteUsage usage;
  usage.set_job_id(job.job_id());
  usage.set_record(record);
  usage.set_provider_signature(provider_signature);
  // Exactly what this broker posted on clearing:<home> for the record.
  usage.set_billed_card_seconds(posted.billed_card_seconds());
  usage.set_cumulative_card_seconds(posted.cumulative_card_seconds());
  usage.set_price_per_card_hour(posted.price_per_card_hour());
  usage.set_amount(posted.postings_size() > 0 ? -posted.postings(0).amount()
                                              : 0);
  usage.set_currency(posted.currency());
  usage.set_remote_broker(options_.broker_id);
  CN_RETURN_IF_ERROR(SignRemoteUsage(identity_.signing_key(), &usage));
  return usage;
}

void BrokerImpl::SendUsageHome(const v1::JobInfo& job,
                               const std::string& record,
                               const std::string& provider_signature,
                               const v1::LedgerEntry& posted) {
  auto usage = CountersignUsage(job, record, provider_signature, posted);
  auto link = links_.find(job.home_broker());
  if (!usage.ok() || link == links_.end()) {
    spdlog::error("job {}: cannot send usage home", job.job_id());
    return;
  }
  link->second->Send(v1::MESSAGE_TYPE_REMOTE_USAGE, *usage, /*reliable=*/true);
}

Status BrokerImpl::ApplyRemoteUsage(const std::string& peer,
                                    const v1::RemoteUsage& usage) {
  const PeerConfig* config = FindPeer(peer);
  if (config == nullptr || usage.remote_broker() != peer) {
    return PermissionDeniedError("usage not countersigned by " + peer);
  }
  CN_ASSIGN_OR_RETURN(v1::UsageRecord record,
                      VerifyRemoteUsage(config->ed25519_public, usage));
  CN_ASSIGN_OR_RETURN(v1::JobInfo job, PeerJob(peer, usage.job_id(), false));
  PostedEntry posted;
  Status committed = store_->database().RunInTransaction([&]() -> Status {
    RemoteCharge charge;
    charge.remote_broker = peer;
    charge.record_id = record.record_id();
    charge.currency = usage.currency();
    charge.billed_card_seconds = usage.billed_card_seconds();
    charge.cumulative_card_seconds = usage.cumulative_card_seconds();
    charge.price_per_card_hour = usage.price_per_card_hour();
    charge.amount = usage.amount();
    charge.closes_job = record.closes_job();
    charge.evidence = usage.SerializeAsString();
    CN_ASSIGN_OR_RETURN(posted, ledger_.PostRemoteUsage(job, charge, Now()));
    if (!posted.duplicate) {
      if (record.closes_job() && !record.result_digest().empty()) {
        // The provider's own signed words about the result, as it billed.
        job.set_result_digest(record.result_digest());
        job.set_result_bytes(record.result_bytes());
        job.set_result_record(usage.record());
        job.set_result_signature(usage.provider_signature());
      }
      job.set_card_seconds(job.card_seconds() + usage.billed_card_seconds());
      job.set_charged(job.charged() + posted.amount);
      CN_RETURN_IF_ERROR(store_->UpdateJob(job, Now()));
    }
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(committed);
  if (!posted.duplicate) {
    spdlog::info("job {}: {} charged {} minor units of {} owed to {}",
                 job.job_id(), job.consumer(), posted.amount, usage.currency(),
                 peer);
    Notify(job);
  }
  return OkStatus();
}

void BrokerImpl::OnRemoteUsage(const Request& request) {
  v1::RemoteUsageReply reply;
  auto usage = DecodeBody<v1::RemoteUsage>(request.envelope);
  Status status = usage.status();
  if (status.ok()) {
    reply.set_job_id(usage->job_id());
    status = ApplyRemoteUsage(request.peer.name, *usage);
    if (!status.ok()) {
      spdlog::warn("remote usage from {} rejected: {}", request.peer.name,
                   status.ToString());
    }
  }
  Reply(request, v1::MESSAGE_TYPE_REMOTE_USAGE_REPLY, reply, status);
}

void BrokerImpl::OnCancelRemoteJob(const Request& request) {
  v1::CancelRemoteJobReply reply;
  auto cancel = DecodeBody<v1::CancelRemoteJob>(request.envelope);
  if (!cancel.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB_REPLY, reply,
                 cancel.status());
  }
  reply.set_job_id(cancel->job_id());
  auto job = PeerJob(request.peer.name, cancel->job_id(), /*held_here=*/true);
  if (!job.ok()) {
    // Never arrived: nothing to stop.
    return Reply(request, v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB_REPLY, reply,
                 job.status().code() == StatusCode::kNotFound ? OkStatus()
                                                              : job.status());
  }
  Status status = CancelJobHere(*job, "cancelled by " + request.peer.name);
  reply.set_state(job->state());
  Reply(request, v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB_REPLY, reply, status);
}

void BrokerImpl::OnReconcileJobs(const Request& request) {
  v1::ReconcileJobsReply reply;
  auto reconcile = DecodeBody<v1::ReconcileJobs>(request.envelope);
  if (!reconcile.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_RECONCILE_JOBS_REPLY, reply,
                 reconcile.status());
  }
  for (const auto& job_id : reconcile->job_ids()) {
    auto job = PeerJob(request.peer.name, job_id, /*held_here=*/true);
    if (!job.ok()) {
      reply.add_unknown_job_ids(job_id);
      continue;
    }
    *reply.add_jobs() = *job;
    // Usage posted here may not have reached home before the link died:
    // every record, each as posted (home posts each at most once).
    auto records = ledger_.usage_records().ListForJob(job_id);
    if (!records.ok()) continue;
    for (const auto& record : *records) {
      auto posted = ledger_.FindEntry(
          Ledger::UsageIdempotencyKey(record.provider, record.record_id));
      if (!posted.ok() || !posted->has_value()) continue;
      auto usage = CountersignUsage(*job, record.record, record.signature,
                                    (*posted)->entry);
      if (usage.ok()) *reply.add_usages() = std::move(*usage);
    }
  }
  Reply(request, v1::MESSAGE_TYPE_RECONCILE_JOBS_REPLY, reply);
}

void BrokerImpl::OnGetFederationStatus(const Request& request) {
  v1::GetFederationStatusReply reply;
  if (request.peer.role != Role::kAdmin) {
    return Reply(request, v1::MESSAGE_TYPE_GET_FEDERATION_STATUS_REPLY, reply,
                 PermissionDeniedError("admins only"));
  }
  reply.set_broker_id(options_.broker_id);
  reply.set_region(options_.region);
  auto jobs = store_->JobsInStates(
      {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING});
  for (const auto& peer : options_.peers) {
    auto* status = reply.add_peers();
    status->set_broker_id(peer.broker_id);
    status->set_region(peer.region);
    status->set_endpoint(peer.endpoint);
    auto link = links_.find(peer.broker_id);
    if (link != links_.end()) {
      status->set_link_up(link->second->up());
      status->set_last_heard_ms(link->second->last_heard_ms());
    }
    auto adverts = adverts_.find(peer.broker_id);
    if (adverts != adverts_.end()) {
      status->set_advert_sequence(adverts->second.sequence);
      status->set_advert_received_ms(adverts->second.received_ms);
      for (const auto& [model, entry] : adverts->second.entries) {
        *status->add_adverts() = entry;
      }
    }
    if (!jobs.ok()) continue;
    for (const auto& job : *jobs) {
      if (job.remote_broker() == peer.broker_id && job.home_broker().empty()) {
        status->set_jobs_forwarded_to(status->jobs_forwarded_to() + 1);
        if (job.in_doubt()) status->set_jobs_in_doubt(status->jobs_in_doubt() + 1);
      }
      if (job.home_broker() == peer.broker_id) {
        status->set_jobs_accepted_from(status->jobs_accepted_from() + 1);
      }
    }
  }
  auto recent = store_->ListJobs("", {}, 200);
  if (recent.ok()) {
    for (const auto& job : *recent) {
      if (!job.remote_broker().empty() && job.home_broker().empty()) {
        *reply.add_forwarded_jobs() = job;
      }
    }
  }
  Reply(request, v1::MESSAGE_TYPE_GET_FEDERATION_STATUS_REPLY, reply);
}

}  // namespace computenet::broker

namespace computenet::broker {

void BrokerImpl::SendSettlements(int64_t now_ms) {
  for (auto& [peer, link] : links_) {
    if (!link->up()) continue;
    SettlementState& state = settlements_[peer];
    if (state.sent_ms != 0 &&
        now_ms - state.sent_ms < options_.settlement_interval_ms) {
      continue;
    }
    auto lines = DebtorLines(store_->database(), peer);
    if (!lines.ok()) {
      spdlog::error("settlement with {}: {}", peer, lines.status().ToString());
      continue;
    }
    if (lines->empty()) continue;
    v1::SettlementStatement statement =
        MakeStatement(options_.broker_id, peer, std::move(*lines), now_ms);
    if (std::make_pair(statement.lines_size(), statement.net()) ==
        state.agreed) {
      continue;  // nothing new since the last agreed statement
    }
    v1::SignedSettlement signed_statement;
    signed_statement.set_statement(statement.SerializeAsString());
    auto signature =
        SignSettlement(identity_.signing_key(), signed_statement.statement());
    if (!signature.ok()) {
      spdlog::error("settlement with {}: {}", peer,
                    signature.status().ToString());
      continue;
    }
    signed_statement.set_debtor_signature(*signature);
    state.sent_ms = now_ms;
    state.pending = signed_statement;
    // Not reliable: a lost statement is simply sent again next interval.
    link->Send(v1::MESSAGE_TYPE_PEER_SETTLEMENT, signed_statement,
               /*reliable=*/false);
  }
}

void BrokerImpl::OnPeerSettlement(const Request& request) {
  const std::string& peer = request.peer.name;
  v1::SettlementReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_PEER_SETTLEMENT_REPLY, reply, status);
  };
  auto received = DecodeBody<v1::SignedSettlement>(request.envelope);
  if (!received.ok()) return respond(received.status());
  v1::SettlementStatement statement;
  if (!statement.ParseFromString(received->statement())) {
    return respond(InvalidArgumentError("settlement statement does not parse"));
  }
  reply.set_statement_created_ms(statement.created_ms());
  if (statement.debtor() != peer || statement.creditor() != options_.broker_id) {
    return respond(PermissionDeniedError(
        "a settlement from " + peer + " must be between " + peer + " and " +
        options_.broker_id));
  }
  const PeerConfig* config = FindPeer(peer);
  if (config == nullptr) return respond(PermissionDeniedError("unknown peer"));
  Status signed_by_peer = VerifySettlementSignature(
      config->ed25519_public, received->statement(),
      received->debtor_signature());
  if (!signed_by_peer.ok()) {
    spdlog::warn("settlement from {} not signed by its pinned key", peer);
    return respond(signed_by_peer);
  }
  auto ours = CreditorLines(store_->database(), peer);
  if (!ours.ok()) return respond(ours.status());
  v1::SettlementReply compared = CompareSettlement(statement, *ours);
  compared.set_statement_created_ms(statement.created_ms());
  reply = compared;
  v1::SignedSettlement stored = *received;
  std::string differences;
  if (reply.agreed()) {
    auto signature =
        SignSettlement(identity_.signing_key(), received->statement());
    if (!signature.ok()) return respond(signature.status());
    reply.set_creditor_signature(*signature);
    stored.set_creditor_signature(*signature);
    spdlog::info("settlement with {} agreed: {} owes {} minor units ({} lines)",
                 peer, peer, statement.net(), statement.lines_size());
  } else {
    differences = DescribeDifferences(reply, peer, options_.broker_id);
    spdlog::warn("settlement with {} differs: {}", peer, differences);
  }
  Status saved =
      StoreSettlement(store_->database(), statement, stored, reply.agreed(), differences);
  if (!saved.ok()) return respond(saved);
  respond(OkStatus());
}

void BrokerImpl::OnSettlementReply(const std::string& peer,
                                   const v1::SettlementReply& reply) {
  SettlementState& state = settlements_[peer];
  v1::SettlementStatement statement;
  if (state.pending.statement().empty() ||
      !statement.ParseFromString(state.pending.statement()) ||
      statement.created_ms() != reply.statement_created_ms()) {
    return;  // an answer to an older statement
  }
  v1::SignedSettlement stored = state.pending;
  std::string differences;
  bool agreed = false;
  if (reply.agreed()) {
    const PeerConfig* config = FindPeer(peer);
    Status countersigned =
        config == nullptr
            ? PermissionDeniedError("unknown peer")
            : VerifySettlementSignature(config->ed25519_public,
                                        stored.statement(),
                                        reply.creditor_signature());
    if (countersigned.ok()) {
      agreed = true;
      stored.set_creditor_signature(reply.creditor_signature());
      state.agreed = {statement.lines_size(), statement.net()};
      spdlog::info("settlement with {} agreed and countersigned: {} owes {} "
                   "minor units ({} lines)",
                   peer, options_.broker_id, statement.net(),
                   statement.lines_size());
    } else {
      differences = "countersignature: " + countersigned.ToString();
      spdlog::warn("settlement with {}: {}", peer, differences);
    }
  } else {
    differences = DescribeDifferences(reply, options_.broker_id, peer);
    // Often a record still on its way home; the next statement will tell.
    spdlog::warn("settlement with {} differs: {}", peer, differences);
  }
  Status saved = StoreSettlement(store_->database(), statement, stored, agreed, differences);
  if (!saved.ok()) spdlog::error("{}", saved.ToString());
  state.pending.Clear();
}

}  // namespace computenet::broker

namespace computenet::broker {
namespace {

constexpr uint32_t kMaxPullEntries = 500;

}  // namespace

void BrokerImpl::PullPeerLedgers(int64_t now_ms) {
  for (auto& [peer, link] : links_) {
    if (!link->up()) continue;
    ReplicationState& state = replication_[peer];
    if (state.pulled_ms == 0) {
      // First pull since this broker started: resume from what was verified
      // before (persisted with the replica), not from entry 1.
      auto verified = ReplicaStore(store_->database()).VerifiedSize(peer);
      if (verified.ok()) {
        state.verified_size = std::max(state.verified_size, *verified);
      }
    }
    if (state.pulled_ms != 0 &&
        now_ms - state.pulled_ms < options_.replication_interval_ms) {
      continue;
    }
    state.pulled_ms = now_ms;
    // From just after the entries held: a pull is at most kMaxPullEntries,
    // and pulling from the verified head again and again never reached a
    // checkpoint further away than that (with checkpoint_every = 1000 a
    // replica stayed at 501 entries, 1 verified). A checkpoint that comes
    // later still covers the held entries through their Merkle tree, so a
    // rewrite of them is caught then. After a refused stream, from the
    // verified head once.
    uint64_t from = state.verified_size + 1;
    if (!state.resync) {
      auto held = ReplicaStore(store_->database()).Size(peer);
      if (held.ok()) from = std::max(from, *held + 1);
    }
    state.resync = false;
    v1::LedgerPull pull;
    pull.set_from_sequence(from);
    pull.set_limit(kMaxPullEntries);
    link->Send(v1::MESSAGE_TYPE_PEER_LEDGER_PULL, pull, /*reliable=*/false);
  }
}

void BrokerImpl::OnLedgerPull(const Request& request) {
  v1::LedgerStream stream;
  auto pull = DecodeBody<v1::LedgerPull>(request.envelope);
  Status status = pull.status();
  if (status.ok()) {
    const uint32_t limit =
        pull->limit() == 0 ? kMaxPullEntries
                           : std::min(pull->limit(), kMaxPullEntries);
    auto exported = ExportLedger(store_->database(), options_.broker_id,
                                 std::max<uint64_t>(1, pull->from_sequence()),
                                 limit);
    status = exported.status();
    if (exported.ok()) stream = std::move(*exported);
  }
  Reply(request, v1::MESSAGE_TYPE_PEER_LEDGER_PULL_REPLY, stream, status);
}

void BrokerImpl::OnLedgerStream(const std::string& peer,
                                const v1::LedgerStream& stream) {
  if (stream.origin() != peer) {
    spdlog::warn("ledger stream from {} claims origin {}", peer,
                 stream.origin());
    return;
  }
  ReplicationState& state = replication_[peer];
  ReplicaStore replica(store_->database());
  v1::ForkEvidence fork;
  auto applied = replica.Apply(stream, &fork);
  if (!applied.ok()) {
    if (!fork.origin().empty()) {
      // Two signed histories: keep the proof for the operators.
      spdlog::error("FORK: {} signed two histories: {}", peer,
                    fork.explanation());
      Status kept = replica.StoreForkEvidence(peer, fork, Now());
      if (!kept.ok()) {
        spdlog::error("storing fork evidence: {}", kept.ToString());
      }
    } else {
      spdlog::warn("replica of {}: {}", peer, applied.status().ToString());
    }
    state.resync = true;
    return;
  }
  state.verified_size = std::max(state.verified_size, applied->verified_size);
  // Cosign the newest checkpoint the replica now covers.
  auto link = links_.find(peer);
  if (link == links_.end()) return;
  for (auto it = stream.checkpoints().rbegin();
       it != stream.checkpoints().rend(); ++it) {
    v1::Checkpoint head;
    if (!head.ParseFromString(it->checkpoint())) continue;
    if (head.tree_size() <= state.cosigned_size ||
        head.tree_size() > applied->size) {
      continue;
    }
    auto cosignature =
        replica.Cosign(peer, *it, identity_.signing_key(), options_.broker_id);
    if (!cosignature.ok()) {
      spdlog::warn("cosigning {}'s checkpoint {}: {}", peer, head.tree_size(),
                   cosignature.status().ToString());
      return;
    }
    v1::CosignCheckpoint cosign;
    cosign.set_tree_size(head.tree_size());
    *cosign.mutable_cosignature() = std::move(*cosignature);
    link->second->Send(v1::MESSAGE_TYPE_PEER_COSIGNATURE, cosign,
                       /*reliable=*/false);
    state.cosigned_size = head.tree_size();
    spdlog::info("verified and cosigned {}'s ledger up to entry {}", peer,
                 head.tree_size());
    return;
  }
}

void BrokerImpl::OnCosignCheckpoint(const Request& request) {
  const std::string& peer = request.peer.name;
  v1::CosignCheckpointReply reply;
  auto cosign = DecodeBody<v1::CosignCheckpoint>(request.envelope);
  Status status = cosign.status();
  if (status.ok()) {
    reply.set_tree_size(cosign->tree_size());
    const PeerConfig* config = FindPeer(peer);
    if (config == nullptr || cosign->cosignature().broker_id() != peer) {
      status = PermissionDeniedError("a cosignature from " + peer +
                                     " must be signed as " + peer);
    } else {
      auto key = VerifyingKey::FromHex(config->ed25519_public);
      status = key.status();
      if (key.ok()) {
        status = AddCosignature(store_->database(), cosign->tree_size(),
                                cosign->cosignature(), *key);
      }
    }
  }
  if (!status.ok()) {
    spdlog::warn("cosignature from {}: {}", peer, status.ToString());
  }
  Reply(request, v1::MESSAGE_TYPE_PEER_COSIGNATURE_REPLY, reply, status);
}

}  // namespace computenet::broker
