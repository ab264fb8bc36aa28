// Ledger: the broker's double-entry, hash-chained books, with prepaid
// consumer accounts, two-phase holds on placement, and its offline audit.
// docs/ledger.md describes accounts, transfer kinds and how to verify.
//
// Each transaction is a v1::LedgerEntry whose postings sum to zero, stored
// as its serialized bytes; entry N names SHA-256(entry N-1) in prev_hash.
// Money is integer minor units; metering is integer card-seconds; nothing
// here uses floating point.
//
// Accounts (by name):
//   consumer:<name>   prepaid balance; may go down to -credit_limit
//   provider:<name>   what the broker owes a provider (receivable)
//   fee:<broker>      the broker's fee share of each usage charge
//   clearing:<peer>   net position with a peer broker (federation)
//   operator:topup    where top-ups come from; no limit
// Clearing accounts have no limit either: a peer runs a forwarded job only
// within the budget its home broker holds from its consumer.
// Every account but operator:* and clearing:* keeps
// balance - held >= -credit_limit
// (credit_limit 0 unless set): no entry that lowers what an account may
// spend, or its limit, may leave it below that.
//
// Rounding rules (also docs/protocol.md):
//   charge(card_seconds) = (card_seconds * price_per_card_hour + 1800) / 3600
//     exact card-seconds times the per-card-hour price, rounded half up.
//   A job's records are charged cumulatively: the record that brings the
//   job's billed card-seconds from B to B + b costs charge(B + b) - charge(B),
//   so any split into interim records costs exactly charge(total).
//   fee = charge * fee_bps / 10000, rounded down; the provider gets the rest.
//   hold = charge(cards * max_duration_s): the most the job can cost.
//
// Thread safety: a Ledger works on its Database's connection, from that Database's
// thread. Its mutating calls join the caller's open transaction if there is
// one (so a usage record and its charge commit together), and otherwise run
// in their own (BEGIN IMMEDIATE). VerifyLedger only reads.
#ifndef COMPUTENET_LEDGER_LEDGER_H_
#define COMPUTENET_LEDGER_LEDGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/ledger/directory.h"
#include "computenet/ledger/usage_records.h"
#include "computenet/storage/database.h"
#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/ledger.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::ledger {

// --- rules ------------------------------------------------------------------

// charge(card_seconds) above. OUT_OF_RANGE if the result would overflow, or
// a negative price is given.
StatusOr<int64_t> ChargeForCardSeconds(uint64_t card_seconds,
                                       int64_t price_per_card_hour);
// The cumulative rule: charge(before + billed) - charge(before).
// OUT_OF_RANGE on overflow.
StatusOr<int64_t> ChargeForInterval(uint64_t billed_before, uint64_t billed,
                                    int64_t price_per_card_hour);
// fee = charge * fee_bps / 10000, rounded down. INVALID_ARGUMENT for
// fee_bps > 10000 or a negative charge.
StatusOr<int64_t> FeeFor(int64_t charge, uint32_t fee_bps);

// --- account names ----------------------------------------------------------

inline constexpr char kTopUpAccount[] = "operator:topup";
std::string ConsumerAccount(const std::string& consumer);
std::string ProviderAccount(const std::string& provider);
std::string FeeAccount(const std::string& broker_id);
std::string ClearingAccount(const std::string& peer);
// "consumer", "provider", "fee", "clearing" or "operator", from the name's
// prefix; INVALID_ARGUMENT for anything else or a malformed name.
StatusOr<std::string> AccountKindOf(std::string_view account);
// "hold:<job_id>:<attempt>": one hold per placement of a job.
std::string HoldIdFor(const std::string& job_id, uint32_t attempt);

// The meta keys naming the broker that owns a database file.
inline constexpr char kMetaBrokerId[] = "broker_id";
inline constexpr char kMetaBrokerKey[] = "broker_ed25519_public";
inline constexpr char kMetaV1Entries[] = "ledger_v1_entries";

