// The shipped binaries as real processes: computenet-broker,
// computenet-provider and the computenet CLI, configured as an operator
// would, including a broker killed with SIGKILL mid-job and restarted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "computenet/common/exit_codes.h"
#include "computenet/common/files.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

  std::unique_ptr<ChildProcess> StartBroker(
      const std::string& endpoint, const std::vector<std::string>& extra = {}) {
    std::remove(dir_.File("endpoint").c_str());
    std::vector<std::string> argv = {COMPUTENET_BROKER_BIN, "run", "--db", db_,
                                     "--keys", dir_.File("broker-keys"),
                                     "--broker-id", "hub", "--endpoint",
                                     endpoint, "--heartbeat-ms", "200",
                                     "--endpoint-file", dir_.File("endpoint")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto broker = std::make_unique<ChildProcess>(
        argv, std::map<std::string, std::string>{}, dir_.File("broker.log"));
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
        << "accelerators = [ { model = \"A800\", memory_mib = 81920, count = 4 } ]\n"
        // Jobs run sandboxed (bwrap): the flags and markers the tests use
        // to talk to them are in the test's directory.
        << "[sandbox]\nwritable_paths = [\"" << dir_.path() << "\"]\n";
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_PROVIDER_BIN, "--config",
                                 dir_.File("site.toml")},
        std::map<std::string, std::string>{}, dir_.File("provider.log"));
  }

  // What the broker has logged so far (empty before it wrote anything).
  std::string BrokerLog() {
    auto log = ReadFileToString(dir_.File("broker.log"));
    return log.ok() ? *log : std::string();
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
                           kExitJobFailed);
  EXPECT_THAT(failed, HasSubstr("exit code  4"));
  EXPECT_THAT(Cli({"jobs"}), HasSubstr("hub-2"));
  const std::string failed_only = Cli({"jobs", "--state", "failed,cancelled"});
  EXPECT_THAT(failed_only, HasSubstr("hub-2"));
  EXPECT_THAT(failed_only, Not(HasSubstr("hub-1 ")));
  EXPECT_THAT(failed_only, HasSubstr("SUBMITTED"));
  Cli({"jobs", "--state", "finished"}, kExitUsage);
  // --timeout 0 waits without a limit (it used to mean 0 ms).
  Cli({"submit", "--cards", "1", "--max-duration", "60", "--", "sleep", "0.5"});
  EXPECT_THAT(Cli({"wait", "hub-3", "--timeout", "0"}), HasSubstr("state      succeeded"));
  std::string json = Cli({"status", "hub-1", "--json"});
  EXPECT_THAT(json, HasSubstr("\"state\": \"JOB_STATE_SUCCEEDED\""));
  Cli({"status", "hub-99"}, kExitNotFound);

  provider->Signal(SIGTERM);
  EXPECT_EQ(provider->Wait(), 0);
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);

  std::string verified = Cli({"ledger", "verify", db_});
  // The top-up, and per job a hold, its closing record and the release.
  EXPECT_THAT(verified, HasSubstr("ledger OK: 10 entries, 3 usage records"));
  EXPECT_THAT(verified, HasSubstr("signed checkpoints (covering 10 entries)"));
  std::string settlement;
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "settlement", "--db", db_}, {},
                       &settlement),
            0);
  EXPECT_THAT(settlement, HasSubstr("sum of all accounts"));
  EXPECT_THAT(settlement, HasSubstr("provider:site-a"));
}

