// The shipped computenet-provider configured by an operator for Slurm
// (executor = "slurm", inventory = "slurm"), as a real process beside a real
// computenet-broker: it registers the Slurm node's GPUs and runs a job
// submitted with the computenet CLI as a Slurm batch job. Skipped only if
// tests/slurm/slurm-local.sh exits 77.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "local_slurm.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

class SlurmDaemonsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    slurm_ = StartLocalSlurm();
    if (slurm_.outcome == LocalSlurm::Outcome::kSkip) {
      GTEST_SKIP() << slurm_.message;
    }
    ASSERT_EQ(slurm_.outcome, LocalSlurm::Outcome::kRunning) << slurm_.message;
    site_ = UniqueSlurmOwner("site");
    Run({COMPUTENET_BROKER_BIN, "keygen", "--name", "hub", "--out",
         dir_.File("broker-keys")});
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "site-a", "--out",
         dir_.File("site-keys")});
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "alice", "--out",
         dir_.File("alice-keys")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role", "provider",
         "--identity", dir_.File("site-keys/identity.pub")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role", "consumer",
         "--identity", dir_.File("alice-keys/identity.pub")});
    Run({COMPUTENET_BROKER_BIN, "topup", "--db", db_, "--consumer", "alice",
         "--amount", "1000000", "--key", "wire-1"});
  }

  void TearDown() override {
    if (slurm_.outcome == LocalSlurm::Outcome::kRunning) {
      CancelOwnedSlurmJobs(slurm_, site_);
    }
  }

  void Run(const std::vector<std::string>& argv, int expected = 0) {
    std::string output;
    EXPECT_EQ(RunCommand(argv, cli_env_, &output), expected) << output;
  }

  std::string Cli(const std::vector<std::string>& args, int expected = 0) {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    EXPECT_EQ(RunCommand(argv, cli_env_, &output), expected) << output;
    return output;
  }

  LocalSlurm slurm_;
  std::string site_;
  TempDir dir_;
  std::string db_ = dir_.File("broker.db");
  std::map<std::string, std::string> cli_env_;
};

TEST_F(SlurmDaemonsTest, ProviderDaemonRegistersSlurmCapacityAndRunsJobsThere) {
  ChildProcess broker({COMPUTENET_BROKER_BIN, "run", "--db", db_, "--keys",
                       dir_.File("broker-keys"), "--broker-id", "hub",
                       "--endpoint", "tcp://127.0.0.1:0", "--heartbeat-ms", "200",
                       "--endpoint-file", dir_.File("endpoint")},
                      {}, dir_.File("broker.log"));
  std::string endpoint;
  ASSERT_TRUE(WaitUntil([&] {
    std::ifstream in(dir_.File("endpoint"));
    return static_cast<bool>(in >> endpoint);
  }));
  cli_env_["COMPUTENET_BROKER"] = endpoint;
  cli_env_["COMPUTENET_BROKER_IDENTITY"] = dir_.File("broker-keys/identity.pub");
  cli_env_["COMPUTENET_IDENTITY"] = dir_.File("alice-keys");

  std::ofstream(dir_.File("site.toml"))
      << "broker_endpoint = \"" << endpoint << "\"\n"
      << "broker_identity = \"broker-keys/identity.pub\"\n"
      << "identity_dir = \"site-keys\"\n"
      << "work_dir = \"work\"\n"
      << "site = \"" << site_ << "\"\nregion = \"north\"\ncurrency = \"CNY\"\n"
      << "executor = \"slurm\"\ninventory = \"slurm\"\n"
      << "[prices]\nA800 = 3600\n"
      << "[slurm]\n"
      << "conf = \"" << slurm_.conf << "\"\n"
      << "jobcomp_file = \"" << slurm_.jobcomp_file << "\"\n"
      << "shareable_partitions = [\"share\"]\n"
      << "model = \"A800\"\ncard_memory_mib = 81920\npoll_interval_ms = 200\n";
  ChildProcess provider({COMPUTENET_PROVIDER_BIN, "--config", dir_.File("site.toml")},
                        {}, dir_.File("provider.log"));

  std::string submitted = Cli({"submit", "--model", "A800", "--cards", "2",
                               "--max-duration", "60", "--wait", "--", "sh", "-c",
                               "echo \"slurm job $SLURM_JOB_ID in $SLURM_JOB_PARTITION\""});
  EXPECT_THAT(submitted, HasSubstr("hub-1"));
  EXPECT_THAT(submitted, HasSubstr("state      succeeded"));

  // It ran as a Slurm job in the shareable partition, under our site's tag.
  auto jobs = OwnedSlurmJobs(slurm_, site_);
  ASSERT_EQ(jobs.size(), 1u);
  provider::SlurmRecord job = ShowSlurmJob(slurm_, jobs[0].job_id);
  EXPECT_EQ(job.Get("JobState"), "COMPLETED");
  EXPECT_EQ(job.Get("Partition"), "share");
  EXPECT_EQ(job.Get("JobName"), "cn-hub-1");
  std::ifstream out(dir_.File("work/hub-1/slurm-" + jobs[0].job_id + ".out"));
  std::string line;
  std::getline(out, line);
  EXPECT_EQ(line, "slurm job " + jobs[0].job_id + " in share");

  provider.Signal(SIGTERM);
  EXPECT_EQ(provider.Wait(), 0);
  broker.Signal(SIGTERM);
  EXPECT_EQ(broker.Wait(), 0);
  std::stringstream log;
  log << std::ifstream(dir_.File("provider.log")).rdbuf();
  EXPECT_THAT(log.str(), HasSubstr("inventory: 1 node(s), 8 card(s) from slurm"));
}

}  // namespace
}  // namespace computenet::testing
