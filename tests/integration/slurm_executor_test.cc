// The SlurmExecutor against a real Slurm (munged + slurmctld + slurmd from
// Debian's packages, started on demand by tests/slurm/slurm-local.sh):
// submit, run, complete with Slurm's own times, fail, exceed the max
// duration, cancel running and pending jobs, survive an unreachable
// controller, re-adopt jobs after an agent restart, and read capacity from
// Slurm. Skipped only if the script exits 77 (Slurm cannot run here).
#include "computenet/provider/slurm_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "computenet/provider/slurm_inventory.h"
#include "local_slurm.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using provider::ExecutionEvent;
using provider::ExecutionRequest;
using provider::SlurmExecutor;
using provider::SlurmExecutorOptions;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SlurmExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    slurm_ = StartLocalSlurm();
    if (slurm_.outcome == LocalSlurm::Outcome::kSkip) {
      GTEST_SKIP() << slurm_.message;
    }
    ASSERT_EQ(slurm_.outcome, LocalSlurm::Outcome::kRunning) << slurm_.message;
    owner_ = UniqueSlurmOwner("exec");
  }

  void TearDown() override {
    if (slurm_.outcome == LocalSlurm::Outcome::kRunning) {
      CancelOwnedSlurmJobs(slurm_, owner_);
    }
  }

  SlurmExecutorOptions Options() const {
    SlurmExecutorOptions options;
    options.owner = owner_;
    options.work_dir = dir_.File("work");
    options.commands = slurm_.Commands();
    options.jobcomp_file = slurm_.jobcomp_file;
    options.poll_interval_ms = 100;
    options.timeout_grace_ms = 1000;
    return options;
  }

  std::unique_ptr<SlurmExecutor> MakeExecutor(SlurmExecutorOptions options) {
    auto executor = SlurmExecutor::Create(std::move(options));
    EXPECT_TRUE(executor.ok()) << executor.status().ToString();
    return executor.ok() ? std::move(*executor) : nullptr;
  }

  // A placement of `cards` cards on the Slurm node, running /bin/sh -c.
  ExecutionRequest Request(const std::string& job_id, const std::string& shell,
                           uint32_t cards = 1, uint32_t max_duration_s = 600) {
    ExecutionRequest request;
    request.job_id = job_id;
    request.consumer = "alice";
    request.model = "A800";
    request.spec = ShellJob(shell, cards, {"A800"});
    request.spec.set_max_duration_s(max_duration_s);
    v1::NodeAssignment assignment;
    assignment.set_node("localhost");
    for (uint32_t i = 0; i < cards; ++i) assignment.add_device_indices(i);
    request.assignments.push_back(assignment);
    return request;
  }

  // Polls until a kFinished event for job_id arrives (or 30 s pass);
  // collects every event of that job on the way.
  std::vector<ExecutionEvent> RunUntilFinished(SlurmExecutor& executor,
                                               const std::string& job_id) {
    std::vector<ExecutionEvent> events;
    WaitUntil(
        [&] {
          for (auto& event : executor.Poll()) {
            if (event.job_id == job_id) events.push_back(std::move(event));
          }
          return !events.empty() &&
                 events.back().kind == ExecutionEvent::Kind::kFinished;
        },
        std::chrono::seconds(30));
    return events;
  }

  // Polls until job_id is reported started; returns the event.
  std::optional<ExecutionEvent> WaitStarted(SlurmExecutor& executor,
                                            const std::string& job_id) {
    std::optional<ExecutionEvent> started;
    WaitUntil(
        [&] {
          for (auto& event : executor.Poll()) {
            if (event.job_id == job_id &&
                event.kind == ExecutionEvent::Kind::kStarted) {
              started = event;
            }
          }
          return started.has_value();
        },
        std::chrono::seconds(30));
    return started;
  }

  // Waits until the file exists (the job wrote it).
  bool WaitForFile(const std::string& path) {
    return WaitUntil([&] { return std::filesystem::exists(path); },
                     std::chrono::seconds(30));
  }

  LocalSlurm slurm_;
  std::string owner_;
  TempDir dir_;
};

