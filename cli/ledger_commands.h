// The computenet CLI's ledger commands: the offline audit of a broker's
// ledger file, a proof for one entry and its offline check, and a party's
// statement fetched from its broker with every line's proof checked.
//
// Each returns the process exit code: 0 success, 1 a check failed (or an
// error), 2 bad input.
//
// Thread safety: call from one thread (they print to stdout/stderr).
#ifndef COMPUTENET_CLI_LEDGER_COMMANDS_H_
#define COMPUTENET_CLI_LEDGER_COMMANDS_H_

#include <cstdint>
#include <string>

#include "computenet/consumer/client.h"

namespace computenet::cli {

// Prints the status as "computenet: CODE: message" and returns the exit
// code: 2 for a request the caller must change (invalid, not found,
// exists, precondition), 1 for anything else.
int Fail(const Status& status);

// `computenet ledger verify DB [--broker-identity FILE]
// [--allow-unsigned-tail]`: VerifyLedger; with an identity file, the file's
// broker key must be that broker's. Entries no signed checkpoint covers
// fail the audit (exit 1) unless allow_unsigned_tail: anyone who can write
// the file can rewrite them, chain and balances included, and deleting the
// checkpoint rows once made a forged history verify.
int LedgerVerify(const std::string& db_path,
                 const std::string& broker_identity_path,
                 bool allow_unsigned_tail = false);

// `computenet ledger prove DB --entry SEQ [--out FILE]`: writes the entry,
// its audit path and the signed checkpoint as JSON (stdout if out is empty).
int LedgerProve(const std::string& db_path, uint64_t sequence,
                const std::string& out_path);

// `computenet ledger verify-proof PROOF --broker-identity FILE`: checks the
// checkpoint's Ed25519 signature and the Merkle inclusion, offline.
int LedgerVerifyProof(const std::string& proof_path,
                      const std::string& broker_identity_path);

struct StatementOptions {
  std::string account;  // empty: the caller's own
  std::string from;     // ms since the epoch, YYYY-MM-DD or
  std::string to;       // YYYY-MM-DDTHH:MM:SSZ (UTC); empty = open
  std::string format = "table";  // table, csv or json
};

// `computenet statement`: fetches every page, checks the checkpoint
// signature with the broker's key from broker_identity_path and each line's
// inclusion proof, then prints the lines.
int Statement(consumer::Client& client, const std::string& broker_identity_path,
              const StatementOptions& options);

// Parses a --from/--to value into ms since the epoch. INVALID_ARGUMENT if
// it is none of the forms above.
StatusOr<int64_t> ParseTime(const std::string& text);

}  // namespace computenet::cli

#endif  // COMPUTENET_CLI_LEDGER_COMMANDS_H_
