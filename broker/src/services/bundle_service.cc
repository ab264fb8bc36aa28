// Bundles at the broker (docs/protocol.md, "Bundles"): consumers' input
// uploads, the relay of uploads to the brokers of a job's allowed regions,
// the inputs a site pulls for a job placed on it (from here, or through
// this broker from the job's home broker), and result fetches, which go to
// the site that ran the job and back. The loop never waits: a request that
// needs another party's answer becomes a Relay, answered when that answer
// comes (or UNAVAILABLE after relay_timeout_ms).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "computenet/bundles/bundle_archive.h"
#include "computenet/common/job_state.h"
#include "computenet/common/sha256.h"
#include "core/broker_impl.h"
#include "core/imports.h"

namespace computenet::broker {
namespace {

using bundles::BundleStore;

std::string OwnerNote(const std::string& owner) { return "owner " + owner; }
std::string RelayedNote(const std::string& owner, const std::string& peer) {
  return "relayed " + owner + " " + peer;
}
// A consumer of a peer broker, as owner of a bundle relayed here.
std::string PeerOwner(const std::string& peer, const std::string& consumer) {
  return "peer:" + peer + ":" + consumer;
}

bool AllowsRegion(const google::protobuf::RepeatedPtrField<std::string>& allowed,
                  const std::string& region) {
  return allowed.empty() ||
         std::find(allowed.begin(), allowed.end(), region) != allowed.end();
}

bool HasInput(const v1::JobSpec& spec, const std::string& digest) {
  return std::any_of(spec.inputs().begin(), spec.inputs().end(),
                     [&](const v1::InputBundle& input) {
                       return input.digest() == digest;
                     });
}

Status CheckChunkShape(const v1::PutBundleChunk& chunk) {
  if (!bundles::IsDigest(chunk.digest())) {
    return InvalidArgumentError(
        "digest must be 64 lower-case hex characters (SHA-256)");
  }
  if (chunk.total_size() == 0) {
    return InvalidArgumentError("total_size must be the bundle's size (> 0)");
  }
  if (chunk.data().size() > bundles::kChunkBytes) {
    return InvalidArgumentError("a chunk holds at most " +
                                std::to_string(bundles::kChunkBytes) + " bytes");
  }
  if (chunk.allowed_regions_size() > 64) {
    return InvalidArgumentError("at most 64 allowed regions");
  }
  for (const auto& region : chunk.allowed_regions()) {
    CN_RETURN_IF_ERROR(ValidatePartyName(region).WithContext("allowed region"));
  }
  return OkStatus();
}

std::string HexName(const std::string& owner) { return HexEncode(owner); }

}  // namespace

std::string BrokerImpl::BundleDir() const {
  return options_.bundle_dir.empty() ? options_.database_path + ".bundles"
                                     : options_.bundle_dir;
}

Status BrokerImpl::InitBundles() {
  bundles::BundleStoreOptions store_options;
  store_options.dir = BundleDir();
  store_options.max_bundle_bytes = options_.max_bundle_bytes;
  CN_ASSIGN_OR_RETURN(bundles_, BundleStore::Open(store_options));
  return OkStatus();
}

Status BrokerImpl::CheckBundleSize(uint64_t total) const {
  if (total <= options_.max_bundle_bytes) return OkStatus();
  return ResourceExhaustedError("a bundle of " + std::to_string(total) +
                                " bytes is over this broker's limit of " +
                                std::to_string(options_.max_bundle_bytes));
}

StatusOr<BundleStore*> BrokerImpl::StagingFor(const std::string& owner) {
  auto found = staging_.find(owner);
  if (found != staging_.end()) return found->second.get();
  bundles::BundleStoreOptions store_options;
  // One staging area per owner: an upload proves its bytes even when
  // another party's copy of the same bundle is here already, so nobody
  // gains use of a bundle by knowing its digest.
  store_options.dir = BundleDir() + "/uploads/" + HexName(owner);
  store_options.max_bundle_bytes = options_.max_bundle_bytes;
  CN_ASSIGN_OR_RETURN(auto store, BundleStore::Open(store_options));
  return staging_.emplace(owner, std::move(store)).first->second.get();
}

StatusOr<v1::PutBundleChunkReply> BrokerImpl::StoreChunk(
    const std::string& owner, const v1::PutBundleChunk& chunk) {
  v1::PutBundleChunkReply reply;
  reply.set_digest(chunk.digest());
  reply.add_stored_at(options_.broker_id);
  CN_ASSIGN_OR_RETURN(BundleStore::Progress here, bundles_->Stat(chunk.digest()));
  if (here.complete && bundles_->HasNote(chunk.digest(), OwnerNote(owner))) {
    if (here.total != chunk.total_size()) {
      return InvalidArgumentError("bundle " + chunk.digest() + " has " +
                                  std::to_string(here.total) + " bytes, not " +
                                  std::to_string(chunk.total_size()));
    }
    reply.set_have(here.total);
    reply.set_complete(true);
    return reply;
  }
  CN_ASSIGN_OR_RETURN(BundleStore * staging, StagingFor(owner));
  CN_ASSIGN_OR_RETURN(BundleStore::Progress staged, staging->Stat(chunk.digest()));
  if (staged.total == 0 && chunk.offset() == 0) {
    // The start of an upload: the limits apply before any byte is kept.
    CN_RETURN_IF_ERROR(CheckBundleSize(chunk.total_size()));
    if (options_.max_bundle_bytes_per_consumer > 0) {
      const uint64_t held = bundles_->BytesWithNote(OwnerNote(owner));
      if (held + chunk.total_size() > options_.max_bundle_bytes_per_consumer) {
        return ResourceExhaustedError(
            "this upload would put your stored bundles at " +
            std::to_string(held + chunk.total_size()) +
            " bytes, over the limit of " +
            std::to_string(options_.max_bundle_bytes_per_consumer));
      }
    }
  }
  if (chunk.data().empty()) {
    reply.set_have(staged.have);
    return reply;
  }
  CN_ASSIGN_OR_RETURN(BundleStore::Progress progress,
                      staging->Append(chunk.digest(), chunk.total_size(),
                                      chunk.offset(), chunk.data()));
  reply.set_have(progress.have);
  if (progress.complete) {
    CN_RETURN_IF_ERROR(bundles_->AdoptFrom(*staging, chunk.digest()));
    CN_RETURN_IF_ERROR(bundles_->AddNote(chunk.digest(), OwnerNote(owner)));
    reply.set_complete(true);
    spdlog::info("bundle {} of {} bytes stored for {}", chunk.digest(),
                 chunk.total_size(), owner);
  }
  return reply;
}

void BrokerImpl::OnPutBundleChunk(const Request& request) {
  v1::PutBundleChunkReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK_REPLY, reply, status);
  };
  if (request.peer.role != Role::kConsumer) {
    return respond(PermissionDeniedError("only consumers upload bundles"));
  }
  auto chunk = DecodeBody<v1::PutBundleChunk>(request.envelope);
  if (!chunk.ok()) return respond(chunk.status());
  if (Status checked = CheckChunkShape(*chunk); !checked.ok()) {
    return respond(checked);
  }
  reply.set_digest(chunk->digest());
  if (AllowsRegion(chunk->allowed_regions(), options_.region)) {
    auto stored = StoreChunk(request.peer.name, *chunk);
    if (!stored.ok()) return respond(stored.status());
    reply = *stored;
    return respond(OkStatus());
  }
  if (Status size = CheckBundleSize(chunk->total_size()); !size.ok()) {
    return respond(size);
  }
  // Residency: this region may not hold it. Each chunk goes on to every
  // configured broker of an allowed region and nothing stays here but a
  // note of where it went.
  Relay relay;
  relay.kind = Relay::Kind::kUpload;
  relay.routing_id = request.frame.routing_id;
  relay.request_id = request.envelope.request_id();
  relay.reply_type = v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK_REPLY;
  relay.deadline_ms = Now() + options_.relay_timeout_ms;
  relay.digest = chunk->digest();
  relay.consumer = request.peer.name;
  std::vector<PeerLink*> targets;
  std::vector<std::string> down;
  for (auto& [name, link] : links_) {
    if (!AllowsRegion(chunk->allowed_regions(), link->config().region)) continue;
    if (!link->up()) {
      down.push_back(name);
      continue;
    }
    targets.push_back(link.get());
  }
  if (targets.empty()) {
    if (down.empty()) {
      return respond(FailedPreconditionError(
          "no broker serves the bundle's allowed regions; this broker's "
          "region '" + options_.region + "' is not one of them"));
    }
    return respond(UnavailableError("no broker of the allowed regions is "
                                    "reachable now; try again"));
  }
  if (!down.empty()) {
    // Every allowed region that has a broker must get it (the job may run
    // in any of them); wait for the others rather than leave a gap.
    return respond(UnavailableError("the broker of an allowed region (" +
                                    down.front() + ") is unreachable; try again"));
  }
  const uint64_t relay_id = ++next_relay_id_;
  v1::PeerPutBundleChunk relayed;
  relayed.set_relay_id(relay_id);
  relayed.set_consumer(request.peer.name);
  *relayed.mutable_chunk() = *chunk;
  for (PeerLink* link : targets) {
    relay.waiting.insert(link->config().broker_id);
    link->Send(v1::MESSAGE_TYPE_PEER_PUT_BUNDLE_CHUNK, relayed, false);
  }
  relay.merged.set_digest(chunk->digest());
  relay.merged.set_have(chunk->total_size());
  relay.merged.set_complete(true);
  relays_.emplace(relay_id, std::move(relay));
}

