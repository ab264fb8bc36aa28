// The provider agent's durable state and restart (issue 12, part 2), over
// real processes and sockets: computenet-broker and computenet-provider as
// the shipped binaries, SIGKILLed and restarted, jobs that write marker
// files; and a hand-driven provider connection against an in-process broker
// for the broker's side of re-registration and of one agent per key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "computenet/common/transport.h"
#include "computenet/common/usage_record.h"
#include "computenet/storage/database.h"
#include "jobs/store.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

int CountLines(const std::string& path) {
  const std::string text = ReadAll(path);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// "key=value" lines of a supervisor's record.
std::map<std::string, int64_t> ReadRecord(const std::string& path) {
  std::map<std::string, int64_t> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) {
      out[line.substr(0, eq)] = std::stoll(line.substr(eq + 1));
    }
  }
  return out;
}

class AgentRestartTest : public ::testing::Test {
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
    cli_env_["COMPUTENET_BROKER_IDENTITY"] =
        dir_.File("broker-keys/identity.pub");
    cli_env_["COMPUTENET_IDENTITY"] = dir_.File("alice-keys");
    return broker;
  }

  // A site agent with its own work and state directories under `name`
  // (same key every time), interim usage every second.
  std::unique_ptr<ChildProcess> StartProvider(const std::string& name = "a") {
    const std::string config = dir_.File("site-" + name + ".toml");
    std::ofstream(config)
        << "broker_endpoint = \"" << endpoint_ << "\"\n"
        << "broker_identity = \"broker-keys/identity.pub\"\n"
        << "identity_dir = \"site-keys\"\n"
        << "work_dir = \"work-" << name << "\"\n"
        << "state_dir = \"state-" << name << "\"\n"
        << "usage_interval_s = 1\n"
        << "site = \"site-a\"\nregion = \"north\"\ncurrency = \"CNY\"\n"
        << "[prices]\nA800 = 3600\n"
        << "[[nodes]]\nname = \"n1\"\nfabric = \"ib\"\n"
        << "accelerators = [ { model = \"A800\", memory_mib = 81920, count = 4 "
           "} ]\n"
        // Jobs run sandboxed (bwrap): the flags and markers the tests use
        // to talk to them are in the test's directory.
        << "[sandbox]\nwritable_paths = [\"" << dir_.path() << "\"]\n";
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_PROVIDER_BIN, "--config", config},
        std::map<std::string, std::string>{},
        dir_.File("provider-" + name + ".log"));
  }

  std::string Cli(const std::vector<std::string>& args, int expected = 0) {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    EXPECT_EQ(RunCommand(argv, cli_env_, &output), expected) << output;
    return output;
  }

  // Submits a one-card job that appends a line to its marker file, waits
  // for `flag` and exits with `exit_code`; returns its id.
  std::string SubmitMarkedJob(const std::string& marker,
                              const std::string& flag, int exit_code) {
    const std::string out = Cli(
        {"submit", "--cards", "1", "--max-duration", "300", "--", "sh", "-c",
         "echo ran >> " + marker + "; while [ ! -f " + flag +
             " ]; do sleep 0.05; done; exit " + std::to_string(exit_code)});
    const auto at = out.find("hub-");
    EXPECT_NE(at, std::string::npos) << out;
    if (at == std::string::npos) return "";
    size_t end = at + 4;
    while (end < out.size() &&
           std::isdigit(static_cast<unsigned char>(out[end]))) {
      ++end;
    }
    return out.substr(at, end - at);
  }

  broker::Store& Store() {
    if (!store_) {
      auto store = broker::Store::Open(db_);
      EXPECT_TRUE(store.ok()) << store.status().ToString();
      store_ = std::move(*store);
    }
    return *store_;
  }

  v1::JobInfo Job(const std::string& job_id) {
    auto job = Store().GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : v1::JobInfo();
  }

  bool ProviderOnline() {
    auto online = Store().database().QueryInt(
        "SELECT COUNT(*) FROM providers WHERE name = 'site-a' AND online = 1");
    return online.ok() && *online == 1;
  }

  // Reports in agent `name`'s durable outbox about job_id.
  int64_t OutboxRows(const std::string& name, const std::string& job_id) {
    storage::DatabaseOptions options;
    options.read_only = true;
    auto db = storage::Database::Open(dir_.File("state-" + name + "/agent.db"),
                                      options);
    if (!db.ok()) return -1;
    auto count = (*db)->QueryInt(
        "SELECT COUNT(*) FROM agent_outbox WHERE job_id = '" + job_id + "'");
    return count.ok() ? *count : -1;
  }

  std::string RecordPath(const std::string& name, const std::string& job_id,
                         const char* suffix) {
    return dir_.File("state-" + name + "/.supervisors/" + job_id + "/1.n1" +
                     suffix);
  }

  TempDir dir_;
  std::string db_ = dir_.File("broker.db");
  std::string endpoint_;
  std::map<std::string, std::string> cli_env_;
  std::unique_ptr<broker::Store> store_;
};

