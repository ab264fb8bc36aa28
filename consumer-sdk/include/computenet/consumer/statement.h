// Statement: a party's ledger lines fetched from its broker, every page's
// checkpoint signature checked with the broker's Ed25519 key and every
// line's inclusion proof checked against it, then seen from the account's
// side (what it was paid or charged, what was reserved). The CLI's
// `computenet statement` and the Python SDK's Client.statement() both use it.
//
// Thread safety: stateless functions; the Client passed in is used from the
// calling thread only (Client is not thread-safe).
#ifndef COMPUTENET_CONSUMER_STATEMENT_H_
#define COMPUTENET_CONSUMER_STATEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"
#include "computenet/consumer/client.h"
#include "computenet/v1/ledger.pb.h"

namespace computenet::consumer {

// One ledger line as the account's owner sees it.
struct StatementLineView {
  uint64_t sequence = 0;
  int64_t created_ms = 0;
  std::string kind;
  std::string job_id;
  int64_t amount = 0;       // the account's postings
  int64_t held_change = 0;  // reserved (+) or no longer reserved (-)
  std::string detail;
  v1::StatementLine line;  // the entry's bytes and its inclusion proof
};

struct VerifiedStatement {
  std::string account;
  v1::Checkpoint checkpoint;  // the last page's, verified
  std::vector<StatementLineView> lines;
  int64_t net_amount = 0;   // sum of the lines' amounts
  int64_t held_change = 0;  // sum of the lines' held changes
};

struct StatementQuery {
  std::string account;  // empty: the caller's own (admins: any)
  int64_t from_ms = 0;  // entries created at or after
  int64_t to_ms = 0;    // and before; 0 = open
};

// Fetches every page of the statement and checks it. UNAUTHENTICATED if a
// checkpoint signature or an inclusion proof fails, or a line does not
// concern the account; the Client's errors otherwise.
StatusOr<VerifiedStatement> FetchVerifiedStatement(
    Client& client, const VerifyingKey& broker_key,
    const StatementQuery& query);

}  // namespace computenet::consumer

#endif  // COMPUTENET_CONSUMER_STATEMENT_H_
