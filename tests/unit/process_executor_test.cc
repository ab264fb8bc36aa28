// ProcessExecutor: real child processes through /bin/sh, with a FakeClock
// for metering and time limits.
#include "computenet/provider/process_executor.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/clock.h"
#include "computenet/common/files.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ShellJob;
using testing::TempDir;
using testing::WaitUntil;

using Kind = ExecutionEvent::Kind;

v1::NodeAssignment Assignment(const std::string& node,
                              std::vector<uint32_t> devices) {
  v1::NodeAssignment assignment;
  assignment.set_node(node);
  for (uint32_t device : devices) assignment.add_device_indices(device);
  return assignment;
}

// Whether fd is readable within timeout_ms (0: now). The waits below are a
// bound for a broken wake-up, not a measurement: a working one is immediate.
bool Readable(int fd, int timeout_ms) {
  pollfd item{fd, POLLIN, 0};
  return ::poll(&item, 1, timeout_ms) == 1 && (item.revents & POLLIN) != 0;
}

constexpr int kWakeBoundMs = 30000;

bool Exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

std::string ReadOrEmpty(const std::string& path) {
  auto text = ReadFileToString(path);
  return text.ok() ? *text : std::string();
}

class ProcessExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeExecutor(5000); }

  void MakeExecutor(int timeout_grace_ms) {
    executor_.reset();
    ProcessExecutorOptions options;
    options.work_dir = work_dir_;
    options.clock = clock_;
    options.timeout_grace_ms = timeout_grace_ms;
    executor_ = std::make_unique<ProcessExecutor>(std::move(options));
  }

  static ExecutionRequest Request(
      const std::string& job_id, const std::string& command,
      std::vector<v1::NodeAssignment> assignments = {Assignment("n1", {0})}) {
    ExecutionRequest request;
    request.job_id = job_id;
    request.consumer = "alice";
    request.spec = ShellJob(command,
                            static_cast<uint32_t>(
                                assignments.front().device_indices_size()));
    request.spec.set_nodes(static_cast<uint32_t>(assignments.size()));
    request.model = "A800";
    request.assignments = std::move(assignments);
    return request;
  }

  void MustStart(const ExecutionRequest& request) {
    Status status = executor_->Start(request);
    ASSERT_TRUE(status.ok()) << status.ToString();
  }

  void PollOnce() {
    for (auto& event : executor_->Poll()) events_.push_back(std::move(event));
  }

  const ExecutionEvent* Find(Kind kind, const std::string& job_id) const {
    for (const auto& event : events_) {
      if (event.kind == kind && event.job_id == job_id) return &event;
    }
    return nullptr;
  }

  // Polls until the job's kFinished event arrives (real processes exit in
  // their own time) or timeout passes.
  const ExecutionEvent* WaitFinished(
      const std::string& job_id,
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    WaitUntil(
        [&] {
          PollOnce();
          return Find(Kind::kFinished, job_id) != nullptr;
        },
        timeout);
    return Find(Kind::kFinished, job_id);
  }

  std::string JobFile(const std::string& job_id, const std::string& name) {
    return work_dir_ + "/" + job_id + "/" + name;
  }

  // A file the job made in its cwd, the workspace (its logs stay outside).
  std::string WorkspaceFile(const std::string& job_id,
                            const std::string& name) {
    return work_dir_ + "/" + job_id + "/workspace/" + name;
  }

  TempDir dir_;
  std::string work_dir_ = dir_.File("work");
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::unique_ptr<ProcessExecutor> executor_;
  std::vector<ExecutionEvent> events_;
};

TEST_F(ProcessExecutorTest, SuccessfulJobReportsStartThenFinish) {
  const int64_t t0 = clock_->NowMs();
  MustStart(Request("job-1", "exit 0", {Assignment("n1", {0, 1})}));
  EXPECT_THAT(executor_->ActiveJobs(), ::testing::ElementsAre("job-1"));
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);

  ASSERT_GE(events_.size(), 2u);
  EXPECT_EQ(events_[0].kind, Kind::kStarted) << "start comes first";
  EXPECT_EQ(events_[0].job_id, "job-1");
  EXPECT_EQ(events_[0].start_ms, t0);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->exit_code, 0);
  EXPECT_EQ(finished->cards, 2u);
  EXPECT_EQ(finished->start_ms, t0);
  EXPECT_EQ(finished->end_ms, t0);
  EXPECT_THAT(executor_->ActiveJobs(), IsEmpty());
  // Reported once only.
  PollOnce();
  EXPECT_EQ(std::count_if(events_.begin(), events_.end(),
                          [](const ExecutionEvent& event) {
                            return event.kind == Kind::kFinished;
                          }),
            1);
}

