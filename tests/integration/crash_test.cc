// Crash test (issue 10): the broker, a real `computenet-broker run` child
// process on one SQLite file, is killed with SIGKILL at random moments while
// consumers submit continuously and a real provider agent runs their jobs,
// then restarted on the same file, 20 times. It checks only what the
// broker's public surface shows (the consumer SDK, the CLI, and the
// database file opened read-only), so it holds for any commit strategy:
//   - after each restart, every submission the broker acknowledged (an OK
//     SubmitJob reply) exists, is its consumer's, and is the job that was
//     submitted under that idempotency key;
//   - at the end, once faults stop and every job has ended: each usage
//     record the broker stored is posted to the ledger exactly once, every
//     succeeded job has its closing record and is charged exactly its
//     metered card-seconds at its price (a record the broker acknowledged
//     and then lost would leave a succeeded job uncharged: the agent sends
//     the record before the terminal status and forgets it once
//     acknowledged), no hold stays open, the accounts sum to zero, and
//     `computenet ledger verify --broker-identity` passes.
//
// The kill moments are drawn from a seeded generator. The seed is printed;
// COMPUTENET_CRASH_SEED=<seed> replays the same schedule (the broker's own
// timing still varies). COMPUTENET_KEEP_TEST_DIRS=1 keeps the database and
// the broker's log.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "computenet/common/identity.h"
#include "computenet/consumer/client.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"
#include "computenet/v1/ledger.pb.h"
#include "computenet/v1/provider.pb.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kKills = 20;
constexpr int kConsumers = 3;
// 3600 minor units per card-hour: a card-second costs exactly 1, so a
// charge is its card-seconds (docs/protocol.md, the rounding rule).
constexpr int64_t kPrice = 3600;

