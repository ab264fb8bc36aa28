// The job sandbox (sandbox.h) around real jobs: a real ProcessExecutor runs
// /bin/sh and python3 under the host's bubblewrap, in real cgroups. Each
// fence has a test that fails when the fence is taken away: the job tries
// what the sandbox must stop (read the agent's key, write to the host, see
// another job's workspace, connect to a listener of this test, see a GPU it
// was not given, use more memory or processes than its limit), and the test
// asserts it could not. Tests skip only where this machine cannot run the
// part (no bwrap, no namespaces, no writable cgroup), saying so.
#include "computenet/provider/sandbox.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/files.h"
#include "computenet/provider/process_executor.h"
#include "computenet/provider/site_config.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ShellJob;
using testing::TempDir;
using testing::WaitUntil;

using Kind = ExecutionEvent::Kind;

std::string ReadOrEmpty(const std::string& path) {
  auto text = ReadFileToString(path);
  return text.ok() ? *text : std::string();
}

bool Exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

// A TCP listener on 127.0.0.1 at an ephemeral port (connections wait in
// its backlog: nothing needs to accept them).
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t size = sizeof(address);
    if (fd_ < 0 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
            0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The agent's private files, as a site keeps them.
    std::filesystem::create_directories(state_dir_);
    std::filesystem::create_directories(keys_dir_);
    ASSERT_TRUE(WriteFileAtomically(state_dir_ + "/signing.key",
                                    "AGENT-SIGNING-KEY-0600", 0600)
                    .ok());
    ASSERT_TRUE(
        WriteFileAtomically(keys_dir_ + "/identity.key", "IDENTITY-KEY", 0600)
            .ok());
  }

  // bwrap with the site defaults, plus what the test changes.
  SandboxOptions Options() const {
    SandboxOptions options;
    options.mode = SandboxOptions::Mode::kBwrap;
    options.hidden_paths = {keys_dir_};
    return options;
  }

  // Creates the sandbox and an executor using it; skips where this machine
  // cannot run bwrap.
  void MakeExecutor(SandboxOptions options) {
    auto sandbox = Sandbox::Create(std::move(options), work_dir_, state_dir_);
    if (!sandbox.ok()) {
      skip_reason_ = sandbox.status().message();
      return;
    }
    sandbox_ = *sandbox;
    ProcessExecutorOptions executor;
    executor.work_dir = work_dir_;
    executor.state_dir = state_dir_;
    executor.timeout_grace_ms = 1000;
    executor.sandbox = sandbox_;
    executor_ = std::make_unique<ProcessExecutor>(std::move(executor));
  }

  static ExecutionRequest Request(const std::string& job_id,
                                  const std::string& command,
                                  std::vector<uint32_t> devices = {0}) {
    ExecutionRequest request;
    request.job_id = job_id;
    request.consumer = "alice";
    request.spec = ShellJob(command, static_cast<uint32_t>(devices.size()));
    request.model = "A800";
    request.assignments = {testing::MakeAssignment("n1", devices)};
    return request;
  }

  // Runs the job to its end; the kFinished event (state NOT_SET if none).
  ExecutionEvent Run(const ExecutionRequest& request) {
    Status status = executor_->Start(request);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (!status.ok()) return {};
    return WaitFinished(request.job_id);
  }

  ExecutionEvent WaitFinished(const std::string& job_id) {
    ExecutionEvent finished;
    WaitUntil(
        [&] {
          for (auto& event : executor_->Poll()) {
            if (event.kind == Kind::kStarted) started_[event.job_id] = event;
            if (event.kind == Kind::kFinished && event.job_id == job_id) {
              finished = event;
            }
          }
          return finished.kind == Kind::kFinished &&
                 finished.final_state != v1::JOB_STATE_UNSPECIFIED;
        },
        std::chrono::seconds(60));
    return finished;
  }

  std::string Log(const std::string& job_id) {
    // stdout then stderr (the executor writes them apart, for live logs).
    return ReadOrEmpty(work_dir_ + "/" + job_id + "/n1.out") +
           ReadOrEmpty(work_dir_ + "/" + job_id + "/n1.err");
  }

  TempDir dir_;
  std::string work_dir_ = dir_.File("work");
  std::string state_dir_ = dir_.File("state");
  std::string keys_dir_ = dir_.File("keys");
  std::shared_ptr<const Sandbox> sandbox_;
  std::unique_ptr<ProcessExecutor> executor_;
  std::map<std::string, ExecutionEvent> started_;
  std::string skip_reason_;
};