TEST_F(ProcessExecutorTest, NonZeroExitFails) {
  MustStart(Request("job-1", "exit 3"));
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished->exit_code, 3);
  EXPECT_THAT(finished->message, HasSubstr("3"));
  EXPECT_THAT(finished->message, HasSubstr("n1"));
}

TEST_F(ProcessExecutorTest, SignalledProcessReports128PlusSignal) {
  MustStart(Request("job-1", "kill -KILL $$"));
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished->exit_code, 128 + SIGKILL);
}

TEST_F(ProcessExecutorTest, OutputGoesToTheNodeFilesByStream) {
  MustStart(Request("job-1", "echo to-stdout; echo to-stderr 1>&2"));
  // Live logs read these files while the job runs (docs/protocol.md).
  const std::vector<LogFile> files = executor_->LogFiles("job-1");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].node, "n1");
  EXPECT_EQ(files[0].stream, v1::LOG_STREAM_STDOUT);
  EXPECT_EQ(files[0].path, JobFile("job-1", "n1.out"));
  EXPECT_EQ(files[1].stream, v1::LOG_STREAM_STDERR);
  EXPECT_EQ(files[1].path, JobFile("job-1", "n1.err"));
  ASSERT_NE(WaitFinished("job-1"), nullptr);
  EXPECT_EQ(ReadOrEmpty(JobFile("job-1", "n1.out")), "to-stdout\n");
  EXPECT_EQ(ReadOrEmpty(JobFile("job-1", "n1.err")), "to-stderr\n");
  EXPECT_TRUE(executor_->LogFiles("job-1").empty());  // reported finished
}

TEST_F(ProcessExecutorTest, EnvironmentNamesDevicesAndJob) {
  ExecutionRequest request = Request(
      "job-1", "env > env.txt; echo wrote-env", {Assignment("n1", {0, 1})});
  (*request.spec.mutable_env())["MY_SETTING"] = "hello world";
  // A job cannot pick its own devices: the executor's values win.
  (*request.spec.mutable_env())["CUDA_VISIBLE_DEVICES"] = "0,1,2,3,4,5,6,7";
  MustStart(request);
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_SUCCEEDED);

  EXPECT_THAT(ReadOrEmpty(JobFile("job-1", "n1.out")), HasSubstr("wrote-env"));
  const std::string env = "\n" + ReadOrEmpty(WorkspaceFile("job-1", "env.txt"));
  EXPECT_THAT(env, HasSubstr("\nCUDA_VISIBLE_DEVICES=0,1\n"));
  EXPECT_THAT(env, HasSubstr("\nCOMPUTENET_DEVICES=0,1\n"));
  EXPECT_THAT(env, HasSubstr("\nCOMPUTENET_JOB_ID=job-1\n"));
  EXPECT_THAT(env, HasSubstr("\nCOMPUTENET_NODE=n1\n"));
  EXPECT_THAT(env, HasSubstr("\nCOMPUTENET_NODE_RANK=0\n"));
  EXPECT_THAT(env, HasSubstr("\nCOMPUTENET_NUM_NODES=1\n"));
  EXPECT_THAT(env, HasSubstr("\nCOMPUTENET_MODEL=A800\n"));
  EXPECT_THAT(env, HasSubstr("\nMY_SETTING=hello world\n"));
  // The parent's environment is inherited.
  EXPECT_THAT(env, HasSubstr("\nPATH="));
}

TEST_F(ProcessExecutorTest, MultiNodeRunsOneProcessPerNode) {
  MustStart(Request("job-1",
                    "env > \"$COMPUTENET_NODE.env\"; echo rank "
                    "$COMPUTENET_NODE_RANK",
                    {Assignment("n1", {0, 1}), Assignment("n2", {2, 3})}));
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->cards, 4u);

  const std::string n1 = "\n" + ReadOrEmpty(WorkspaceFile("job-1", "n1.env"));
  const std::string n2 = "\n" + ReadOrEmpty(WorkspaceFile("job-1", "n2.env"));
  EXPECT_THAT(n1, HasSubstr("\nCOMPUTENET_NODE_RANK=0\n"));
  EXPECT_THAT(n1, HasSubstr("\nCOMPUTENET_NODE=n1\n"));
  EXPECT_THAT(n1, HasSubstr("\nCUDA_VISIBLE_DEVICES=0,1\n"));
  EXPECT_THAT(n1, HasSubstr("\nCOMPUTENET_NUM_NODES=2\n"));
  EXPECT_THAT(n2, HasSubstr("\nCOMPUTENET_NODE_RANK=1\n"));
  EXPECT_THAT(n2, HasSubstr("\nCOMPUTENET_NODE=n2\n"));
  EXPECT_THAT(n2, HasSubstr("\nCUDA_VISIBLE_DEVICES=2,3\n"));
  EXPECT_THAT(n2, HasSubstr("\nCOMPUTENET_NUM_NODES=2\n"));
  EXPECT_THAT(ReadOrEmpty(JobFile("job-1", "n1.out")), HasSubstr("rank 0"));
  EXPECT_THAT(ReadOrEmpty(JobFile("job-1", "n2.out")), HasSubstr("rank 1"));
}

