// Matching over real CURVE sockets and real processes: reclaimable spare
// capacity (notice, stop after grace, billed, requeued, rerun), priority
// preemption (the same for a HIGH job's victim, HIGH by grant only), price
// updates that apply to new placements only, fractional jobs sharing a card,
// the never-fits rejection at submit, and organizations from enrollment.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "computenet/ledger/ledger.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

v1::JobInfo MustGet(consumer::Client& client, const std::string& job_id) {
  auto job = client.GetJob(job_id);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  return job.ok() ? *job : v1::JobInfo();
}

v1::UpdateOffer Offer(const std::string& node, v1::CapacityOffer offer,
                      uint32_t grace_ms = 0) {
  v1::UpdateOffer update;
  auto* change = update.add_nodes();
  change->set_node(node);
  change->set_offer(offer);
  update.set_reclaim_grace_ms(grace_ms);
  return update;
}

TEST(MatchingTest, ReclaimedSpareCapacityStopsBillsAndRequeuesThePreemptibleJob) {
  Federation federation;
  auto executor_clock = std::make_shared<FakeClock>();
  v1::RegisterProvider site = MakeRegistration(
      "site-a", {MakeNode("n1", "ib-1", "A800", 2)}, {{"A800", 1500}});
  site.mutable_nodes(0)->set_offer(v1::CAPACITY_OFFER_SPARE);
  site.mutable_prices(0)->set_spare_per_card_hour(600);
  auto& agent = federation.AddProvider("site-a", site, executor_clock);
  auto alice = federation.AddConsumer("alice");

  // A job that may not be preempted never goes to spare capacity.
  auto firm = alice->Submit(ShellJob("true", 2));
  ASSERT_TRUE(firm.ok());
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, firm->job_id()).reason().find("not preemptible") !=
           std::string::npos;
  }));
  ASSERT_TRUE(alice->Cancel(firm->job_id()).ok());

  // The preemptible job notes every run and the notice (SIGTERM) it gets.
  const std::string dir = federation.dir();
  v1::JobSpec spec = ShellJob(
      "trap 'echo notice >> " + dir + "/log; exit 143' TERM; "
      "echo run-$COMPUTENET_DEVICES >> " + dir + "/log; "
      "while [ ! -f " + dir + "/flag ]; do sleep 0.02; done",
      2);
  spec.set_preemptible(true);
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok());
  const std::string job_id = submitted->job_id();
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, job_id).state() == v1::JOB_STATE_RUNNING &&
           ReadAll(dir + "/log").find("run-") != std::string::npos;
  }));
  v1::JobInfo running = MustGet(*alice, job_id);
  EXPECT_TRUE(running.spare());
  EXPECT_EQ(running.price_per_card_hour(), 600) << "the spare price";
  EXPECT_EQ(running.attempts(), 1u);

  // 100 s in, the provider reclaims the node with a 5 s grace.
  executor_clock->AdvanceMs(100'000);
  ASSERT_TRUE(
      agent.UpdateOffer(Offer("n1", v1::CAPACITY_OFFER_WITHDRAWN, 5000)).ok());
  ASSERT_TRUE(WaitUntil([&] {
    v1::JobInfo job = MustGet(*alice, job_id);
    return job.state() == v1::JOB_STATE_QUEUED && job.preemptions() == 1;
  }));
  v1::JobInfo requeued = MustGet(*alice, job_id);
  EXPECT_THAT(ReadAll(dir + "/log"), HasSubstr("notice"));
  // Billed for what it used: 2 cards x 100 s at 600 per card-hour.
  EXPECT_EQ(requeued.card_seconds(), 200u);
  EXPECT_EQ(requeued.charged(), (200 * 600 + 1800) / 3600);
  EXPECT_TRUE(requeued.provider().empty());
  EXPECT_FALSE(requeued.preemption_requested());
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, job_id).reason().find("no online provider") !=
           std::string::npos;
  })) << MustGet(*alice, job_id).reason();

  // The provider offers the node as spare again: the job runs again, and
  // this time to its end.
  ASSERT_TRUE(agent.UpdateOffer(Offer("n1", v1::CAPACITY_OFFER_SPARE)).ok());
  ASSERT_TRUE(WaitUntil([&] {
    v1::JobInfo job = MustGet(*alice, job_id);
    return job.state() == v1::JOB_STATE_RUNNING && job.attempts() == 2;
  }));
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = ReadAll(dir + "/log");
    return log.find("run-") != log.rfind("run-");
  }));
  executor_clock->AdvanceMs(50'000);
  { std::ofstream(dir + "/flag") << "done"; }
  auto finished = alice->Wait(job_id, 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->preemptions(), 1u);
  // Both runs are billed, each by its own signed record.
  EXPECT_EQ(finished->card_seconds(), 300u);
  EXPECT_EQ(finished->charged(),
            (200 * 600 + 1800) / 3600 + (100 * 600 + 1800) / 3600);
  broker::Store& store = federation.OpenStore();
  auto first = ledger::UsageRecords(store.database()).LatestForAttempt(job_id, 1);
  auto second = ledger::UsageRecords(store.database()).LatestForAttempt(job_id, 2);
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*first)->record_id, job_id + ":final");
  EXPECT_EQ((*second)->record_id, job_id + ":2:final");
  auto audit = ledger::VerifyLedger(store.database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->usage_records, 2u);
  EXPECT_EQ(audit->total_charged, finished->charged());
}