// The chaos-run findings (a) and (b): jobs that end while their agent is
// dead are reported as they ended, billed once for what ran, never rerun.
TEST_F(AgentRestartTest,
       JobsThatEndWhileTheAgentIsDeadAreReportedAndBilledOnce) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  auto provider = StartProvider();
  const std::string flag = dir_.File("flag");
  const std::string ok_marker = dir_.File("ok.marker");
  const std::string bad_marker = dir_.File("bad.marker");
  const std::string ok_job = SubmitMarkedJob(ok_marker, flag, 0);
  const std::string bad_job = SubmitMarkedJob(bad_marker, flag, 3);
  // Both run, and the first has been billed an interim second already.
  ASSERT_TRUE(WaitUntil([&] {
    return Job(ok_job).state() == v1::JOB_STATE_RUNNING &&
           Job(bad_job).state() == v1::JOB_STATE_RUNNING &&
           Job(ok_job).card_seconds() >= 1;
  }));

  provider->Signal(SIGKILL);
  EXPECT_EQ(provider->Wait(), 128 + SIGKILL);
  { std::ofstream(flag) << "go"; }  // both end while no agent watches
  ASSERT_TRUE(WaitUntil([&] {
    return std::filesystem::exists(RecordPath("a", ok_job, ".exit")) &&
           std::filesystem::exists(RecordPath("a", bad_job, ".exit"));
  }));
  const auto ok_record = ReadRecord(RecordPath("a", ok_job, ".exit"));
  auto restarted = StartProvider();

  ASSERT_TRUE(WaitUntil([&] {
    return Job(ok_job).state() == v1::JOB_STATE_SUCCEEDED &&
           Job(bad_job).state() == v1::JOB_STATE_FAILED;
  })) << ReadAll(dir_.File("provider-a.log"));
  const v1::JobInfo ok = Job(ok_job);
  const v1::JobInfo bad = Job(bad_job);
  EXPECT_EQ(ok.exit_code(), 0);
  EXPECT_EQ(bad.exit_code(), 3);
  // Run once each: one marker line, one attempt.
  EXPECT_EQ(CountLines(ok_marker), 1);
  EXPECT_EQ(CountLines(bad_marker), 1);
  EXPECT_EQ(ok.attempts(), 1u);
  EXPECT_EQ(bad.attempts(), 1u);
  // Billed for exactly what ran: from its start to the end its supervisor
  // saw, in interim records before the crash and one closing record after
  // (3600 per card-hour = 1 per card-second).
  ASSERT_EQ(ok_record.count("end_ms"), 1u);
  EXPECT_EQ(ok.card_seconds(),
            CardSecondsFor(1, ok.started_ms(), ok_record.at("end_ms")));
  EXPECT_EQ(ok.charged(), static_cast<int64_t>(ok.card_seconds()));
  EXPECT_GT(bad.card_seconds(), 0u);

  restarted->Signal(SIGTERM);
  restarted->Wait();
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
  EXPECT_THAT(Cli({"ledger", "verify", db_}), HasSubstr("ledger OK"));
}