// Live logs (issue 11, item 2) from the shipped CLI: `logs -f` prints lines
// while the job runs and returns when it ended; `status` of the failed job
// shows its stderr's last lines; --tail and another job's id.
TEST_F(DaemonsTest, LogsFollowPrintsLinesWhileTheJobRunsThenReturns) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  auto provider = StartProvider();
  const std::string flag = dir_.File("go");
  const std::string job_id =
      Cli({"submit", "--cards", "1", "--max-duration", "60", "--", "sh", "-c",
           "echo line 1; while [ ! -f " + flag +
               " ]; do sleep 0.02; done; echo line 2; echo oops it failed >&2; "
               "exit 5"});
  ASSERT_THAT(job_id, HasSubstr("hub-1"));
  ChildProcess follow({COMPUTENET_CLI_BIN, "logs", "-f", "hub-1"}, cli_env_,
                      dir_.File("follow.out"));
  auto followed = [&] {
    auto text = ReadFileToString(dir_.File("follow.out"));
    return text.ok() ? *text : std::string();
  };
  ASSERT_TRUE(WaitUntil([&] {
    return followed().find("line 1\n") != std::string::npos;
  })) << followed();
  EXPECT_THAT(Cli({"status", "hub-1"}), HasSubstr("state      running"));
  EXPECT_THAT(followed(), Not(HasSubstr("line 2")));
  std::ofstream(flag) << "go";
  EXPECT_EQ(follow.Wait(std::chrono::seconds(60)), 0) << followed();
  EXPECT_THAT(followed(), HasSubstr("line 1\nline 2\n"));
  EXPECT_THAT(followed(), HasSubstr("oops it failed\n"));

  const std::string status = Cli({"status", "hub-1"});
  EXPECT_THAT(status, HasSubstr("state      failed"));
  EXPECT_THAT(status, HasSubstr("stderr     (last lines"));
  EXPECT_THAT(status, HasSubstr("  oops it failed\n"));
  const std::string tail =
      Cli({"logs", "hub-1", "--tail", "1", "--stream", "out"});
  EXPECT_EQ(tail, "line 2\n");
  Cli({"logs", "hub-7"}, kExitNotFound);
}

TEST_F(DaemonsTest, SubmitFromAJobFileWithFlagsOverridingItsKeys) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  auto provider = StartProvider();
  std::ofstream(dir_.File("job.toml"))
      << "name = \"from-file\"\n"
      << "command = [\"sh\", \"-c\", \"test \\\"$GREETING\\\" = hello\"]\n"
      << "models = \"A800\"\ncards = 4\nmax_duration_s = 60\n"
      << "max_price = 5000\nidempotency_key = \"file-run-1\"\n"
      << "[env]\nGREETING = \"hello\"\nOTHER = \"file\"\n";
  // --cards and one --env given: they win; everything else is the file's.
  std::string submitted = Cli({"submit", "-f", dir_.File("job.toml"), "--cards", "2",
                               "--env", "OTHER=flag", "--wait"});
  EXPECT_THAT(submitted, HasSubstr("state      succeeded"));
  const std::string job_id = submitted.substr(0, submitted.find('\n'));
  auto job = nlohmann::json::parse(Cli({"status", job_id, "--json"}));
  EXPECT_EQ(job["spec"]["name"], "from-file");
  EXPECT_EQ(job["spec"]["cards_per_node"], 2);
  EXPECT_EQ(job["spec"]["max_duration_s"], 60);
  EXPECT_EQ(job["spec"]["max_price_per_card_hour"], "5000");
  EXPECT_EQ(job["spec"]["accelerator_models"][0], "A800");
  EXPECT_EQ(job["spec"]["env"]["GREETING"], "hello");
  EXPECT_EQ(job["spec"]["env"]["OTHER"], "flag");
  // The file's idempotency key: the same file submitted again is the same job.
  std::string again = Cli({"submit", "-f", dir_.File("job.toml"), "--cards", "2"});
  EXPECT_EQ(again.substr(0, again.find('\n')), job_id);

  // A bad file is a usage-class error naming the file, the key and its line,
  // before anything is sent.
  std::ofstream(dir_.File("bad.toml")) << "name = \"x\"\ncards = \"two\"\n";
  std::string output;
  EXPECT_EQ(RunCommand({COMPUTENET_CLI_BIN, "submit", "-f", dir_.File("bad.toml")},
                       cli_env_, &output),
            kExitUsage)
      << output;
  EXPECT_THAT(output, HasSubstr("bad.toml: 'cards' at line 2 must be an integer"));
  // No command anywhere.
  std::ofstream(dir_.File("empty.toml")) << "cards = 1\n";
  EXPECT_EQ(RunCommand({COMPUTENET_CLI_BIN, "submit", "-f", dir_.File("empty.toml")},
                       cli_env_, &output),
            kExitUsage)
      << output;
  EXPECT_THAT(output, HasSubstr("no command"));
  provider->Signal(SIGTERM);
  EXPECT_EQ(provider->Wait(), 0);
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
}