TEST_F(SlurmExecutorTest, JobRunsCompletesAndIsMeteredFromSlurmsTimes) {
  auto executor = MakeExecutor(Options());
  ASSERT_NE(executor, nullptr);
  const std::string out = dir_.File("env.txt");
  ExecutionRequest request = Request(
      "job-ok",
      "echo \"$COMPUTENET_JOB_ID|$CUDA_VISIBLE_DEVICES|$COMPUTENET_DEVICES|"
      "$COMPUTENET_MODEL|$COMPUTENET_NODE|$COMPUTENET_NUM_NODES|$CN_QUOTED\" > " +
          out + "; sleep 1.2",
      2);
  (*request.spec.mutable_env())["CN_QUOTED"] = "it's \"quoted\" $HOME `x`";
  ASSERT_TRUE(executor->Start(request).ok());
  EXPECT_EQ(executor->Start(request).code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(executor->ActiveJobs(), ::testing::ElementsAre("job-ok"));

  std::string slurm_id;
  ASSERT_TRUE(WaitUntil([&] {
    slurm_id = executor->SlurmJobId("job-ok");
    return !slurm_id.empty();
  }));
  auto events = RunUntilFinished(*executor, "job-ok");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ExecutionEvent::Kind::kStarted);
  const ExecutionEvent& finished = events[1];
  ASSERT_EQ(finished.kind, ExecutionEvent::Kind::kFinished);
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_SUCCEEDED) << finished.message;
  EXPECT_EQ(finished.exit_code, 0);
  EXPECT_EQ(finished.cards, 2u);
  EXPECT_EQ(finished.model, "A800");
  EXPECT_TRUE(executor->ActiveJobs().empty());

  // Metering is Slurm's own StartTime/EndTime, to the second.
  provider::SlurmRecord job = ShowSlurmJob(slurm_, slurm_id);
  ASSERT_EQ(job.Get("JobState"), "COMPLETED");
  EXPECT_EQ(job.Get("JobName"), "cn-job-ok");
  EXPECT_EQ(finished.start_ms, *provider::ParseSlurmTime(job.Get("StartTime")) * 1000);
  EXPECT_EQ(finished.end_ms, *provider::ParseSlurmTime(job.Get("EndTime")) * 1000);
  EXPECT_EQ(events[0].start_ms, finished.start_ms);
  EXPECT_GE(finished.end_ms - finished.start_ms, 1000);

  // The command saw its job id, Slurm's two cards, and the consumer's
  // environment byte for byte.
  // (std::regex is avoided: GCC 12 warns inside it under the sanitizers.)
  std::string line = ReadFile(out);
  std::vector<std::string> fields;
  std::stringstream split(line.substr(0, line.find('\n')));
  for (std::string field; std::getline(split, field, '|');) fields.push_back(field);
  ASSERT_EQ(fields.size(), 7u) << line;
  EXPECT_EQ(fields[0], "job-ok");
  EXPECT_EQ(std::count(fields[1].begin(), fields[1].end(), ','), 1) << fields[1];
  EXPECT_EQ(fields[2], fields[1]);  // COMPUTENET_DEVICES = Slurm's grant
  EXPECT_EQ(fields[3], "A800");
  EXPECT_EQ(fields[4], "localhost");
  EXPECT_EQ(fields[5], "1");
  EXPECT_EQ(fields[6], "it's \"quoted\" $HOME `x`");
}