void BrokerImpl::OnPeerPutBundleChunk(const Request& request) {
  v1::PeerPutBundleChunkReply reply;
  auto relayed = DecodeBody<v1::PeerPutBundleChunk>(request.envelope);
  if (relayed.ok()) reply.set_relay_id(relayed->relay_id());
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_PEER_PUT_BUNDLE_CHUNK_REPLY, reply, status);
  };
  if (!relayed.ok()) return respond(relayed.status());
  if (Status checked = CheckChunkShape(relayed->chunk()); !checked.ok()) {
    return respond(checked);
  }
  if (Status checked = ValidatePartyName(relayed->consumer()); !checked.ok()) {
    return respond(checked);
  }
  if (!AllowsRegion(relayed->chunk().allowed_regions(), options_.region)) {
    // The receiver checks residency too: it never keeps what its region
    // may not hold, whatever the sender thought.
    return respond(PermissionDeniedError(
        "region '" + options_.region + "' is not allowed for this bundle"));
  }
  auto stored =
      StoreChunk(PeerOwner(request.peer.name, relayed->consumer()), relayed->chunk());
  if (!stored.ok()) return respond(stored.status());
  *reply.mutable_reply() = *stored;
  respond(OkStatus());
}

Status BrokerImpl::CheckJobInputs(const std::string& consumer,
                                  const v1::JobSpec& spec) {
  uint64_t total = 0;
  for (const auto& input : spec.inputs()) {
    total += input.size();
    CN_ASSIGN_OR_RETURN(BundleStore::Progress here, bundles_->Stat(input.digest()));
    if (here.complete && bundles_->HasNote(input.digest(), OwnerNote(consumer))) {
      bundles_->Touch(input.digest());
      if (here.total != input.size()) {
        return InvalidArgumentError("input " + input.digest() + " has " +
                                    std::to_string(here.total) +
                                    " bytes, not " + std::to_string(input.size()));
      }
      continue;
    }
    // Relayed at upload: every region the job may run in must have it.
    std::set<std::string> regions;
    for (const auto& [name, link] : links_) {
      if (bundles_->HasNote(input.digest(), RelayedNote(consumer, name))) {
        regions.insert(link->config().region);
      }
    }
    if (regions.empty()) {
      return FailedPreconditionError("input " + input.digest() +
                                     " was not uploaded here; upload it first");
    }
    if (spec.allowed_regions().empty()) {
      return FailedPreconditionError(
          "input " + input.digest() + " is kept only in regions the job "
          "must then be restricted to (allowed_regions)");
    }
    for (const auto& region : spec.allowed_regions()) {
      if (regions.count(region) == 0 && region != options_.region) {
        return FailedPreconditionError("input " + input.digest() +
                                       " was not uploaded for region '" +
                                       region + "', which the job allows");
      }
    }
  }
  if (options_.max_input_bytes_per_job > 0 &&
      total > options_.max_input_bytes_per_job) {
    return ResourceExhaustedError("the job's inputs hold " +
                                  std::to_string(total) + " bytes, over the "
                                  "limit of " +
                                  std::to_string(options_.max_input_bytes_per_job));
  }
  return OkStatus();
}