TEST_F(DaemonsTest, MetricsAndHealthAreServedOverHttp) {
  auto broker = StartBroker("tcp://127.0.0.1:0", {"--metrics-address", "127.0.0.1:0"});
  std::string url;
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = BrokerLog();
    const size_t at = log.find("metrics on http://");
    if (at == std::string::npos) return false;
    const size_t start = at + std::string("metrics on ").size();
    url = log.substr(start, log.find("/metrics", start) - start);
    return true;
  }));
  // A real HTTP client over TCP, as Prometheus scrapes.
  const std::string host_port = url.substr(std::string("http://").size());
  httplib::Client http(host_port.substr(0, host_port.rfind(':')),
                       std::stoi(host_port.substr(host_port.rfind(':') + 1)));
  auto health = http.Get("/healthz");
  ASSERT_TRUE(health) << url;
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(http.Get("/nothing")->status, 404);

  auto provider = StartProvider();
  Cli({"submit", "--model", "A800", "--cards", "2", "--max-duration", "60", "--wait",
       "--", "true"});
  Cli({"status", "hub-99"}, kExitNotFound);
  std::string metrics;
  // Gauges are sampled once a second: wait for the sample after the job.
  ASSERT_TRUE(WaitUntil([&] {
    auto scraped = http.Get("/metrics");
    if (!scraped || scraped->status != 200) return false;
    metrics = scraped->body;
    return metrics.find("computenet_cards{model=\"A800\",state=\"free\"} 4") !=
           std::string::npos;
  })) << metrics;
  EXPECT_THAT(metrics, HasSubstr("computenet_job_transitions_total{state=\"succeeded\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("computenet_job_transitions_total{state=\"placed\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("computenet_providers{state=\"online\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("computenet_cards{model=\"A800\",state=\"used\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("computenet_jobs{state=\"queued\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("computenet_requests_total{type=\"MESSAGE_TYPE_SUBMIT_JOB\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("computenet_requests_refused_total{code=\"NOT_FOUND\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("computenet_submit_to_placed_seconds_count 1"));
  EXPECT_THAT(metrics, HasSubstr("computenet_broker_info{"));
  EXPECT_THAT(metrics, HasSubstr("# TYPE computenet_commit_duration_seconds histogram"));
  EXPECT_THAT(metrics, HasSubstr("computenet_ledger_entries "));

  provider->Signal(SIGTERM);
  EXPECT_EQ(provider->Wait(), 0);
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
}

TEST_F(DaemonsTest, OperatorGrantsHighPriorityPerOrganization) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  const std::vector<std::string> urgent = {
      COMPUTENET_CLI_BIN, "submit", "--cards", "1", "--max-duration", "60",
      "--priority", "high", "--", "true"};
  std::string output;
  EXPECT_NE(RunCommand(urgent, cli_env_, &output), 0);
  EXPECT_THAT(output, HasSubstr("may not submit HIGH priority jobs"));
  // The grant, by the operator on the live broker's file, applies at once.
  Run({COMPUTENET_BROKER_BIN, "priority", "--db", db_, "--org", "alice",
       "--max", "high"});
  output.clear();
  EXPECT_EQ(RunCommand(urgent, cli_env_, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("hub-1"));
  output.clear();
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "priority", "--db", db_}, {}, &output), 0);
  EXPECT_THAT(output, HasSubstr("alice\tHIGH"));
  output.clear();
  EXPECT_NE(RunCommand({COMPUTENET_BROKER_BIN, "priority", "--db", db_, "--org",
                        "alice", "--max", "urgent"},
                       {}, &output),
            0);
  EXPECT_THAT(output, HasSubstr("--max must be low, normal or high"));
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
}

TEST_F(DaemonsTest, ExitCodesFollowTheOneDocumentedTable) {
  // Usage errors, from the argument parser and from the tools' own checks.
  Cli({"submit", "--no-such-flag"}, kExitUsage);
  Cli({"status"}, kExitUsage);
  std::string output;
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "topup", "--db", db_}, {}, &output),
            kExitUsage)
      << output;
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "priority", "--db", db_, "--org",
                        "alice", "--max", "urgent"},
                       {}, &output),
            kExitUsage);
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "credit-limit", "--db", db_,
                        "--consumer", "nobody", "--limit", "5"},
                       {}, &output),
            kExitNotFound);
  // Already enrolled: refused in the current state.
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role",
                        "consumer", "--identity", dir_.File("alice-keys/identity.pub")},
                       {}, &output),
            kExitWrongState);
  auto broker = StartBroker("tcp://127.0.0.1:0");
  Cli({"status", "hub-7"}, kExitNotFound);
  // HIGH without the grant: refused.
  Cli({"submit", "--cards", "1", "--max-duration", "60", "--priority", "high",
       "--", "true"},
      kExitRefused);
  // A job that waits (no provider yet) past the wait's timeout.
  const std::string queued =
      Cli({"submit", "--cards", "1", "--max-duration", "60", "--", "true"});
  Cli({"wait", queued.substr(0, queued.find('\n')), "--timeout", "1"},
      kExitUnavailable);
  // A second broker on the same database: refused in the current state.
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "run", "--db", db_, "--keys",
                        dir_.File("broker-keys"), "--endpoint", "tcp://127.0.0.1:0"},
                       {}, &output),
            kExitWrongState)
      << output;
  // Help and version are not errors.
  Cli({"--help"}, kExitOk);
  Cli({"--version"}, kExitOk);
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
}

