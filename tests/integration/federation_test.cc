// Three regional brokers as separate processes (computenet-broker with
// config files pinning each other), each with a provider site
// (computenet-provider), and a consumer at the north broker using the
// computenet CLI: all over CURVE on loopback ephemeral ports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "computenet/bundles/bundle_archive.h"
#include "computenet/common/exit_codes.h"
#include "computenet/common/files.h"
#include "computenet/consumer/client.h"
#include "computenet/ledger/clearing_statement.h"
#include "computenet/ledger/ledger.h"
#include "computenet/common/transport.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Region {
  std::string name;   // broker id == region name here
  std::string site;   // its provider
  std::string model;
  int nodes;
  int cards;
  int price;
};

// The first "north-<digits>" in text (a job id), or "". Plain parsing:
// std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.
std::string FindJobId(const std::string& text) {
  for (size_t at = text.find("north-"); at != std::string::npos;
       at = text.find("north-", at + 1)) {
    size_t end = at + 6;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    if (end > at + 6) return text.substr(at, end - at);
  }
  return "";
}

// The value of "field": in protobuf's JSON output (quotes stripped).
std::string JsonField(const std::string& json, const std::string& field) {
  const std::string key = "\"" + field + "\": ";
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  if (at < json.size() && json[at] == '"') ++at;
  size_t end = json.find_first_of("\",\n", at);
  return json.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

const Region kRegions[] = {
    {"north", "north-site", "A800", 1, 2, 1500},
    {"east", "east-site", "H800", 2, 8, 2000},
    {"west", "west-site", "910B", 1, 8, 900},
};

constexpr int64_t kAliceFunds = 10'000'000;

class FederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& region : kRegions) {
      Run({COMPUTENET_BROKER_BIN, "keygen", "--name", region.name, "--out",
           Path("keys/" + region.name)});
      Run({COMPUTENET_CLI_BIN, "keygen", "--name", region.site, "--out",
           Path("keys/" + region.site)});
      Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db(region.name), "--role",
           "provider", "--identity", Path("keys/" + region.site + "/identity.pub")});
    }
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "alice", "--out",
         Path("keys/alice")});
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "ops", "--out", Path("keys/ops")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db("north"), "--role",
         "consumer", "--identity", Path("keys/alice/identity.pub")});
    // Prepaid: north holds each job's worst case (or a forward's budget).
    Run({COMPUTENET_BROKER_BIN, "topup", "--db", Db("north"), "--consumer",
         "alice", "--amount", std::to_string(kAliceFunds), "--key", "wire-1"});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db("north"), "--role", "admin",
         "--identity", Path("keys/ops/identity.pub")});
    for (const auto& region : kRegions) {
      WriteBrokerConfig(region.name, "tcp://127.0.0.1:0");
      StartBroker(region.name);
    }
    for (const auto& region : kRegions) StartProvider(region);
    ASSERT_TRUE(WaitUntil([&] { return FederationReady(); },
                          std::chrono::seconds(30)))
        << Admin({"admin", "federation"});
  }

  std::string Path(const std::string& name) const { return dir_.File(name); }
  std::string Db(const std::string& broker) const {
    return Path(broker + ".db");
  }
  std::string Endpoint(const std::string& broker) const {
    std::ifstream in(Path(broker + ".endpoint"));
    std::string endpoint;
    in >> endpoint;
    return endpoint;
  }

  void Run(const std::vector<std::string>& argv) {
    std::string output;
    ASSERT_EQ(RunCommand(argv, {}, &output), 0) << output;
  }

  void WriteBrokerConfig(const std::string& name, const std::string& endpoint) {
    std::ofstream config(Path(name + ".toml"));
    config << "broker_id = \"" << name << "\"\nregion = \"" << name << "\"\n"
           << "endpoint = \"" << endpoint << "\"\n"
           << "endpoint_file = \"" << name << ".endpoint\"\n"
           << "database = \"" << name << ".db\"\nkeys = \"" << KeysOf(name)
           << "\"\nheartbeat_ms = 100\nliveness = 5\n"
           << "settlement_interval_ms = 200\nreplication_interval_ms = 200\n"
           << "checkpoint_interval_ms = 200\n"
           << "decline_retry_ms = 300\nmax_decline_retry_ms = 2000\n";
    for (const auto& peer : kRegions) {
      if (peer.name == name) continue;
      config << "[[peers]]\nbroker_id = \"" << peer.name << "\"\nregion = \""
             << peer.name << "\"\nendpoint_file = \"" << peer.name
             << ".endpoint\"\nidentity = \"keys/" << peer.name
             << "/identity.pub\"\n";
      if (next_identity_.count(peer.name) != 0) {
        config << "next_identity = \"" << next_identity_[peer.name] << "\"\n";
      }
    }
  }

  // A broker's key directory (its own keys/<name> unless it rotated).
  std::string KeysOf(const std::string& name) const {
    auto it = keys_of_.find(name);
    return it == keys_of_.end() ? "keys/" + name : it->second;
  }

  // Stops a broker (SIGTERM) and starts it again on the same endpoint with
  // its config rewritten (keys_of_, next_identity_).
  void RestartBroker(const std::string& name) {
    const std::string endpoint = Endpoint(name);
    brokers_[name]->Signal(SIGTERM);
    EXPECT_EQ(brokers_[name]->Wait(), 0);
    std::remove(Path(name + ".endpoint").c_str());
    WriteBrokerConfig(name, endpoint);
    StartBroker(name);
  }

  void StartBroker(const std::string& name) {
    brokers_[name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_BROKER_BIN, "--log-level", "debug",
                                 "run", "--config", Path(name + ".toml")},
        std::map<std::string, std::string>{}, Path(name + ".log"));
    ASSERT_TRUE(WaitUntil([&] { return !Endpoint(name).empty(); }));
  }

  void StartProvider(const Region& region) {
    std::ofstream config(Path(region.site + ".toml"));
    config << "broker_endpoint = \"" << Endpoint(region.name) << "\"\n"
           << "broker_identity = \"" << KeysOf(region.name)
           << "/identity.pub\"\n"
           << "identity_dir = \"keys/" << region.site << "\"\n"
           << "work_dir = \"work/" << region.site << "\"\n"
           << "site = \"" << region.site << "\"\nregion = \"" << region.name
           << "\"\ncurrency = \"CNY\"\n[prices]\n"
           << region.model << " = " << region.price << "\n"
           // These tests are about the brokers, and some find a job by its
           // host pid or by files outside its workspace; the sandbox has
           // its own tests (SandboxTest), and the daemon, agent-restart
           // and chaos tests run their jobs under it.
           << "[sandbox]\nmode = \"none\"\n";
    for (int n = 0; n < region.nodes; ++n) {
      config << "[[nodes]]\nname = \"" << region.site << "-n" << n
             << "\"\nfabric = \"" << region.site << "-ib\"\n"
             << "accelerators = [ { model = \"" << region.model
             << "\", memory_mib = 81920, count = " << region.cards << " } ]\n";
    }
    config.close();
    providers_[region.name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_PROVIDER_BIN, "--config",
                                 Path(region.site + ".toml")},
        std::map<std::string, std::string>{}, Path(region.site + ".log"));
  }

  std::map<std::string, std::string> Env(const std::string& identity) const {
    return {{"COMPUTENET_BROKER", Endpoint("north")},
            {"COMPUTENET_BROKER_IDENTITY", Path("keys/north/identity.pub")},
            {"COMPUTENET_IDENTITY", Path("keys/" + identity)}};
  }

  // Runs the CLI as alice; returns its combined output.
  std::string Cli(const std::vector<std::string>& args, int* code = nullptr) {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    int status = RunCommand(argv, Env("alice"), &output);
    if (code != nullptr) *code = status;
    return output;
  }
  std::string Admin(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    RunCommand(argv, Env("ops"), &output);
    return output;
  }

  // North sees both peers up with adverts for their models.
  bool FederationReady() {
    std::string view = Admin({"admin", "federation"});
    return view.find("peer east         region east     link up") !=
               std::string::npos &&
           view.find("peer west         region west     link up") !=
               std::string::npos &&
           view.find("H800") != std::string::npos &&
           view.find("910B") != std::string::npos;
  }

  std::string Submit(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"submit", "--max-duration", "120"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out = Cli(argv);
    std::string job = FindJobId(out);
    EXPECT_FALSE(job.empty()) << out;
    return job;
  }

  std::string Field(const std::string& job, const std::string& field) {
    return JsonField(Cli({"status", job, "--json"}), field);
  }

  std::string LedgerVerify(const std::string& broker) {
    std::string out;
    RunCommand({COMPUTENET_CLI_BIN, "ledger", "verify", Db(broker)}, {}, &out);
    return out;
  }

  // The single integer a query over a broker's database returns.
  int64_t Count(const std::string& broker, const std::string& sql) {
    auto store = broker::Store::OpenReadOnly(Db(broker));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return -1;
    return storage::RawConnectionForTesting((*store)->database()).execAndGet(sql).getInt64();
  }

  int64_t Balance(const std::string& broker, const std::string& account) {
    auto store = broker::Store::OpenReadOnly(Db(broker));
    if (!store.ok()) return INT64_MIN;
    ledger::Ledger ledger((*store)->database());
    auto balance = ledger.Balance(account);
    return balance.ok() ? *balance : INT64_MIN;
  }

  TempDir dir_;
  std::map<std::string, std::string> keys_of_;        // broker -> key dir
  std::map<std::string, std::string> next_identity_;  // peer -> its next key
  std::map<std::string, std::unique_ptr<ChildProcess>> brokers_;
  std::map<std::string, std::unique_ptr<ChildProcess>> providers_;
};