void BrokerImpl::OnGetBundleChunk(const Request& request) {
  v1::GetBundleChunkReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK_REPLY, reply, status);
  };
  auto asked = DecodeBody<v1::GetBundleChunk>(request.envelope);
  if (!asked.ok()) return respond(asked.status());
  auto job = store_->GetJob(asked->job_id());
  if (!job.ok() || job->provider() != request.peer.name ||
      IsTerminal(job->state()) || !HasInput(job->spec(), asked->digest())) {
    return respond(PermissionDeniedError(
        "no input " + asked->digest().substr(0, 64) + " of a job placed on you"));
  }
  reply.set_digest(asked->digest());
  auto here_or = bundles_->Stat(asked->digest());
  if (!here_or.ok()) return respond(here_or.status());
  const BundleStore::Progress here = *here_or;
  if (here.complete) {
    if (asked->offset() == 0) bundles_->Touch(asked->digest());
    auto data = bundles_->Read(asked->digest(), asked->offset(), bundles::kChunkBytes);
    if (!data.ok()) return respond(data.status());
    reply.set_total_size(here.total);
    reply.set_offset(asked->offset());
    reply.set_data(std::move(*data));
    return respond(OkStatus());
  }
  if (job->home_broker().empty()) {
    return respond(FailedPreconditionError("input " + asked->digest() +
                                           " is not on this broker"));
  }
  // A job forwarded here: its inputs come from its home broker, and are
  // kept here (this region is allowed: the home forwarded it here).
  auto link = links_.find(job->home_broker());
  if (link == links_.end() || !link->second->up()) {
    return respond(UnavailableError("the job's home broker " +
                                    job->home_broker() + " is unreachable"));
  }
  const uint64_t relay_id = ++next_relay_id_;
  Relay relay;
  relay.kind = Relay::Kind::kInputPull;
  relay.routing_id = request.frame.routing_id;
  relay.request_id = request.envelope.request_id();
  relay.reply_type = v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK_REPLY;
  relay.deadline_ms = Now() + options_.relay_timeout_ms;
  relay.digest = asked->digest();
  relay.job_id = job->job_id();
  relays_.emplace(relay_id, std::move(relay));
  v1::PeerGetBundleChunk pull;
  pull.set_relay_id(relay_id);
  pull.set_job_id(job->job_id());
  pull.set_digest(asked->digest());
  pull.set_offset(asked->offset());
  link->second->Send(v1::MESSAGE_TYPE_PEER_GET_BUNDLE_CHUNK, pull, false);
}

