// The shipped binaries as real processes: computenet-broker,
// computenet-provider and the computenet CLI, configured as an operator
// would, including a broker killed with SIGKILL mid-job and restarted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

class DaemonsTest : public ::testing::Test {
 protected:
  void SetUp() override {
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
    // Prepaid: without funds no job of alice's would be placed.
    Run({COMPUTENET_BROKER_BIN, "topup", "--db", db_, "--consumer", "alice",
         "--amount", "1000000", "--key", "wire-1"});
  }

  void Run(const std::vector<std::string>& argv, int expected = 0) {
    std::string output;
    EXPECT_EQ(RunCommand(argv, cli_env_, &output), expected) << output;
  }

  std::unique_ptr<ChildProcess> StartBroker(const std::string& endpoint) {
    std::remove(dir_.File("endpoint").c_str());
    auto broker = std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_BROKER_BIN, "run", "--db", db_,
                                 "--keys", dir_.File("broker-keys"),
                                 "--broker-id", "hub", "--endpoint", endpoint,
                                 "--heartbeat-ms", "200", "--endpoint-file",
                                 dir_.File("endpoint")},
        std::map<std::string, std::string>{}, dir_.File("broker.log"));
    EXPECT_TRUE(WaitUntil([&] {
      std::ifstream in(dir_.File("endpoint"));
      return static_cast<bool>(in >> endpoint_);
    }));
    cli_env_["COMPUTENET_BROKER"] = endpoint_;
    cli_env_["COMPUTENET_BROKER_IDENTITY"] = dir_.File("broker-keys/identity.pub");
    cli_env_["COMPUTENET_IDENTITY"] = dir_.File("alice-keys");
    return broker;
  }

  std::unique_ptr<ChildProcess> StartProvider() {
    std::ofstream(dir_.File("site.toml"))
        << "broker_endpoint = \"" << endpoint_ << "\"\n"
        << "broker_identity = \"broker-keys/identity.pub\"\n"
        << "identity_dir = \"site-keys\"\n"
        << "work_dir = \"work\"\n"
        << "site = \"site-a\"\nregion = \"north\"\ncurrency = \"CNY\"\n"
        << "[prices]\nA800 = 3600\n"
        << "[[nodes]]\nname = \"n1\"\nfabric = \"ib\"\n"
        << "accelerators = [ { model = \"A800\", memory_mib = 81920, count = 4 } ]\n";
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_PROVIDER_BIN, "--config",
                                 dir_.File("site.toml")},
        std::map<std::string, std::string>{}, dir_.File("provider.log"));
  }

  std::string Cli(const std::vector<std::string>& args, int expected = 0) {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    EXPECT_EQ(RunCommand(argv, cli_env_, &output), expected) << output;
    return output;
  }

  TempDir dir_;
  std::string db_ = dir_.File("broker.db");
  std::string endpoint_;
  std::map<std::string, std::string> cli_env_;
};

TEST_F(DaemonsTest, SubmitWaitSettleAndAuditWithTheShippedBinaries) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  auto provider = StartProvider();
  std::string submitted = Cli({"submit", "--model", "A800", "--cards", "2",
                               "--max-duration", "60", "--wait", "--", "sh",
                               "-c", "echo hello from $CUDA_VISIBLE_DEVICES"});
  EXPECT_THAT(submitted, HasSubstr("hub-1"));
  EXPECT_THAT(submitted, HasSubstr("state      succeeded"));
  std::string failed = Cli({"submit", "--cards", "1", "--max-duration", "60",
                            "--wait", "--", "sh", "-c", "exit 4"},
                           3);
  EXPECT_THAT(failed, HasSubstr("exit code  4"));
  EXPECT_THAT(Cli({"jobs"}), HasSubstr("hub-2"));
  std::string json = Cli({"status", "hub-1", "--json"});
  EXPECT_THAT(json, HasSubstr("\"state\": \"JOB_STATE_SUCCEEDED\""));
  Cli({"status", "hub-99"}, 2);  // NOT_FOUND is bad input

  provider->Signal(SIGTERM);
  EXPECT_EQ(provider->Wait(), 0);
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);

  std::string verified = Cli({"ledger", "verify", db_});
  // The top-up, and per job a hold, its closing record and the release.
  EXPECT_THAT(verified, HasSubstr("ledger OK: 7 entries, 2 usage records"));
  EXPECT_THAT(verified, HasSubstr("signed checkpoints (covering 7 entries)"));
  std::string settlement;
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "settlement", "--db", db_}, {},
                       &settlement),
            0);
  EXPECT_THAT(settlement, HasSubstr("sum of all accounts"));
  EXPECT_THAT(settlement, HasSubstr("provider:site-a"));
}

TEST_F(DaemonsTest, BrokerKilledMidJobRestartsAndChargesExactlyOnce) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  const std::string endpoint = endpoint_;
  auto provider = StartProvider();
  const std::string flag = dir_.File("flag");
  std::string job = Cli({"submit", "--cards", "1", "--max-duration", "120",
                         "--", "sh", "-c",
                         "while [ ! -f " + flag + " ]; do sleep 0.05; done"});
  ASSERT_THAT(job, HasSubstr("hub-1"));
  ASSERT_TRUE(WaitUntil([&] {
    std::string out;
    RunCommand({COMPUTENET_CLI_BIN, "status", "hub-1"}, cli_env_, &out);
    return out.find("running") != std::string::npos;
  }));

  broker->Signal(SIGKILL);
  EXPECT_EQ(broker->Wait(), 128 + SIGKILL);
  { std::ofstream(flag) << "go"; }  // the job ends while its broker is down
  auto restarted = StartBroker(endpoint);

  std::string waited = Cli({"wait", "hub-1", "--timeout", "60"});
  EXPECT_THAT(waited, HasSubstr("state      succeeded"));
  provider->Signal(SIGTERM);
  provider->Wait();
  restarted->Signal(SIGTERM);
  EXPECT_EQ(restarted->Wait(), 0);
  // One usage record, posted once, and the ledger verifies.
  EXPECT_THAT(Cli({"ledger", "verify", db_}),
              HasSubstr("ledger OK: 4 entries, 1 usage records"));
}

}  // namespace
}  // namespace computenet::testing