#define SKIP_WITHOUT_SANDBOX()                                      \
  if (executor_ == nullptr) {                                       \
    GTEST_SKIP() << "bubblewrap cannot run here: " << skip_reason_; \
  }

TEST_F(SandboxTest, JobCannotReadTheAgentsKeyFiles) {
  // The test's directory is bound read-only, as a site's /var/lib would be:
  // it is the masks over the agent's state and key directories that fence.
  SandboxOptions options = Options();
  options.read_only_paths = DefaultReadOnlyPaths();
  options.read_only_paths.push_back(dir_.path());
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  // Taking the masks away needs capabilities the job does not have.
  const auto finished = Run(
      Request("job-1", "umount " + state_dir_ + "; umount " + keys_dir_ +
                           "; cat " + state_dir_ + "/signing.key " + keys_dir_ +
                           "/identity.key; ls " + dir_.path() + "; echo done"));
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-1");
  EXPECT_THAT(Log("job-1"), HasSubstr("done"));
  EXPECT_THAT(Log("job-1"), Not(HasSubstr("AGENT-SIGNING-KEY")));
  EXPECT_THAT(Log("job-1"), Not(HasSubstr("IDENTITY-KEY")));
}

TEST_F(SandboxTest, JobCannotReadOutsideItsWorkspaceByDefault) {
  MakeExecutor(Options());  // the test's directory is under /tmp: private
  SKIP_WITHOUT_SANDBOX();
  const auto finished =
      Run(Request("job-1", "cat " + state_dir_ +
                               "/signing.key; cat /etc/shadow; "
                               "ls /root /home 2>&1; echo done"));
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-1");
  const std::string log = Log("job-1");
  EXPECT_THAT(log, Not(HasSubstr("AGENT-SIGNING-KEY")));
  EXPECT_THAT(log, Not(HasSubstr("root:")));  // /etc/shadow's first line
  EXPECT_THAT(log, HasSubstr("done"));
}

TEST_F(SandboxTest, JobCannotWriteToTheHost) {
  SandboxOptions options = Options();
  options.read_only_paths = DefaultReadOnlyPaths();
  options.read_only_paths.push_back(dir_.path());
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  const std::string target = dir_.File("written-by-job");
  const auto finished =
      Run(Request("job-1", "mount -o remount,rw,bind " + dir_.path() +
                               "; echo pwned > " + target + " || exit 9"));
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_FAILED) << Log("job-1");
  EXPECT_EQ(finished.exit_code, 9);
  EXPECT_FALSE(Exists(target));
  // Its private /tmp is writable and goes with it.
  const auto tmp =
      Run(Request("job-2", "echo x > /tmp/scratch && cat /tmp/scratch"));
  EXPECT_EQ(tmp.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-2");
}