void BrokerImpl::OnPeerGetBundleChunk(const Request& request) {
  v1::PeerGetBundleChunkReply reply;
  auto pull = DecodeBody<v1::PeerGetBundleChunk>(request.envelope);
  if (pull.ok()) reply.set_relay_id(pull->relay_id());
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_PEER_GET_BUNDLE_CHUNK_REPLY, reply, status);
  };
  if (!pull.ok()) return respond(pull.status());
  auto job = PeerJob(request.peer.name, pull->job_id(), /*held_here=*/false);
  if (!job.ok()) return respond(job.status());
  const PeerConfig* peer = FindPeer(request.peer.name);
  if (peer == nullptr || !RegionAllowed(job->spec(), peer->region) ||
      !HasInput(job->spec(), pull->digest())) {
    return respond(PermissionDeniedError("input " + pull->digest().substr(0, 64) +
                                         " of job " + job->job_id() +
                                         " may not go to " + request.peer.name));
  }
  auto here_or = bundles_->Stat(pull->digest());
  if (!here_or.ok()) return respond(here_or.status());
  const BundleStore::Progress here = *here_or;
  if (!here.complete) {
    return respond(NotFoundError("input " + pull->digest() + " is not here"));
  }
  auto data = bundles_->Read(pull->digest(), pull->offset(), bundles::kChunkBytes);
  if (!data.ok()) return respond(data.status());
  reply.set_digest(pull->digest());
  reply.set_total_size(here.total);
  reply.set_offset(pull->offset());
  reply.set_data(std::move(*data));
  respond(OkStatus());
}