TEST_F(SlurmExecutorTest, NonZeroExitFailsWithSlurmsReason) {
  auto executor = MakeExecutor(Options());
  ASSERT_NE(executor, nullptr);
  ASSERT_TRUE(executor->Start(Request("job-fail", "exit 3")).ok());
  auto events = RunUntilFinished(*executor, "job-fail");
  ASSERT_FALSE(events.empty());
  const ExecutionEvent& finished = events.back();
  ASSERT_EQ(finished.kind, ExecutionEvent::Kind::kFinished);
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished.exit_code, 3);
  EXPECT_THAT(finished.message, HasSubstr("exited with 3"));
  EXPECT_THAT(finished.message, HasSubstr("NonZeroExitCode"));
  EXPECT_EQ(finished.cards, 1u);
}

TEST_F(SlurmExecutorTest, JobPastItsMaxDurationIsStoppedWithGraceAndFails) {
  auto executor = MakeExecutor(Options());
  ASSERT_NE(executor, nullptr);
  const std::string term = dir_.File("term");
  // Slurm's own limit is a whole minute; the executor stops it at 2 s.
  ASSERT_TRUE(executor
                  ->Start(Request("job-long",
                                  "trap 'echo term > " + term +
                                      "; exit 143' TERM; sleep 60 & wait",
                                  1, 2))
                  .ok());
  auto events = RunUntilFinished(*executor, "job-long");
  ASSERT_FALSE(events.empty());
  const ExecutionEvent& finished = events.back();
  ASSERT_EQ(finished.kind, ExecutionEvent::Kind::kFinished);
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_FAILED);
  EXPECT_THAT(finished.message, HasSubstr("exceeded max duration of 2 s"));
  EXPECT_EQ(finished.exit_code, 143);
  EXPECT_TRUE(std::filesystem::exists(term)) << "TERM came first";
  EXPECT_GE(finished.end_ms - finished.start_ms, 2000);
}