TEST_F(DaemonsTest, FlagsGivenWithAConfigFileOverrideItsKeys) {
  // The file's endpoint cannot be bound; the flag's can. Before, the file
  // silently won.
  std::ofstream(dir_.File("hub.toml"))
      << "broker_id = \"hub\"\nregion = \"north\"\n"
      << "endpoint = \"tcp://256.0.0.1:7700\"\n"
      << "database = \"broker.db\"\nkeys = \"broker-keys\"\nfee_bps = 100\n";
  ChildProcess broker({COMPUTENET_BROKER_BIN, "run", "--config", dir_.File("hub.toml"),
                       "--endpoint", "tcp://127.0.0.1:0", "--endpoint-file",
                       dir_.File("endpoint"), "--fee-bps", "250"},
                      {}, dir_.File("broker.log"));
  ASSERT_TRUE(WaitUntil([&] {
    std::ifstream in(dir_.File("endpoint"));
    std::string endpoint;
    return static_cast<bool>(in >> endpoint) &&
           endpoint.rfind("tcp://127.0.0.1:", 0) == 0;
  }));
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = BrokerLog();
    return log.find("override") != std::string::npos &&
           log.find("--endpoint, --endpoint-file, --fee-bps") != std::string::npos;
  }));
  broker.Signal(SIGTERM);
  EXPECT_EQ(broker.Wait(), 0);
}

TEST_F(DaemonsTest, ABrokerRunFromItsConfigLogsSafeUtcLinesUnderItsName) {
  // With --config the broker once set its own log pattern, which printed
  // messages raw: a job id with a newline then forged a whole log line.
  std::ofstream(dir_.File("hub.toml"))
      << "broker_id = \"hub-north\"\nregion = \"north\"\n"
      << "endpoint = \"tcp://127.0.0.1:0\"\n"
      << "database = \"broker.db\"\nkeys = \"broker-keys\"\n";
  ChildProcess broker({COMPUTENET_BROKER_BIN, "run", "--config", dir_.File("hub.toml"),
                       "--endpoint-file", dir_.File("endpoint")},
                      {}, dir_.File("broker.log"));
  ASSERT_TRUE(WaitUntil([&] {
    std::ifstream in(dir_.File("endpoint"));
    return static_cast<bool>(in >> endpoint_);
  }));
  cli_env_["COMPUTENET_BROKER"] = endpoint_;
  cli_env_["COMPUTENET_BROKER_IDENTITY"] = dir_.File("broker-keys/identity.pub");
  cli_env_["COMPUTENET_IDENTITY"] = dir_.File("alice-keys");
  const std::string forged = "2020-01-01T00:00:00.000Z E [hub-north] forged";
  Cli({"status", "job-x\n" + forged}, kExitNotFound);
  std::string log;
  ASSERT_TRUE(WaitUntil([&] {
    log = BrokerLog();
    return log.find("no job job-x") != std::string::npos;
  }));
  EXPECT_THAT(log, HasSubstr("no job job-x\\n" + forged));  // escaped
  std::istringstream lines(log);
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    // 2026-12-03T14:05:25.123Z I [hub-north] ...: UTC, with the zone.
    ASSERT_GE(line.size(), 37u) << line;
    EXPECT_EQ(line[4], '-') << line;
    EXPECT_EQ(line[10], 'T') << line;
    EXPECT_EQ(line[23], 'Z') << line;
    EXPECT_NE(line.rfind("2020-01-01", 0), 0u) << "a forged line: " << line;
    EXPECT_THAT(line, HasSubstr(" [hub-north] ")) << line;
    ++checked;
  }
  EXPECT_GE(checked, 2);
  broker.Signal(SIGTERM);
  EXPECT_EQ(broker.Wait(), 0);
}