TEST_F(ProcessExecutorTest, OneFailedNodeStopsTheGang) {
  // Rank 1 fails at once; rank 0 would run for 30 s.
  MustStart(Request("job-1",
                    "if [ \"$COMPUTENET_NODE_RANK\" = 1 ]; then exit 5; fi; "
                    "sleep 30",
                    {Assignment("n1", {0}), Assignment("n2", {1})}));
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_THAT(finished->message, HasSubstr("n2"));
  EXPECT_THAT(finished->message, HasSubstr("5"));
}

TEST_F(ProcessExecutorTest, GangExitCodeIsTheFailingNodes) {
  // Rank 1 (n2) exits 5; the executor then stops rank 0 (n1) with SIGTERM.
  // The job's exit code should be the failing node's 5, not the 143 of the
  // node the executor itself terminated.
  MustStart(Request("job-1",
                    "if [ \"$COMPUTENET_NODE_RANK\" = 1 ]; then exit 5; fi; "
                    "sleep 30",
                    {Assignment("n1", {0}), Assignment("n2", {1})}));
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished->exit_code, 5) << finished->message;
}

TEST_F(ProcessExecutorTest, CancelStopsTheJob) {
  MustStart(Request("job-1", "sleep 30"));
  PollOnce();
  ASSERT_TRUE(executor_->Cancel("job-1", /*grace_ms=*/5000).ok());
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(finished->exit_code, 128 + SIGTERM);
  EXPECT_THAT(finished->message, HasSubstr("cancel"));
  EXPECT_THAT(executor_->ActiveJobs(), IsEmpty());
}

TEST_F(ProcessExecutorTest, CancelUnknownJobIsNotFound) {
  EXPECT_EQ(executor_->Cancel("nope", 1000).code(), StatusCode::kNotFound);
}

TEST_F(ProcessExecutorTest, CancelKillsProcessThatIgnoresSigterm) {
  MustStart(Request("job-1", "trap '' TERM; touch ready; sleep 30"));
  // Wait until the trap is in place, so SIGTERM is surely ignored.
  ASSERT_TRUE(WaitUntil([&] { return Exists(WorkspaceFile("job-1", "ready")); }));
  ASSERT_TRUE(executor_->Cancel("job-1", /*grace_ms=*/1000).ok());
  // Within the grace period it survives SIGTERM (the fake clock stands
  // still, so no SIGKILL can be due).
  EXPECT_EQ(WaitFinished("job-1", std::chrono::milliseconds(300)), nullptr)
      << "the process should have ignored SIGTERM";
  EXPECT_THAT(executor_->ActiveJobs(), ::testing::ElementsAre("job-1"));
  clock_->AdvanceMs(999);
  EXPECT_EQ(WaitFinished("job-1", std::chrono::milliseconds(100)), nullptr)
      << "SIGKILL came before the grace ended";
  clock_->AdvanceMs(1);
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(finished->exit_code, 128 + SIGKILL);
}