TEST_F(SandboxTest, JobWorksInItsWorkspaceAndOutputDirectory) {
  MakeExecutor(Options());
  SKIP_WITHOUT_SANDBOX();
  ExecutionRequest request =
      Request("job-1",
              "test \"$(pwd)\" = \"$COMPUTENET_WORKSPACE\" || exit 3; "
              "cat input.txt > \"$COMPUTENET_OUTPUT_DIR/result.txt\"; "
              "python3 -c 'print(\"python ran\")'");
  // A workspace the agent prepared, with the job's inputs in it.
  request.workspace = dir_.File("prepared/job-1");
  std::filesystem::create_directories(request.workspace);
  ASSERT_TRUE(
      WriteFileAtomically(request.workspace + "/input.txt", "the input", 0644)
          .ok());
  const auto finished = Run(request);
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-1");
  EXPECT_EQ(ReadOrEmpty(request.workspace + "/output/result.txt"), "the input");
  EXPECT_THAT(Log("job-1"), HasSubstr("python ran"));

  // By default the workspace is <work_dir>/<job>/workspace, the log beside it.
  const auto second =
      Run(Request("job-2", "echo out > \"$COMPUTENET_OUTPUT_DIR/r\""));
  EXPECT_EQ(second.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-2");
  EXPECT_EQ(ReadOrEmpty(work_dir_ + "/job-2/workspace/output/r"), "out\n");
}

TEST_F(SandboxTest, JobCannotSeeAnotherJobsWorkspace) {
  SandboxOptions options = Options();
  options.read_only_paths = DefaultReadOnlyPaths();
  options.read_only_paths.push_back(dir_.path());
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  const std::string flag = dir_.File("release");
  ASSERT_TRUE(
      executor_
          ->Start(Request("job-a", "echo A-SECRET > a-data; while [ ! -f " +
                                       flag + " ]; do sleep 0.05; done"))
          .ok());
  const std::string a_data = work_dir_ + "/job-a/workspace/a-data";
  ASSERT_TRUE(WaitUntil([&] { return Exists(a_data); }));
  const auto b = Run(Request(
      "job-b", "cat " + a_data + " " + work_dir_ + "/job-a/n1.out; ls " +
                   work_dir_ + " | grep -q job-a && echo LISTED-A; echo done"));
  EXPECT_EQ(b.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-b");
  EXPECT_THAT(Log("job-b"), HasSubstr("done"));
  EXPECT_THAT(Log("job-b"),
              Not(HasSubstr("A-SECRET")));
  EXPECT_THAT(Log("job-b"),
              Not(HasSubstr("LISTED-A")));
  ASSERT_TRUE(WriteFileAtomically(flag, "", 0644).ok());
  EXPECT_EQ(WaitFinished("job-a").final_state, v1::JOB_STATE_SUCCEEDED);
}

std::string ConnectCommand(int port) {
  return "python3 -c 'import socket; "
         "socket.create_connection((\"127.0.0.1\", " +
         std::to_string(port) + "), timeout=5); print(\"connected\")'";
}

TEST_F(SandboxTest, NetworkIsOffUnlessTheJobAsksAndTheSiteAllows) {
  MakeExecutor(Options());
  SKIP_WITHOUT_SANDBOX();
  Listener listener;
  ASSERT_GT(listener.port(), 0);
  const auto off = Run(Request("job-1", ConnectCommand(listener.port())));
  EXPECT_EQ(off.final_state, v1::JOB_STATE_FAILED) << Log("job-1");
  EXPECT_THAT(Log("job-1"), Not(HasSubstr("connected")));
  EXPECT_THAT(started_["job-1"].message, HasSubstr("network off"));

  ExecutionRequest asks = Request("job-2", ConnectCommand(listener.port()));
  asks.spec.set_network_access(true);
  const auto on = Run(asks);
  EXPECT_EQ(on.final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-2");
  EXPECT_THAT(Log("job-2"), HasSubstr("connected"));
  EXPECT_THAT(started_["job-2"].message, HasSubstr("network on"));
}

TEST_F(SandboxTest, SiteThatAllowsNoNetworkRefusesJobsAskingForIt) {
  SandboxOptions options = Options();
  options.allow_network = false;
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  ExecutionRequest asks = Request("job-1", "true");
  asks.spec.set_network_access(true);
  const Status status = executor_->Start(asks);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("allow_network"));
}

TEST_F(SandboxTest, OnlyTheAssignedGpuDeviceNodesAreVisible) {
  // Fake device nodes: plain files stand in for /dev/nvidia*.
  const std::string devices = dir_.File("dev");
  std::filesystem::create_directories(devices);
  for (const char* name :
       {"nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"}) {
    ASSERT_TRUE(WriteFileAtomically(devices + "/" + name, name, 0666).ok());
  }
  SandboxOptions options = Options();
  options.device_dir = devices;
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  // Given card 1: its /dev/nvidia1 and the control nodes, no other card.
  const auto finished = Run(Request(
      "job-1",
      "test -e /dev/nvidia1 || exit 10; test -e /dev/nvidia0 && exit 11; "
      "test -e /dev/nvidia2 && exit 12; test -e /dev/nvidiactl || exit 13; "
      "test -e /dev/nvidia-uvm || exit 14; exit 0",
      {1}));
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_SUCCEEDED)
      << finished.exit_code << " " << Log("job-1");
  const auto second = Run(Request(
      "job-2",
      "test -e /dev/nvidia0 || exit 10; test -e /dev/nvidia1 && exit 11; "
      "test -e /dev/nvidia2 && exit 12; test -e /dev/nvidiactl || exit 13; "
      "exit 0",
      {0}));
  EXPECT_EQ(second.final_state, v1::JOB_STATE_SUCCEEDED)
      << second.exit_code << " " << Log("job-2");
}

TEST_F(SandboxTest, JobOverItsMemoryLimitIsKilledAndFailsSayingWhy) {
  SandboxOptions options = Options();
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  if (sandbox_->cgroup_kind() == "none") {
    GTEST_SKIP() << "no writable cgroup (v2 delegated or v1 memory) here";
  }
  ExecutionRequest request = Request(
      "job-1", "python3 -c 'x = b\"x\" * (512 << 20); print(\"survived\")'");
  request.spec.set_host_memory_mib_per_card(64);
  const auto finished = Run(request);
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_FAILED) << Log("job-1");
  EXPECT_THAT(finished.message, HasSubstr("memory limit of 64 MiB"));
  EXPECT_THAT(Log("job-1"), Not(HasSubstr("survived")));
  EXPECT_THAT(started_["job-1"].message, HasSubstr("memory 64 MiB"));

  // Under the limit the same job runs.
  ExecutionRequest small = Request(
      "job-2", "python3 -c 'x = b\"x\" * (8 << 20); print(\"survived\")'");
  small.spec.set_host_memory_mib_per_card(64);
  EXPECT_EQ(Run(small).final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-2");
}

TEST_F(SandboxTest, JobOverItsPidsLimitCannotFork) {
  SandboxOptions options = Options();
  options.pids_max = 16;
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  if (sandbox_->cgroup_kind() == "none") {
    GTEST_SKIP() << "no writable cgroup (v2 delegated or v1 pids) here";
  }
  const auto finished =
      Run(Request("job-1", "for i in $(seq 1 64); do sleep 1 & done; wait"));
  EXPECT_EQ(finished.final_state, v1::JOB_STATE_FAILED) << Log("job-1");
  EXPECT_THAT(started_["job-1"].message, HasSubstr("pids 16"));
}

TEST_F(SandboxTest, CancelStopsEverythingInTheSandbox) {
  MakeExecutor(Options());
  SKIP_WITHOUT_SANDBOX();
  // A process that left the job's session and process group: only the
  // pid namespace reaches it.
  const std::string marker = "301.4159";
  ASSERT_TRUE(executor_
                  ->Start(Request("job-1", "setsid sleep " + marker +
                                               " & sleep " + marker + "; wait"))
                  .ok());
  auto running = [&] {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string cmdline =
          ReadOrEmpty(entry.path().string() + "/cmdline");
      if (cmdline.find(marker) != std::string::npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitUntil(running));
  ASSERT_TRUE(executor_->Cancel("job-1", 500).ok());
  EXPECT_EQ(WaitFinished("job-1").final_state, v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(WaitUntil([&] { return !running(); }));
}

TEST_F(SandboxTest, StartedEventDescribesTheFence) {
  SandboxOptions options = Options();
  options.memory_mib_per_card = 1024;
  options.pids_max = 512;
  MakeExecutor(options);
  SKIP_WITHOUT_SANDBOX();
  ExecutionRequest request = Request("job-1", "true", {0, 1});
  request.spec.set_cpu_milli_per_card(1500);
  EXPECT_EQ(Run(request).final_state, v1::JOB_STATE_SUCCEEDED) << Log("job-1");
  const std::string message = started_["job-1"].message;
  EXPECT_THAT(message, HasSubstr("sandbox: bwrap"));
  if (sandbox_->cgroup_kind() != "none") {
    EXPECT_THAT(message, HasSubstr("memory 2048 MiB"));
    EXPECT_THAT(message, HasSubstr("cpu 3000m"));
    EXPECT_THAT(message, HasSubstr("pids 512"));
  } else {
    EXPECT_THAT(message, HasSubstr("not enforced"));
  }
}

TEST(SandboxSetupTest, ModeNoneRunsJobsAndWarnsLoudly) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  spdlog::default_logger()->sinks().push_back(sink);
  TempDir dir;
  SandboxOptions options;
  options.mode = SandboxOptions::Mode::kNone;
  auto sandbox = Sandbox::Create(options, dir.File("work"), dir.File("state"));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().ToString();
  bool warned = false;
  for (const auto& line : sink->last_formatted()) {
    if (line.find("SANDBOX DISABLED") != std::string::npos &&
        line.find("warn") != std::string::npos) {
      warned = true;
    }
  }
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_TRUE(warned);

  ProcessExecutorOptions executor_options;
  executor_options.work_dir = dir.File("work");
  executor_options.sandbox = *sandbox;
  ProcessExecutor executor(std::move(executor_options));
  ExecutionRequest request;
  request.job_id = "job-1";
  request.spec = ShellJob("echo unfenced > \"$COMPUTENET_OUTPUT_DIR/r\"");
  request.assignments = {testing::MakeAssignment("n1", {0})};
  ASSERT_TRUE(executor.Start(request).ok());
  std::vector<ExecutionEvent> events;
  ASSERT_TRUE(WaitUntil([&] {
    for (auto& event : executor.Poll()) events.push_back(event);
    return events.size() == 2;
  }));
  EXPECT_THAT(events[0].message, HasSubstr("sandbox: none"));
  EXPECT_EQ(events[1].final_state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ReadOrEmpty(dir.File("work/job-1/workspace/output/r")),
            "unfenced\n");
}

TEST(SandboxSetupTest, MissingBwrapIsAFailedPreconditionNamingTheFix) {
  TempDir dir;
  SandboxOptions options;
  options.mode = SandboxOptions::Mode::kBwrap;
  options.bwrap_path = dir.File("no-such-bwrap");
  auto sandbox = Sandbox::Create(options, dir.File("work"), dir.File("state"));
  ASSERT_FALSE(sandbox.ok());
  EXPECT_EQ(sandbox.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(sandbox.status().message(),
              HasSubstr("apt-get install bubblewrap"));
  EXPECT_THAT(sandbox.status().message(), HasSubstr("mode = \"none\""));
}

// A site config's [sandbox] table.
std::string SiteConfigWith(const std::string& extra) {
  return "broker_endpoint = \"tcp://127.0.0.1:1\"\n"
         "broker_public_key = \"" +
         std::string(40, 'a') +
         "\"\n"
         "identity_dir = \"keys\"\nwork_dir = \"work\"\nsite = \"s\"\n"
         "region = \"r\"\ncurrency = \"CNY\"\n[prices]\nA800 = 1\n"
         "[[nodes]]\nname = \"n1\"\nfabric = \"f\"\ncpu_cores = 8\n"
         "memory_mib = 1024\naccelerators = [ { model = \"A800\", "
         "memory_mib = 81920, count = 2 } ]\n" +
         extra;
}

TEST(SandboxSetupTest, SiteConfigSandboxTable) {
  auto plain = ParseSiteConfig(SiteConfigWith(""), "/site");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->sandbox.mode, SandboxOptions::Mode::kBwrap);  // the default
  EXPECT_TRUE(plain->sandbox.allow_network);
  EXPECT_FALSE(plain->registration.policy().no_network());

  auto full = ParseSiteConfig(
      SiteConfigWith("[sandbox]\nmode = \"none\"\nread_only_paths = "
                     "[\"/usr\"]\nwritable_paths = [\"/scratch\"]\n"
                     "device_dir = \"fake-dev\"\nmemory_mib_per_card = 2048\n"
                     "pids_max = 100\nallow_network = false\n"),
      "/site");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->sandbox.mode, SandboxOptions::Mode::kNone);
  EXPECT_EQ(full->sandbox.read_only_paths, std::vector<std::string>{"/usr"});
  EXPECT_EQ(full->sandbox.writable_paths, std::vector<std::string>{"/scratch"});
  EXPECT_EQ(full->sandbox.device_dir, "/site/fake-dev");
  EXPECT_EQ(full->sandbox.memory_mib_per_card, 2048u);
  EXPECT_EQ(full->sandbox.pids_max, 100u);
  EXPECT_FALSE(full->sandbox.allow_network);
  // The broker hears it: no job asking for network is placed here.
  EXPECT_TRUE(full->registration.policy().no_network());

  for (const char* bad :
       {"[sandbox]\nmode = \"docker\"\n",
        "[sandbox]\nread_only_paths = [\"usr\"]\n",
        "[sandbox]\nread_only_paths = []\n", "[sandbox]\npids_max = -1\n",
        "[sandbox]\nno_such_key = 1\n",
        "[sandbox]\nallow_network = \"yes\"\n"}) {
    auto parsed = ParseSiteConfig(SiteConfigWith(bad), "/site");
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace computenet::provider