TEST_F(SlurmExecutorTest, CancelSendsTermThenKillsAfterTheGrace) {
  auto executor = MakeExecutor(Options());
  ASSERT_NE(executor, nullptr);
  const std::string polite = dir_.File("polite");
  const std::string stubborn = dir_.File("stubborn");
  ASSERT_TRUE(executor
                  ->Start(Request("job-polite",
                                  "trap 'echo term > " + polite +
                                      "; exit 143' TERM; touch " + polite +
                                      ".up; sleep 60 & wait"))
                  .ok());
  // This one ignores TERM: only the KILL after the grace ends it.
  ASSERT_TRUE(executor
                  ->Start(Request("job-stubborn",
                                  "trap 'echo term >> " + stubborn +
                                      "' TERM; touch " + stubborn +
                                      ".up; while :; do sleep 0.1; done"))
                  .ok());
  ASSERT_TRUE(WaitForFile(polite + ".up"));
  ASSERT_TRUE(WaitForFile(stubborn + ".up"));
  EXPECT_EQ(executor->Cancel("job-nope", 0).code(), StatusCode::kNotFound);
  ASSERT_TRUE(executor->Cancel("job-polite", 10'000).ok());
  ASSERT_TRUE(executor->Cancel("job-stubborn", 1500).ok());

  auto polite_events = RunUntilFinished(*executor, "job-polite");
  auto stubborn_events = RunUntilFinished(*executor, "job-stubborn");
  ASSERT_FALSE(polite_events.empty());
  ASSERT_FALSE(stubborn_events.empty());
  EXPECT_EQ(polite_events.back().final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(polite_events.back().message, HasSubstr("cancelled"));
  EXPECT_EQ(ReadFile(polite), "term\n");
  EXPECT_EQ(stubborn_events.back().final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(ReadFile(stubborn), HasSubstr("term"));  // TERM went first
  EXPECT_TRUE(executor->ActiveJobs().empty());
}

TEST_F(SlurmExecutorTest, CancelWhilePendingReportsNoUsage) {
  SlurmExecutorOptions options = Options();
  options.extra_sbatch_args = {"--hold"};  // stays PENDING until released
  auto executor = MakeExecutor(options);
  ASSERT_NE(executor, nullptr);
  ASSERT_TRUE(executor->Start(Request("job-held", "exit 0", 2)).ok());
  std::string slurm_id;
  ASSERT_TRUE(WaitUntil([&] {
    slurm_id = executor->SlurmJobId("job-held");
    return !slurm_id.empty();
  }));
  // Several rounds of polling: still pending, so no start.
  ASSERT_TRUE(WaitUntil([&] { return executor->stats().polls >= 3; }));
  EXPECT_TRUE(executor->Poll().empty());
  EXPECT_EQ(ShowSlurmJob(slurm_, slurm_id).Get("JobState"), "PENDING");

  ASSERT_TRUE(executor->Cancel("job-held", 5000).ok());
  auto events = RunUntilFinished(*executor, "job-held");
  ASSERT_EQ(events.size(), 1u);  // no kStarted
  EXPECT_EQ(events[0].final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(events[0].start_ms, events[0].end_ms);  // zero card-seconds
  EXPECT_EQ(events[0].cards, 2u);
  EXPECT_EQ(ShowSlurmJob(slurm_, slurm_id).Get("JobState"), "CANCELLED");
}

TEST_F(SlurmExecutorTest, SlurmRefusingTheJobFailsItWithSlurmsMessage) {
  SlurmExecutorOptions options = Options();
  options.partition = "no-such-partition";
  auto executor = MakeExecutor(options);
  ASSERT_NE(executor, nullptr);
  ASSERT_TRUE(executor->Start(Request("job-refused", "exit 0")).ok());
  auto events = RunUntilFinished(*executor, "job-refused");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].final_state, v1::JOB_STATE_FAILED);
  EXPECT_THAT(events[0].message, HasSubstr("Slurm refused the job"));
  EXPECT_THAT(events[0].message, HasSubstr("partition"));
  EXPECT_EQ(events[0].start_ms, events[0].end_ms);
}

TEST_F(SlurmExecutorTest, SpecsTheBatchScriptCannotCarryAreRefusedAtOnce) {
  auto executor = MakeExecutor(Options());
  ASSERT_NE(executor, nullptr);
  ExecutionRequest reserved = Request("job-env", "exit 0");
  (*reserved.spec.mutable_env())["SBATCH_PARTITION"] = "vip";
  EXPECT_EQ(executor->Start(reserved).code(), StatusCode::kInvalidArgument);
  ExecutionRequest bad_name = Request("job-env2", "exit 0");
  (*bad_name.spec.mutable_env())["A=B; rm -rf /"] = "x";
  EXPECT_EQ(executor->Start(bad_name).code(), StatusCode::kInvalidArgument);
  ExecutionRequest empty = Request("job-empty", "exit 0");
  empty.spec.clear_command();
  EXPECT_EQ(executor->Start(empty).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(executor->ActiveJobs().empty());
}

TEST_F(SlurmExecutorTest, UnreachableControllerIsRetriedNotFailed) {
  // The executor's commands read a copy of slurm.conf; pointing its
  // SlurmctldPort at a closed port makes every command fail exactly as in a
  // slurmctld restart, without disturbing tests that share the cluster.
  const std::string good = ReadFile(slurm_.conf);
  const std::string conf = dir_.File("slurm.conf");
  std::ofstream(conf) << good;
  std::string dead = good;
  const size_t port = dead.find("SlurmctldPort=");
  ASSERT_NE(port, std::string::npos);
  dead.replace(port, dead.find('\n', port) - port, "SlurmctldPort=1");
  SlurmExecutorOptions options = Options();
  options.commands.slurm_conf = conf;
  options.commands.timeout_ms = 2000;
  auto executor = MakeExecutor(options);
  ASSERT_NE(executor, nullptr);
  const std::string flag = dir_.File("flag");
  ASSERT_TRUE(executor
                  ->Start(Request("job-outage",
                                  "while [ ! -f " + flag + " ]; do sleep 0.05; done"))
                  .ok());
  auto started = WaitStarted(*executor, "job-outage");
  ASSERT_TRUE(started.has_value());

  std::ofstream(conf, std::ios::trunc) << dead;
  const uint64_t failed_before = executor->stats().failed_commands;
  ASSERT_TRUE(WaitUntil([&] {
    return executor->stats().failed_commands >= failed_before + 2;
  }));
  EXPECT_FALSE(executor->stats().reachable);
  { std::ofstream(flag) << "go"; }  // the job ends while we cannot see
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(executor->Poll().empty()) << "no verdict while unreachable";
  EXPECT_THAT(executor->ActiveJobs(), ::testing::ElementsAre("job-outage"));

  std::ofstream(conf, std::ios::trunc) << good;
  auto events = RunUntilFinished(*executor, "job-outage");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].final_state, v1::JOB_STATE_SUCCEEDED) << events[0].message;
  EXPECT_EQ(events[0].start_ms, started->start_ms);
  EXPECT_TRUE(executor->stats().reachable);
}

TEST_F(SlurmExecutorTest, NewExecutorReadoptsRunningJobAndReportsItsEnd) {
  const std::string flag = dir_.File("flag");
  int64_t start_ms = 0;
  {
    auto first = MakeExecutor(Options());
    ASSERT_NE(first, nullptr);
    EXPECT_TRUE(first->adopted().empty());
    ASSERT_TRUE(first
                    ->Start(Request("job-survivor",
                                    "while [ ! -f " + flag + " ]; do sleep 0.05; done",
                                    2))
                    .ok());
    auto started = WaitStarted(*first, "job-survivor");
    ASSERT_TRUE(started.has_value());
    start_ms = started->start_ms;
  }  // the agent "restarts": the job keeps running in Slurm

  // Another agent's executor on the same Slurm adopts nothing of ours.
  SlurmExecutorOptions stranger = Options();
  stranger.owner = owner_ + "-other";
  auto other = MakeExecutor(stranger);
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->adopted().empty());

  auto second = MakeExecutor(Options());
  ASSERT_NE(second, nullptr);
  EXPECT_THAT(second->adopted(), ::testing::ElementsAre("job-survivor"));
  EXPECT_THAT(second->ActiveJobs(), ::testing::ElementsAre("job-survivor"));
  auto restarted = WaitStarted(*second, "job-survivor");
  ASSERT_TRUE(restarted.has_value());
  EXPECT_EQ(restarted->start_ms, start_ms);

  { std::ofstream(flag) << "go"; }
  auto events = RunUntilFinished(*second, "job-survivor");
  ASSERT_FALSE(events.empty());
  const ExecutionEvent& finished = events.back();
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_SUCCEEDED) << finished.message;
  EXPECT_EQ(finished.start_ms, start_ms);
  EXPECT_EQ(finished.cards, 2u);
  EXPECT_EQ(finished.model, "A800");  // from the job's comment
  EXPECT_TRUE(second->ActiveJobs().empty());
}

TEST_F(SlurmExecutorTest, CapacityFromSlurmListsShareablePartitionsOnly) {
  provider::SlurmInventoryOptions options;
  options.commands = slurm_.Commands();
  options.partitions = {"share"};
  options.default_model = "A800";
  options.card_memory_mib = 81920;
  auto nodes = provider::DiscoverSlurmNodes(options);
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 1u);
  const v1::Node& node = (*nodes)[0];
  EXPECT_EQ(node.name(), "localhost");
  EXPECT_EQ(node.fabric_id(), "slurm:share");
  EXPECT_EQ(node.cpu_cores(), 64u);
  ASSERT_EQ(node.accelerators_size(), 1);
  EXPECT_EQ(node.accelerators(0).model(), "A800");
  EXPECT_EQ(node.accelerators(0).count(), 8u);
  EXPECT_EQ(node.accelerators(0).memory_mib(), 81920u);

  options.partitions = {"no-such-partition"};
  EXPECT_EQ(provider::DiscoverSlurmNodes(options).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace computenet::testing