TEST_F(ProcessExecutorTest, MaxDurationStopsAndFailsTheJob) {
  ExecutionRequest request = Request("job-1", "sleep 30");
  request.spec.set_max_duration_s(10);
  MustStart(request);
  const int64_t t0 = clock_->NowMs();
  PollOnce();
  // Exactly at the limit it may still run.
  clock_->AdvanceMs(10'000);
  EXPECT_EQ(WaitFinished("job-1", std::chrono::milliseconds(200)), nullptr);
  clock_->AdvanceMs(1);
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_THAT(finished->message, HasSubstr("max duration"));
  EXPECT_EQ(finished->exit_code, 128 + SIGTERM);
  EXPECT_EQ(finished->start_ms, t0);
  EXPECT_EQ(finished->end_ms, t0 + 10'001);
}

TEST_F(ProcessExecutorTest, MaxDurationKillsProcessThatIgnoresSigterm) {
  MakeExecutor(/*timeout_grace_ms=*/2000);
  ExecutionRequest request =
      Request("job-1", "trap '' TERM; touch ready; sleep 30");
  request.spec.set_max_duration_s(1);
  MustStart(request);
  ASSERT_TRUE(WaitUntil([&] { return Exists(WorkspaceFile("job-1", "ready")); }));
  clock_->AdvanceMs(1001);
  PollOnce();  // SIGTERM, ignored
  EXPECT_EQ(WaitFinished("job-1", std::chrono::milliseconds(200)), nullptr);
  clock_->AdvanceMs(2000);  // the grace has passed: SIGKILL
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_THAT(finished->message, HasSubstr("max duration"));
  EXPECT_EQ(finished->exit_code, 128 + SIGKILL);
}

TEST_F(ProcessExecutorTest, StartAndEndTimesComeFromTheClock) {
  const int64_t t0 = clock_->NowMs();
  MustStart(Request("job-1",
                    "while [ ! -f flag ]; do sleep 0.01; done; echo saw-flag"));
  PollOnce();
  clock_->AdvanceMs(5000);
  ASSERT_TRUE(WriteFileAtomically(WorkspaceFile("job-1", "flag"), "", 0644).ok());
  const ExecutionEvent* finished = WaitFinished("job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->start_ms, t0);
  EXPECT_EQ(finished->end_ms - finished->start_ms, 5000);
  EXPECT_THAT(ReadOrEmpty(JobFile("job-1", "n1.out")), HasSubstr("saw-flag"));
}

TEST_F(ProcessExecutorTest, CommandNotFoundIsFailedPrecondition) {
  ExecutionRequest request = Request("job-1", "unused");
  request.spec.clear_command();
  request.spec.add_command("/no/such/program");
  Status status = executor_->Start(request);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition)
      << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("/no/such/program"));

  request.spec.set_command(0, "computenet-no-such-command-in-path");
  EXPECT_EQ(executor_->Start(request).code(), StatusCode::kFailedPrecondition);

  EXPECT_THAT(executor_->ActiveJobs(), IsEmpty());
  PollOnce();
  EXPECT_THAT(events_, IsEmpty()) << "nothing started, nothing to report";
}

TEST_F(ProcessExecutorTest, DuplicateStartIsAlreadyExists) {
  MustStart(Request("job-1", "sleep 30"));
  EXPECT_EQ(executor_->Start(Request("job-1", "true")).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(executor_->Cancel("job-1", 0).ok());
  ASSERT_NE(WaitFinished("job-1"), nullptr);
}

TEST_F(ProcessExecutorTest, RequestWithoutCommandOrAssignmentIsRejected) {
  ExecutionRequest no_command = Request("job-1", "true");
  no_command.spec.clear_command();
  EXPECT_EQ(executor_->Start(no_command).code(), StatusCode::kInvalidArgument);
  ExecutionRequest no_assignment = Request("job-2", "true");
  no_assignment.assignments.clear();
  EXPECT_EQ(executor_->Start(no_assignment).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ProcessExecutorTest, JobIdCannotEscapeTheWorkDir) {
  MustStart(Request("../escaped", "echo inside > marker"));
  ASSERT_NE(WaitFinished("../escaped"), nullptr);
  EXPECT_FALSE(Exists(dir_.File("escaped")));
  EXPECT_FALSE(Exists(dir_.File("escaped/marker")));
  // The directory name is sanitized but stays under work_dir.
  EXPECT_TRUE(Exists(work_dir_ + "/_.._escaped/workspace/marker"));
}

TEST_F(ProcessExecutorTest, DestructorKillsRunningJobs) {
  MustStart(Request("job-1", "echo $$ > pid; exec sleep 30"));
  ASSERT_TRUE(WaitUntil([&] {
    return !ReadOrEmpty(WorkspaceFile("job-1", "pid")).empty() &&
           ReadOrEmpty(WorkspaceFile("job-1", "pid")).back() == '\n';
  }));
  const pid_t pid =
      static_cast<pid_t>(std::stol(ReadOrEmpty(WorkspaceFile("job-1", "pid"))));
  ASSERT_EQ(::kill(pid, 0), 0) << "running before";
  executor_.reset();
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1) << "still running after the executor died";
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(ProcessExecutorTest, IndependentJobsFinishIndependently) {
  MustStart(Request("fast", "exit 0"));
  MustStart(Request("slow", "sleep 30"));
  ASSERT_NE(WaitFinished("fast"), nullptr);
  EXPECT_EQ(Find(Kind::kFinished, "slow"), nullptr);
  EXPECT_THAT(executor_->ActiveJobs(), ::testing::ElementsAre("slow"));
  ASSERT_TRUE(executor_->Cancel("slow", 0).ok());
  const ExecutionEvent* slow = WaitFinished("slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->final_state, v1::JOB_STATE_CANCELLED);
}

// The wake descriptor (pidfd per child in one epoll set) is what lets the
// agent report an exit when it happens instead of at its next tick.
class ProcessExecutorWakeTest : public ProcessExecutorTest {
 protected:
  void SetUp() override {
    ProcessExecutorTest::SetUp();
    if (!executor_->wakes_on_exit()) {
      GTEST_SKIP() << "pidfd_open unavailable here: exits are seen on the tick";
    }
    ASSERT_GE(executor_->WakeFd(), 0);
  }
};

TEST_F(ProcessExecutorWakeTest, ExitMakesTheWakeFdReadableAndPollConsumesIt) {
  const int fd = executor_->WakeFd();
  EXPECT_FALSE(Readable(fd, 0)) << "nothing runs yet";
  MustStart(Request("job-1", "exit 3"));
  ASSERT_TRUE(Readable(fd, kWakeBoundMs)) << "the exit did not wake";
  PollOnce();
  const ExecutionEvent* finished = Find(Kind::kFinished, "job-1");
  ASSERT_NE(finished, nullptr) << "woken, but Poll() had no exit to report";
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished->exit_code, 3);
  EXPECT_FALSE(Readable(fd, 0)) << "still readable after Poll() reaped it";
  EXPECT_EQ(executor_->WakeFd(), fd) << "the descriptor is stable";
}

TEST_F(ProcessExecutorWakeTest, RunningJobDoesNotWake) {
  const int fd = executor_->WakeFd();
  MustStart(Request("job-1", "exec sleep 30"));
  PollOnce();
  ASSERT_NE(Find(Kind::kStarted, "job-1"), nullptr);
  EXPECT_FALSE(Readable(fd, 0));
  ASSERT_TRUE(executor_->Cancel("job-1", 0).ok());
  ASSERT_TRUE(Readable(fd, kWakeBoundMs)) << "the cancelled child's exit";
  PollOnce();
  const ExecutionEvent* finished = Find(Kind::kFinished, "job-1");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(Readable(fd, 0));
}

TEST_F(ProcessExecutorWakeTest, EveryNodeOfAGangWakesUntilTheJobEnds) {
  const int fd = executor_->WakeFd();
  MustStart(Request("gang", "exit 0",
                    {Assignment("n1", {0}), Assignment("n2", {0}),
                     Assignment("n3", {0})}));
  // Each wake-up reaps at least one node: three nodes end in at most three.
  int wakeups = 0;
  while (Find(Kind::kFinished, "gang") == nullptr && wakeups < 3) {
    ASSERT_TRUE(Readable(fd, kWakeBoundMs)) << "after " << wakeups;
    ++wakeups;
    PollOnce();
  }
  const ExecutionEvent* finished = Find(Kind::kFinished, "gang");
  ASSERT_NE(finished, nullptr);
  EXPECT_EQ(finished->final_state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(Readable(fd, 0));
}

TEST_F(ProcessExecutorWakeTest, FailedStartLeavesNothingToWakeFor) {
  const int fd = executor_->WakeFd();
  ExecutionRequest request = Request("job-1", "");
  request.spec.clear_command();
  request.spec.add_command("/nonexistent/computenet-no-such-program");
  EXPECT_FALSE(executor_->Start(request).ok());
  EXPECT_FALSE(Readable(fd, 0));
}

TEST(ExecutorTest, DefaultWakeFdIsNone) {
  class TickOnly final : public Executor {
   public:
    Status Start(const ExecutionRequest&) override { return OkStatus(); }
    Status Cancel(const std::string&, int) override { return OkStatus(); }
    std::vector<ExecutionEvent> Poll() override { return {}; }
    std::vector<std::string> ActiveJobs() const override { return {}; }
  };
  EXPECT_EQ(TickOnly().WakeFd(), -1);
}

// Adoption after an agent restart: the first executor is dropped as a
// crashed agent would leave it (its jobs running on), a second one over
// the same directories takes the runs back from the supervisors' records.
class ProcessAdoptionTest : public ProcessExecutorTest {
 protected:
  std::unique_ptr<ProcessExecutor> Next() {
    ProcessExecutorOptions options;
    options.work_dir = work_dir_;
    options.state_dir = dir_.File("state");
    options.stop_jobs_on_destroy = false;
    return std::make_unique<ProcessExecutor>(std::move(options));
  }
  std::string RecordFile(const std::string& job_id, const char* suffix) {
    return dir_.File("state") + "/.supervisors/" + job_id + "/1.n1" + suffix;
  }
  std::vector<ExecutionEvent> PollUntilFinished(ProcessExecutor& executor,
                                                const std::string& job_id) {
    std::vector<ExecutionEvent> seen;
    WaitUntil([&] {
      for (auto& event : executor.Poll()) seen.push_back(std::move(event));
      return std::any_of(seen.begin(), seen.end(), [&](const auto& event) {
        return event.kind == Kind::kFinished && event.job_id == job_id;
      });
    });
    return seen;
  }
};

TEST_F(ProcessAdoptionTest,
       AJobThatEndedWhileNoAgentWatchedIsReportedAsItEnded) {
  const std::string go = dir_.File("go");
  auto first = Next();
  ASSERT_TRUE(
      first
          ->Start(Request("job-1", "while [ ! -f " + go +
                                       " ]; do sleep 0.05; done; exit 5"))
          .ok());
  first.reset();  // the agent died; the job did not
  ::close(::open(go.c_str(), O_CREAT | O_WRONLY, 0644));
  ASSERT_TRUE(WaitUntil([&] { return Exists(RecordFile("job-1", ".exit")); }));

  auto second = Next();
  ASSERT_TRUE(second->Adopt(Request("job-1", "unused")).ok());
  auto events = PollUntilFinished(*second, "job-1");
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kStarted);
  const ExecutionEvent& finished = events.back();
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished.exit_code, 5);
  EXPECT_EQ(finished.cards, 1u);
  EXPECT_EQ(finished.start_ms, events[0].start_ms);
  EXPECT_GE(finished.end_ms, finished.start_ms);
  // Its records go once the agent polled again after hearing of its end.
  (void)second->Poll();
  EXPECT_FALSE(Exists(RecordFile("job-1", ".exit")));
}

TEST_F(ProcessAdoptionTest, ARunningJobIsTakenBackAndCanStillBeCancelled) {
  auto first = Next();
  ASSERT_TRUE(first->Start(Request("job-1", "sleep 30")).ok());
  first.reset();
  auto second = Next();
  ASSERT_TRUE(second->Adopt(Request("job-1", "sleep 30")).ok());
  EXPECT_THAT(second->ActiveJobs(), ::testing::ElementsAre("job-1"));
  ASSERT_TRUE(second->Cancel("job-1", 5000).ok());
  auto events = PollUntilFinished(*second, "job-1");
  EXPECT_EQ(events.back().final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(events.back().exit_code, 128 + SIGTERM);
}

TEST_F(ProcessAdoptionTest, ARunThatNeverStartedIsNotFound) {
  auto executor = Next();
  EXPECT_EQ(executor->Adopt(Request("job-9", "true")).code(),
            StatusCode::kNotFound);
  EXPECT_THAT(executor->ActiveJobs(), IsEmpty());
}

TEST_F(ProcessAdoptionTest,
       APidReusedByAnotherProcessIsNeitherTrustedNorSignalled) {
  // Some unrelated process now has the pid the record names, and the
  // supervisor that wrote it is gone without a word (no lock, no end).
  testing::ChildProcess stranger({"/bin/sleep", "30"}, {},
                                 dir_.File("stranger.log"));
  ASSERT_TRUE(stranger.started());
  std::filesystem::create_directories(dir_.File("state") +
                                      "/.supervisors/job-1");
  {
    std::ofstream(RecordFile("job-1", ".run"))
        << "pid=" << stranger.pid() << "\nstart_ms=1000\n";
  }
  auto executor = Next();
  ASSERT_TRUE(executor->Adopt(Request("job-1", "sleep 30")).ok());
  (void)executor->Cancel("job-1", 0);
  auto events = PollUntilFinished(*executor, "job-1");
  EXPECT_EQ(events.back().final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(events.back().exit_code, -1);
  EXPECT_EQ(::kill(stranger.pid(), 0), 0) << "the stranger was signalled";
}

}  // namespace
}  // namespace computenet::provider