TEST(MatchingTest, HighPriorityJobPreemptsPreemptibleWorkWhichIsBilledAndRequeued) {
  broker::BrokerOptions options;
  options.preemption_grace_ms = 5000;
  Federation federation(options);
  auto executor_clock = std::make_shared<FakeClock>();
  federation.AddProvider(
      "site-a",
      MakeRegistration("site-a", {MakeNode("n1", "ib-1", "A800", 2)}, {{"A800", 1200}}),
      executor_clock);
  auto alice = federation.AddConsumer("alice");
  auto bob = federation.AddConsumer("bob");
  const std::string dir = federation.dir();

  // Alice's LOW preemptible job takes both cards; it notes every run and
  // the notice (SIGTERM) it gets.
  v1::JobSpec spec = ShellJob(
      "trap 'echo notice >> " + dir + "/log; exit 143' TERM; "
      "echo run >> " + dir + "/log; "
      "while [ ! -f " + dir + "/flag ]; do sleep 0.02; done",
      2);
  spec.set_preemptible(true);
  spec.set_priority(v1::PRIORITY_CLASS_LOW);
  auto low = alice->Submit(spec);
  ASSERT_TRUE(low.ok()) << low.status().ToString();
  const std::string low_id = low->job_id();
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, low_id).state() == v1::JOB_STATE_RUNNING &&
           ReadAll(dir + "/log").find("run") != std::string::npos;
  }));
  executor_clock->AdvanceMs(100'000);

  // HIGH needs the operator's grant to the organization.
  v1::JobSpec urgent = ShellJob(
      "echo urgent >> " + dir + "/log; "
      "while [ ! -f " + dir + "/urgent-flag ]; do sleep 0.02; done",
      2);
  urgent.set_priority(v1::PRIORITY_CLASS_HIGH);
  auto refused = bob->Submit(urgent);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("computenet-broker priority"));
  ASSERT_TRUE(federation.OpenStore()
                  .SetMaxPriority("bob", v1::PRIORITY_CLASS_HIGH, 1)
                  .ok());
  auto high = bob->Submit(urgent);
  ASSERT_TRUE(high.ok()) << high.status().ToString();
  const std::string high_id = high->job_id();

  // The LOW job gets its notice, stops, is billed for what it ran and
  // waits in the queue while the HIGH job runs on its cards.
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*bob, high_id).state() == v1::JOB_STATE_RUNNING;
  })) << MustGet(*bob, high_id).reason();
  v1::JobInfo requeued = MustGet(*alice, low_id);
  EXPECT_EQ(requeued.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(requeued.preemptions(), 1u);
  EXPECT_GT(requeued.last_preempted_ms(), 0);
  EXPECT_FALSE(requeued.preemption_requested());
  EXPECT_THAT(ReadAll(dir + "/log"), HasSubstr("notice"));
  // 2 cards x 100 s at 1200 per card-hour.
  EXPECT_EQ(requeued.card_seconds(), 200u);
  EXPECT_EQ(requeued.charged(), (200 * 1200 + 1800) / 3600);
  EXPECT_EQ(MustGet(*bob, high_id).assignments(0).node(), "n1");

  // The HIGH job ends; the LOW job runs again (its preemption spent no
  // attempt's worth of failure) and finishes.
  { std::ofstream(dir + "/urgent-flag") << "done"; }
  auto urgent_done = bob->Wait(high_id, 20'000);
  ASSERT_TRUE(urgent_done.ok()) << urgent_done.status().ToString();
  EXPECT_EQ(urgent_done->state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(WaitUntil([&] {
    v1::JobInfo job = MustGet(*alice, low_id);
    return job.state() == v1::JOB_STATE_RUNNING && job.attempts() == 2;
  }));
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = ReadAll(dir + "/log");
    return log.find("run") != log.rfind("run");
  }));
  executor_clock->AdvanceMs(50'000);
  { std::ofstream(dir + "/flag") << "done"; }
  auto finished = alice->Wait(low_id, 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->preemptions(), 1u);
  EXPECT_EQ(finished->card_seconds(), 300u);
  auto audit = ledger::VerifyLedger(federation.OpenStore().database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->usage_records, 3u);
}

