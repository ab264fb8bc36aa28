// Clearing statements: the net settlement between two brokers for the jobs
// one forwarded to the other, built from each broker's own ledger, compared
// line by line, and signed by both when they agree (docs/ledger.md,
// "Clearing").
//
// The debtor (home broker of the forwarded jobs) lists the remote_usage
// entries it posted to clearing:<creditor>; the creditor lists the usage
// entries it posted against holds on clearing:<debtor>. Both come from the
// same countersigned usage records, so they must be equal line for line.
//
// Thread safety: stateless functions over a Database the caller owns; call
// them from the Database's thread.
#ifndef COMPUTENET_LEDGER_CLEARING_STATEMENT_H_
#define COMPUTENET_LEDGER_CLEARING_STATEMENT_H_

#include <string>
#include <vector>

#include "computenet/storage/database.h"
#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::ledger {

inline constexpr char kSettlementDomain[] = "computenet.v1.Settlement";

// Lines the debtor posted for jobs that ran at `creditor`, sorted by (job,
// record). INTERNAL / UNAVAILABLE on database errors.
StatusOr<std::vector<v1::SettlementLine>> DebtorLines(
    storage::Database& db, const std::string& creditor);
// Lines the creditor charged to clearing:<debtor>, sorted likewise.
StatusOr<std::vector<v1::SettlementLine>> CreditorLines(
    storage::Database& db, const std::string& debtor);

// A statement of `lines` with its net.
v1::SettlementStatement MakeStatement(const std::string& debtor,
                                      const std::string& creditor,
                                      std::vector<v1::SettlementLine> lines,
                                      int64_t now_ms);

// Compares the debtor's statement with the creditor's own lines: agreed if
// every line is in both with the same amount; otherwise the reply names the
// lines that differ.
v1::SettlementReply CompareSettlement(
    const v1::SettlementStatement& statement,
    const std::vector<v1::SettlementLine>& creditor_lines);

// Ed25519 over the domain-separated statement bytes. INTERNAL if signing
// fails; UNAUTHENTICATED if a signature does not verify.
StatusOr<std::string> SignSettlement(const SigningKey& key,
                                     const std::string& statement_bytes);
Status VerifySettlementSignature(const std::string& public_key_hex,
                                 const std::string& statement_bytes,
                                 const std::string& signature);

// One line per difference, for logs and the operator: "only at east:
// north-3 north-3:final 27".
std::string DescribeDifferences(const v1::SettlementReply& reply,
                                const std::string& debtor,
                                const std::string& creditor);

// Stores a statement as this broker saw it (agreed or not).
Status StoreSettlement(storage::Database& db, const v1::SettlementStatement& statement,
                       const v1::SignedSettlement& signed_statement,
                       bool agreed, const std::string& differences);

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_CLEARING_STATEMENT_H_
