// A real ledger in a real SQLite file, built the way the broker builds it:
// enrolled parties, job rows, operator top-ups, holds on placement, usage
// records signed with the providers' keys and posted against the holds, and
// checkpoints signed with the broker's key. Shared by the ledger, audit,
// statement and replication tests.
#ifndef COMPUTENET_TESTS_SUPPORT_LEDGER_FIXTURE_H_
#define COMPUTENET_TESTS_SUPPORT_LEDGER_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/ledger/directory.h"
#include "jobs/store.h"
#include "computenet/common/identity.h"
#include "computenet/common/usage_record.h"
#include "test_support.h"

namespace computenet::testing {

inline constexpr int64_t kLedgerNowMs = 1'700'000'000'000;

class LedgerFixture {
 public:
  // A fresh file, bound to broker "hub" (the broker identity's key), with
  // providers site-a and site-b and consumers alice and bob enrolled.
  explicit LedgerFixture(uint32_t fee_bps = 0);

  broker::Store& store() { return *store_; }
  storage::Database& database() { return store_->database(); }
  ledger::Directory& directory() { return *directory_; }
  ledger::Ledger& ledger() { return *ledger_; }
  const Identity& broker_identity() const { return broker_; }
  const Identity& site_a() const { return site_a_; }
  const Identity& site_b() const { return site_b_; }
  const std::string& path() const { return path_; }
  // Advances by one second per call, so entries have distinct times.
  int64_t Now() { return now_ += 1000; }

  // Stores a RUNNING job row as the broker would after placing it.
  v1::JobInfo Job(const std::string& job_id, const std::string& consumer,
                  const std::string& provider, uint32_t cards,
                  uint32_t max_duration_s, int64_t price,
                  uint32_t attempt = 1);
  ledger::PostedEntry MustTopUp(const std::string& consumer, int64_t amount,
                                const std::string& key);
  StatusOr<ledger::PostedEntry> Hold(const v1::JobInfo& job);
  ledger::PostedEntry MustHold(const v1::JobInfo& job);
  // A usage record of the job's provider, signed with its key.
  v1::UsageReport Sign(const v1::JobInfo& job, const std::string& record_id,
                       int64_t start_ms, int64_t end_ms, bool closes_job,
                       const Identity* signer = nullptr) const;
  StatusOr<ledger::PostedUsage> Post(const v1::JobInfo& job,
                                     const v1::UsageReport& report);
  ledger::PostedUsage MustPost(const v1::JobInfo& job,
                               const std::string& record_id, int64_t start_ms,
                               int64_t end_ms, bool closes_job);
  // Signs a checkpoint of every entry so far.
  v1::SignedCheckpoint MustCheckpoint();
  int64_t CountRows(const std::string& table);
  ledger::AccountBalance MustAccount(const std::string& account);

 private:
  TempDir dir_;
  std::string path_;
  int64_t now_ = kLedgerNowMs;
  Identity broker_;
  Identity site_a_;
  Identity site_b_;
  std::unique_ptr<broker::Store> store_;
  std::unique_ptr<ledger::Directory> directory_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<ledger::Checkpointer> checkpointer_;
};

}  // namespace computenet::testing

#endif  // COMPUTENET_TESTS_SUPPORT_LEDGER_FIXTURE_H_