TEST_F(DaemonsTest, WithLogFormatJsonEveryLineIsOneJsonObject) {
  auto broker = StartBroker("tcp://127.0.0.1:0", {"--log-format", "json"});
  Cli({"status", "job-y\n\"quoted\" \x01"}, kExitNotFound);
  std::string log;
  ASSERT_TRUE(WaitUntil([&] {
    log = BrokerLog();
    return log.find("no job job-y") != std::string::npos;
  }));
  std::istringstream lines(log);
  std::string line;
  bool found = false;
  int parsed = 0;
  while (std::getline(lines, line)) {
    auto object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(object.is_object()) << "not one JSON object: " << line;
    EXPECT_EQ(object.size(), 4u) << line;
    ASSERT_TRUE(object["time"].is_string()) << line;
    const std::string time = object["time"];
    EXPECT_EQ(time.size(), 24u) << line;
    EXPECT_EQ(time.back(), 'Z') << line;
    EXPECT_TRUE(object["level"].is_string()) << line;
    EXPECT_EQ(object["component"], "broker") << line;
    ASSERT_TRUE(object["message"].is_string()) << line;
    const std::string message = object["message"];
    // The message is the text format's: escaped by SafeText, then JSON.
    if (message.find("no job job-y\\n\"quoted\" \\x01") != std::string::npos) {
      found = true;
    }
    ++parsed;
  }
  EXPECT_TRUE(found) << log;
  EXPECT_GE(parsed, 2);
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
}

TEST_F(DaemonsTest, EveryBinaryTellsItsVersionAndRefusesAnUnknownLogLevel) {
  for (const std::string binary :
       {COMPUTENET_BROKER_BIN, COMPUTENET_PROVIDER_BIN, COMPUTENET_CLI_BIN}) {
    std::string output;
    EXPECT_EQ(RunCommand({binary, "--version"}, {}, &output), 0) << binary;
    EXPECT_THAT(output, HasSubstr(COMPUTENET_VERSION_STRING)) << binary;
  }
  // An unknown level used to turn logging off without a word.
  std::string output;
  EXPECT_NE(RunCommand({COMPUTENET_BROKER_BIN, "--log-level", "verbose",
                        "keygen", "--name", "x", "--out", dir_.File("x")},
                       {}, &output),
            0);
  EXPECT_THAT(output, HasSubstr("log-level"));
  EXPECT_FALSE(std::ifstream(dir_.File("x/identity.pub")).good());
  output.clear();
  EXPECT_NE(RunCommand({COMPUTENET_PROVIDER_BIN, "--config",
                        dir_.File("none.toml"), "--log-level", "loud"},
                       {}, &output),
            0);
  EXPECT_THAT(output, HasSubstr("log-level"));
}

TEST_F(DaemonsTest, SighupReloadsRevocationsAndTheBrokerKeepsServing) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  EXPECT_THAT(Cli({"jobs"}), HasSubstr("JOB "));
  broker->Signal(SIGHUP);
  // It used to die of it (exit 129); now it logs the reload and serves on.
  EXPECT_TRUE(WaitUntil([&] {
    return BrokerLog().find("reload: 0 revoked key(s)") != std::string::npos;
  }));
  EXPECT_THAT(Cli({"jobs"}), HasSubstr("JOB "));
  // A second broker on the same database is refused, naming the first.
  std::string refused;
  EXPECT_NE(RunCommand({COMPUTENET_BROKER_BIN, "run", "--db", db_, "--keys",
                        dir_.File("broker-keys"), "--broker-id", "hub",
                        "--endpoint", "tcp://127.0.0.1:0"},
                       {}, &refused),
            0);
  EXPECT_THAT(refused, HasSubstr("in use by another broker (pid"));
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
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

