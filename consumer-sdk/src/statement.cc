#include "computenet/consumer/statement.h"

#include "computenet/common/checkpoint.h"

namespace computenet::consumer {
namespace {

// The line as `account` sees it; concerns = the entry touches the account.
StatementLineView View(const v1::LedgerEntry& entry, const std::string& account,
                       bool* concerns) {
  StatementLineView view;
  *concerns = false;
  view.sequence = entry.sequence();
  view.created_ms = entry.created_ms();
  view.kind = entry.kind();
  view.job_id = entry.job_id();
  for (const auto& posting : entry.postings()) {
    if (posting.account() != account) continue;
    view.amount += posting.amount();
    *concerns = true;
  }
  if (entry.account() == account) {
    *concerns = true;
    if (entry.kind() == "hold") view.held_change = entry.hold_amount();
    if (entry.kind() == "void") view.held_change = -entry.hold_amount();
  }
  const bool charge = entry.kind() == "usage" || entry.kind() == "remote_usage";
  if (charge && !entry.hold_id().empty() && entry.postings_size() > 0 &&
      entry.postings(0).account() == account) {
    view.held_change = entry.postings(0).amount();  // drawn from the hold
  }
  if (entry.kind() == "remote_usage") {
    // Countersigned by the broker where it ran; the evidence is in the entry.
    view.detail = entry.usage_record_id() + ": " +
                  std::to_string(entry.billed_card_seconds()) + " card-s at " +
                  std::to_string(entry.price_per_card_hour()) +
                  "/card-h, ran at " + entry.remote_broker();
  } else if (entry.kind() == "usage") {
    view.detail = entry.usage_record_id() + ": " +
                  std::to_string(entry.billed_card_seconds()) + " card-s at " +
                  std::to_string(entry.price_per_card_hour()) + "/card-h";
    if (entry.fee_bps() > 0) {
      view.detail += ", fee " + std::to_string(entry.fee_bps()) + " bps";
    }
  } else if (entry.kind() == "hold") {
    view.detail = entry.hold_id() + ": up to " +
                  std::to_string(entry.max_card_seconds()) + " card-s";
  } else if (entry.kind() == "credit_limit") {
    view.detail = "limit " + std::to_string(entry.credit_limit());
  } else {
    view.detail = entry.memo();
  }
  return view;
}

}  // namespace

StatusOr<VerifiedStatement> FetchVerifiedStatement(
    Client& client, const VerifyingKey& broker_key,
    const StatementQuery& query) {
  VerifiedStatement statement;
  uint64_t after = 0;
  for (;;) {
    v1::GetStatement request;
    request.set_account(query.account);
    request.set_from_ms(query.from_ms);
    request.set_to_ms(query.to_ms);
    request.set_after_sequence(after);
    CN_ASSIGN_OR_RETURN(v1::GetStatementReply page,
                        client.GetStatement(request));
    statement.account = page.account();
    if (page.lines_size() > 0) {
      CN_ASSIGN_OR_RETURN(statement.checkpoint,
                          VerifyCheckpoint(broker_key, page.checkpoint()));
    }
    for (auto& line : *page.mutable_lines()) {
      CN_ASSIGN_OR_RETURN(v1::LedgerEntry entry,
                          VerifyStatementLine(statement.checkpoint, line));
      bool concerns = false;
      StatementLineView view = View(entry, statement.account, &concerns);
      if (!concerns) {
        return UnauthenticatedError("entry " +
                                    std::to_string(entry.sequence()) +
                                    " does not concern " + statement.account);
      }
      statement.net_amount += view.amount;
      statement.held_change += view.held_change;
      view.line = std::move(line);
      statement.lines.push_back(std::move(view));
    }
    if (!page.truncated()) break;
    after = page.last_sequence();
  }
  return statement;
}

}  // namespace computenet::consumer