uint64_t SeedFromEnvironment() {
  if (const char* text = std::getenv("COMPUTENET_CRASH_SEED")) {
    return std::strtoull(text, nullptr, 10);
  }
  return std::random_device{}();
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string Tail(const std::string& path, size_t bytes = 6000) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

// One submission the broker acknowledged.
struct Acked {
  std::string job_id;
  std::string key;  // idempotency key, also the job's last argument
  int consumer = 0;
  int incarnation = 0;  // which broker start acknowledged it
};

// A usage record as the broker stored it, and its ledger postings.
struct StoredRecord {
  std::string job_id;
  v1::UsageRecord record;
  std::vector<v1::LedgerEntry> postings;  // usage entries naming it
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = SeedFromEnvironment();
    std::printf(
        "crash test seed %llu (COMPUTENET_CRASH_SEED=%llu reproduces "
        "the schedule)\n",
        static_cast<unsigned long long>(seed_),
        static_cast<unsigned long long>(seed_));
    RecordProperty("seed", std::to_string(seed_));
    rng_.seed(seed_);

    Run({COMPUTENET_BROKER_BIN, "keygen", "--name", "hub", "--out",
         dir_.File("broker-keys")});
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "site-a", "--out",
         dir_.File("site-keys")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role", "provider",
         "--identity", dir_.File("site-keys/identity.pub")});
    for (int c = 0; c < kConsumers; ++c) {
      const std::string name = "consumer-" + std::to_string(c);
      const std::string keys = dir_.File(name + "-keys");
      Run({COMPUTENET_CLI_BIN, "keygen", "--name", name, "--out", keys});
      Run({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role", "consumer",
           "--identity", keys + "/identity.pub"});
      Run({COMPUTENET_BROKER_BIN, "topup", "--db", db_, "--consumer", name,
           "--amount", "1000000000000", "--key", "funding-" + name});
      auto identity = Identity::Load(keys);
      ASSERT_TRUE(identity.ok()) << identity.status().ToString();
      consumer_identities_.push_back(std::move(*identity));
    }
  }

  void TearDown() override {
    stop_submitting_ = true;
    for (auto& thread : submitters_) {
      if (thread.joinable()) thread.join();
    }
    StopAgent();
    if (HasFailure()) {
      std::printf("crash test seed %llu; broker log tail:\n%s\n",
                  static_cast<unsigned long long>(seed_),
                  Tail(dir_.File("broker.log")).c_str());
    }
  }

  void Run(const std::vector<std::string>& argv) {
    std::string output;
    ASSERT_EQ(RunCommand(argv, {}, &output), 0) << output;
  }

  // Starts `computenet-broker run` on the database; the first start picks
  // a port, restarts bind the same one. Returns once it serves.
  void StartBroker() {
    ++incarnation_;
    std::remove(dir_.File("endpoint").c_str());
    broker_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            COMPUTENET_BROKER_BIN, "run", "--db", db_, "--keys",
            dir_.File("broker-keys"), "--broker-id", "hub", "--endpoint",
            endpoint_.empty() ? "tcp://127.0.0.1:0" : endpoint_,
            "--heartbeat-ms", "200", "--endpoint-file", dir_.File("endpoint")},
        std::map<std::string, std::string>{}, dir_.File("broker.log"));
    ASSERT_TRUE(broker_->started());
    std::string endpoint;
    ASSERT_TRUE(WaitUntil([&] {
      std::ifstream in(dir_.File("endpoint"));
      return static_cast<bool>(in >> endpoint);
    })) << "broker start "
        << incarnation_ << " did not serve\n"
        << Tail(dir_.File("broker.log"));
    if (endpoint_.empty()) endpoint_ = endpoint;
    ASSERT_EQ(endpoint, endpoint_);
  }

  void KillBroker() {
    broker_->Signal(SIGKILL);
    ASSERT_EQ(broker_->Wait(), 128 + SIGKILL);
    broker_.reset();
  }

  std::string BrokerPublicKey() {
    auto broker =
        PublicIdentity::LoadFile(dir_.File("broker-keys/identity.pub"));
    EXPECT_TRUE(broker.ok()) << broker.status().ToString();
    return broker.ok() ? broker->curve_public : "";
  }

  std::unique_ptr<consumer::Client> Connect(const Identity& identity,
                                            int timeout_ms, int retries) {
    consumer::ClientOptions options;
    options.broker_endpoint = endpoint_;
    options.broker_public_key = BrokerPublicKey();
    options.request_timeout_ms = timeout_ms;
    options.retries = retries;
    auto client = consumer::Client::Connect(std::move(options), identity);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // A provider site with 16 cards whose jobs end fast; records every
  // second of a job that runs longer (interim records, then the closing
  // one), so kills also land between the records of one job.
  void StartAgent() {
    auto identity = Identity::Load(dir_.File("site-keys"));
    ASSERT_TRUE(identity.ok()) << identity.status().ToString();
    provider::ProviderOptions options;
    options.broker_endpoint = endpoint_;
    options.broker_public_key = BrokerPublicKey();
    options.registration = MakeRegistration(
        "site-a",
        {MakeNode("n1", "ib-1", "A800", 8), MakeNode("n2", "ib-1", "A800", 8)},
        {{"A800", kPrice}});
    options.heartbeat_interval_ms = 200;
    options.reconnect_initial_ms = 50;
    options.reconnect_max_ms = 400;
    options.usage_interval_s = 1;
    provider::ProcessExecutorOptions executor;
    executor.work_dir = dir_.File("work");
    executor.timeout_grace_ms = 500;
    auto agent = provider::ProviderAgent::Create(
        std::move(options), std::move(*identity),
        std::make_unique<provider::ProcessExecutor>(std::move(executor)));
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    agent_ = std::move(*agent);
    agent_thread_ = std::thread([this] {
      Status status = agent_->Run();
      if (!status.ok()) ADD_FAILURE() << "agent: " << status.ToString();
    });
  }

  void StopAgent() {
    if (!agent_) return;
    agent_->Shutdown();
    if (agent_thread_.joinable()) agent_thread_.join();
    agent_.reset();
  }

  // Submits one job after another until told to stop, retrying each with
  // its idempotency key until the broker acknowledges it (or, once told to
  // stop, for a few seconds more). Records every acknowledgement.
  void Submit(int c, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto client = Connect(consumer_identities_[c], 1000, 0);
    if (!client) return;
    for (int n = 0; !stop_submitting_; ++n) {
      const std::string key = "c" + std::to_string(c) + "-" + std::to_string(n);
      v1::JobSpec spec;
      if (rng() % 5 == 0) {  // runs past one metering interval
        spec.add_command("/bin/sh");
        spec.add_command("-c");
        spec.add_command("sleep 1.2");
      } else {
        spec.add_command("/bin/true");
      }
      spec.add_command(key);  // $0 for sh, ignored by true
      spec.set_cards_per_node(1 + static_cast<uint32_t>(rng() % 2));
      spec.set_nodes(1);
      spec.set_max_duration_s(30);
      const auto give_up =
          std::chrono::steady_clock::now() + std::chrono::hours(1);
      auto stop_deadline = give_up;
      while (true) {
        if (stop_submitting_ && stop_deadline == give_up) {
          stop_deadline =
              std::chrono::steady_clock::now() + std::chrono::seconds(5);
        }
        if (std::chrono::steady_clock::now() > stop_deadline) return;
        auto reply = client->Submit(spec, key);
        if (reply.ok()) {
          std::lock_guard<std::mutex> lock(mutex_);
          acked_.push_back(Acked{reply->job_id(), key, c, incarnation_.load()});
          break;
        }
        if (reply.status().code() == StatusCode::kInvalidArgument) {
          ADD_FAILURE() << "submit refused: " << reply.status().ToString();
          return;
        }
        ++failed_submits_;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
    }
  }

  std::vector<Acked> AckedSoFar() {
    std::lock_guard<std::mutex> lock(mutex_);
    return acked_;
  }

  // Every acknowledged submission is in the broker, as its consumer sees
  // it: ListJobs (newest 1000) and GetJob for the rest. Returns the jobs.
  std::map<std::string, v1::JobInfo> CheckAcknowledgedJobsExist(
      const std::vector<Acked>& acked, const std::string& when) {
    std::map<std::string, v1::JobInfo> found;
    for (int c = 0; c < kConsumers; ++c) {
      auto client = Connect(consumer_identities_[c], 5000, 2);
      if (!client) return found;
      std::map<std::string, v1::JobInfo> listed;
      auto jobs = client->ListJobs(1000);
      EXPECT_TRUE(jobs.ok()) << when << ": " << jobs.status().ToString();
      if (jobs.ok()) {
        for (auto& job : *jobs) listed[job.job_id()] = std::move(job);
      }
      for (const auto& ack : acked) {
        if (ack.consumer != c) continue;
        auto it = listed.find(ack.job_id);
        if (it == listed.end()) {
          auto job = client->GetJob(ack.job_id);
          if (!job.ok()) {
            ADD_FAILURE() << when << ": acknowledged job " << ack.job_id
                          << " (key " << ack.key << ", acknowledged by broker "
                          << "start " << ack.incarnation
                          << ") is gone: " << job.status().ToString();
            continue;
          }
          it = listed.emplace(ack.job_id, std::move(*job)).first;
        }
        const v1::JobInfo& job = it->second;
        const auto& command = job.spec().command();
        EXPECT_TRUE(!command.empty() && *command.rbegin() == ack.key)
            << when << ": job " << ack.job_id << " acknowledged for key "
            << ack.key << " is another job now: " << job.ShortDebugString();
        found[ack.job_id] = job;
      }
    }
    return found;
  }

  // Waits until none of the consumers' jobs is still to run.
  bool WaitForAllJobsToEnd() {
    std::vector<std::unique_ptr<consumer::Client>> clients;
    for (int c = 0; c < kConsumers; ++c) {
      clients.push_back(Connect(consumer_identities_[c], 5000, 2));
      if (!clients.back()) return false;
    }
    return WaitUntil(
        [&] {
          for (auto& client : clients) {
            auto open =
                client->ListJobs(1, {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED,
                                     v1::JOB_STATE_RUNNING});
            if (!open.ok() || !open->empty()) return false;
          }
          return true;
        },
        std::chrono::seconds(90));
  }

  TempDir dir_;
  std::string db_ = dir_.File("broker.db");
  std::string endpoint_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::unique_ptr<ChildProcess> broker_;
  std::atomic<int> incarnation_{0};
  std::unique_ptr<provider::ProviderAgent> agent_;
  std::thread agent_thread_;
  std::vector<Identity> consumer_identities_;
  std::vector<std::thread> submitters_;
  std::atomic<bool> stop_submitting_{false};
  std::atomic<int> failed_submits_{0};
  std::mutex mutex_;
  std::vector<Acked> acked_;
};

TEST_F(CrashTest, SigkilledBrokerKeepsEveryAcknowledgedJobAndChargesOnce) {
  const auto test_start = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(StartBroker());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_TRUE(WaitUntil([&] { return agent_->registered(); }));
  for (int c = 0; c < kConsumers; ++c) {
    const uint64_t seed = rng_();
    submitters_.emplace_back([this, c, seed] { Submit(c, seed); });
  }

  // The kill schedule: load for a random while, SIGKILL, check, restart.
  std::uniform_int_distribution<int> load_ms(100, 1200);
  size_t checked = 0;
  for (int kill = 1; kill <= kKills; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(load_ms(rng_)));
    ASSERT_NO_FATAL_FAILURE(KillBroker());
    const std::vector<Acked> acked = AckedSoFar();
    ASSERT_NO_FATAL_FAILURE(StartBroker());
    CheckAcknowledgedJobsExist(acked, "after kill " + std::to_string(kill));
    ASSERT_FALSE(HasFailure()) << "seed " << seed_;
    checked = acked.size();
  }
  std::printf(
      "%d kills; %zu acknowledged submissions checked after the last "
      "restart, %d submit attempts failed (broker down)\n",
      kKills, checked, failed_submits_.load());

  // Faults stop: let the submitters finish, everything settle.
  stop_submitting_ = true;
  for (auto& thread : submitters_) thread.join();
  submitters_.clear();
  ASSERT_TRUE(WaitForAllJobsToEnd()) << "jobs still open 90 s after the "
                                        "last restart";
  const std::vector<Acked> acked = AckedSoFar();
  std::map<std::string, v1::JobInfo> jobs =
      CheckAcknowledgedJobsExist(acked, "at the end");
  ASSERT_FALSE(HasFailure());
  std::map<v1::JobState, int> by_state;
  for (const auto& [id, job] : jobs) {
    ++by_state[job.state()];
    EXPECT_TRUE(IsTerminal(job.state())) << job.ShortDebugString();
  }
  StopAgent();
  broker_->Signal(SIGTERM);
  ASSERT_EQ(broker_->Wait(), 0);
  broker_.reset();

  // The ledger, read-only: records, their postings, holds and balances.
  std::map<std::pair<std::string, std::string>, StoredRecord> records;
  std::map<std::string, std::vector<v1::LedgerEntry>> usage_by_job;
  int64_t balance_sum = -1;
  int64_t open_holds = -1;
  try {
    SQLite::Database db(db_, SQLite::OPEN_READONLY);
    SQLite::Statement stored(db,
                             "SELECT provider, record_id, job_id, record "
                             "FROM usage_records");
    while (stored.executeStep()) {
      StoredRecord record;
      record.job_id = stored.getColumn(2).getString();
      const auto blob = stored.getColumn(3);
      ASSERT_TRUE(
          record.record.ParseFromArray(blob.getBlob(), blob.getBytes()));
      records[{stored.getColumn(0).getString(),
               stored.getColumn(1).getString()}] = std::move(record);
    }
    SQLite::Statement entries(db,
                              "SELECT entry FROM ledger_entries ORDER BY "
                              "sequence");
    while (entries.executeStep()) {
      v1::LedgerEntry entry;
      const auto blob = entries.getColumn(0);
      ASSERT_TRUE(entry.ParseFromArray(blob.getBlob(), blob.getBytes()));
      if (entry.kind() != "usage") continue;
      auto it = records.find({entry.usage_provider(), entry.usage_record_id()});
      if (it == records.end()) {
        ADD_FAILURE() << "usage posting without a stored record: "
                      << entry.ShortDebugString();
        continue;
      }
      it->second.postings.push_back(entry);
      usage_by_job[entry.job_id()].push_back(entry);
    }
    balance_sum =
        db.execAndGet("SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts")
            .getInt64();
    open_holds = db.execAndGet("SELECT COUNT(*) FROM ledger_holds WHERE open")
                     .getInt64();
  } catch (const SQLite::Exception& error) {
    FAIL() << "reading " << db_ << ": " << error.what();
  }

  // Each usage record the broker stored is posted exactly once.
  for (const auto& [id, record] : records) {
    EXPECT_EQ(record.postings.size(), 1u)
        << "usage record " << id.first << "/" << id.second << " of job "
        << record.job_id << " posted " << record.postings.size() << " times";
  }
  // Each job is charged once per record and exactly what was metered at
  // its price (per hold: one placement), and its totals say so; each
  // succeeded job has its closing record.
  size_t interim = 0;
  for (const auto& [id, job] : jobs) {
    const auto& postings = usage_by_job[id];
    std::set<std::string> record_ids;
    std::map<std::string, std::pair<uint64_t, int64_t>> per_hold;  // cs, charge
    uint64_t card_seconds = 0;
    int64_t charged = 0;
    int closing = 0;
    for (const auto& entry : postings) {
      EXPECT_TRUE(record_ids.insert(entry.usage_record_id()).second)
          << "job " << id << " charged twice for " << entry.usage_record_id();
      const int64_t debit = -entry.postings(0).amount();  // the consumer's
      per_hold[entry.hold_id()].first += entry.billed_card_seconds();
      per_hold[entry.hold_id()].second += debit;
      card_seconds += entry.billed_card_seconds();
      charged += debit;
      const auto& record =
          records.at({entry.usage_provider(), entry.usage_record_id()});
      if (record.record.closes_job()) {
        ++closing;
      } else {
        ++interim;
      }
    }
    for (const auto& [hold, total] : per_hold) {
      EXPECT_EQ(
          total.second,
          static_cast<int64_t>(
              (total.first * static_cast<uint64_t>(kPrice) + 1800) / 3600))
          << "job " << id << ", " << hold << ": " << total.first
          << " card-seconds charged " << total.second;
    }
    EXPECT_EQ(job.card_seconds(), card_seconds) << job.ShortDebugString();
    EXPECT_EQ(job.charged(), charged) << job.ShortDebugString();
    if (job.state() != v1::JOB_STATE_SUCCEEDED) continue;
    EXPECT_EQ(job.price_per_card_hour(), kPrice) << job.ShortDebugString();
    // (card_seconds may be 0: a job that ends within the millisecond it
    // started is metered ceil(0 s) = 0, docs/protocol.md.)
    if (closing == 0) {
      ADD_FAILURE() << "succeeded job " << id << " has no posted closing "
                    << "usage record (acknowledged, then lost?): "
                    << job.ShortDebugString();
    }
    // A closing record per placement that ran: more only after a requeue.
    EXPECT_LE(closing, static_cast<int>(std::max<uint32_t>(1, job.attempts())))
        << job.ShortDebugString();
  }
  EXPECT_EQ(open_holds, 0) << "holds still open after every job ended";
  EXPECT_EQ(balance_sum, 0) << "the accounts do not sum to zero";

  // The offline audit with the broker's key pinned.
  std::string verified;
  EXPECT_EQ(
      RunCommand({COMPUTENET_CLI_BIN, "ledger", "verify", db_,
                  "--broker-identity", dir_.File("broker-keys/identity.pub")},
                 {}, &verified),
      0)
      << verified;
  EXPECT_THAT(verified, HasSubstr("ledger OK"));
  EXPECT_THAT(verified, HasSubstr("(0 open)"));

  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - test_start)
                             .count();
  std::printf(
      "crash test: %d kills in %.1f s; %zu acknowledged jobs "
      "(%d succeeded, %d failed, %d cancelled), %zu usage records "
      "(%zu interim), each posted once\n",
      kKills, seconds, jobs.size(), by_state[v1::JOB_STATE_SUCCEEDED],
      by_state[v1::JOB_STATE_FAILED], by_state[v1::JOB_STATE_CANCELLED],
      records.size(), interim);
  for (const auto& [id, job] : jobs) {
    if (job.state() != v1::JOB_STATE_SUCCEEDED) {
      std::printf("  %s %s: %s\n", id.c_str(),
                  v1::JobState_Name(job.state()).c_str(), job.reason().c_str());
    }
  }
  // Most jobs must have run: a test where nothing succeeds measures nothing.
  EXPECT_GT(by_state[v1::JOB_STATE_SUCCEEDED],
            static_cast<int>(jobs.size() / 2));
}

}  // namespace
}  // namespace computenet::testing