// Records which broker owns this file (its id and Ed25519 public key, hex)
// in the meta table, so the offline audit can check the broker's
// checkpoints. FAILED_PRECONDITION if the file already belongs to another
// broker id or key.
Status BindLedgerToBroker(storage::Database& db, const std::string& broker_id,
                          const std::string& ed25519_public_hex);

// --- what the calls return --------------------------------------------------

struct LedgerOptions {
  // Names the fee account, fee:<broker_id>.
  std::string broker_id = "broker";
  // The broker's share of each usage charge, 0..10000 basis points.
  uint32_t fee_bps = 0;
};

struct PostedEntry {
  v1::LedgerEntry entry;
  // usage: what the consumer paid; topup/transfer: the amount moved;
  // hold: reserved; void: released.
  int64_t amount = 0;
  bool duplicate = false;  // the idempotency key was already posted
};

struct AccountBalance {
  std::string account;
  std::string kind;
  int64_t balance = 0;
  int64_t held = 0;                    // reserved by open holds
  std::optional<int64_t> credit_limit;  // nullopt: no limit (operator:*)
  // What the account may still spend (or hold): balance - held + limit.
  // INT64_MAX for an account without a limit.
  int64_t available() const;
};

struct HoldRequest {
  std::string job_id;
  std::string consumer;
  std::string provider;  // who the usage will be posted to
  std::string currency;
  uint32_t attempt = 0;  // the placement (JobInfo.attempts)
  uint32_t cards = 0;
  uint32_t max_duration_s = 0;
  int64_t price_per_card_hour = 0;
  // Whose funds are held: empty = consumer:<consumer>. A peer holds a job
  // forwarded to it on clearing:<home broker>.
  std::string payer;
  // Set by a home broker for a job it forwards: the hold pays
  // clearing:<remote_broker> with the usage that broker countersigns
  // (PostRemoteUsage), and no local fee. provider then names that broker.
  std::string remote_broker;
  // Remote holds only: the amount to hold (the budget given to the remote
  // broker), instead of charge(cards x max_duration_s).
  int64_t amount = 0;
};

struct Hold {
  std::string hold_id;
  std::string job_id;
  std::string account;
  std::string provider;
  std::string currency;
  int64_t amount = 0;     // reserved at placement
  int64_t remaining = 0;  // still reserved
  uint64_t max_card_seconds = 0;
  uint64_t billed_card_seconds = 0;  // through the last record
  std::optional<int64_t> last_end_ms;
  int64_t price_per_card_hour = 0;
  uint32_t fee_bps = 0;
  bool open = false;
  std::string remote_broker;  // a forwarded job's hold at its home broker
};

// One usage record of a forwarded job, as the remote broker posted it on
// its ledger and countersigned it (v1::RemoteUsage).
struct RemoteCharge {
  std::string remote_broker;
  std::string record_id;
  std::string currency;
  uint64_t billed_card_seconds = 0;      // this record, as billed there
  uint64_t cumulative_card_seconds = 0;  // through this record, there
  int64_t price_per_card_hour = 0;
  int64_t amount = 0;  // what the remote broker charged our clearing account
  bool closes_job = false;
  std::string evidence;  // the serialized, countersigned v1::RemoteUsage
};

struct PostedUsage {
  PostedEntry posted;
  uint64_t cumulative_card_seconds = 0;  // the job's billed card-seconds
  int64_t job_charged = 0;  // charged against the hold so far, in total
  // This record used up the hold (cards x max duration reached): nothing
  // more can be billed, and the job must stop.
  bool hold_exhausted = false;
  // The record closed the job and the rest of the hold was released.
  std::optional<PostedEntry> released;
};

struct TransferRequest {
  std::string from;
  std::string to;
  int64_t amount = 0;
  std::string idempotency_key;  // required; stored as "transfer:<key>"
  std::string currency;
  std::string memo;
};

