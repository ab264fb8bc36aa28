// Store: the broker's repository of enrollments, providers, jobs (protobuf
// blobs) and provider track records, in the broker's SQLite file (schema
// owner "broker"; the ledger's tables live in the same file under owner
// "ledger", see ledger/schema.h). Opening a Store migrates both, so one file
// always holds a consistent pair. Anything the broker acknowledges is
// committed here first (group commit: core/broker.cc).
//
// Thread safety: a Store is used by one thread (the broker's core loop, or a
// CLI command). Other processes may open the same file: SQLite serializes
// writers, and busy_timeout makes a short wait instead of an error.
#ifndef COMPUTENET_BROKER_JOBS_STORE_H_
#define COMPUTENET_BROKER_JOBS_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/imports.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/provider_stats.h"
#include "computenet/storage/database.h"
#include "computenet/common/identity.h"
#include "computenet/common/secrets.h"
#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::broker {

enum class Role { kProvider, kConsumer, kPeer, kAdmin };
std::string_view RoleName(Role role);
// INVALID_ARGUMENT for anything but provider, consumer, peer, admin.
StatusOr<Role> ParseRole(std::string_view name);

struct Enrollment {
  Role role = Role::kConsumer;
  std::string name;
  std::string curve_public;
  std::string ed25519_public;  // hex
  int64_t enrolled_ms = 0;
  bool revoked = false;
  // Consumers: the organization fair share groups them by; the name when
  // none was given at enrollment.
  std::string organization;
  // Set once the party rotated away from this key: from this time on the
  // key is refused (at the handshake and on open connections). Unset while
  // it is an active key of the party.
  std::optional<int64_t> retire_at_ms;

  bool RetiredAt(int64_t now_ms) const {
    return retire_at_ms.has_value() && *retire_at_ms <= now_ms;
  }
};

// A key that retires (or retired) after a rotation: whose it is
// ("<role>/<name>", the ZAP User-Id) and from when it is refused.
struct RetiringKey {
  std::string user_id;
  int64_t retire_at_ms = 0;
};

// A peer declined a job forwarded to it: not tried there again before
// retry_at_ms (the broker backs off with each decline).
struct ForwardDecline {
  std::string job_id;
  std::string peer;
  int64_t retry_at_ms = 0;
  uint32_t declines = 1;  // how often this peer declined this job
  std::string reason;     // the peer's, first 512 bytes
};

class Store {
 public:
  // Opens (creating if needed) and migrates the database at path (the
  // broker's and the ledger's tables). UNAVAILABLE if the file cannot be
  // opened; DATA_LOSS if its schema is newer than this binary knows.
  static StatusOr<std::unique_ptr<Store>> Open(
      const std::string& path, const storage::DatabaseOptions& options = {});
  // Opens an existing database read-only, for offline audit.
  // FAILED_PRECONDITION if its schema is not this binary's.
  static StatusOr<std::unique_ptr<Store>> OpenReadOnly(const std::string& path);

  // The file itself: the ledger, checkpoints and replicas share it.
  storage::Database& database() { return *db_; }

  // --- enrollments ---------------------------------------------------------
  // A party is (role, name); it holds one or more keys (rows), all revoked
  // together. Rotation adds a key and retires the others.
  //
  // A new party. ALREADY_EXISTS if the key or (role, name) is already
  // enrolled. organization: for consumers (fair share); empty = the name.
  Status Enroll(Role role, const PublicIdentity& identity, int64_t now_ms,
                const std::string& organization = "");
  // Binds identity's key to the existing party (role, identity.name): same
  // account, jobs and organization. Its other keys keep working until
  // now_ms + overlap_ms (0: refused from now on; a key already retiring
  // sooner keeps its time). ALREADY_EXISTS if the key is enrolled (for
  // anyone), NOT_FOUND if the party is not, FAILED_PRECONDITION if it is
  // revoked, INVALID_ARGUMENT for a negative overlap.
  Status RotateKey(Role role, const PublicIdentity& identity, int64_t now_ms,
                   int64_t overlap_ms);
  // Like RotateKey, but the party's other keys stay active (a pinned peer's
  // next key, accepted beside its current one).
  Status AddKey(Role role, const PublicIdentity& identity, int64_t now_ms);
  // Ends a rotation's overlap: the party's keys still retiring are retired
  // at now_ms. Returns how many. NOT_FOUND if the party is not enrolled.
  StatusOr<int> EndOverlap(Role role, const std::string& name, int64_t now_ms);
  // Deletes the peer enrollment named broker_id or holding curve_public
  // (config is the truth for pinned peers: re-enrolled at every start).
  Status RemovePeerEnrollment(const std::string& broker_id,
                              const std::string& curve_public);
  // Revokes the party: every key it holds. NOT_FOUND if no such party.
  Status Revoke(Role role, const std::string& name);
  // nullopt if the key is not enrolled (revoked and retired ones are
  // returned, flagged).
  StatusOr<std::optional<Enrollment>> FindEnrollmentByKey(
      const std::string& curve_public);
  // The party's current key (its newest active one, else its newest key);
  // nullopt if the party is not enrolled.
  StatusOr<std::optional<Enrollment>> FindEnrollment(Role role,
                                                     const std::string& name);
  // The Ed25519 keys (hex) of every key the party holds or held, current
  // first: a usage record signed before a rotation still verifies.
  StatusOr<std::vector<std::string>> SigningKeys(Role role,
                                                 const std::string& name);
  // Every key, by role, name, then enrolment time.
  StatusOr<std::vector<Enrollment>> ListEnrollments();
  // "<role>/<name>" (the ZAP User-Id) of every revoked enrollment.
  StatusOr<std::set<std::string>> RevokedUserIds();
  // Every key with a retirement time (past or future), by CURVE key.
  StatusOr<std::map<std::string, RetiringKey>> RetiringKeys();