// A job still running when its agent comes back is taken back: metered on
// from where it stopped, stopped by nobody, reported once when it ends.
TEST_F(AgentRestartTest, AJobStillRunningAtTheRestartIsTakenBack) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  auto provider = StartProvider();
  const std::string flag = dir_.File("flag");
  const std::string marker = dir_.File("marker");
  const std::string job_id = SubmitMarkedJob(marker, flag, 0);
  ASSERT_TRUE(WaitUntil([&] { return Job(job_id).card_seconds() >= 1; }));

  provider->Signal(SIGKILL);
  EXPECT_EQ(provider->Wait(), 128 + SIGKILL);
  const uint64_t before = Job(job_id).card_seconds();
  auto restarted = StartProvider();
  // Interim records go on after the restart: the run is watched again.
  ASSERT_TRUE(WaitUntil([&] { return Job(job_id).card_seconds() > before; }))
      << ReadAll(dir_.File("provider-a.log"));
  EXPECT_EQ(Job(job_id).state(), v1::JOB_STATE_RUNNING);
  { std::ofstream(flag) << "go"; }
  ASSERT_TRUE(WaitUntil(
      [&] { return Job(job_id).state() == v1::JOB_STATE_SUCCEEDED; }));
  const v1::JobInfo done = Job(job_id);
  EXPECT_EQ(done.exit_code(), 0);
  EXPECT_EQ(CountLines(marker), 1);
  EXPECT_EQ(done.attempts(), 1u);
  // Never billed past the run (no interval twice): at most from its start
  // to when the broker stored its end.
  EXPECT_LE(done.card_seconds(),
            CardSecondsFor(1, done.started_ms(), done.finished_ms()));
  EXPECT_EQ(done.charged(), static_cast<int64_t>(done.card_seconds()));
  EXPECT_THAT(ReadAll(dir_.File("provider-a.log")),
              Not(HasSubstr("broker refused")));

  restarted->Signal(SIGTERM);
  restarted->Wait();
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
  EXPECT_THAT(Cli({"ledger", "verify", db_}), HasSubstr("ledger OK"));
}

// Reports the broker never acknowledged survive the agent's death.
TEST_F(AgentRestartTest, UnacknowledgedReportsAreResentAfterARestart) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  const std::string endpoint = endpoint_;
  auto provider = StartProvider();
  const std::string flag = dir_.File("flag");
  const std::string marker = dir_.File("marker");
  const std::string job_id = SubmitMarkedJob(marker, flag, 0);
  ASSERT_TRUE(
      WaitUntil([&] { return Job(job_id).state() == v1::JOB_STATE_RUNNING; }));
  store_.reset();

  broker->Signal(SIGKILL);
  EXPECT_EQ(broker->Wait(), 128 + SIGKILL);
  { std::ofstream(flag) << "go"; }
  // The agent saw the end and queued its closing usage and its status;
  // nobody can acknowledge them.
  ASSERT_TRUE(WaitUntil([&] { return OutboxRows("a", job_id) >= 2; }))
      << ReadAll(dir_.File("provider-a.log"));
  provider->Signal(SIGKILL);
  EXPECT_EQ(provider->Wait(), 128 + SIGKILL);

  auto restarted_broker = StartBroker(endpoint);
  auto restarted = StartProvider();
  ASSERT_TRUE(WaitUntil([&] {
    return Job(job_id).state() == v1::JOB_STATE_SUCCEEDED;
  })) << ReadAll(dir_.File("provider-a.log"));
  EXPECT_GT(Job(job_id).card_seconds(), 0u);
  EXPECT_EQ(CountLines(marker), 1);
  // Acknowledged now, so gone from the outbox.
  EXPECT_TRUE(WaitUntil([&] { return OutboxRows("a", job_id) == 0; }));

  restarted->Signal(SIGTERM);
  restarted->Wait();
  restarted_broker->Signal(SIGTERM);
  EXPECT_EQ(restarted_broker->Wait(), 0);
  EXPECT_THAT(Cli({"ledger", "verify", db_}), HasSubstr("ledger OK"));
}

TEST_F(AgentRestartTest, ASecondAgentWithTheSameKeyIsRefusedAndARestartGetsIn) {
  auto broker = StartBroker("tcp://127.0.0.1:0");
  auto first = StartProvider("a");
  ASSERT_TRUE(WaitUntil([&] { return ProviderOnline(); }));

  // Same key, its own state: refused by the broker, and it says why.
  auto second = StartProvider("b");
  EXPECT_EQ(second->Wait(), 1);  // ALREADY_EXISTS: not a config error
  EXPECT_THAT(ReadAll(dir_.File("provider-b.log")),
              HasSubstr("already served by another agent"));
  // Same state directory: refused before it even connects.
  std::string refused;
  EXPECT_NE(RunCommand(
                {COMPUTENET_PROVIDER_BIN, "--config", dir_.File("site-a.toml")},
                {}, &refused),
            0);
  EXPECT_THAT(refused, HasSubstr("in use by another agent (pid"));

  // The first still serves.
  const std::string flag = dir_.File("flag");
  { std::ofstream(flag) << "go"; }
  const std::string job_id = SubmitMarkedJob(dir_.File("m1"), flag, 0);
  ASSERT_TRUE(WaitUntil(
      [&] { return Job(job_id).state() == v1::JOB_STATE_SUCCEEDED; }));

  // Killed and restarted at once (the broker has not noticed the death):
  // its own instance takes the registration back.
  first->Signal(SIGKILL);
  first->Wait();
  auto restarted = StartProvider("a");
  const std::string again = SubmitMarkedJob(dir_.File("m2"), flag, 0);
  ASSERT_TRUE(WaitUntil([&] {
    return Job(again).state() == v1::JOB_STATE_SUCCEEDED;
  })) << ReadAll(dir_.File("provider-a.log"));
  EXPECT_THAT(ReadAll(dir_.File("provider-a.log")),
              Not(HasSubstr("already served")));
  restarted->Signal(SIGTERM);
  restarted->Wait();
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(), 0);
}