Status BrokerImpl::StartResultFetch(Relay relay, const v1::JobInfo& job,
                                    uint64_t offset) {
  if (job.result_digest().empty()) {
    return FailedPreconditionError(
        "job " + job.job_id() + " has no result" +
        (IsTerminal(job.state()) ? "" : " yet: it has not finished"));
  }
  const uint64_t relay_id = ++next_relay_id_;
  relay.kind = Relay::Kind::kResultFetch;
  relay.deadline_ms = Now() + options_.relay_timeout_ms;
  relay.job_id = job.job_id();
  relay.digest = job.result_digest();
  if (!job.remote_broker().empty()) {
    auto link = links_.find(job.remote_broker());
    if (link == links_.end() || !link->second->up()) {
      return UnavailableError("broker " + job.remote_broker() +
                              ", where the job ran, is unreachable");
    }
    v1::PeerFetchResultChunk fetch;
    fetch.set_relay_id(relay_id);
    fetch.mutable_request()->set_job_id(job.job_id());
    fetch.mutable_request()->set_offset(offset);
    link->second->Send(v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK, fetch, false);
  } else {
    ProviderEntry* provider = registry_.Find(job.provider());
    if (provider == nullptr || !provider->online) {
      return UnavailableError("provider " + job.provider() +
                              ", which keeps the result, is offline");
    }
    v1::ResultChunkRequest ask;
    ask.set_relay_id(relay_id);
    ask.set_job_id(job.job_id());
    ask.set_offset(offset);
    if (!SendToProvider(*provider, v1::MESSAGE_TYPE_RESULT_CHUNK_REQUEST, ask)) {
      return UnavailableError("provider " + job.provider() + " is unreachable");
    }
    relay.provider = job.provider();
    if (offset == 0) {
      relay.record = job.result_record();
      relay.signature = job.result_signature();
      auto enrollment = store_->FindEnrollment(Role::kProvider, job.provider());
      if (enrollment.ok() && enrollment->has_value()) {
        relay.signing_key = (*enrollment)->ed25519_public;
      }
    }
  }
  relays_.emplace(relay_id, std::move(relay));
  return OkStatus();
}

void BrokerImpl::OnFetchResultChunk(const Request& request) {
  v1::FetchResultChunkReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK_REPLY, reply, status);
  };
  auto fetch = DecodeBody<v1::FetchResultChunk>(request.envelope);
  if (!fetch.ok()) return respond(fetch.status());
  auto job = JobVisibleTo(request.peer, fetch->job_id());
  if (!job.ok()) return respond(job.status());
  Relay relay;
  relay.routing_id = request.frame.routing_id;
  relay.request_id = request.envelope.request_id();
  relay.reply_type = v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK_REPLY;
  Status started = StartResultFetch(std::move(relay), *job, fetch->offset());
  if (!started.ok()) respond(started);
}