TEST_F(DaemonsTest, OperatorLedgerCommandsStatementsAndProofs) {
  // Top-ups are idempotent on their key; limits cannot drop below use.
  std::string output;
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "topup", "--db", db_,
                        "--consumer", "alice", "--amount", "1000000", "--key",
                        "wire-1"},
                       {}, &output),
            0);
  EXPECT_THAT(output, HasSubstr("already topped up"));
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "topup", "--db", db_,
                        "--consumer", "mallory", "--amount", "5"},
                       {}, &output),
            kExitNotFound);
  EXPECT_THAT(output, HasSubstr("no consumer 'mallory'"));
  Run({COMPUTENET_BROKER_BIN, "credit-limit", "--db", db_, "--consumer",
       "alice", "--limit", "5000"});

  auto broker = StartBroker("tcp://127.0.0.1:0",
                            {"--fee-bps", "100", "--checkpoint-every", "1"});
  auto provider = StartProvider();
  std::string submitted = Cli({"submit", "--cards", "1", "--max-duration",
                               "60", "--wait", "--", "true"});
  EXPECT_THAT(submitted, HasSubstr("state      succeeded"));

  // The statement comes from the broker, each line checked with its key.
  std::string table = Cli({"statement"});
  EXPECT_THAT(table, HasSubstr("Statement of consumer:alice"));
  EXPECT_THAT(table, HasSubstr("credit_limit"));
  EXPECT_THAT(table, HasSubstr("hold:hub-1:1"));
  EXPECT_THAT(table, HasSubstr("verified: every line"));
  std::string csv = Cli({"statement", "--format", "csv"});
  EXPECT_THAT(csv, HasSubstr("sequence,time,kind,job_id,amount"));
  EXPECT_THAT(csv, HasSubstr(",usage,hub-1,-1,"));  // 1 card-s at 3600/h
  std::string json = Cli({"statement", "--format", "json"});
  EXPECT_THAT(json, HasSubstr("\"verified\": true"));
  EXPECT_THAT(json, HasSubstr("\"audit_path\""));
  Cli({"statement", "--from", "2001-01-01", "--to", "2001-01-02"});
  Cli({"statement", "--from", "yesterday"}, kExitUsage);

  provider->Signal(SIGTERM);
  provider->Wait();
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);

  // Offline: prove one entry, check it with the broker's public key only.
  const std::string proof = dir_.File("proof.json");
  Cli({"ledger", "prove", db_, "--entry", "4", "--out", proof});
  const std::string broker_pub = dir_.File("broker-keys/identity.pub");
  EXPECT_THAT(Cli({"ledger", "verify-proof", proof, "--broker-identity",
                   broker_pub}),
              HasSubstr("proof OK: entry 4 (usage, job hub-1)"));
  // Under another key, or altered, it fails.
  EXPECT_THAT(Cli({"ledger", "verify-proof", proof, "--broker-identity",
                   dir_.File("alice-keys/identity.pub")},
                  1),
              HasSubstr("FAILED"));
  std::string text;
  {
    std::ifstream in(proof);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string index = "\"leafIndex\": \"3\"";
  const size_t at = text.find(index);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, index.size(), "\"leafIndex\": \"2\"");
  std::ofstream(dir_.File("forged.json")) << text;
  Cli({"ledger", "verify-proof", dir_.File("forged.json"), "--broker-identity",
       broker_pub},
      1);
  // The whole file, with the broker's key pinned.
  std::string verified =
      Cli({"ledger", "verify", db_, "--broker-identity", broker_pub});
  EXPECT_THAT(verified, HasSubstr("ledger OK"));
  EXPECT_THAT(verified, HasSubstr("key pinned"));
  Cli({"ledger", "verify", db_, "--broker-identity",
       dir_.File("alice-keys/identity.pub")},
      1);
  std::string settlement;
  EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "settlement", "--db", db_}, {},
                       &settlement),
            0);
  EXPECT_THAT(settlement, HasSubstr("fee:hub"));
  EXPECT_THAT(settlement, HasSubstr("credit limit 5000"));
}

}  // namespace
}  // namespace computenet::testing