class Ledger {
 public:
  // db and directory must outlive the Ledger. The ledger's tables must exist
  // (MigrateSchema, schema.h).
  Ledger(storage::Database& db, Directory& directory,
         LedgerOptions options = {});
  // A Ledger over a broker's own file: its Directory is
  // BrokerFileDirectory(db), owned by the Ledger.
  explicit Ledger(storage::Database& db, LedgerOptions options = {});

  // The signed usage records the ledger posted charges for.
  UsageRecords& usage_records() { return usage_records_; }

  // --- money in and limits ------------------------------------------------
  // operator:topup -> consumer:<consumer>. amount > 0 (INVALID_ARGUMENT);
  // NOT_FOUND if the consumer is not enrolled. idempotency_key is required:
  // the same key again returns the first entry with duplicate set, or
  // ALREADY_EXISTS if it was used for another consumer or amount.
  StatusOr<PostedEntry> TopUp(const std::string& consumer, int64_t amount,
                              const std::string& idempotency_key,
                              const std::string& memo, int64_t now_ms);
  // Moves amount between two accounts (e.g. clearing with a peer broker).
  // FAILED_PRECONDITION if `from` cannot cover it within its limit;
  // idempotency as TopUp.
  StatusOr<PostedEntry> Transfer(const TransferRequest& request,
                                 int64_t now_ms);
  // Sets how far below zero the account may go (>= 0). FAILED_PRECONDITION
  // if the account already uses more credit than the new limit, or is an
  // operator account. Returns nullopt if the limit is unchanged.
  StatusOr<std::optional<PostedEntry>> SetCreditLimit(
      const std::string& account, int64_t credit_limit, int64_t now_ms);
  // Creates clearing:<peer> (no entry: an empty account changes nothing).
  // OK if it exists; INVALID_ARGUMENT for a bad peer name.
  Status OpenClearingAccount(const std::string& peer, int64_t now_ms);

  // --- the two phases of a job's payment ------------------------------------
  // Reserves charge(cards x max_duration_s) of the consumer's funds for one
  // placement. Idempotent on (job, attempt). FAILED_PRECONDITION with a
  // message a consumer can act on if the funds do not cover it;
  // OUT_OF_RANGE on overflow.
  StatusOr<PostedEntry> PlaceHold(const HoldRequest& request, int64_t now_ms);
  // Posts one verified usage record against the job's open hold, by the
  // cumulative rule, capped at the hold's card-seconds, fee split as above,
  // and releases the rest of the hold if the record closes the job. The
  // record is stored with its charge. Idempotent on (provider, record id):
  // identical bytes again return the first entry with duplicate set.
  // ALREADY_EXISTS: the record id was used for other bytes, or the record
  // overlaps an interval already billed. INVALID_ARGUMENT: it leaves a gap
  // after the previous record. NOT_FOUND: the job has no open hold (its
  // usage was closed, or it was never placed under schema 2).
  StatusOr<PostedUsage> PostUsage(const v1::JobInfo& job,
                                  const StoredUsageRecord& stored,
                                  const v1::UsageRecord& record,
                                  int64_t now_ms);
  // The home side of a forwarded job's usage: posts consumer ->
  // clearing:<remote broker> against the job's remote hold, the amount the
  // remote broker charged (it must follow the cumulative rule), keeping the
  // countersigned record as evidence; releases the rest of the hold if the
  // record closes the job. Idempotent on (remote broker, record id).
  // NOT_FOUND: no open hold; FAILED_PRECONDITION: the hold is not for that
  // broker; INVALID_ARGUMENT: the amount breaks the rounding rule or
  // exceeds the hold.
  StatusOr<PostedEntry> PostRemoteUsage(const v1::JobInfo& job,
                                        const RemoteCharge& charge,
                                        int64_t now_ms);
  // Voids what is left of the job's open hold. nullopt if it has none.
  StatusOr<std::optional<PostedEntry>> ReleaseHold(const std::string& job_id,
                                                   const std::string& memo,
                                                   int64_t now_ms);
  // The job's open hold, or nullopt.
  StatusOr<std::optional<Hold>> OpenHold(const std::string& job_id);
  StatusOr<std::optional<Hold>> GetHold(const std::string& hold_id);
  StatusOr<std::vector<Hold>> OpenHolds();