// The broker's side, with a provider connection driven by hand.
class ReregistrationTest : public ::testing::Test {
 protected:
  static broker::BrokerOptions Options() {
    broker::BrokerOptions options;
    options.lost_job_timeout_ms = 1500;
    return options;
  }

  std::unique_ptr<DealerChannel> Connect() {
    DealerOptions options;
    options.endpoint = federation_.broker().endpoint();
    options.server_public_key =
        federation_.broker_identity().curve().public_z85;
    options.client_keys = site_.curve();
    options.send_timeout_ms = 1000;
    auto channel = DealerChannel::Connect(context_, options);
    EXPECT_TRUE(channel.ok());
    return std::move(*channel);
  }

  // The next envelope of `type`, answering heartbeats meanwhile (so the
  // broker keeps the provider online); nullopt after 10 s.
  std::optional<v1::Envelope> Next(DealerChannel& channel,
                                   v1::MessageType type) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto received = channel.Receive(20);
      if (!received.ok() || !received->has_value()) continue;
      if ((*received)->type() == v1::MESSAGE_TYPE_HEARTBEAT) {
        v1::Heartbeat beat;
        (void)channel.Send(v1::MESSAGE_TYPE_HEARTBEAT, 0, beat);
        continue;
      }
      if ((*received)->type() == type) return **received;
    }
    return std::nullopt;
  }

  // Keeps the connection alive until condition holds (or 10 s pass).
  bool AliveUntil(DealerChannel& channel,
                  const std::function<bool()>& condition) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      auto received = channel.Receive(20);
      if (received.ok() && received->has_value() &&
          (*received)->type() == v1::MESSAGE_TYPE_HEARTBEAT) {
        v1::Heartbeat beat;
        (void)channel.Send(v1::MESSAGE_TYPE_HEARTBEAT, 0, beat);
      }
    }
    return condition();
  }

  v1::Status Register(DealerChannel& channel, const std::string& instance,
                      const std::vector<std::string>& active = {}) {
    v1::RegisterProvider registration = MakeRegistration(
        "site-raw", {MakeNode("n1", "f", "A800", 4)}, {{"A800", 3600}});
    registration.set_agent_instance(instance);
    for (const auto& job_id : active) registration.add_active_job_ids(job_id);
    EXPECT_TRUE(channel
                    .Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                          channel.NextRequestId(), registration)
                    .ok());
    auto reply = Next(channel, v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY);
    EXPECT_TRUE(reply.has_value());
    return reply ? reply->status() : v1::Status();
  }

  // Submits a job, takes its offer on channel and, if `proceed`, accepts it
  // (the broker says proceed). Returns the job id.
  std::string PlaceAndAccept(DealerChannel& channel, bool accept) {
    auto submitted = alice_->Submit(ShellJob("true"));
    EXPECT_TRUE(submitted.ok());
    auto offer = Next(channel, v1::MESSAGE_TYPE_PLACEMENT_OFFER);
    EXPECT_TRUE(offer.has_value());
    if (!accept || !offer) return submitted->job_id();
    v1::PlacementResponse response;
    response.set_job_id(submitted->job_id());
    response.set_accepted(true);
    EXPECT_TRUE(channel
                    .Send(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE,
                          channel.NextRequestId(), response)
                    .ok());
    auto reply = Next(channel, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY);
    EXPECT_TRUE(reply.has_value());
    if (reply) {
      auto body = DecodeBody<v1::PlacementResponseReply>(*reply);
      EXPECT_TRUE(body.ok() && body->proceed());
    }
    return submitted->job_id();
  }

  v1::JobInfo Job(const std::string& job_id) {
    auto job = federation_.OpenStore().GetJob(job_id);
    EXPECT_TRUE(job.ok());
    return job.ok() ? *job : v1::JobInfo();
  }

  zmq::context_t context_{1};
  Federation federation_{Options()};
  Identity site_ = federation_.Enroll(broker::Role::kProvider, "site-raw");
  std::unique_ptr<consumer::Client> alice_ = federation_.AddConsumer("alice");
};