TEST(MatchingTest, PriceUpdatesApplyToNewPlacementsOnly) {
  Federation federation;
  auto& agent = federation.AddProvider(
      "site-a", MakeRegistration("site-a", {MakeNode("n1", "ib-1", "A800", 2)},
                                 {{"A800", 1000}}));
  auto alice = federation.AddConsumer("alice");
  const std::string flag = federation.dir() + "/flag";
  const std::string wait = "while [ ! -f " + flag + " ]; do sleep 0.02; done";
  auto old_job = alice->Submit(ShellJob(wait, 1));
  ASSERT_TRUE(old_job.ok());
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, old_job->job_id()).state() == v1::JOB_STATE_RUNNING;
  }));

  v1::UpdateOffer update;
  auto* price = update.add_prices();
  price->set_model("A800");
  price->set_per_card_hour(2000);
  ASSERT_TRUE(agent.UpdateOffer(update).ok());
  ASSERT_TRUE(WaitUntil([&] {
    auto providers = federation.OpenStore().ListProviders();
    return providers.ok() && providers->size() == 1 &&
           (*providers)[0].second.prices(0).per_card_hour() == 2000;
  }));
  auto new_job = alice->Submit(ShellJob(wait, 1));
  ASSERT_TRUE(new_job.ok());
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, new_job->job_id()).state() == v1::JOB_STATE_RUNNING;
  }));
  EXPECT_EQ(MustGet(*alice, old_job->job_id()).price_per_card_hour(), 1000);
  EXPECT_EQ(MustGet(*alice, new_job->job_id()).price_per_card_hour(), 2000);

  // An update naming a node the site does not have is refused locally.
  EXPECT_EQ(agent.UpdateOffer(Offer("nope", v1::CAPACITY_OFFER_SPARE)).code(),
            StatusCode::kInvalidArgument);
  { std::ofstream(flag) << "done"; }
  EXPECT_TRUE(alice->Wait(old_job->job_id(), 20'000).ok());
  EXPECT_TRUE(alice->Wait(new_job->job_id(), 20'000).ok());
}

TEST(MatchingTest, FractionalJobsShareOneCard) {
  Federation federation;
  federation.AddProvider(
      "site-a", MakeRegistration("site-a", {MakeNode("n1", "ib-1", "T4", 1)},
                                 {{"T4", 400}}));
  auto alice = federation.AddConsumer("alice");
  const std::string dir = federation.dir();
  auto share = [&](const std::string& name) {
    v1::JobSpec spec = ShellJob(
        "echo $CUDA_VISIBLE_DEVICES/$COMPUTENET_GPU_MILLI > " + dir + "/" +
            name + "; while [ ! -f " + dir + "/flag ]; do sleep 0.02; done",
        1);
    spec.set_gpu_milli(500);
    auto submitted = alice->Submit(spec);
    EXPECT_TRUE(submitted.ok()) << submitted.status().ToString();
    return submitted.ok() ? submitted->job_id() : "";
  };
  const std::string a = share("a");
  const std::string b = share("b");
  const std::string c = share("c");
  // Two halves run side by side on the one card; the third waits.
  ASSERT_TRUE(WaitUntil([&] {
    return MustGet(*alice, a).state() == v1::JOB_STATE_RUNNING &&
           MustGet(*alice, b).state() == v1::JOB_STATE_RUNNING &&
           !ReadAll(dir + "/a").empty() && !ReadAll(dir + "/b").empty();
  }));
  EXPECT_EQ(ReadAll(dir + "/a"), "0/500\n");
  EXPECT_EQ(ReadAll(dir + "/b"), "0/500\n");
  v1::JobInfo third = MustGet(*alice, c);
  EXPECT_EQ(third.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(MustGet(*alice, a).price_per_card_hour(), 200) << "half of 400";
  { std::ofstream(dir + "/flag") << "done"; }
  for (const auto& id : {a, b, c}) {
    auto finished = alice->Wait(id, 20'000);
    ASSERT_TRUE(finished.ok()) << finished.status().ToString();
    EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  }
}

TEST(MatchingTest, JobThatCanNeverFitIsRefusedAtSubmit) {
  Federation federation;
  federation.AddProvider(
      "site-a", MakeRegistration("site-a",
                                 {MakeNode("n1", "ib-1", "A800", 8),
                                  MakeNode("n2", "ib-2", "A800", 8)},
                                 {{"A800", 1500}}));
  auto alice = federation.AddConsumer("alice");
  v1::JobSpec gang = ShellJob("true", 8);
  gang.set_nodes(2);  // 16 cards exist, but no fabric has two nodes
  auto refused = alice->Submit(gang);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("can never fit"));
  v1::JobSpec bad_region = ShellJob("true", 1);
  bad_region.add_allowed_regions("west");
  EXPECT_EQ(alice->Submit(bad_region).status().code(),
            StatusCode::kFailedPrecondition);
  // Bad request forms are INVALID_ARGUMENT, with the field named.
  v1::JobSpec both = ShellJob("true", 0);
  both.set_gpu_milli(500);
  both.set_a100_equivalents_milli(1000);
  auto invalid = alice->Submit(both);
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(invalid.status().message(), HasSubstr("gpu_milli"));
  auto jobs = alice->ListJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty()) << "nothing was queued";
}

TEST(MatchingTest, JobsCarryTheirOrganizationAndComputePlaced) {
  Federation federation;
  federation.AddProvider(
      "site-a", MakeRegistration("site-a", {MakeNode("n1", "ib-1", "H800", 8)},
                                 {{"H800", 3000}}));
  Identity bob = MustGenerateIdentity("bob");
  ASSERT_TRUE(federation.OpenStore()
                  .Enroll(broker::Role::kConsumer, bob.Public(), 0, "lab-x")
                  .ok());
  federation.TopUp("bob", kTestConsumerFunds, "fund-bob");
  auto client = federation.ConnectClient(bob);
  v1::JobSpec spec = ShellJob("true", 0);
  spec.set_a100_equivalents_milli(4000);  // 2 H800 = 6.34 A100-equivalents
  auto submitted = client->Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  auto finished = client->Wait(submitted->job_id(), 20'000);
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->organization(), "lab-x");
  EXPECT_EQ(finished->assignments(0).device_indices_size(), 2);
  EXPECT_EQ(finished->a100_equivalents_milli(), 6342u);
  EXPECT_THAT(finished->compute_source(), HasSubstr("nominal: NVIDIA H800"));
}

}  // namespace
}  // namespace computenet::testing