  // --- providers -----------------------------------------------------------
  Status SaveProviderRegistration(const std::string& name,
                                  const v1::RegisterProvider& registration,
                                  int64_t now_ms);
  Status SetProviderOnline(const std::string& name, bool online,
                           int64_t now_ms);
  // Every provider that ever registered, with its last registration.
  StatusOr<std::vector<std::pair<std::string, v1::RegisterProvider>>>
  ListProviders();
  // Marks every provider offline (at broker start: they must re-register).
  Status MarkAllProvidersOffline();

  // --- jobs ----------------------------------------------------------------
  // Inserts a new job, assigning its global id "<broker_id>-<seq>". If the
  // consumer already submitted idempotency_key, returns that job and sets
  // *duplicate. The job's state is stored as given (normally QUEUED).
  // `admit`, if given, runs for a new job only (after the duplicate check,
  // in the same transaction); its error is returned and nothing is stored.
  StatusOr<v1::JobInfo> InsertJob(const std::string& broker_id,
                                  v1::JobInfo job,
                                  const std::string& idempotency_key,
                                  bool* duplicate,
                                  const std::function<Status()>& admit = {});
  // How many of consumer's jobs are QUEUED, PLACED or RUNNING.
  StatusOr<uint64_t> CountUnfinishedJobs(const std::string& consumer);
  // Inserts a job that already has its global id (one forwarded here by a
  // peer). ALREADY_EXISTS if the id is taken.
  //
  // Secret env (InsertJob and InsertJobWithId): the row keeps the names
  // with the value "***"; the values are sealed under the secret box into
  // job_secrets in the same transaction (FAILED_PRECONDITION without a box).
  // UpdateJob never writes values and deletes them when the job ends.
  Status InsertJobWithId(const v1::JobInfo& job, int64_t now_ms);
  // Rewrites a job's row. NOT_FOUND if it does not exist;
  // FAILED_PRECONDITION if its state change is not in the table of
  // jobs/job_transitions.h (nothing is written then).
  Status UpdateJob(const v1::JobInfo& job, int64_t now_ms);
  // NOT_FOUND if absent.
  StatusOr<v1::JobInfo> GetJob(const std::string& job_id);
  // Newest first. consumer empty = every consumer; states empty = any state.
  StatusOr<std::vector<v1::JobInfo>> ListJobs(
      const std::string& consumer, const std::vector<v1::JobState>& states,
      uint32_t limit);
  // Oldest first (submission order), any consumer.
  StatusOr<std::vector<v1::JobInfo>> JobsInStates(
      const std::vector<v1::JobState>& states);

  // --- secret env of unfinished jobs ----------------------------------------
  // The key the secret values are sealed under (the broker's secrets.key);
  // without one, a job with secret env is refused.
  void SetSecretBox(std::shared_ptr<const SecretBox> box) {
    secrets_ = std::move(box);
  }
  // The job's secret values (empty if it has none, or they were deleted as
  // it ended). DATA_LOSS if they do not open under the box's key.
  StatusOr<std::map<std::string, std::string>> JobSecrets(
      const std::string& job_id);
  // Rows in job_secrets (for tests and the secrets gauge).
  StatusOr<uint64_t> CountJobSecrets();

  // --- provider track records (reliability) ----------------------------------
  // Adds one event to the provider's record (creating it).
  Status RecordProviderEvent(const std::string& provider, ProviderEvent event,
                             int64_t now_ms);
  // Every provider with a record.
  StatusOr<std::map<std::string, ProviderStats>> ListProviderStats();

  // --- fair share ------------------------------------------------------------
  // Replaces the stored usage with this snapshot (one transaction).
  Status SaveFairShare(const std::vector<matching::StoredUsage>& usage);
  // The stored usage; rows with no usage are skipped.
  StatusOr<std::vector<matching::StoredUsage>> LoadFairShare();

  // --- who may submit what priority -------------------------------------------
  // The operator's grant: the highest class the organization's consumers
  // may submit. INVALID_ARGUMENT for an empty or over-long name or a class
  // other than LOW, NORMAL, HIGH.
  Status SetMaxPriority(const std::string& organization,
                        v1::PriorityClass max_priority, int64_t now_ms);
  // NORMAL for an organization without a grant.
  StatusOr<v1::PriorityClass> MaxPriority(const std::string& organization);
  StatusOr<std::vector<std::pair<std::string, v1::PriorityClass>>>
  ListMaxPriorities();

  // --- declined forwards -------------------------------------------------------
  // Stores (or replaces) the decline of (job_id, peer).
  Status SaveDecline(const ForwardDecline& decline);
  // Forgets every decline of the job (it left the queue).
  Status DeleteDeclines(const std::string& job_id);
  // The declines of jobs still QUEUED; those of other jobs are deleted.
  StatusOr<std::vector<ForwardDecline>> LoadDeclines();

 private:
  explicit Store(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}
  Status InsertKey(Role role, const PublicIdentity& identity, int64_t now_ms,
                   const std::string& organization);
  Status AddPartyKey(Role role, const PublicIdentity& identity, int64_t now_ms,
                     std::optional<int64_t> retire_others_at_ms);

  // The spec's secret env alone (empty when it holds only masks).
  static v1::JobSpec SecretsOf(const v1::JobSpec& spec);
  Status PutSecrets(const std::string& job_id, const v1::JobSpec& secrets);
  Status InsertForwardedRow(const v1::JobInfo& job, int64_t now_ms);

  std::unique_ptr<storage::Database> db_;
  std::shared_ptr<const SecretBox> secrets_;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_JOBS_STORE_H_