void BrokerImpl::OnPeerFetchResultChunk(const Request& request) {
  v1::PeerFetchResultChunkReply reply;
  auto fetch = DecodeBody<v1::PeerFetchResultChunk>(request.envelope);
  if (fetch.ok()) reply.set_relay_id(fetch->relay_id());
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK_REPLY, reply, status);
  };
  if (!fetch.ok()) return respond(fetch.status());
  auto job = PeerJob(request.peer.name, fetch->request().job_id(), /*held_here=*/true);
  if (!job.ok()) return respond(job.status());
  Relay relay;
  relay.routing_id = request.frame.routing_id;
  relay.request_id = request.envelope.request_id();
  relay.reply_type = v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK_REPLY;
  relay.origin_relay_id = fetch->relay_id();
  relay.origin_is_peer = true;
  Status started = StartResultFetch(std::move(relay), *job, fetch->request().offset());
  if (!started.ok()) respond(started);
}

void BrokerImpl::AnswerResultFetch(const Relay& relay,
                                   const v1::FetchResultChunkReply& answer,
                                   const Status& status) {
  if (relay.origin_is_peer) {
    v1::PeerFetchResultChunkReply reply;
    reply.set_relay_id(relay.origin_relay_id);
    *reply.mutable_reply() = answer;
    SendReply(relay.routing_id, relay.request_id, relay.reply_type, reply, status);
  } else {
    SendReply(relay.routing_id, relay.request_id, relay.reply_type, answer, status);
  }
}

void BrokerImpl::OnResultChunk(const Request& request) {
  // No reply: this is itself the answer to our ResultChunkRequest.
  auto chunk = DecodeBody<v1::ResultChunk>(request.envelope);
  if (!chunk.ok()) {
    ReplyError(request.frame.routing_id, request.envelope.request_id(),
               v1::MESSAGE_TYPE_ERROR, chunk.status());
    return;
  }
  auto found = relays_.find(chunk->relay_id());
  if (found == relays_.end() || found->second.kind != Relay::Kind::kResultFetch ||
      found->second.provider != request.peer.name ||
      found->second.job_id != chunk->job_id()) {
    // Late (timed out) or not ours to answer. The reference agent sends
    // chunks unnumbered and is not told; a numbered one learns why.
    if (request.envelope.request_id() != 0) {
      ReplyError(request.frame.routing_id, request.envelope.request_id(),
                 v1::MESSAGE_TYPE_ERROR,
                 NotFoundError("no result fetch waits for this chunk"));
    }
    return;
  }
  Relay relay = std::move(found->second);
  relays_.erase(found);
  Status status = StatusFromProto(chunk->status());
  v1::FetchResultChunkReply answer;
  answer.set_job_id(chunk->job_id());
  if (status.ok() && chunk->digest() != relay.digest) {
    status = DataLossError("the provider keeps result " + chunk->digest() +
                           ", but its signed record names " + relay.digest);
  }
  if (status.ok()) {
    answer.set_digest(chunk->digest());
    answer.set_total_size(chunk->total_size());
    answer.set_offset(chunk->offset());
    answer.set_data(chunk->data());
    answer.set_usage_record(relay.record);
    answer.set_usage_signature(relay.signature);
    answer.set_provider_signing_key(relay.signing_key);
  }
  AnswerResultFetch(relay, answer, status);
}

