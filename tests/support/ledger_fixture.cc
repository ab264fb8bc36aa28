#include "ledger_fixture.h"

namespace computenet::testing {

LedgerFixture::LedgerFixture(uint32_t fee_bps)
    : path_(dir_.File("broker.db")),
      broker_(MustGenerateIdentity("hub")),
      site_a_(MustGenerateIdentity("site-a")),
      site_b_(MustGenerateIdentity("site-b")) {
  // These tests are about the ledger's rules, not about surviving power
  // loss: skip the fsync of every commit to keep the suite fast.
  auto store = broker::Store::Open(
      path_, storage::DatabaseOptions{storage::Durability::kOff});
  if (!store.ok()) {
    ADD_FAILURE() << store.status().ToString();
    std::abort();
  }
  store_ = std::move(*store);
  EXPECT_TRUE(ledger::BindLedgerToBroker(store_->database(), "hub",
                                         broker_.signing_key().verifying_key().hex())
                  .ok());
  directory_ = ledger::BrokerFileDirectory(store_->database());
  ledger_ = std::make_unique<ledger::Ledger>(
      store_->database(), *directory_, ledger::LedgerOptions{"hub", fee_bps});
  checkpointer_ = std::make_unique<ledger::Checkpointer>(
      store_->database(), "hub", broker_.signing_key(), ledger::CheckpointPolicy{0, 0});
  EXPECT_TRUE(store_->Enroll(broker::Role::kProvider, site_a_.Public(), 0).ok());
  EXPECT_TRUE(store_->Enroll(broker::Role::kProvider, site_b_.Public(), 0).ok());
  for (const char* consumer : {"alice", "bob"}) {
    EXPECT_TRUE(store_
                    ->Enroll(broker::Role::kConsumer,
                             MustGenerateIdentity(consumer).Public(), 0)
                    .ok());
  }
}

v1::JobInfo LedgerFixture::Job(const std::string& job_id,
                               const std::string& consumer,
                               const std::string& provider, uint32_t cards,
                               uint32_t max_duration_s, int64_t price,
                               uint32_t attempt) {
  v1::JobInfo job;
  job.set_job_id(job_id);
  job.set_consumer(consumer);
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_provider(provider);
  job.set_model("A800");
  job.mutable_spec()->set_cards_per_node(cards);
  job.mutable_spec()->set_nodes(1);
  job.mutable_spec()->set_max_duration_s(max_duration_s);
  auto* assignment = job.add_assignments();
  assignment->set_node("n1");
  for (uint32_t i = 0; i < cards; ++i) assignment->add_device_indices(i);
  job.set_price_per_card_hour(price);
  job.set_currency("CNY");
  job.set_attempts(attempt);
  const std::string blob = job.SerializeAsString();
  SQLite::Statement insert(storage::RawConnectionForTesting(store_->database()),
                           "INSERT OR REPLACE INTO jobs(job_id, consumer, "
                           "state, provider, info, updated_ms) "
                           "VALUES(?, ?, 3, ?, ?, 0)");
  insert.bind(1, job_id);
  insert.bind(2, consumer);
  insert.bind(3, provider);
  insert.bind(4, blob.data(), static_cast<int>(blob.size()));
  insert.exec();
  return job;
}

ledger::PostedEntry LedgerFixture::MustTopUp(const std::string& consumer,
                                             int64_t amount,
                                             const std::string& key) {
  auto posted = ledger_->TopUp(consumer, amount, key, "", Now());
  EXPECT_TRUE(posted.ok()) << posted.status().ToString();
  return posted.ok() ? *posted : ledger::PostedEntry();
}

StatusOr<ledger::PostedEntry> LedgerFixture::Hold(const v1::JobInfo& job) {
  ledger::HoldRequest request;
  request.job_id = job.job_id();
  request.consumer = job.consumer();
  request.provider = job.provider();
  request.currency = job.currency();
  request.attempt = job.attempts();
  request.cards = job.spec().cards_per_node();
  request.max_duration_s = job.spec().max_duration_s();
  request.price_per_card_hour = job.price_per_card_hour();
  return ledger_->PlaceHold(request, Now());
}

ledger::PostedEntry LedgerFixture::MustHold(const v1::JobInfo& job) {
  auto posted = Hold(job);
  EXPECT_TRUE(posted.ok()) << posted.status().ToString();
  return posted.ok() ? *posted : ledger::PostedEntry();
}

v1::UsageReport LedgerFixture::Sign(const v1::JobInfo& job,
                                    const std::string& record_id,
                                    int64_t start_ms, int64_t end_ms,
                                    bool closes_job,
                                    const Identity* signer) const {
  const Identity& provider =
      signer != nullptr ? *signer
                        : (job.provider() == "site-b" ? site_b_ : site_a_);
  v1::UsageRecord record;
  record.set_record_id(record_id);
  record.set_job_id(job.job_id());
  record.set_provider(job.provider());
  record.set_model(job.model());
  record.set_cards(job.spec().cards_per_node());
  record.set_start_ms(start_ms);
  record.set_end_ms(end_ms);
  record.set_card_seconds(
      CardSecondsFor(job.spec().cards_per_node(), start_ms, end_ms));
  record.set_closes_job(closes_job);
  auto report = SignUsageRecord(provider.signing_key(), record);
  EXPECT_TRUE(report.ok());
  return report.ok() ? *report : v1::UsageReport();
}

StatusOr<ledger::PostedUsage> LedgerFixture::Post(
    const v1::JobInfo& job, const v1::UsageReport& report) {
  v1::UsageRecord record;
  EXPECT_TRUE(record.ParseFromString(report.record()));
  return ledger_->PostUsage(
      job,
      ledger::StoredUsageRecord{record.provider(), record.record_id(),
                                record.job_id(), report.record(),
                                report.signature()},
      record, Now());
}

ledger::PostedUsage LedgerFixture::MustPost(const v1::JobInfo& job,
                                            const std::string& record_id,
                                            int64_t start_ms, int64_t end_ms,
                                            bool closes_job) {
  auto posted =
      Post(job, Sign(job, record_id, start_ms, end_ms, closes_job));
  EXPECT_TRUE(posted.ok()) << posted.status().ToString();
  return posted.ok() ? *posted : ledger::PostedUsage();
}

v1::SignedCheckpoint LedgerFixture::MustCheckpoint() {
  auto checkpoint = checkpointer_->CheckpointNow(Now());
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
  EXPECT_TRUE(checkpoint.ok() && checkpoint->has_value());
  return checkpoint.ok() && checkpoint->has_value() ? **checkpoint
                                                    : v1::SignedCheckpoint();
}

int64_t LedgerFixture::CountRows(const std::string& table) {
  return storage::RawConnectionForTesting(store_->database()).execAndGet("SELECT COUNT(*) FROM " + table).getInt64();
}

ledger::AccountBalance LedgerFixture::MustAccount(const std::string& account) {
  auto balance = ledger_->Account(account);
  EXPECT_TRUE(balance.ok()) << balance.status().ToString();
  return balance.ok() ? *balance : ledger::AccountBalance();
}

}  // namespace computenet::testing