TEST_F(FederationTest, ResidencyJobRunsInAnotherRegionWithFullStatusStream) {
  std::string out = Cli({"submit", "--region", "west", "--max-duration", "60",
                         "--wait", "--", "sh", "-c",
                         "echo in $COMPUTENET_MODEL; sleep 2"});
  EXPECT_THAT(out, HasSubstr("state      succeeded")) << out;
  // The consumer saw the remote job move through its states.
  EXPECT_THAT(out, HasSubstr(": running")) << out;
  const std::string job = FindJobId(out);
  ASSERT_FALSE(job.empty()) << out;
  EXPECT_EQ(Field(job, "remote_broker"), "west");
  EXPECT_EQ(Field(job, "region"), "west");
  EXPECT_EQ(Field(job, "model"), "910B");
  EXPECT_THAT(Field(job, "provider"), HasSubstr("west:west-site"));
}

TEST_F(FederationTest, JobTooLargeForHomeRunsWhereItFitsAndSettlesAcrossBrokers) {
  // North has 2 A800s; 8 cards of any model fit only at a peer. Per
  // card-hour west's 910B (900) is cheaper than east's H800 (2000), but
  // routing compares effective compute, as the matcher does: per
  // A100-equivalent-hour east's H800 is ~631 (2000 / 3.17) and west's 910B
  // ~878 (900 / 1.03), so the job goes to east.
  const std::string job =
      Submit({"--cards", "8", "--wait", "--", "sh", "-c", "sleep 1.2"});
  EXPECT_EQ(Field(job, "state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(Field(job, "remote_broker"), "east");
  EXPECT_EQ(Field(job, "model"), "H800");
  ASSERT_TRUE(WaitUntil([&] { return Balance("north", "clearing:east") > 0; }));
  // Money is conserved across brokers to the last minor unit: what alice
  // paid north, north owes east, and east paid its provider from north's
  // clearing account.
  const int64_t paid = kAliceFunds - Balance("north", "consumer:alice");
  EXPECT_GT(paid, 0);
  EXPECT_EQ(Balance("north", "clearing:east"), paid);
  EXPECT_EQ(Balance("east", "clearing:north"), -paid);
  EXPECT_EQ(Balance("east", "provider:east-site"), paid);
  for (const auto& region : kRegions) {
    EXPECT_THAT(LedgerVerify(region.name), HasSubstr("ledger OK")) << region.name;
  }
}

// Compute equivalence across brokers: 8 A100-equivalents do not fit at
// north (2 A800s). East's advert says 3 of its H800s make them (3 x 2000 /
// 8 = 750 per A100-hour asked), west's that 8 910Bs do (900): east. On
// domestic cards only, west's advert (vendor class "domestic") is the one.
TEST_F(FederationTest, ComputeEquivalenceJobsAreForwardedWhereTheyCostLeast) {
  const std::string job =
      Submit({"--a100-equivalents", "8", "--wait", "--", "true"});
  EXPECT_EQ(Field(job, "state"), "JOB_STATE_SUCCEEDED") << Field(job, "reason");
  EXPECT_EQ(Field(job, "remote_broker"), "east");
  EXPECT_EQ(Field(job, "model"), "H800");
  auto status = nlohmann::json::parse(Cli({"status", job, "--json"}));
  ASSERT_EQ(status["assignments"].size(), 1u) << status.dump();
  EXPECT_EQ(status["assignments"][0]["device_indices"].size(), 3u);
  EXPECT_GE(status.value("a100_equivalents_milli", 0), 8000);

  const std::string domestic =
      Submit({"--a100-equivalents", "8", "--vendor-class", "domestic",
              "--wait", "--", "true"});
  EXPECT_EQ(Field(domestic, "state"), "JOB_STATE_SUCCEEDED")
      << Field(domestic, "reason");
  EXPECT_EQ(Field(domestic, "remote_broker"), "west");
  EXPECT_EQ(Field(domestic, "model"), "910B");
  // Both paid from north's clearing accounts, to the minor unit.
  ASSERT_TRUE(WaitUntil([&] {
    return Balance("north", "clearing:east") > 0 &&
           Balance("north", "clearing:west") > 0;
  }));
  EXPECT_EQ(
      Balance("north", "clearing:east") + Balance("north", "clearing:west"),
      kAliceFunds - Balance("north", "consumer:alice"));
}

// Preferred regions rank before price between brokers, as in the matcher
// (routing.h): a one-card job that fits at home goes to east (the cheapest
// per A100-hour by far) unless it prefers another region: preferring west
// it runs in west, preferring north it stays home.
TEST_F(FederationTest, PreferredRegionsAreHonouredBetweenBrokers) {
  const std::string plain = Submit({"--cards", "1", "--wait", "--", "true"});
  EXPECT_EQ(Field(plain, "state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(Field(plain, "remote_broker"), "east");

  const std::string west = Submit(
      {"--cards", "1", "--prefer-region", "west", "--wait", "--", "true"});
  EXPECT_EQ(Field(west, "state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(Field(west, "remote_broker"), "west");
  EXPECT_EQ(Field(west, "region"), "west");

  const std::string home = Submit(
      {"--cards", "1", "--prefer-region", "north", "--wait", "--", "true"});
  EXPECT_EQ(Field(home, "state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(Field(home, "remote_broker"), "");
  EXPECT_EQ(Field(home, "model"), "A800");
}

// Adverts carry each region's provider scores (the matcher's reliability,
// provider_stats.h), not a constant: a new site starts at 500 per mille
// (5000 bp), and one job run to its end raises it to 666 (6660 bp), which
// north then sees in east's advert along with the price per A100-hour.
TEST_F(FederationTest, AdvertsCarryTheProvidersRealReliability) {
  auto east_h800 = [&]() -> nlohmann::json {
    auto view = nlohmann::json::parse(Admin({"admin", "federation", "--json"}),
                                      nullptr, /*allow_exceptions=*/false);
    if (!view.is_object()) return {};
    for (const auto& peer : view.value("peers", nlohmann::json::array())) {
      if (peer.value("broker_id", "") != "east") continue;
      for (const auto& entry : peer.value("adverts", nlohmann::json::array())) {
        if (entry.value("model", "") == "H800") return entry;
      }
    }
    return {};
  };
  const auto before = east_h800();
  ASSERT_TRUE(before.is_object()) << Admin({"admin", "federation", "--json"});
  EXPECT_EQ(before.value("reliability_bp", 0), 5000) << before.dump();
  EXPECT_EQ(before.value("vendor_class", ""), "nvidia");
  // 64-bit integers are strings in protobuf's JSON.
  EXPECT_EQ(before.value("lowest_price_per_a100_hour_milli", ""), "630685");
  EXPECT_EQ(before.value("a100_milli_per_card", 0), 3171);

  const std::string job =
      Submit({"--region", "east", "--cards", "1", "--wait", "--", "true"});
  ASSERT_EQ(Field(job, "state"), "JOB_STATE_SUCCEEDED");
  ASSERT_TRUE(WaitUntil([&] {
    return east_h800().value("reliability_bp", 0) == 6660;
  })) << east_h800().dump();
}

TEST_F(FederationTest, GangJobLandsInsideOneFabricOfOneRemoteProvider) {
  const std::string job = Submit({"--model", "H800", "--nodes", "2", "--cards",
                                  "8", "--wait", "--", "sh", "-c",
                                  "echo rank $COMPUTENET_NODE_RANK"});
  EXPECT_EQ(Field(job, "state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(Field(job, "remote_broker"), "east");
  std::string json = Cli({"status", job, "--json"});
  EXPECT_THAT(json, HasSubstr("east-site-n0"));
  EXPECT_THAT(json, HasSubstr("east-site-n1"));
}

// A consumer at north runs jobs at east and at west. Every party's own
// statement (each line proven against its broker's signed checkpoint)
// tells the same story, and money is conserved across the three brokers to
// the minor unit.
TEST_F(FederationTest, StatementsAgreeAcrossRegionsAndMoneyIsConserved) {
  const std::string at_east =
      Submit({"--model", "H800", "--cards", "2", "--wait", "--", "sh", "-c",
              "sleep 1.1"});
  const std::string at_west = Submit(
      {"--region", "west", "--cards", "3", "--wait", "--", "sh", "-c",
       "sleep 1.3"});
  ASSERT_EQ(Field(at_east, "remote_broker"), "east");
  ASSERT_EQ(Field(at_west, "remote_broker"), "west");
  ASSERT_TRUE(WaitUntil([&] {
    return Balance("north", "clearing:east") > 0 &&
           Balance("north", "clearing:west") > 0;
  }));

  // Sums of each statement's lines by job and kind.
  auto statement = [&](const std::string& broker, const std::string& who) {
    std::map<std::string, std::string> env = {
        {"COMPUTENET_BROKER", Endpoint(broker)},
        {"COMPUTENET_BROKER_IDENTITY",
         Path("keys/" + broker + "/identity.pub")},
        {"COMPUTENET_IDENTITY", Path("keys/" + who)}};
    std::string out;
    int code = RunCommand(
        {COMPUTENET_CLI_BIN, "statement", "--format", "json"}, env, &out);
    EXPECT_EQ(code, 0) << out;
    std::map<std::pair<std::string, std::string>, int64_t> sums;
    auto parsed = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << out;
    if (parsed.is_discarded()) return sums;
    EXPECT_TRUE(parsed["verified"].get<bool>());
    for (const auto& line : parsed["lines"]) {
      sums[{line["job_id"].get<std::string>(), line["kind"].get<std::string>()}] +=
          line["amount"].get<int64_t>();
    }
    return sums;
  };
  auto alice = statement("north", "alice");
  auto east_site = statement("east", "east-site");
  auto west_site = statement("west", "west-site");
  const int64_t east_charge = -alice[{at_east, "remote_usage"}];
  const int64_t west_charge = -alice[{at_west, "remote_usage"}];
  EXPECT_GT(east_charge, 0);
  EXPECT_GT(west_charge, 0);
  // What alice paid north for each job is what the site was paid for it.
  EXPECT_EQ((east_site[{at_east, "usage"}]), east_charge);
  EXPECT_EQ((west_site[{at_west, "usage"}]), west_charge);

  // Conservation: alice's spending is north's claim on its clearing
  // accounts, each peer's debt to north is exactly that claim, and each
  // peer paid its site all of it (no fee configured).
  EXPECT_EQ(kAliceFunds - Balance("north", "consumer:alice"),
            east_charge + west_charge);
  EXPECT_EQ(Balance("north", "clearing:east"), east_charge);
  EXPECT_EQ(Balance("north", "clearing:west"), west_charge);
  EXPECT_EQ(Balance("east", "clearing:north"), -east_charge);
  EXPECT_EQ(Balance("west", "clearing:north"), -west_charge);
  EXPECT_EQ(Balance("east", "provider:east-site"), east_charge);
  EXPECT_EQ(Balance("west", "provider:west-site"), west_charge);
  int64_t everything = 0;
  for (const auto& region : kRegions) {
    const std::vector<std::string> accounts = {
        "consumer:alice", "operator:topup", "clearing:north",
        "clearing:east",  "clearing:west",  "provider:" + region.site};
    for (const auto& account : accounts) {
      everything += Balance(region.name, account);
    }
    EXPECT_THAT(LedgerVerify(region.name), HasSubstr("ledger OK")) << region.name;
  }
  EXPECT_EQ(everything, 0);

  // Net settlement: north states what it owes each peer, the peer compares
  // with its own books and countersigns; both keep the statement with both
  // signatures, checkable with the pinned keys.
  auto agreed_net = [&](const std::string& broker, const std::string& creditor) {
    auto store = broker::Store::OpenReadOnly(Db(broker));
    if (!store.ok()) return std::optional<int64_t>();
    SQLite::Statement query(
        storage::RawConnectionForTesting((*store)->database()),
        "SELECT net, signed FROM settlement_statements WHERE debtor='north' "
        "AND creditor=? AND agreed=1 ORDER BY created_ms DESC LIMIT 1");
    query.bind(1, creditor);
    if (!query.executeStep()) return std::optional<int64_t>();
    v1::SignedSettlement signed_statement;
    const SQLite::Column blob = query.getColumn(1);
    EXPECT_TRUE(signed_statement.ParseFromArray(blob.getBlob(), blob.getBytes()));
    for (const auto& [who, signature] :
         {std::pair{std::string("north"), signed_statement.debtor_signature()},
          std::pair{creditor, signed_statement.creditor_signature()}}) {
      auto pub = PublicIdentity::LoadFile(Path("keys/" + who + "/identity.pub"));
      EXPECT_TRUE(pub.ok());
      if (pub.ok()) {
        EXPECT_TRUE(ledger::VerifySettlementSignature(
                        pub->ed25519_public, signed_statement.statement(),
                        signature)
                        .ok())
            << who;
      }
    }
    return std::optional<int64_t>(query.getColumn(0).getInt64());
  };
  for (const auto& [creditor, owed] :
       {std::pair{std::string("east"), east_charge},
        std::pair{std::string("west"), west_charge}}) {
    ASSERT_TRUE(WaitUntil([&] {
      return agreed_net("north", creditor) == owed &&
             agreed_net(creditor, creditor) == owed;
    })) << creditor;
  }
  // Witnessing: east and west replicate north's ledger, verify it and
  // cosign its checkpoints; north keeps their cosignatures, which the
  // offline audit checks under the keys they name.
  auto cosigners = [&] {
    auto store = broker::Store::OpenReadOnly(Db("north"));
    std::set<std::string> out;
    if (!store.ok()) return out;
    SQLite::Statement query(storage::RawConnectionForTesting((*store)->database()),
                            "SELECT DISTINCT cosigner FROM ledger_cosignatures");
    while (query.executeStep()) out.insert(query.getColumn(0).getString());
    return out;
  };
  ASSERT_TRUE(WaitUntil([&] {
    return cosigners() == std::set<std::string>{"east", "west"};
  }));
  EXPECT_THAT(LedgerVerify("north"), HasSubstr("ledger OK"));
  EXPECT_GT(Count("east",
                  "SELECT COUNT(*) FROM ledger_replicas WHERE origin='north'"),
            0);
  std::string settlement;
  RunCommand({COMPUTENET_BROKER_BIN, "settlement", "--db", Db("north")}, {},
             &settlement);
  EXPECT_THAT(settlement, HasSubstr("north owes east"));
  EXPECT_THAT(settlement, HasSubstr("agreed, signed by both"));
}

// A replica pulls at most 500 entries at a time. It used to pull from just
// after its verified checkpoint every time, so when two checkpoints of the
// origin were more than 500 entries apart no pull ever reached the second
// one: replication and cosigning stopped for good (measured with the default
// checkpoint_every = 1000). Now it pulls on from the entries it holds.
TEST_F(FederationTest, AReplicaCatchesUpOverCheckpointsFurtherApartThanOnePull) {
  // 700 top-ups land in north's file while it is stopped; its first
  // checkpoint after the restart covers all of them at once.
  brokers_["north"]->Signal(SIGTERM);
  ASSERT_EQ(brokers_["north"]->Wait(), 0);
  std::remove(Path("north.endpoint").c_str());
  {
    auto store = broker::Store::Open(Db("north"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto directory = ledger::BrokerFileDirectory((*store)->database());
    ledger::Ledger ledger((*store)->database(), *directory,
                          ledger::LedgerOptions{"north", 0});
    Status added = (*store)->database().RunInTransaction([&] {
      for (int i = 0; i < 700; ++i) {
        auto posted = ledger.TopUp("alice", 1, "bulk-" + std::to_string(i), "",
                                   SystemClock::Shared()->NowMs());
        if (!posted.ok()) return posted.status();
      }
      return OkStatus();
    });
    ASSERT_TRUE(added.ok()) << added.ToString();
  }
  const int64_t entries =
      Count("north", "SELECT COUNT(*) FROM ledger_entries");
  ASSERT_GE(entries, 700);
  StartBroker("north");
  // East verifies north's checkpoint over every entry (and cosigns it).
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Count("east",
                     "SELECT COALESCE(MAX(tree_size), 0) FROM "
                     "ledger_replica_checkpoints WHERE origin='north'") >= entries;
      },
      std::chrono::seconds(30)))
      << "east verified north up to "
      << Count("east",
               "SELECT COALESCE(MAX(tree_size), 0) FROM ledger_replica_checkpoints "
               "WHERE origin='north'")
      << " of " << entries << " entries";
}

TEST_F(FederationTest, CancelReachesTheRemoteProvider) {
  const std::string pid_file = Path("remote.pid");
  const std::string job =
      Submit({"--region", "east", "--", "sh", "-c",
              "echo $$ > " + pid_file + "; exec sleep 300"});
  ASSERT_TRUE(WaitUntil([&] { return Field(job, "state") == "JOB_STATE_RUNNING"; }));
  ASSERT_TRUE(WaitUntil([&] {
    std::ifstream in(pid_file);
    pid_t pid = 0;
    return static_cast<bool>(in >> pid) && pid > 0;
  }));
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  EXPECT_EQ(::kill(pid, 0), 0);
  std::string cancelled = Cli({"cancel", job});
  EXPECT_THAT(cancelled, HasSubstr("cancel requested"));
  std::string waited = Cli({"wait", job, "--timeout", "30"});
  EXPECT_THAT(waited, HasSubstr("state      cancelled")) << waited;
  EXPECT_TRUE(WaitUntil([&] { return ::kill(pid, 0) != 0; }));
}

TEST_F(FederationTest, PeerWithUnpinnedKeyIsRefused) {
  Identity rogue = MustGenerateIdentity("rogue");
  zmq::context_t context(1);
  auto north_key = PublicIdentity::LoadFile(Path("keys/north/identity.pub"));
  ASSERT_TRUE(north_key.ok());
  DealerOptions options;
  options.endpoint = Endpoint("north");
  options.server_public_key = north_key->curve_public;
  options.client_keys = rogue.curve();
  options.send_timeout_ms = 500;
  auto channel = DealerChannel::Connect(context, options);
  ASSERT_TRUE(channel.ok());
  v1::PeerHello hello;
  hello.set_broker_id("rogue");
  hello.set_region("south");
  (void)(*channel)->Send(v1::MESSAGE_TYPE_PEER_HELLO, 1, hello);
  auto reply = (*channel)->Receive(1000);
  EXPECT_TRUE(reply.ok() && !reply->has_value());
  // A pinned peer's name does not help without its key either.
  EXPECT_THAT(Admin({"admin", "federation"}), Not(HasSubstr("rogue")));
  // And a consumer cannot speak the peer protocol.
  std::string denied;
  auto alice = Identity::Load(Path("keys/alice"));
  ASSERT_TRUE(alice.ok());
  options.client_keys = alice->curve();
  auto as_alice = DealerChannel::Connect(context, options);
  ASSERT_TRUE(as_alice.ok());
  hello.set_broker_id("alice");
  ASSERT_TRUE((*as_alice)->Send(v1::MESSAGE_TYPE_PEER_HELLO, 7, hello).ok());
  auto refused = (*as_alice)->Receive(3000);
  ASSERT_TRUE(refused.ok() && refused->has_value());
  EXPECT_EQ((**refused).status().code(), v1::Status::PERMISSION_DENIED);
}

TEST_F(FederationTest, ForwardingLoopsAreImpossibleByConstruction) {
  // Speak as east (its pinned key) to north, offering jobs whose path
  // already visited north, whose hop limit is spent, or that are not east's.
  auto east = Identity::Load(Path("keys/east"));
  auto north_key = PublicIdentity::LoadFile(Path("keys/north/identity.pub"));
  ASSERT_TRUE(east.ok() && north_key.ok());
  zmq::context_t context(1);
  DealerOptions options;
  options.endpoint = Endpoint("north");
  options.server_public_key = north_key->curve_public;
  options.client_keys = east->curve();
  auto channel = DealerChannel::Connect(context, options);
  ASSERT_TRUE(channel.ok());
  auto forward = [&](const std::string& job_id, std::vector<std::string> path,
                     uint32_t hop_limit, int64_t budget = 0) {
    v1::ForwardJob message;
    message.set_budget(budget);
    message.mutable_job()->set_job_id(job_id);
    message.mutable_job()->set_consumer("bob");
    auto* spec = message.mutable_job()->mutable_spec();
    spec->add_command("true");
    spec->set_cards_per_node(1);
    spec->set_max_duration_s(60);
    for (const auto& hop : path) message.add_path(hop);
    message.set_hop_limit(hop_limit);
    const uint64_t id = (*channel)->NextRequestId();
    EXPECT_TRUE(
        (*channel)->Send(v1::MESSAGE_TYPE_FORWARD_JOB, id, message).ok());
    while (true) {
      auto reply = (*channel)->Receive(5000);
      if (!reply.ok() || !reply->has_value()) return v1::Envelope();
      if ((**reply).request_id() == id) return **reply;
    }
  };
  // east -> west -> north -> ... back to north: declined as a loop.
  v1::Envelope looped = forward("east-900", {"east", "north", "west"}, 1);
  auto loop_reply = DecodeBody<v1::ForwardJobReply>(looped);
  ASSERT_TRUE(loop_reply.ok());
  EXPECT_FALSE(loop_reply->accepted());
  EXPECT_THAT(loop_reply->reason(), HasSubstr("loop"));
  v1::Envelope spent = forward("east-901", {"east"}, 0);
  EXPECT_THAT(DecodeBody<v1::ForwardJobReply>(spent)->reason(),
              HasSubstr("hop limit"));
  v1::Envelope stolen = forward("west-5", {"east"}, 1);
  EXPECT_EQ(stolen.status().code(), v1::Status::PERMISSION_DENIED);
  // A job whose worst case here (1 A800 x 60 s at 1500 = 25) is more than
  // the budget its home broker holds for it is declined.
  v1::Envelope over_budget = forward("east-902", {"east"}, 1, 24);
  auto budget_reply = DecodeBody<v1::ForwardJobReply>(over_budget);
  ASSERT_TRUE(budget_reply.ok());
  EXPECT_FALSE(budget_reply->accepted());
  EXPECT_THAT(budget_reply->reason(),
              HasSubstr("exceeds the budget of 24 held by east"));
  // Nothing was stored for any of them.
  auto north = broker::Store::OpenReadOnly(Db("north"));
  ASSERT_TRUE(north.ok());
  EXPECT_EQ((*north)->GetJob("east-900").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*north)->GetJob("east-901").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*north)->GetJob("east-902").status().code(), StatusCode::kNotFound);
}

TEST_F(FederationTest, DeclinedForwardIsTriedAgainLaterAndItsReasonNamesTheDecliner) {
  // West's 910B cards have 81,920 MiB. A west-only job asking for more is
  // forwarded on west's advert (which does not describe card memory) and
  // declined there, again at each retry, with a growing back-off.
  const std::string job = Submit(
      {"--region", "west", "--min-memory-mib", "100000", "--", "true"});
  ASSERT_TRUE(WaitUntil([&] {
    return Count("north", "SELECT COALESCE(MAX(declines), 0) FROM forward_declines") >= 2;
  })) << Field(job, "reason");
  ASSERT_TRUE(WaitUntil([&] {
    return Field(job, "reason").find("declined by west") != std::string::npos;
  })) << Field(job, "reason");
  EXPECT_EQ(Field(job, "state"), "JOB_STATE_QUEUED");
  const auto status = nlohmann::json::parse(Cli({"status", job, "--json"}));
  EXPECT_THAT(status.value("reason", ""), HasSubstr("tried there again from"));

  // West gains a site with bigger cards: a later retry is accepted there.
  Run({COMPUTENET_CLI_BIN, "keygen", "--name", "west-big", "--out",
       Path("keys/west-big")});
  Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db("west"), "--role", "provider",
       "--identity", Path("keys/west-big/identity.pub")});
  {
    std::ofstream config(Path("west-big.toml"));
    config << "broker_endpoint = \"" << Endpoint("west") << "\"\n"
           << "broker_identity = \"keys/west/identity.pub\"\n"
           << "identity_dir = \"keys/west-big\"\nwork_dir = \"work/west-big\"\n"
           << "site = \"west-big\"\nregion = \"west\"\ncurrency = \"CNY\"\n"
           << "[prices]\n910B = 950\n[[nodes]]\nname = \"big-n0\"\n"
           << "fabric = \"big-ib\"\naccelerators = [ { model = \"910B\", "
           << "memory_mib = 131072, count = 2 } ]\n";
  }
  providers_["west-big"] = std::make_unique<ChildProcess>(
      std::vector<std::string>{COMPUTENET_PROVIDER_BIN, "--config",
                               Path("west-big.toml")},
      std::map<std::string, std::string>{}, Path("west-big.log"));
  ASSERT_TRUE(WaitUntil([&] { return Field(job, "state") == "JOB_STATE_SUCCEEDED"; },
                        std::chrono::seconds(30)))
      << Field(job, "state") << ": " << Field(job, "reason");
  EXPECT_EQ(Field(job, "remote_broker"), "west");
  EXPECT_THAT(Field(job, "provider"), HasSubstr("west-big"));
  // Placed: its declines are forgotten.
  EXPECT_EQ(Count("north", "SELECT COUNT(*) FROM forward_declines"), 0);
}

TEST_F(FederationTest, RemoteBrokerKilledMidJobIsReconciledAndChargedOnce) {
  const std::string flag = Path("flag");
  const std::string job = Submit(
      {"--region", "east", "--", "sh", "-c",
       "while [ ! -f " + flag + " ]; do sleep 0.05; done"});
  ASSERT_TRUE(WaitUntil([&] { return Field(job, "state") == "JOB_STATE_RUNNING"; }));
  const std::string east_endpoint = Endpoint("east");
  brokers_["east"]->Signal(SIGKILL);
  EXPECT_EQ(brokers_["east"]->Wait(), 128 + SIGKILL);
  ASSERT_TRUE(WaitUntil([&] { return Field(job, "in_doubt") == "true"; }))
      << Cli({"status", job});
  { std::ofstream(flag) << "go"; }  // it finishes while its broker is down
  std::remove(Path("east.endpoint").c_str());
  WriteBrokerConfig("east", east_endpoint);  // same port: its site reconnects
  StartBroker("east");
  std::string waited = Cli({"wait", job, "--timeout", "60"});
  EXPECT_THAT(waited, HasSubstr("state      succeeded")) << waited;
  ASSERT_TRUE(WaitUntil([&] { return Balance("north", "clearing:east") > 0; }));
  EXPECT_EQ(Field(job, "in_doubt"), "");
  // Charged exactly once on both sides, and both ledgers verify.
  EXPECT_EQ(Balance("north", "clearing:east"),
            kAliceFunds - Balance("north", "consumer:alice"));
  EXPECT_EQ(Balance("east", "clearing:north"), -Balance("north", "clearing:east"));
  // North: one remote charge, every hold released; east: one usage record.
  EXPECT_THAT(LedgerVerify("north"), HasSubstr(" holds (0 open)"));
  EXPECT_THAT(LedgerVerify("east"), HasSubstr("1 usage records"));
  EXPECT_EQ(Count("north",
                  "SELECT COUNT(*) FROM ledger_entry_accounts WHERE "
                  "account='clearing:east'"),
            1);
}

TEST_F(FederationTest, CutAndRestoredLinkLosesAndDuplicatesNothing) {
  // Freeze east: every link to it goes silent, then comes back.
  brokers_["east"]->Signal(SIGSTOP);
  std::vector<std::string> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(Submit({"--region", "east", "--", "sh", "-c", "true"}));
  }
  ASSERT_TRUE(WaitUntil([&] {
    return Admin({"admin", "federation"}).find("peer east         region east     link down") !=
           std::string::npos;
  }));
  brokers_["east"]->Signal(SIGCONT);
  for (const auto& job : jobs) {
    std::string waited = Cli({"wait", job, "--timeout", "60"});
    EXPECT_THAT(waited, HasSubstr("state      succeeded")) << job << waited;
  }
  // East holds each job exactly once, and ran each once.
  auto east = broker::Store::OpenReadOnly(Db("east"));
  ASSERT_TRUE(east.ok());
  auto held = (*east)->ListJobs("", {}, 100);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), jobs.size());
  for (const auto& job : *held) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.job_id();
  }
  // Each job billed once on each side: one usage record each at east, and
  // north owes east exactly what east charged it. Every hold is released
  // on both sides (a placement that was offered but never ran, while the
  // link was cut, adds a hold and its void, not a charge).
  EXPECT_THAT(LedgerVerify("east"), HasSubstr("3 usage records"));
  EXPECT_THAT(LedgerVerify("east"), HasSubstr(" holds (0 open)"));
  EXPECT_THAT(LedgerVerify("north"), HasSubstr(" holds (0 open)"));
  EXPECT_EQ(Balance("east", "clearing:north"), -Balance("north", "clearing:east"));
  EXPECT_EQ(Balance("north", "clearing:east"),
            kAliceFunds - Balance("north", "consumer:alice"));
  EXPECT_EQ(Count("north",
                  "SELECT COUNT(*) FROM ledger_entry_accounts WHERE "
                  "account='clearing:east'"),
            3)
      << "one remote charge per job";
}

// Key rotation of a broker (docs/federation.md, "Rotating a broker's key"):
// west makes a new CURVE key, its peers pin it as next_identity and
// restart, west restarts on it, and forwarding to west keeps working
// without touching the peers' configs again.
TEST_F(FederationTest, PeerRestartedOnItsNextKeyKeepsForwarding) {
  Run({COMPUTENET_BROKER_BIN, "keygen", "--name", "west", "--out",
       Path("keys/west-next"), "--rekey-from", Path("keys/west")});
  next_identity_["west"] = "keys/west-next/identity.pub";
  RestartBroker("north");
  RestartBroker("east");
  ASSERT_TRUE(
      WaitUntil([&] { return FederationReady(); }, std::chrono::seconds(30)))
      << Admin({"admin", "federation"});
  keys_of_["west"] = "keys/west-next";
  RestartBroker("west");
  // West's own site pins west's key: it is given the new one.
  providers_["west"]->Signal(SIGTERM);
  providers_["west"]->Wait();
  StartProvider(kRegions[2]);
  ASSERT_TRUE(
      WaitUntil([&] { return FederationReady(); }, std::chrono::seconds(30)))
      << Admin({"admin", "federation"});
  std::string out = Cli({"submit", "--region", "west", "--max-duration", "60",
                         "--wait", "--", "true"});
  EXPECT_THAT(out, HasSubstr("state      succeeded")) << out;
  const std::string job = FindJobId(out);
  ASSERT_FALSE(job.empty()) << out;
  EXPECT_EQ(Field(job, "remote_broker"), "west");
}

// Inputs and results (issue 11): every file under `dir` whose bytes hold
// `marker`, for the residency checks.
std::vector<std::string> FilesHolding(const std::string& dir,
                                      const std::string& marker) {
  std::vector<std::string> found;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    if (!it->is_regular_file(error)) continue;
    auto bytes = ReadFileToString(it->path().string(), 1 << 30);
    if (bytes.ok() && bytes->find(marker) != std::string::npos) {
      found.push_back(it->path().string());
    }
  }
  return found;
}

