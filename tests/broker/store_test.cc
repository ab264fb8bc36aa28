// Store: enrollments, jobs with idempotent insertion, queries, usage records
// and durability, on a real SQLite file.
#include "core/imports.h"
#include "jobs/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "computenet/common/files.h"
#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MustGenerateIdentity;
using testing::TempDir;

constexpr int64_t kNowMs = 1'700'000'000'000;

std::vector<std::string> Ids(const std::vector<v1::JobInfo>& jobs) {
  std::vector<std::string> out;
  for (const auto& job : jobs) out.push_back(job.job_id());
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    auto store = Store::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  static v1::JobInfo NewJob(const std::string& consumer,
                            const std::string& name = "job") {
    v1::JobInfo job;
    job.set_consumer(consumer);
    job.set_state(v1::JOB_STATE_QUEUED);
    job.set_created_ms(kNowMs);
    job.mutable_spec()->set_name(name);
    job.mutable_spec()->add_command("/bin/true");
    job.mutable_spec()->set_cards_per_node(1);
    job.mutable_spec()->set_max_duration_s(60);
    return job;
  }

  v1::JobInfo MustInsert(const v1::JobInfo& job, const std::string& key = "",
                         bool* duplicate_out = nullptr) {
    bool duplicate = true;
    auto inserted = store_->InsertJob("b", job, key, &duplicate);
    EXPECT_TRUE(inserted.ok()) << inserted.status().ToString();
    if (duplicate_out != nullptr) *duplicate_out = duplicate;
    return inserted.ok() ? *inserted : v1::JobInfo();
  }

  TempDir dir_;
  std::string path_ = dir_.File("broker.db");
  std::unique_ptr<Store> store_;
};

// --- enrollments -------------------------------------------------------------