TEST_F(ReregistrationTest, AJobToldToProceedIsKeptWhenItsProviderForgetsIt) {
  auto first = Connect();
  ASSERT_EQ(Register(*first, "instance-1").code(), v1::Status::OK);
  const std::string proceeded = PlaceAndAccept(*first, /*accept=*/true);

  // The agent restarts (a new connection, the same instance) and lists
  // nothing, as one that lost its memory would: the job it was told to
  // run is neither requeued (it may have run) nor failed.
  auto second = Connect();
  ASSERT_EQ(Register(*second, "instance-1").code(), v1::Status::OK);
  v1::JobInfo kept = Job(proceeded);
  EXPECT_EQ(kept.state(), v1::JOB_STATE_PLACED);
  EXPECT_EQ(kept.attempts(), 1u);
  EXPECT_THAT(kept.reason(), Not(HasSubstr("without the offer")));

  // It reports the job ended after all: that is what is stored.
  v1::JobStatusUpdate update;
  update.set_job_id(proceeded);
  update.set_state(v1::JOB_STATE_SUCCEEDED);
  update.set_exit_code(0);
  ASSERT_TRUE(second
                  ->Send(v1::MESSAGE_TYPE_JOB_STATUS_UPDATE,
                         second->NextRequestId(), update)
                  .ok());
  auto ack = Next(*second, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status().code(), v1::Status::OK) << ack->status().message();
  EXPECT_EQ(Job(proceeded).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(Job(proceeded).attempts(), 1u);
}

TEST_F(ReregistrationTest, RunningJobsLeftUnreportedFailOnlyAfterTheTimeout) {
  auto channel = Connect();
  ASSERT_EQ(Register(*channel, "instance-1").code(), v1::Status::OK);
  const std::string job_id = PlaceAndAccept(*channel, /*accept=*/true);
  v1::JobStatusUpdate running;
  running.set_job_id(job_id);
  running.set_state(v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(channel
                  ->Send(v1::MESSAGE_TYPE_JOB_STATUS_UPDATE,
                         channel->NextRequestId(), running)
                  .ok());
  ASSERT_TRUE(Next(*channel, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY));
  ASSERT_EQ(Job(job_id).state(), v1::JOB_STATE_RUNNING);

  // Re-registered without it: still RUNNING (it used to fail at once).
  ASSERT_EQ(Register(*channel, "instance-1").code(), v1::Status::OK);
  EXPECT_EQ(Job(job_id).state(), v1::JOB_STATE_RUNNING);
  // An offer never answered is still requeued on such a registration.
  const std::string unanswered = PlaceAndAccept(*channel, /*accept=*/false);
  ASSERT_EQ(Register(*channel, "instance-1", {job_id}).code(), v1::Status::OK);
  // (It may be placed again at once, as a second attempt.)
  EXPECT_TRUE(AliveUntil(*channel, [&] {
    const v1::JobInfo job = Job(unanswered);
    return job.attempts() >= 2 ||
           job.reason().find("without the offer") != std::string::npos;
  }));

  // Listed again in between, it would stay; never reported, it fails once
  // the lost-provider timeout (1.5 s here) has passed, while the provider
  // stays online.
  ASSERT_EQ(Register(*channel, "instance-1").code(), v1::Status::OK);
  ASSERT_TRUE(AliveUntil(
      *channel, [&] { return Job(job_id).state() == v1::JOB_STATE_FAILED; }));
  EXPECT_THAT(Job(job_id).reason(), HasSubstr("re-registered without the job"));
}

TEST_F(ReregistrationTest, ASecondInstanceIsRefusedWhileTheFirstIsAlive) {
  auto first = Connect();
  ASSERT_EQ(Register(*first, "instance-1").code(), v1::Status::OK);
  auto intruder = Connect();
  const v1::Status refused = Register(*intruder, "instance-2");
  EXPECT_EQ(refused.code(), v1::Status::ALREADY_EXISTS);
  EXPECT_THAT(refused.message(), HasSubstr("already served by another agent"));
  // The first keeps its registration: its requests are still served.
  const std::string job_id = PlaceAndAccept(*first, /*accept=*/true);
  EXPECT_EQ(Job(job_id).provider(), "site-raw");
}

}  // namespace
}  // namespace computenet::testing