TEST_F(FederationTest, InputsGoOnlyWhereTheJobMayRunAndItsSignedResultComesBack) {
  // A directory of inputs, one file larger than a chunk, with a marker no
  // other file here holds.
  const std::string marker = "residency-marker-5e1f0c";
  std::filesystem::create_directories(Path("in/data/sub"));
  {
    std::ofstream(Path("in/data/a.txt")) << marker << "\n";
    std::ofstream big(Path("in/data/sub/big.bin"), std::ios::binary);
    for (int i = 0; i < 700 * 1024; ++i) big.put(static_cast<char>((i * 131) % 251));
  }
  // West only: north (home) relays the bundle and keeps none of it; east
  // never sees it. The job reads its inputs, prints, and leaves a result.
  const std::string out = Cli(
      {"submit", "--region", "west", "--input", Path("in/data"),
       "--max-duration", "60", "--wait", "--", "sh", "-c",
       "cat data/a.txt && mkdir -p $COMPUTENET_OUTPUT_DIR/copy && "
       "cp -r data/sub $COMPUTENET_OUTPUT_DIR/copy/ && "
       "echo finished > $COMPUTENET_OUTPUT_DIR/flag"});
  ASSERT_THAT(out, HasSubstr("state      succeeded")) << out;
  const std::string job = FindJobId(out);
  ASSERT_FALSE(job.empty()) << out;
  EXPECT_EQ(Field(job, "remote_broker"), "west");
  const std::string input_digest = Field(job, "digest");
  EXPECT_EQ(input_digest.size(), 64u) << Cli({"status", job, "--json"});
  const std::string result_digest = Field(job, "result_digest");
  ASSERT_EQ(result_digest.size(), 64u) << Cli({"status", job, "--json"});

  int code = -1;
  const std::string fetched = Cli({"fetch", job, "--out", Path("result")}, &code);
  ASSERT_EQ(code, 0) << fetched;
  // The digest the consumer checked is the one the provider signed.
  EXPECT_THAT(fetched, HasSubstr(result_digest)) << fetched;
  EXPECT_THAT(fetched, HasSubstr("as signed by west-site")) << fetched;
  auto flag = ReadFileToString(Path("result/flag"));
  ASSERT_TRUE(flag.ok()) << flag.status().ToString();
  EXPECT_EQ(*flag, "finished\n");
  auto copied = ReadFileToString(Path("result/copy/sub/big.bin"), 1 << 21);
  auto original = ReadFileToString(Path("in/data/sub/big.bin"), 1 << 21);
  ASSERT_TRUE(copied.ok() && original.ok());
  EXPECT_TRUE(*copied == *original) << "result copy differs from the input";

  // Residency: west's broker and site hold the data; east nothing at all;
  // north only the note of where it went.
  EXPECT_FALSE(FilesHolding(Path("west.db.bundles"), marker).empty());
  EXPECT_THAT(FilesHolding(Path("east.db.bundles"), marker), ::testing::IsEmpty());
  EXPECT_THAT(FilesHolding(Path("work/east-site"), marker), ::testing::IsEmpty());
  EXPECT_THAT(FilesHolding(Path("north.db.bundles"), marker), ::testing::IsEmpty());
  EXPECT_THAT(FilesHolding(Path("work/north-site"), marker), ::testing::IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(Path("north.db.bundles/" + input_digest)));

  // The same inputs again: nothing is sent twice (one round trip says the
  // brokers have it) and the job runs the same.
  const std::string again = Submit({"--region", "west", "--input", Path("in/data"),
                                    "--wait", "--", "sh", "-c", "cat data/a.txt"});
  EXPECT_EQ(Field(again, "state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(Field(again, "digest"), input_digest);
}

TEST_F(FederationTest, BadBundlesAndOtherConsumersResultsAreRefusedAndNothingIsKept) {
  Run({COMPUTENET_CLI_BIN, "keygen", "--name", "bob", "--out", Path("keys/bob")});
  Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db("north"), "--role", "consumer",
       "--identity", Path("keys/bob/identity.pub")});
  auto broker_key = PublicIdentity::LoadFile(Path("keys/north/identity.pub"));
  ASSERT_TRUE(broker_key.ok());
  auto connect = [&](const std::string& who) {
    consumer::ClientOptions options;
    options.broker_endpoint = Endpoint("north");
    options.broker_public_key = broker_key->curve_public;
    auto identity = Identity::Load(Path("keys/" + who));
    EXPECT_TRUE(identity.ok());
    auto client = consumer::Client::Connect(options, std::move(*identity));
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return std::move(*client);
  };
  auto alice = connect("alice");
  auto bob = connect("bob");

  // Over the broker's bundle limit (1 GiB): refused at the first message.
  {
    v1::PutBundleChunk chunk;
    bundles::PackedBundle huge;
    huge.path = "/dev/null";
    huge.digest = std::string(64, 'a');
    huge.size = uint64_t{2} << 30;
    auto uploaded = alice->UploadBundle(huge, {});
    EXPECT_EQ(uploaded.status().code(), StatusCode::kResourceExhausted)
        << uploaded.status().ToString();
  }
  // Chunks that do not hash to the digest they claim: DATA_LOSS, and the
  // bytes are thrown away.
  std::filesystem::create_directories(Path("in"));
  {
    std::ofstream(Path("in/x.txt")) << "some input\n";
  }
  auto packed = bundles::PackPaths({Path("in/x.txt")}, Path("x.tar"));
  ASSERT_TRUE(packed.ok()) << packed.status().ToString();
  bundles::PackedBundle forged = *packed;
  forged.digest = std::string(63, '0') + "1";
  auto refused = alice->UploadBundle(forged, {});
  EXPECT_EQ(refused.status().code(), StatusCode::kDataLoss) << refused.status().ToString();
  EXPECT_THAT(refused.status().message(), HasSubstr(packed->digest));
  EXPECT_THAT(FilesHolding(Path("north.db.bundles"), "some input"), ::testing::IsEmpty());

  // A job naming a bundle nobody uploaded here.
  v1::JobSpec spec = ShellJob("true");
  spec.set_max_duration_s(60);
  v1::InputBundle* input = spec.add_inputs();
  input->set_digest(packed->digest);
  input->set_size(packed->size);
  auto submitted = alice->Submit(spec);
  EXPECT_EQ(submitted.status().code(), StatusCode::kFailedPrecondition)
      << submitted.status().ToString();
  // Bob's upload does not let alice use it, nor bob alice's results.
  ASSERT_TRUE(bob->UploadBundle(*packed, {}).ok());
  submitted = alice->Submit(spec);
  EXPECT_EQ(submitted.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(alice->UploadBundle(*packed, {}).ok());
  submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  auto done = alice->Wait(submitted->job_id(), 60'000);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->reason();
  auto stolen = bob->FetchResult(submitted->job_id(), Path("stolen.tar"));
  EXPECT_EQ(stolen.status().code(), StatusCode::kNotFound) << stolen.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(Path("stolen.tar")));
  // And the brokers kept serving.
  auto mine = alice->FetchResult(submitted->job_id(), Path("mine.tar"));
  EXPECT_TRUE(mine.ok()) << mine.status().ToString();
}

TEST_F(FederationTest, TheCliTakesItsConnectionFromTheConfigFile) {
  std::filesystem::create_directories(Path("home/.config/computenet"));
  {
    std::ofstream(Path("home/.config/computenet/config.toml"))
        << "broker = \"" << Endpoint("north") << "\"\n"
        << "broker_identity = \"../../../keys/north/identity.pub\"\n"
        << "identity = \"../../../keys/alice\"\n";
  }
  // Nothing but HOME: the default file is found and serves.
  std::string out;
  EXPECT_EQ(RunCommand({COMPUTENET_CLI_BIN, "jobs"}, {{"HOME", Path("home")}}, &out), 0)
      << out;
  // A flag still wins over the file: a wrong endpoint is unreachable.
  EXPECT_EQ(RunCommand({COMPUTENET_CLI_BIN, "--broker", "tcp://127.0.0.1:1",
                        "--request-timeout", "0.2", "--retries", "0", "jobs"},
                       {{"HOME", Path("home")}}, &out),
            computenet::kExitUnavailable)
      << out;
  // A bad file is a usage error naming the key, before any connection.
  {
    std::ofstream(Path("bad.toml")) << "broker = \"x\"\nretries = \"two\"\n";
  }
  EXPECT_EQ(RunCommand({COMPUTENET_CLI_BIN, "--config", Path("bad.toml"), "jobs"}, {},
                       &out),
            computenet::kExitUsage)
      << out;
  EXPECT_THAT(out, HasSubstr("'retries' at line 2"));
}

std::string Slurp(const std::string& path) {
  auto text = ReadFileToString(path);
  return text.ok() ? *text : text.status().ToString();
}

TEST_F(FederationTest, WatchFollowsEveryChangeOfTheCallersJobs) {
  ChildProcess watcher({COMPUTENET_CLI_BIN, "watch", "--timeout", "120"}, Env("alice"),
                       Path("watch.log"));
  // Once a job shows up in the stream, the subscription is in place.
  auto shown = [&](const std::string& text) {
    auto log = ReadFileToString(Path("watch.log"));
    return log.ok() && log->find(text) != std::string::npos;
  };
  // A line naming the job in that state (columns are padded).
  auto line_with = [&](const std::string& job_id, const std::string& state) {
    auto log = ReadFileToString(Path("watch.log"));
    if (!log.ok()) return std::string();
    std::istringstream lines(*log);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(job_id + " ") != std::string::npos &&
          line.find(" " + state + " ") != std::string::npos) {
        return line;
      }
    }
    return std::string();
  };
  ASSERT_TRUE(WaitUntil([&] {
    const std::string probe = Submit({"--", "true"});
    return WaitUntil([&] { return shown(probe); }, std::chrono::seconds(2));
  }, std::chrono::seconds(60)));
  // A forwarded job: each state as it happens, with where it runs.
  const std::string job = Submit({"--region", "west", "--", "sh", "-c", "sleep 1"});
  ASSERT_TRUE(WaitUntil([&] { return !line_with(job, "succeeded").empty(); },
                        std::chrono::seconds(60)))
      << Slurp(Path("watch.log"));
  EXPECT_THAT(line_with(job, "running"), HasSubstr("(west)"))
      << Slurp(Path("watch.log"));
  watcher.Signal(SIGTERM);
  watcher.Wait();
  // One job: until it ends, exiting as `wait` does.
  const std::string failing = Submit({"--", "sh", "-c", "exit 3"});
  int code = -1;
  const std::string out = Cli({"watch", failing, "--timeout", "60"}, &code);
  EXPECT_EQ(code, computenet::kExitJobFailed) << out;
  EXPECT_THAT(out, ::testing::ContainsRegex(failing + " +failed")) << out;
}

}  // namespace
}  // namespace computenet::testing