TEST(RoleTest, NamesRoundTrip) {
  for (Role role :
       {Role::kProvider, Role::kConsumer, Role::kPeer, Role::kAdmin}) {
    auto parsed = ParseRole(RoleName(role));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, role);
  }
  EXPECT_EQ(RoleName(Role::kProvider), "provider");
  EXPECT_EQ(ParseRole("root").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRole("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRole("Provider").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, EnrollAndFindByKey) {
  Identity site = MustGenerateIdentity("site-a");
  ASSERT_TRUE(store_->Enroll(Role::kProvider, site.Public(), kNowMs).ok());
  auto found = store_->FindEnrollmentByKey(site.curve().public_z85);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  const Enrollment& enrollment = **found;
  EXPECT_EQ(enrollment.role, Role::kProvider);
  EXPECT_EQ(enrollment.name, "site-a");
  EXPECT_EQ(enrollment.curve_public, site.curve().public_z85);
  EXPECT_EQ(enrollment.ed25519_public, site.Public().ed25519_public);
  EXPECT_EQ(enrollment.enrolled_ms, kNowMs);
  EXPECT_FALSE(enrollment.revoked);

  auto by_name = store_->FindEnrollment(Role::kProvider, "site-a");
  ASSERT_TRUE(by_name.ok());
  ASSERT_TRUE(by_name->has_value());
  EXPECT_EQ((*by_name)->curve_public, site.curve().public_z85);
}

TEST_F(StoreTest, UnknownKeyIsNotFoundAsNullopt) {
  Identity stranger = MustGenerateIdentity("stranger");
  auto found = store_->FindEnrollmentByKey(stranger.curve().public_z85);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  auto by_name = store_->FindEnrollment(Role::kConsumer, "stranger");
  ASSERT_TRUE(by_name.ok());
  EXPECT_FALSE(by_name->has_value());
}

TEST_F(StoreTest, FindEnrollmentDistinguishesRoles) {
  Identity alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(store_->Enroll(Role::kConsumer, alice.Public(), kNowMs).ok());
  auto as_provider = store_->FindEnrollment(Role::kProvider, "alice");
  ASSERT_TRUE(as_provider.ok());
  EXPECT_FALSE(as_provider->has_value());
}

TEST_F(StoreTest, DuplicateEnrollIsAlreadyExists) {
  Identity alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(store_->Enroll(Role::kConsumer, alice.Public(), kNowMs).ok());
  // The same key again.
  EXPECT_EQ(store_->Enroll(Role::kConsumer, alice.Public(), kNowMs).code(),
            StatusCode::kAlreadyExists);
  // The same key under another role and name.
  PublicIdentity renamed = alice.Public();
  renamed.name = "alice2";
  EXPECT_EQ(store_->Enroll(Role::kAdmin, renamed, kNowMs).code(),
            StatusCode::kAlreadyExists);
  // The same (role, name) with another key.
  Identity impostor = MustGenerateIdentity("alice");
  Status status = store_->Enroll(Role::kConsumer, impostor.Public(), kNowMs);
  EXPECT_EQ(status.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(status.message(), HasSubstr("alice"));
  // The same name under another role is a different party.
  EXPECT_TRUE(store_->Enroll(Role::kProvider, impostor.Public(), kNowMs).ok());
}

TEST_F(StoreTest, RevokeFlagsButKeepsEnrollment) {
  Identity alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(store_->Enroll(Role::kConsumer, alice.Public(), kNowMs).ok());
  ASSERT_TRUE(store_->Revoke(Role::kConsumer, "alice").ok());
  auto found = store_->FindEnrollmentByKey(alice.curve().public_z85);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_TRUE((*found)->revoked);
  // A revoked key still cannot be enrolled again under another name.
  PublicIdentity renamed = alice.Public();
  renamed.name = "alice-again";
  EXPECT_EQ(store_->Enroll(Role::kConsumer, renamed, kNowMs).code(),
            StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, RotationKeepsThePartyAndRetiresItsOldKey) {
  Identity old_key = MustGenerateIdentity("alice");
  ASSERT_TRUE(
      store_->Enroll(Role::kConsumer, old_key.Public(), kNowMs, "lab-x").ok());
  Identity new_key = MustGenerateIdentity("alice");
  ASSERT_TRUE(
      store_->RotateKey(Role::kConsumer, new_key.Public(), kNowMs + 5, 60'000)
          .ok());
  // The current key is the new one; the party (organization) is unchanged.
  auto current = store_->FindEnrollment(Role::kConsumer, "alice");
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->curve_public, new_key.curve().public_z85);
  EXPECT_EQ((*current)->organization, "lab-x");
  EXPECT_FALSE((*current)->retire_at_ms.has_value());
  auto old_row = store_->FindEnrollmentByKey(old_key.curve().public_z85);
  ASSERT_TRUE(old_row.ok() && old_row->has_value());
  EXPECT_EQ((*old_row)->retire_at_ms, kNowMs + 5 + 60'000);
  EXPECT_FALSE((*old_row)->RetiredAt(kNowMs + 60'000));
  EXPECT_TRUE((*old_row)->RetiredAt(kNowMs + 5 + 60'000));
  auto retiring = store_->RetiringKeys();
  ASSERT_TRUE(retiring.ok());
  ASSERT_EQ(retiring->size(), 1u);
  EXPECT_EQ(retiring->begin()->first, old_key.curve().public_z85);
  EXPECT_EQ(retiring->begin()->second.user_id, "consumer/alice");
  // Both signing keys, the current first.
  auto signing = store_->SigningKeys(Role::kConsumer, "alice");
  ASSERT_TRUE(signing.ok());
  EXPECT_EQ(*signing,
            (std::vector<std::string>{new_key.Public().ed25519_public,
                                      old_key.Public().ed25519_public}));
  // Ending the overlap retires it now; the new key stays active.
  EXPECT_EQ(store_->EndOverlap(Role::kConsumer, "alice", kNowMs + 10).value(),
            1);
  old_row = store_->FindEnrollmentByKey(old_key.curve().public_z85);
  EXPECT_EQ((*old_row)->retire_at_ms, kNowMs + 10);
  EXPECT_EQ(store_->EndOverlap(Role::kConsumer, "alice", kNowMs + 20).value(),
            0);
  EXPECT_EQ(
      store_->EndOverlap(Role::kConsumer, "nobody", kNowMs).status().code(),
      StatusCode::kNotFound);
  // Still one party: a plain Enroll of the name is refused, revocation
  // covers both keys.
  Identity third = MustGenerateIdentity("alice");
  EXPECT_EQ(store_->Enroll(Role::kConsumer, third.Public(), kNowMs).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->Revoke(Role::kConsumer, "alice").ok());
  EXPECT_TRUE(
      (*store_->FindEnrollmentByKey(new_key.curve().public_z85))->revoked);
  EXPECT_TRUE(
      (*store_->FindEnrollmentByKey(old_key.curve().public_z85))->revoked);
}

TEST_F(StoreTest, AddKeyKeepsTheOtherKeysActive) {
  Identity west = MustGenerateIdentity("west");
  ASSERT_TRUE(store_->Enroll(Role::kPeer, west.Public(), kNowMs).ok());
  Identity next = MustGenerateIdentity("west");
  ASSERT_TRUE(store_->AddKey(Role::kPeer, next.Public(), kNowMs).ok());
  auto retiring = store_->RetiringKeys();
  ASSERT_TRUE(retiring.ok());
  EXPECT_TRUE(retiring->empty());
  auto all = store_->ListEnrollments();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST_F(StoreTest, RevokeUnknownIsNotFound) {
  EXPECT_EQ(store_->Revoke(Role::kConsumer, "nobody").code(),
            StatusCode::kNotFound);
  Identity alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(store_->Enroll(Role::kConsumer, alice.Public(), kNowMs).ok());
  EXPECT_EQ(store_->Revoke(Role::kProvider, "alice").code(),
            StatusCode::kNotFound);
}

TEST_F(StoreTest, ListEnrollmentsOrderedByRoleThenName) {
  ASSERT_TRUE(store_
                  ->Enroll(Role::kProvider,
                           MustGenerateIdentity("site-b").Public(), kNowMs)
                  .ok());
  ASSERT_TRUE(store_
                  ->Enroll(Role::kConsumer,
                           MustGenerateIdentity("bob").Public(), kNowMs)
                  .ok());
  ASSERT_TRUE(store_
                  ->Enroll(Role::kProvider,
                           MustGenerateIdentity("site-a").Public(), kNowMs)
                  .ok());
  ASSERT_TRUE(store_
                  ->Enroll(Role::kConsumer,
                           MustGenerateIdentity("alice").Public(), kNowMs)
                  .ok());
  ASSERT_TRUE(store_->Revoke(Role::kConsumer, "bob").ok());
  auto list = store_->ListEnrollments();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::vector<std::string> names;
  for (const auto& enrollment : *list) {
    names.push_back(std::string(RoleName(enrollment.role)) + "/" +
                    enrollment.name + (enrollment.revoked ? "!" : ""));
  }
  EXPECT_THAT(names, ElementsAre("consumer/alice", "consumer/bob!",
                                 "provider/site-a", "provider/site-b"));
}

// --- providers ---------------------------------------------------------------

TEST_F(StoreTest, ProviderRegistrationsPersist) {
  v1::RegisterProvider registration = testing::MakeRegistration(
      "zb-1", {testing::MakeNode("n1", "ib-1", "A800", 8)}, {{"A800", 1500}});
  ASSERT_TRUE(store_->SaveProviderRegistration("site-a", registration, kNowMs)
                  .ok());
  registration.set_site("zb-2");
  ASSERT_TRUE(store_->SaveProviderRegistration("site-a", registration, kNowMs)
                  .ok());
  ASSERT_TRUE(store_->SetProviderOnline("site-a", false, kNowMs).ok());
  ASSERT_TRUE(store_->MarkAllProvidersOffline().ok());
  Reopen();
  auto providers = store_->ListProviders();
  ASSERT_TRUE(providers.ok());
  ASSERT_EQ(providers->size(), 1u);
  EXPECT_EQ((*providers)[0].first, "site-a");
  EXPECT_EQ((*providers)[0].second.site(), "zb-2") << "the last registration";
  ASSERT_EQ((*providers)[0].second.nodes_size(), 1);
  EXPECT_EQ((*providers)[0].second.nodes(0).accelerators(0).count(), 8u);
}

// --- jobs ----------------------------------------------------------------------

TEST_F(StoreTest, InsertJobAssignsSequentialIds) {
  v1::JobInfo first = MustInsert(NewJob("alice"));
  v1::JobInfo second = MustInsert(NewJob("bob"));
  v1::JobInfo third = MustInsert(NewJob("alice"));
  EXPECT_EQ(first.job_id(), "b-1");
  EXPECT_EQ(second.job_id(), "b-2");
  EXPECT_EQ(third.job_id(), "b-3");
  EXPECT_EQ(first.consumer(), "alice");
  EXPECT_EQ(first.state(), v1::JOB_STATE_QUEUED);
}

TEST_F(StoreTest, InsertJobUsesTheBrokerId) {
  bool duplicate = true;
  auto job = store_->InsertJob("zhangbei", NewJob("alice"), "", &duplicate);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->job_id(), "zhangbei-1");
  EXPECT_FALSE(duplicate);
}

TEST_F(StoreTest, SameIdempotencyKeyReturnsFirstJob) {
  bool duplicate = true;
  v1::JobInfo first = MustInsert(NewJob("alice", "first"), "key-1", &duplicate);
  EXPECT_FALSE(duplicate);
  v1::JobInfo retry = MustInsert(NewJob("alice", "retry"), "key-1", &duplicate);
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(retry.job_id(), first.job_id());
  EXPECT_EQ(retry.spec().name(), "first") << "the first submission wins";
  // No second row was written.
  auto jobs = store_->ListJobs("", {}, 100);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 1u);
  // The next new job takes the next id.
  EXPECT_EQ(MustInsert(NewJob("alice"), "key-2", &duplicate).job_id(), "b-2");
  EXPECT_FALSE(duplicate);
}

TEST_F(StoreTest, DuplicateReturnsCurrentStateOfFirstJob) {
  v1::JobInfo first = MustInsert(NewJob("alice"), "key-1");
  first.set_state(v1::JOB_STATE_RUNNING);
  first.set_provider("site-a");
  ASSERT_TRUE(store_->UpdateJob(first, kNowMs + 1).ok());
  bool duplicate = false;
  v1::JobInfo retry = MustInsert(NewJob("alice"), "key-1", &duplicate);
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(retry.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(retry.provider(), "site-a");
}

TEST_F(StoreTest, IdempotencyKeysAreScopedPerConsumer) {
  bool duplicate = true;
  v1::JobInfo alices = MustInsert(NewJob("alice"), "shared-key", &duplicate);
  EXPECT_FALSE(duplicate);
  v1::JobInfo bobs = MustInsert(NewJob("bob"), "shared-key", &duplicate);
  EXPECT_FALSE(duplicate);
  EXPECT_NE(alices.job_id(), bobs.job_id());
  EXPECT_EQ(bobs.consumer(), "bob");
}

TEST_F(StoreTest, EmptyIdempotencyKeyNeverDeduplicates) {
  bool duplicate = true;
  v1::JobInfo first = MustInsert(NewJob("alice"), "", &duplicate);
  EXPECT_FALSE(duplicate);
  v1::JobInfo second = MustInsert(NewJob("alice"), "", &duplicate);
  EXPECT_FALSE(duplicate);
  EXPECT_NE(first.job_id(), second.job_id());
}

TEST_F(StoreTest, UpdateAndGetJob) {
  v1::JobInfo job = MustInsert(NewJob("alice"));
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  job.set_provider("site-a");
  job.set_exit_code(0);
  job.set_card_seconds(3600);
  job.set_charged(1500);
  auto* assignment = job.add_assignments();
  assignment->set_node("n1");
  assignment->add_device_indices(3);
  ASSERT_TRUE(store_->UpdateJob(job, kNowMs + 10).ok());
  auto loaded = store_->GetJob(job.job_id());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->SerializeAsString(), job.SerializeAsString());
}

TEST_F(StoreTest, UpdateUnknownJobIsNotFound) {
  v1::JobInfo job = NewJob("alice");
  job.set_job_id("b-99");
  EXPECT_EQ(store_->UpdateJob(job, kNowMs).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetJob("b-99").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, ListJobsFiltersByConsumerAndStateNewestFirst) {
  v1::JobInfo a1 = MustInsert(NewJob("alice"));  // b-1
  v1::JobInfo b1 = MustInsert(NewJob("bob"));    // b-2
  v1::JobInfo a2 = MustInsert(NewJob("alice"));  // b-3
  v1::JobInfo a3 = MustInsert(NewJob("alice"));  // b-4
  a2.set_state(v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(store_->UpdateJob(a2, kNowMs).ok());
  a3.set_state(v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(store_->UpdateJob(a3, kNowMs).ok());

  auto all = store_->ListJobs("", {}, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Ids(*all), ElementsAre("b-4", "b-3", "b-2", "b-1"));

  auto alices = store_->ListJobs("alice", {}, 100);
  ASSERT_TRUE(alices.ok());
  EXPECT_THAT(Ids(*alices), ElementsAre("b-4", "b-3", "b-1"));

  auto bobs = store_->ListJobs("bob", {}, 100);
  ASSERT_TRUE(bobs.ok());
  EXPECT_THAT(Ids(*bobs), ElementsAre("b-2"));

  auto alice_active = store_->ListJobs(
      "alice", {v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING}, 100);
  ASSERT_TRUE(alice_active.ok());
  EXPECT_THAT(Ids(*alice_active), ElementsAre("b-3", "b-1"));

  auto queued = store_->ListJobs("", {v1::JOB_STATE_QUEUED}, 100);
  ASSERT_TRUE(queued.ok());
  EXPECT_THAT(Ids(*queued), ElementsAre("b-2", "b-1"));

  auto none = store_->ListJobs("carol", {}, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto failed = store_->ListJobs("", {v1::JOB_STATE_FAILED}, 100);
  ASSERT_TRUE(failed.ok());
  EXPECT_TRUE(failed->empty());
}

TEST_F(StoreTest, ListJobsHonoursLimit) {
  for (int i = 0; i < 5; ++i) MustInsert(NewJob("alice"));
  auto two = store_->ListJobs("alice", {}, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_THAT(Ids(*two), ElementsAre("b-5", "b-4"));
  auto with_state = store_->ListJobs("", {v1::JOB_STATE_QUEUED}, 3);
  ASSERT_TRUE(with_state.ok());
  EXPECT_THAT(Ids(*with_state), ElementsAre("b-5", "b-4", "b-3"));
}

TEST_F(StoreTest, JobsInStatesOldestFirst) {
  v1::JobInfo j1 = MustInsert(NewJob("alice"));
  v1::JobInfo j2 = MustInsert(NewJob("bob"));
  v1::JobInfo j3 = MustInsert(NewJob("carol"));
  v1::JobInfo j4 = MustInsert(NewJob("alice"));
  j1.set_state(v1::JOB_STATE_PLACED);
  ASSERT_TRUE(store_->UpdateJob(j1, kNowMs).ok());
  j3.set_state(v1::JOB_STATE_CANCELLED);
  ASSERT_TRUE(store_->UpdateJob(j3, kNowMs).ok());

  auto pending = store_->JobsInStates(
      {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED});
  ASSERT_TRUE(pending.ok());
  EXPECT_THAT(Ids(*pending), ElementsAre("b-1", "b-2", "b-4"));
  auto cancelled = store_->JobsInStates({v1::JOB_STATE_CANCELLED});
  ASSERT_TRUE(cancelled.ok());
  EXPECT_THAT(Ids(*cancelled), ElementsAre("b-3"));
  auto running = store_->JobsInStates({v1::JOB_STATE_RUNNING});
  ASSERT_TRUE(running.ok());
  EXPECT_TRUE(running->empty());
}

// --- usage records -------------------------------------------------------------

TEST_F(StoreTest, UsageRecordsByProviderAndJob) {
  StoredUsageRecord record{"site-a", "r-1", "b-1", std::string("rec\0ord", 7),
                           std::string(64, '\x01')};
  ASSERT_TRUE(ledger::UsageRecords(store_->database()).Insert(record, kNowMs).ok());
  auto found = ledger::UsageRecords(store_->database()).Find("site-a", "r-1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->record, record.record) << "blobs keep embedded NULs";
  EXPECT_EQ((*found)->signature, record.signature);
  EXPECT_EQ((*found)->job_id, "b-1");

  auto by_job = ledger::UsageRecords(store_->database()).LatestForJob("b-1");
  ASSERT_TRUE(by_job.ok());
  ASSERT_TRUE(by_job->has_value());
  EXPECT_EQ((*by_job)->record_id, "r-1");

  auto other = ledger::UsageRecords(store_->database()).Find("site-b", "r-1");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  auto no_job = ledger::UsageRecords(store_->database()).LatestForJob("b-2");
  ASSERT_TRUE(no_job.ok());
  EXPECT_FALSE(no_job->has_value());
}

TEST_F(StoreTest, UsageRecordUniqueness) {
  StoredUsageRecord record{"site-a", "r-1", "b-1", "x", "s"};
  ASSERT_TRUE(ledger::UsageRecords(store_->database()).Insert(record, kNowMs).ok());
  // Same (provider, record id).
  StoredUsageRecord same_id{"site-a", "r-1", "b-2", "y", "t"};
  EXPECT_EQ(ledger::UsageRecords(store_->database()).Insert(same_id, kNowMs).code(),
            StatusCode::kAlreadyExists);
  // Schema 2: a job has one record per metering interval (the ledger
  // checks that they are contiguous and posts each once).
  StoredUsageRecord same_job{"site-a", "r-2", "b-1", "y", "t"};
  EXPECT_TRUE(ledger::UsageRecords(store_->database()).Insert(same_job, kNowMs + 1).ok());
  auto for_job = ledger::UsageRecords(store_->database()).ListForJob("b-1");
  ASSERT_TRUE(for_job.ok());
  ASSERT_EQ(for_job->size(), 2u);
  EXPECT_EQ((*for_job)[0].record_id, "r-1");
  EXPECT_EQ((*for_job)[1].record_id, "r-2");
  auto latest = ledger::UsageRecords(store_->database()).LatestForJob("b-1");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->record_id, "r-2");
  // The same record id from another provider is fine.
  StoredUsageRecord other{"site-b", "r-1", "b-3", "z", "u"};
  EXPECT_TRUE(ledger::UsageRecords(store_->database()).Insert(other, kNowMs).ok());
  auto all = ledger::UsageRecords(store_->database()).List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

TEST_F(StoreTest, UsageRecordsPerAttemptOfAJob) {
  // A job stopped by a reclaim and run again: records per attempt, several
  // per attempt when a long run sends interim records.
  StoredUsageRecord first{"site-a", "b-1:final", "b-1", "x", "s", 1};
  StoredUsageRecord interim{"site-a", "b-1:2:1", "b-1", "y", "t", 2};
  StoredUsageRecord second{"site-a", "b-1:2:final", "b-1", "z", "u", 2};
  ASSERT_TRUE(ledger::UsageRecords(store_->database()).Insert(first, kNowMs).ok());
  ASSERT_TRUE(ledger::UsageRecords(store_->database()).Insert(interim, kNowMs).ok());
  ASSERT_TRUE(ledger::UsageRecords(store_->database()).Insert(second, kNowMs + 1).ok());
  EXPECT_EQ(ledger::UsageRecords(store_->database()).Insert(second, kNowMs).code(),
            StatusCode::kAlreadyExists)
      << "a record id is stored once";
  auto by_attempt = ledger::UsageRecords(store_->database()).LatestForAttempt("b-1", 2);
  ASSERT_TRUE(by_attempt.ok() && by_attempt->has_value());
  EXPECT_EQ((*by_attempt)->record_id, "b-1:2:final");
  EXPECT_EQ((*by_attempt)->attempt, 2u);
  auto none = ledger::UsageRecords(store_->database()).LatestForAttempt("b-1", 3);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto latest = ledger::UsageRecords(store_->database()).LatestForJob("b-1");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->record_id, "b-1:2:final");
  auto all = ledger::UsageRecords(store_->database()).ListForJob("b-1");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].record_id, "b-1:final");
  EXPECT_EQ((*all)[1].attempt, 2u);
}

TEST_F(StoreTest, ConsumerOrganizationDefaultsToTheName) {
  Identity alice = MustGenerateIdentity("alice");
  Identity bob = MustGenerateIdentity("bob");
  ASSERT_TRUE(store_->Enroll(Role::kConsumer, alice.Public(), kNowMs).ok());
  ASSERT_TRUE(
      store_->Enroll(Role::kConsumer, bob.Public(), kNowMs, "lab-x").ok());
  auto found_alice = store_->FindEnrollment(Role::kConsumer, "alice");
  auto found_bob = store_->FindEnrollmentByKey(bob.Public().curve_public);
  ASSERT_TRUE(found_alice.ok() && found_alice->has_value());
  ASSERT_TRUE(found_bob.ok() && found_bob->has_value());
  EXPECT_EQ((*found_alice)->organization, "alice");
  EXPECT_EQ((*found_bob)->organization, "lab-x");
}

TEST_F(StoreTest, ProviderTrackRecordsAccumulateAndSurviveReopen) {
  ASSERT_TRUE(store_->RecordProviderEvent("site-a", ProviderEvent::kCompleted, kNowMs).ok());
  ASSERT_TRUE(store_->RecordProviderEvent("site-a", ProviderEvent::kCompleted, kNowMs).ok());
  ASSERT_TRUE(store_->RecordProviderEvent("site-a", ProviderEvent::kHeartbeatLoss, kNowMs).ok());
  ASSERT_TRUE(store_->RecordProviderEvent("site-b", ProviderEvent::kProviderFailure, kNowMs).ok());
  Reopen();
  auto stats = store_->ListProviderStats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ(stats->at("site-a").completed, 2u);
  EXPECT_EQ(stats->at("site-a").heartbeat_losses, 1u);
  EXPECT_EQ(stats->at("site-a").provider_failures, 0u);
  EXPECT_EQ(stats->at("site-b").provider_failures, 1u);
}

TEST_F(StoreTest, PriorityGrantsArePerOrganizationAndSurviveReopen) {
  EXPECT_EQ(store_->MaxPriority("lab-x").value(), v1::PRIORITY_CLASS_NORMAL);
  ASSERT_TRUE(store_->SetMaxPriority("lab-x", v1::PRIORITY_CLASS_HIGH, kNowMs).ok());
  ASSERT_TRUE(store_->SetMaxPriority("lab-y", v1::PRIORITY_CLASS_LOW, kNowMs).ok());
  Reopen();
  EXPECT_EQ(store_->MaxPriority("lab-x").value(), v1::PRIORITY_CLASS_HIGH);
  EXPECT_EQ(store_->MaxPriority("lab-y").value(), v1::PRIORITY_CLASS_LOW);
  // A new grant replaces the old one.
  ASSERT_TRUE(store_->SetMaxPriority("lab-x", v1::PRIORITY_CLASS_NORMAL, kNowMs).ok());
  EXPECT_EQ(store_->MaxPriority("lab-x").value(), v1::PRIORITY_CLASS_NORMAL);
  auto listed = store_->ListMaxPriorities();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].first, "lab-x");
  EXPECT_EQ((*listed)[1].second, v1::PRIORITY_CLASS_LOW);
  EXPECT_EQ(store_->SetMaxPriority("", v1::PRIORITY_CLASS_HIGH, kNowMs).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetMaxPriority("lab-z", v1::PRIORITY_CLASS_UNSPECIFIED, kNowMs)
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(StoreMigrationTest, VersionOneDatabaseIsMigratedKeepingItsData) {
  TempDir dir;
  {
    SQLite::Database db(dir.File("broker.db"),
                        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    // The v1 tables v2 changes, as v1 created them.
    db.exec(R"sql(CREATE TABLE enrollments(
      curve_public TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL,
      ed25519_public TEXT NOT NULL, enrolled_ms INTEGER NOT NULL,
      revoked INTEGER NOT NULL DEFAULT 0, UNIQUE(role, name)))sql");
    db.exec(R"sql(CREATE TABLE usage_records(
      provider TEXT NOT NULL, record_id TEXT NOT NULL,
      job_id TEXT NOT NULL UNIQUE, record BLOB NOT NULL,
      signature BLOB NOT NULL, received_ms INTEGER NOT NULL,
      PRIMARY KEY(provider, record_id)))sql");
    // The ledger tables of schema 1, which later versions alter.
    db.exec(R"sql(CREATE TABLE ledger_entries(
      sequence INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
      entry BLOB NOT NULL, hash BLOB NOT NULL))sql");
    db.exec(R"sql(CREATE TABLE ledger_accounts(
      name TEXT PRIMARY KEY, kind TEXT NOT NULL, balance INTEGER NOT NULL,
      created_ms INTEGER NOT NULL))sql");
    db.exec(R"sql(CREATE TABLE ledger_postings(
      sequence INTEGER NOT NULL, account TEXT NOT NULL,
      amount INTEGER NOT NULL, PRIMARY KEY(sequence, account)))sql");
    db.exec("INSERT INTO enrollments VALUES('key', 'consumer', 'carol', "
            "'ed', 1, 0)");
    db.exec("INSERT INTO usage_records VALUES('site-a', 'b-1:final', 'b-1', "
            "x'01', x'02', 5)");
    db.exec("PRAGMA user_version=1");
  }
  auto store = Store::Open(dir.File("broker.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto carol = (*store)->FindEnrollment(Role::kConsumer, "carol");
  ASSERT_TRUE(carol.ok() && carol->has_value());
  EXPECT_EQ((*carol)->organization, "carol");
  auto record = ledger::UsageRecords((*store)->database()).LatestForAttempt("b-1", 1);
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->record, std::string("\x01"));
  EXPECT_TRUE((*store)->ListProviderStats().ok());
  // v4: the fair-share table exists and is empty.
  auto usage = (*store)->LoadFairShare();
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_TRUE(usage->empty());
  // v5: no organization has a priority grant: NORMAL for all.
  EXPECT_EQ((*store)->MaxPriority("carol").value(), v1::PRIORITY_CLASS_NORMAL);
  // v6: one key per party so far, active.
  EXPECT_FALSE((*carol)->retire_at_ms.has_value());
  // v7: no sealed secrets yet.
  EXPECT_EQ((*store)->CountJobSecrets().value(), 0u);
  EXPECT_EQ((*store)->database().SchemaVersion("broker").value(), 7);
  EXPECT_EQ((*store)->database().SchemaVersion("ledger").value(), 3);
}

// --- transactions and durability --------------------------------------------------

TEST_F(StoreTest, RunInTransactionRollsBackOnError) {
  v1::JobInfo job = MustInsert(NewJob("alice"));
  Status inner;
  Status status = store_->database().RunInTransaction([&]() -> Status {
    inner = ledger::UsageRecords(store_->database()).Insert({"site-a", "r-1", job.job_id(), "x",
                                       "s"}, kNowMs);
    v1::JobInfo done = job;
    done.set_state(v1::JOB_STATE_SUCCEEDED);
    CN_RETURN_IF_ERROR(store_->UpdateJob(done, kNowMs));
    return FailedPreconditionError("changed my mind");
  });
  EXPECT_TRUE(inner.ok()) << inner.ToString();
  EXPECT_EQ(status, FailedPreconditionError("changed my mind"));
  auto records = ledger::UsageRecords(store_->database()).List();
  ASSERT_TRUE(records.ok());
  EXPECT_TRUE(records->empty());
  auto reloaded = store_->GetJob(job.job_id());
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->state(), v1::JOB_STATE_QUEUED);
}

TEST_F(StoreTest, RunInTransactionRollsBackOnThrow) {
  Status inserted;
  Status status = store_->database().RunInTransaction([&]() -> Status {
    inserted = ledger::UsageRecords(store_->database()).Insert({"p", "r", "j", "x", "s"}, 0);
    storage::RawConnectionForTesting(store_->database()).exec("INSERT INTO no_such_table VALUES(1)");  // throws
    return OkStatus();
  });
  EXPECT_TRUE(inserted.ok()) << inserted.ToString();
  EXPECT_EQ(status.code(), StatusCode::kInternal) << status.ToString();
  auto records = ledger::UsageRecords(store_->database()).List();
  ASSERT_TRUE(records.ok());
  EXPECT_TRUE(records->empty());
}

TEST_F(StoreTest, EverythingSurvivesReopen) {
  Identity site = MustGenerateIdentity("site-a");
  ASSERT_TRUE(store_->Enroll(Role::kProvider, site.Public(), kNowMs).ok());
  v1::JobInfo first = MustInsert(NewJob("alice"), "key-1");
  first.set_state(v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(store_->UpdateJob(first, kNowMs).ok());
  MustInsert(NewJob("bob"));
  ASSERT_TRUE(ledger::UsageRecords(store_->database()).Insert({"site-a", "r-1", first.job_id(), "rec",
                                       "sig"},
                                      kNowMs)
                  .ok());

  Reopen();

  auto enrollment = store_->FindEnrollmentByKey(site.curve().public_z85);
  ASSERT_TRUE(enrollment.ok());
  ASSERT_TRUE(enrollment->has_value());
  EXPECT_EQ((*enrollment)->name, "site-a");
  auto job = store_->GetJob("b-1");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  // Idempotency survives too, and ids keep counting.
  bool duplicate = false;
  EXPECT_EQ(MustInsert(NewJob("alice"), "key-1", &duplicate).job_id(), "b-1");
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(MustInsert(NewJob("alice"), "key-3", &duplicate).job_id(), "b-3");
  EXPECT_FALSE(duplicate);
  auto record = ledger::UsageRecords(store_->database()).LatestForJob("b-1");
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(record->has_value());
  EXPECT_EQ((*record)->signature, "sig");
}

TEST_F(StoreTest, TwoConnectionsSeeEachOthersCommits) {
  auto second = Store::Open(path_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  MustInsert(NewJob("alice"));
  auto seen = (*second)->GetJob("b-1");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->consumer(), "alice");
}

TEST_F(StoreTest, OpenReadOnlyReadsButCannotWrite) {
  MustInsert(NewJob("alice"));
  auto reader = Store::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto job = (*reader)->GetJob("b-1");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->consumer(), "alice");
  bool duplicate = false;
  auto insert = (*reader)->InsertJob("b", NewJob("bob"), "", &duplicate);
  EXPECT_FALSE(insert.ok());
}

TEST(StoreOpenTest, OpenReadOnlyOnMissingFileFails) {
  TempDir dir;
  auto store = Store::OpenReadOnly(dir.File("never-created.db"));
  EXPECT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
}

TEST(StoreOpenTest, OpenReadOnlyOnEmptyFileFails) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("empty.db"), "", 0644).ok());
  auto store = Store::OpenReadOnly(dir.File("empty.db"));
  EXPECT_FALSE(store.ok());
}

TEST(StoreOpenTest, OpenInMissingDirectoryIsUnavailable) {
  TempDir dir;
  auto store = Store::Open(dir.File("no/such/dir/broker.db"));
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
}

TEST(StoreOpenTest, NewerSchemaIsDataLoss) {
  TempDir dir;
  {
    auto store = Store::Open(dir.File("broker.db"));
    ASSERT_TRUE(store.ok());
    // A newer binary moved the broker's tables past what this one knows.
    storage::RawConnectionForTesting((*store)->database())
        .exec("UPDATE schema_versions SET version=99 WHERE owner='broker'");
  }
  auto store = Store::Open(dir.File("broker.db"));
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss);
  auto reader = Store::OpenReadOnly(dir.File("broker.db"));
  EXPECT_FALSE(reader.ok());
}

}  // namespace
}  // namespace computenet::broker