void BrokerImpl::OnBundleRelayReply(PeerLink& link, const v1::Envelope& envelope) {
  const std::string& peer = link.config().broker_id;
  const Status status = StatusFromProto(envelope.status());
  switch (envelope.type()) {
    case v1::MESSAGE_TYPE_PEER_PUT_BUNDLE_CHUNK_REPLY: {
      auto answer = DecodeBody<v1::PeerPutBundleChunkReply>(envelope);
      if (!answer.ok()) return;
      auto found = relays_.find(answer->relay_id());
      if (found == relays_.end() || found->second.kind != Relay::Kind::kUpload ||
          found->second.waiting.erase(peer) == 0) {
        return;
      }
      Relay& relay = found->second;
      if (!status.ok()) {
        if (relay.error.ok()) relay.error = status.WithContext("at " + peer);
      } else {
        // The upload is as far as its slowest copy.
        relay.merged.set_have(std::min(relay.merged.have(), answer->reply().have()));
        relay.merged.set_complete(relay.merged.complete() && answer->reply().complete());
        relay.merged.add_stored_at(peer);
        if (answer->reply().complete()) {
          Status noted = bundles_->AddNote(relay.digest, RelayedNote(relay.consumer, peer));
          if (!noted.ok()) relay.error = noted;
        }
      }
      if (!relay.waiting.empty()) return;
      Relay done = std::move(relay);
      relays_.erase(found);
      if (!done.error.ok()) {
        SendReply(done.routing_id, done.request_id, done.reply_type,
                  v1::PutBundleChunkReply(), done.error);
      } else {
        SendReply(done.routing_id, done.request_id, done.reply_type, done.merged,
                  OkStatus());
      }
      return;
    }
    case v1::MESSAGE_TYPE_PEER_GET_BUNDLE_CHUNK_REPLY: {
      auto answer = DecodeBody<v1::PeerGetBundleChunkReply>(envelope);
      if (!answer.ok()) return;
      auto found = relays_.find(answer->relay_id());
      if (found == relays_.end() || found->second.kind != Relay::Kind::kInputPull) {
        return;
      }
      Relay relay = std::move(found->second);
      relays_.erase(found);
      v1::GetBundleChunkReply reply;
      Status result = status;
      if (result.ok() && answer->digest() != relay.digest) {
        result = DataLossError("home sent " + answer->digest() + " for " + relay.digest);
      }
      if (result.ok()) {
        // Kept as it passes: the site's next chunk or the next site's
        // copy comes from here. A chunk out of order is only passed on.
        auto kept = bundles_->Append(relay.digest, answer->total_size(),
                                     answer->offset(), answer->data());
        if (!kept.ok() && kept.status().code() != StatusCode::kOutOfRange) {
          result = kept.status();
        }
      }
      if (result.ok()) {
        reply.set_digest(answer->digest());
        reply.set_total_size(answer->total_size());
        reply.set_offset(answer->offset());
        reply.set_data(answer->data());
      }
      SendReply(relay.routing_id, relay.request_id, relay.reply_type, reply, result);
      return;
    }
    case v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK_REPLY: {
      auto answer = DecodeBody<v1::PeerFetchResultChunkReply>(envelope);
      if (!answer.ok()) return;
      auto found = relays_.find(answer->relay_id());
      if (found == relays_.end() || found->second.kind != Relay::Kind::kResultFetch) {
        return;
      }
      Relay relay = std::move(found->second);
      relays_.erase(found);
      AnswerResultFetch(relay, answer->reply(), status);
      return;
    }
    default:
      return;
  }
}

void BrokerImpl::ExpireRelays(int64_t now_ms) {
  for (auto it = relays_.begin(); it != relays_.end();) {
    if (it->second.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    const Relay relay = std::move(it->second);
    it = relays_.erase(it);
    const Status late = UnavailableError(
        "no answer from " +
        std::string(relay.kind == Relay::Kind::kResultFetch && !relay.provider.empty()
                        ? "provider " + relay.provider
                        : "the peer broker") +
        " in time; try again");
    if (relay.kind == Relay::Kind::kResultFetch) {
      AnswerResultFetch(relay, v1::FetchResultChunkReply(), late);
    } else {
      SendReply(relay.routing_id, relay.request_id, relay.reply_type,
                v1::Heartbeat(), late);
    }
  }
}

void BrokerImpl::SweepBundles(int64_t now_ms) {
  next_bundle_sweep_ms_ = now_ms + 3600 * 1000;
  const int64_t cutoff = now_ms - options_.bundle_retention_ms;
  const auto removed = bundles_->RemoveUnusedSince(cutoff);
  for (auto& [owner, staging] : staging_) (void)staging->RemoveUnusedSince(cutoff);
  if (!removed.empty()) {
    spdlog::info("removed {} bundle(s) unused for {} s", removed.size(),
                 options_.bundle_retention_ms / 1000);
  }
}

}  // namespace computenet::broker
