// The broker's side of the ledger: binding the file to this broker, the
// hold taken when a job is placed and released when it ends, checkpoints
// signed as entries accumulate, and statements with proofs.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/imports.h"
#include "core/broker_impl.h"
#include "jobs/job_rules.h"

namespace computenet::broker {
namespace {

// A statement reply stays well under the transport's message limit.
constexpr size_t kMaxStatementBytes = kMaxMessageBytes / 2;
constexpr uint32_t kMaxStatementLines = 1000;

}  // namespace

Status BrokerImpl::InitLedger() {
  // The offline audit checks checkpoint signatures against the key named
  // here; a file signed by one broker is never continued by another.
  CN_RETURN_IF_ERROR(BindLedgerToBroker(
      store_->database(), options_.broker_id, identity_.signing_key().verifying_key().hex()));
  checkpointer_ = std::make_unique<Checkpointer>(
      store_->database(), options_.broker_id, identity_.signing_key(),
      CheckpointPolicy{options_.checkpoint_every_entries,
                       options_.checkpoint_interval_ms});
  // A crash between a job's last transition and the release of its hold
  // leaves the hold open: release what no placed or running job owns.
  CN_ASSIGN_OR_RETURN(auto holds, ledger_.OpenHolds());
  for (const auto& hold : holds) {
    auto job = store_->GetJob(hold.job_id);
    // A job forwarded to a peer owns its hold while it is out there, even
    // before the peer answered (QUEUED here).
    const bool out = job.ok() && (job->state() == v1::JOB_STATE_PLACED ||
                                  job->state() == v1::JOB_STATE_RUNNING ||
                                  (job->state() == v1::JOB_STATE_QUEUED &&
                                   !job->remote_broker().empty()));
    const bool owned =
        out && HoldIdFor(job->job_id(), job->attempts()) == hold.hold_id;
    if (owned) continue;
    auto released = ledger_.ReleaseHold(
        hold.job_id,
        "released at broker start: job " + hold.job_id + " is no longer out",
        Now());
    if (!released.ok()) return released.status();
    spdlog::info("released {} minor units held for job {}", hold.remaining,
                 hold.job_id);
  }
  return OkStatus();
}

StatusOr<int64_t> BrokerImpl::HoldForForward(v1::JobInfo& job,
                                              const std::string& peer) {
  // Sent to this peer before (e.g. before a restart): the hold stands.
  CN_ASSIGN_OR_RETURN(auto open, ledger_.OpenHold(job.job_id()));
  if (open.has_value() && open->remote_broker == peer) return open->amount;
  if (open.has_value()) {
    CN_RETURN_IF_ERROR(
        ledger_.ReleaseHold(job.job_id(), "forwarded elsewhere", Now())
            .status());
  }
  // The budget: the worst case at the consumer's price ceiling, else at the
  // highest price the peer advertises for a model the job accepts. A
  // compute-equivalence job's card count depends on the model the peer
  // picks, so it gets what its consumer may spend.
  const v1::JobSpec& spec = job.spec();
  int64_t price_cap = spec.max_price_per_card_hour();
  std::string currency;
  auto adverts = adverts_.find(peer);
  if (adverts != adverts_.end()) {
    for (const auto& [model, entry] : adverts->second.entries) {
      const bool accepted =
          spec.accelerator_models().empty() ||
          std::find(spec.accelerator_models().begin(),
                    spec.accelerator_models().end(),
                    model) != spec.accelerator_models().end();
      if (!accepted) continue;
      if (spec.max_price_per_card_hour() <= 0) {
        // The dearest offer it may land on (an older peer sends only the
        // lowest price).
        price_cap = std::max(price_cap, entry.highest_price() > 0
                                            ? entry.highest_price()
                                            : entry.lowest_price());
      }
      if (currency.empty()) currency = entry.currency();
    }
  }
  int64_t budget = 0;
  if (spec.a100_equivalents_milli() == 0 && price_cap > 0) {
    const uint64_t cards = static_cast<uint64_t>(std::max<uint32_t>(
                               1, spec.nodes())) *
                           std::max<uint32_t>(1, spec.cards_per_node());
    CN_ASSIGN_OR_RETURN(
        budget, ChargeForCardSeconds(cards * spec.max_duration_s(), price_cap));
  } else {
    CN_ASSIGN_OR_RETURN(AccountBalance funds,
                        ledger_.Account(ConsumerAccount(job.consumer())));
    budget = funds.available();
  }
  if (budget <= 0) {
    return FailedPreconditionError("insufficient funds: consumer:" +
                                   job.consumer() +
                                   " has nothing to hold for a forward");
  }
  HoldRequest hold;
  hold.job_id = job.job_id();
  hold.consumer = job.consumer();
  hold.provider = peer;
  hold.remote_broker = peer;
  hold.currency = currency;
  hold.attempt = job.attempts() + 1;
  hold.cards = 1;
  hold.max_duration_s = std::max<uint32_t>(1, spec.max_duration_s());
  hold.amount = budget;
  CN_ASSIGN_OR_RETURN(PostedEntry held, ledger_.PlaceHold(hold, Now()));
  job.set_attempts(hold.attempt);
  return held.amount;
}

void BrokerImpl::StopExhaustedJob(v1::JobInfo& job) {
  if (IsTerminal(job.state())) return;
  job.set_reason("stopped: it used all it may be billed for (" +
                 std::to_string(job.card_seconds()) +
                 " card-seconds, cards x max duration)");
  Status saved = jobs_->Save(job);
  if (!saved.ok()) spdlog::error("{}", saved.ToString());
  spdlog::warn("job {} {}", job.job_id(), job.reason());
  jobs_->SendCancel(job);
}

void BrokerImpl::LedgerTick(int64_t now_ms) {
  if (checkpointer_) {
    auto checkpoint = checkpointer_->MaybeCheckpoint(now_ms);
    if (!checkpoint.ok()) {
      spdlog::error("ledger checkpoint: {}", checkpoint.status().ToString());
    } else if (checkpoint->has_value()) {
      v1::Checkpoint signed_head;
      signed_head.ParseFromString((*checkpoint)->checkpoint());
      spdlog::info("ledger checkpoint signed: {} entries", signed_head.tree_size());
    }
  }
  if (jobs_->funds_waiting()) {
    auto version = store_->database().DataVersion();
    if (!version.ok()) {
      spdlog::warn("data_version: {}", version.status().ToString());
    } else if (*version != data_version_) {
      // Another connection committed (perhaps a top-up): try again.
      data_version_ = *version;
      jobs_->ClearFundsWaiting();
      jobs_->RequestSchedule();
    }
  }
}

void BrokerImpl::CheckpointOnShutdown() {
  if (!checkpointer_) return;
  // A clean stop leaves every entry under a signed head.
  auto checkpoint = checkpointer_->CheckpointNow(Now());
  if (!checkpoint.ok()) {
    spdlog::error("final ledger checkpoint: {}", checkpoint.status().ToString());
  }
}

void BrokerImpl::OnGetStatement(const Request& request) {
  v1::GetStatementReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_GET_STATEMENT_REPLY, reply, status);
  };
  auto get = DecodeBody<v1::GetStatement>(request.envelope);
  if (!get.ok()) return respond(get.status());
  std::string own;
  switch (request.peer.role) {
    case Role::kConsumer: own = ConsumerAccount(request.peer.name); break;
    case Role::kProvider: own = ProviderAccount(request.peer.name); break;
    case Role::kAdmin: break;
    case Role::kPeer:
      return respond(PermissionDeniedError("peers do not get statements"));
  }
  const std::string account = get->account().empty() ? own : get->account();
  if (account.empty()) {
    return respond(InvalidArgumentError("name the account to list"));
  }
  if (request.peer.role != Role::kAdmin && account != own) {
    return respond(PermissionDeniedError("you may list only your own account, " +
                                         own));
  }
  auto kind = AccountKindOf(account);
  if (!kind.ok()) return respond(kind.status());
  if (get->to_ms() != 0 && get->to_ms() < get->from_ms()) {
    return respond(InvalidArgumentError("to_ms is before from_ms"));
  }
  // Sign first, so the newest lines are covered by the checkpoint.
  if (checkpointer_) {
    auto checkpoint = checkpointer_->CheckpointNow(Now());
    if (!checkpoint.ok()) return respond(checkpoint.status());
  }
  StatementQuery query;
  query.account = account;
  query.from_ms = get->from_ms();
  query.to_ms = get->to_ms();
  query.after_sequence = get->after_sequence();
  query.limit = get->limit() == 0 ? kMaxStatementLines
                                  : std::min(get->limit(), kMaxStatementLines);
  query.max_bytes = kMaxStatementBytes;
  auto built = BuildStatement(store_->database(), query);
  if (!built.ok()) return respond(built.status());
  reply = std::move(*built);
  respond(OkStatus());
}

}  // namespace computenet::broker