  // --- reading ------------------------------------------------------------
  // 0 for an account that never had a posting.
  StatusOr<int64_t> Balance(const std::string& account);
  // Zeroes (and the default limit) for an account that does not exist yet.
  StatusOr<AccountBalance> Account(const std::string& account);
  StatusOr<std::vector<AccountBalance>> Balances();
  StatusOr<std::vector<v1::LedgerEntry>> Entries();
  // The sequence of the last entry (0 when empty).
  StatusOr<uint64_t> Size();

  // The entry posted under an idempotency key (e.g. UsageIdempotencyKey),
  // with duplicate set; nullopt if none.
  StatusOr<std::optional<PostedEntry>> FindEntry(const std::string& key);

  static std::string UsageIdempotencyKey(const std::string& provider,
                                         const std::string& record_id);

 private:
  struct Change;
  // Chains and stores one entry: sequence, prev_hash, created_ms, the
  // posting rows, balances and held amounts; refuses (FAILED_PRECONDITION,
  // before writing) a change that takes an account below its limit.
  StatusOr<PostedEntry> Append(v1::LedgerEntry entry,
                               const std::vector<Change>& held_changes,
                               int64_t now_ms);
  StatusOr<std::optional<PostedEntry>> FindByKey(const std::string& key);
  StatusOr<std::optional<PostedEntry>> ReleaseHoldLocked(const Hold& hold,
                                                         const std::string& memo,
                                                         int64_t now_ms);
  Status EnsureAccount(const std::string& account, int64_t now_ms);

  storage::Database& db_;
  std::unique_ptr<Directory> owned_directory_;  // set by the one-file form
  Directory& directory_;
  UsageRecords usage_records_;
  LedgerOptions options_;
};

// --- the offline audit --------------------------------------------------------

struct LedgerAuditOptions {
  // If set (hex), the broker key the file's meta table names must be this
  // one: an auditor pins the key from the broker's identity.pub rather than
  // trusting the file.
  std::string expected_broker_key;
};

struct LedgerAuditReport {
  uint64_t entries = 0;
  uint64_t usage_records = 0;
  uint64_t accounts = 0;
  int64_t total_charged = 0;  // sum of consumer debits for usage
  std::string head_hash_hex;  // hash of the last entry
  uint64_t checkpoints = 0;
  uint64_t cosignatures = 0;
  uint64_t checkpointed_entries = 0;  // the largest checkpoint's tree size
  uint64_t holds = 0;
  uint64_t open_holds = 0;
  uint64_t v1_entries = 0;  // written under schema 1's rules
  std::string broker_id;    // from meta; empty if never bound
};

// Replays the whole ledger and returns DATA_LOSS naming the first violation:
// the chain (sequence, hash, prev_hash), each entry's balance and stored
// postings, unique idempotency keys, each kind's rules (a usage charge is
// backed by a usage record signed by the enrolled provider, follows the
// cumulative and fee rounding rules against its hold, and covers intervals
// contiguous with the job's previous record), no account below its limit
// at any point, every usage record posted exactly once, stored balances,
// held amounts and holds equal to the replay, and every checkpoint signed
// by the broker's key with a Merkle head and chain head that match the
// entries. FAILED_PRECONDITION if the broker key does not match
// options.expected_broker_key.
StatusOr<LedgerAuditReport> VerifyLedger(storage::Database& db,
                                         Directory& directory,
                                         const LedgerAuditOptions& options = {});
// The audit of a broker's own file (its Directory: BrokerFileDirectory).
StatusOr<LedgerAuditReport> VerifyLedger(storage::Database& db,
                                         const LedgerAuditOptions& options = {});

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_LEDGER_H_
