#include "computenet/ledger/clearing_statement.h"

#include <algorithm>
#include <map>
#include <utility>

#include "computenet/ledger/ledger.h"
#include "computenet/v1/ledger.pb.h"

namespace computenet::ledger {

using storage::BindBlob;
using storage::BlobOf;
using storage::StatusFromSqlite;
namespace {

using LineKey = std::pair<std::string, std::string>;

LineKey KeyOf(const v1::SettlementLine& line) {
  return {line.job_id(), line.record_id()};
}

void SortLines(std::vector<v1::SettlementLine>& lines) {
  std::sort(lines.begin(), lines.end(),
            [](const v1::SettlementLine& a, const v1::SettlementLine& b) {
              return KeyOf(a) < KeyOf(b);
            });
}

// The entries of one kind that post to `account`, as lines: the amount is
// sign x what the entry posted to that account.
StatusOr<std::vector<v1::SettlementLine>> LinesOf(storage::Database& db,
                                                  const std::string& account,
                                                  const std::string& kind,
                                                  int sign) {
  std::vector<v1::SettlementLine> lines;
  try {
    auto query = db.Prepare("SELECT e.entry FROM ledger_entry_accounts a JOIN ledger_entries e "
        "ON e.sequence = a.sequence WHERE a.account = ? ORDER BY e.sequence");
    query->bind(1, account);
    while (query->executeStep()) {
      v1::LedgerEntry entry;
      if (!entry.ParseFromString(BlobOf(query->getColumn(0)))) {
        return DataLossError("ledger entry does not parse");
      }
      if (entry.kind() != kind) continue;
      v1::SettlementLine line;
      line.set_job_id(entry.job_id());
      line.set_record_id(entry.usage_record_id());
      for (const auto& posting : entry.postings()) {
        if (posting.account() == account) {
          line.set_amount(line.amount() + sign * posting.amount());
        }
      }
      lines.push_back(std::move(line));
    }
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "settlement lines");
  }
  SortLines(lines);
  return lines;
}

std::string LineText(const v1::SettlementLine& line) {
  return line.job_id() + " " + line.record_id() + " " +
         std::to_string(line.amount());
}

}  // namespace

StatusOr<std::vector<v1::SettlementLine>> DebtorLines(
    storage::Database& db, const std::string& creditor) {
  // remote_usage: a consumer's hold pays clearing:<creditor>.
  return LinesOf(db, ClearingAccount(creditor), "remote_usage", 1);
}

StatusOr<std::vector<v1::SettlementLine>> CreditorLines(
    storage::Database& db, const std::string& debtor) {
  // usage against a hold on clearing:<debtor>.
  return LinesOf(db, ClearingAccount(debtor), "usage", -1);
}

v1::SettlementStatement MakeStatement(const std::string& debtor,
                                      const std::string& creditor,
                                      std::vector<v1::SettlementLine> lines,
                                      int64_t now_ms) {
  SortLines(lines);
  v1::SettlementStatement statement;
  statement.set_debtor(debtor);
  statement.set_creditor(creditor);
  statement.set_created_ms(now_ms);
  int64_t net = 0;
  for (auto& line : lines) {
    net += line.amount();
    *statement.add_lines() = std::move(line);
  }
  statement.set_net(net);
  return statement;
}

v1::SettlementReply CompareSettlement(
    const v1::SettlementStatement& statement,
    const std::vector<v1::SettlementLine>& creditor_lines) {
  std::map<LineKey, int64_t> theirs;
  for (const auto& line : statement.lines()) theirs[KeyOf(line)] += line.amount();
  std::map<LineKey, int64_t> ours;
  for (const auto& line : creditor_lines) ours[KeyOf(line)] += line.amount();
  v1::SettlementReply reply;
  for (const auto& line : statement.lines()) {
    auto it = ours.find(KeyOf(line));
    if (it == ours.end()) {
      *reply.add_only_at_debtor() = line;
    } else if (it->second != theirs[KeyOf(line)]) {
      v1::SettlementLine differs = line;
      differs.set_amount(it->second);
      *reply.add_amount_differs() = std::move(differs);
    }
  }
  for (const auto& line : creditor_lines) {
    if (theirs.count(KeyOf(line)) == 0) *reply.add_only_at_creditor() = line;
  }
  reply.set_agreed(reply.only_at_debtor_size() == 0 &&
                   reply.only_at_creditor_size() == 0 &&
                   reply.amount_differs_size() == 0);
  return reply;
}

StatusOr<std::string> SignSettlement(const SigningKey& key,
                                     const std::string& statement_bytes) {
  return key.Sign(DomainSeparated(kSettlementDomain, statement_bytes));
}

Status VerifySettlementSignature(const std::string& public_key_hex,
                                 const std::string& statement_bytes,
                                 const std::string& signature) {
  CN_ASSIGN_OR_RETURN(VerifyingKey key, VerifyingKey::FromHex(public_key_hex));
  return key.Verify(DomainSeparated(kSettlementDomain, statement_bytes),
                    signature);
}

std::string DescribeDifferences(const v1::SettlementReply& reply,
                                const std::string& debtor,
                                const std::string& creditor) {
  std::string out;
  auto add = [&](const std::string& what, const v1::SettlementLine& line) {
    if (!out.empty()) out += "; ";
    out += what + ": " + LineText(line);
  };
  for (const auto& line : reply.only_at_debtor()) add("only at " + debtor, line);
  for (const auto& line : reply.only_at_creditor()) {
    add("only at " + creditor, line);
  }
  for (const auto& line : reply.amount_differs()) {
    add("amount at " + creditor, line);
  }
  return out;
}

Status StoreSettlement(storage::Database& db, const v1::SettlementStatement& statement,
                       const v1::SignedSettlement& signed_statement,
                       bool agreed, const std::string& differences) {
  try {
    auto insert = db.Prepare("INSERT OR REPLACE INTO settlement_statements(debtor, creditor, "
        "created_ms, net, lines, agreed, signed, differences) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    insert->bind(1, statement.debtor());
    insert->bind(2, statement.creditor());
    insert->bind(3, static_cast<int64_t>(statement.created_ms()));
    insert->bind(4, static_cast<int64_t>(statement.net()));
    insert->bind(5, statement.lines_size());
    insert->bind(6, agreed ? 1 : 0);
    BindBlob(*insert, 7, signed_statement.SerializeAsString());
    insert->bind(8, differences);
    insert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "store settlement");
  }
}

}  // namespace computenet::ledger
