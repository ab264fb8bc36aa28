// Secret job environment and the auditors' ledger export (issue 11, item 5),
// over two regional brokers as processes (computenet-broker with config
// files pinning each other), a provider site each (computenet-provider) and
// the computenet CLI as a consumer at north, all over CURVE on loopback.
//
// A job with a secret runs at home and one is forwarded to west; each sees
// its value in its environment (the command compares a SHA-256 of it, so
// the value is in no command line), `status` shows the name only; then,
// with every daemon stopped (their WALs checkpointed), no file under the
// brokers' and the sites' directories holds either value, in any byte.
// The export for auditors holds no jobs or environments and verifies like
// the broker's file; a changed one does not.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "computenet/common/files.h"
#include "computenet/common/sha256.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Region {
  std::string name;  // broker id == region name
  std::string site;
  std::string model;
  int price;
};

const Region kRegions[] = {
    {"north", "north-site", "A800", 1500},
    {"west", "west-site", "910B", 900},
};

// The values: long, distinctive byte strings no file would hold by chance.
constexpr char kHomeSecret[] = "s3cr3t-HOME-value-8c1f2e";
constexpr char kForwardedSecret[] = "s3cr3t-WEST-value-5d93a7";
constexpr char kPlainMarker[] = "plain-env-MARKER-47b2";

std::string FindJobId(const std::string& text) {
  for (size_t at = text.find("north-"); at != std::string::npos;
       at = text.find("north-", at + 1)) {
    size_t end = at + 6;
    while (end < text.size() &&
           std::isdigit(static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    if (end > at + 6) return text.substr(at, end - at);
  }
  return "";
}

// The files under root whose bytes contain needle.
std::vector<std::string> FilesHolding(const std::string& root,
                                      const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    auto bytes = ReadFileToString(entry.path().string(), size_t{1} << 31);
    EXPECT_TRUE(bytes.ok())
        << entry.path() << ": " << bytes.status().ToString();
    if (bytes.ok() && bytes->find(needle) != std::string::npos) {
      out.push_back(entry.path().string());
    }
  }
  return out;
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& region : kRegions) {
      Run({COMPUTENET_BROKER_BIN, "keygen", "--name", region.name, "--out",
           Path("keys/" + region.name)});
      Run({COMPUTENET_CLI_BIN, "keygen", "--name", region.site, "--out",
           Path("keys/" + region.site)});
      Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db(region.name), "--role",
           "provider", "--identity",
           Path("keys/" + region.site + "/identity.pub")});
    }
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "alice", "--out",
         Path("keys/alice")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db("north"), "--role",
         "consumer", "--identity", Path("keys/alice/identity.pub")});
    Run({COMPUTENET_BROKER_BIN, "topup", "--db", Db("north"), "--consumer",
         "alice", "--amount", "10000000", "--key", "wire-1"});
    Run({COMPUTENET_CLI_BIN, "keygen", "--name", "ops", "--out",
         Path("keys/ops")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", Db("north"), "--role",
         "admin", "--identity", Path("keys/ops/identity.pub")});
    for (const auto& region : kRegions) {
      WriteBrokerConfig(region.name);
      StartBroker(region.name);
    }
    for (const auto& region : kRegions) StartProvider(region);
    // North sees west up with an advert for its model.
    ASSERT_TRUE(WaitUntil(
        [&] {
          const std::string view = Cli({"admin", "federation"}, nullptr, "ops");
          return view.find("peer west         region west     link up") !=
                     std::string::npos &&
                 view.find("910B") != std::string::npos;
        },
        std::chrono::seconds(30)))
        << Cli({"admin", "federation"}, nullptr, "ops");
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

  void WriteBrokerConfig(const std::string& name) {
    std::ofstream config(Path(name + ".toml"));
    config << "broker_id = \"" << name << "\"\nregion = \"" << name << "\"\n"
           << "endpoint = \"tcp://127.0.0.1:0\"\n"
           << "endpoint_file = \"" << name << ".endpoint\"\n"
           << "database = \"" << name << ".db\"\nkeys = \"keys/" << name
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
    }
  }

  void StartBroker(const std::string& name) {
    // Debug logging: the most a broker ever writes about its jobs.
    brokers_[name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_BROKER_BIN, "--log-level", "debug",
                                 "run", "--config", Path(name + ".toml")},
        std::map<std::string, std::string>{}, Path(name + ".log"));
    ASSERT_TRUE(WaitUntil([&] { return !Endpoint(name).empty(); }));
  }

  void StartProvider(const Region& region) {
    std::ofstream config(Path(region.site + ".toml"));
    config << "broker_endpoint = \"" << Endpoint(region.name) << "\"\n"
           << "broker_identity = \"keys/" << region.name << "/identity.pub\"\n"
           << "identity_dir = \"keys/" << region.site << "\"\n"
           << "work_dir = \"work/" << region.site << "\"\n"
           << "site = \"" << region.site << "\"\nregion = \"" << region.name
           << "\"\ncurrency = \"CNY\"\n[prices]\n"
           << region.model << " = " << region.price << "\n"
           << "[[nodes]]\nname = \"" << region.site << "-n0\"\nfabric = \""
           << region.site << "-ib\"\naccelerators = [ { model = \""
           << region.model << "\", memory_mib = 81920, count = 2 } ]\n";
    config.close();
    providers_[region.name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_PROVIDER_BIN, "--log-level",
                                 "debug", "--config",
                                 Path(region.site + ".toml")},
        std::map<std::string, std::string>{}, Path(region.site + ".log"));
  }

  // Runs the CLI as alice; returns its combined output.
  std::string Cli(const std::vector<std::string>& args, int* code = nullptr,
                  const std::string& identity = "alice") {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    int status = RunCommand(
        argv,
        {{"COMPUTENET_BROKER", Endpoint("north")},
         {"COMPUTENET_BROKER_IDENTITY", Path("keys/north/identity.pub")},
         {"COMPUTENET_IDENTITY", Path("keys/" + identity)}},
        &output);
    if (code != nullptr) *code = status;
    return output;
  }

  // A command that succeeds only if $TOKEN is `value`, without holding it.
  static std::string CheckToken(const std::string& value) {
    return "test \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-64)\" = " +
           HexEncode(Sha256(value)) + " && test \"$PLAIN\" = " + kPlainMarker;
  }

  void StopAll() {
    for (auto& [name, provider] : providers_) {
      provider->Signal(SIGTERM);
      EXPECT_EQ(provider->Wait(), 0) << name;
    }
    for (auto& [name, broker] : brokers_) {
      broker->Signal(SIGTERM);
      EXPECT_EQ(broker->Wait(), 0) << name;
    }
  }

  std::string Verify(const std::string& file, int* code) {
    std::string out;
    *code =
        RunCommand({COMPUTENET_CLI_BIN, "ledger", "verify", file}, {}, &out);
    return out;
  }

  std::string Export(const std::string& broker, const std::string& out_file) {
    std::string out;
    EXPECT_EQ(RunCommand({COMPUTENET_BROKER_BIN, "ledger", "export", "--db",
                          Db(broker), "--out", out_file},
                         {}, &out),
              0)
        << out;
    return out;
  }

  TempDir dir_;
  TempDir consumer_dir_;  // alice's own files, outside the daemons' tree
  std::map<std::string, std::unique_ptr<ChildProcess>> brokers_;
  std::map<std::string, std::unique_ptr<ChildProcess>> providers_;
};

TEST_F(SecretsTest, SecretsReachOnlyTheJobAndNoFileAndTheExportVerifies) {
  // At home, from the command line.
  const std::string home_out =
      Cli({"submit", "--model", "A800", "--max-duration", "60", "--env",
           std::string("PLAIN=") + kPlainMarker, "--secret-env",
           std::string("TOKEN=") + kHomeSecret, "--wait", "--", "sh", "-c",
           CheckToken(kHomeSecret)});
  EXPECT_THAT(home_out, HasSubstr("state      succeeded")) << home_out;
  const std::string home_job = FindJobId(home_out);
  ASSERT_FALSE(home_job.empty()) << home_out;

  // Forwarded to west (residency), the value from a 0600 file.
  const std::string token_file = consumer_dir_.File("token");
  ASSERT_TRUE(WriteFileAtomically(token_file,
                                  std::string(kForwardedSecret) + "\n", 0600)
                  .ok());
  const std::string west_out =
      Cli({"submit", "--region", "west", "--max-duration", "60", "--env",
           std::string("PLAIN=") + kPlainMarker, "--secret-env-file",
           "TOKEN=" + token_file, "--wait", "--", "sh", "-c",
           CheckToken(kForwardedSecret)});
  EXPECT_THAT(west_out, HasSubstr("state      succeeded")) << west_out;
  const std::string west_job = FindJobId(west_out);
  ASSERT_FALSE(west_job.empty()) << west_out;

  // A wrong value fails the check: the test above proves the value arrived.
  const std::string wrong_out =
      Cli({"submit", "--model", "A800", "--max-duration", "60", "--env",
           std::string("PLAIN=") + kPlainMarker, "--secret-env",
           "TOKEN=not-the-value", "--wait", "--", "sh", "-c",
           CheckToken(kHomeSecret)});
  EXPECT_THAT(wrong_out, HasSubstr("state      failed")) << wrong_out;

  // status shows the name, never the value.
  for (const auto& job : {home_job, west_job}) {
    const std::string json = Cli({"status", job, "--json"});
    EXPECT_THAT(json, HasSubstr("\"TOKEN\": \"***\"")) << json;
    EXPECT_THAT(json, Not(HasSubstr(kHomeSecret)));
    EXPECT_THAT(json, Not(HasSubstr(kForwardedSecret)));
  }
  EXPECT_THAT(Cli({"status", west_job, "--json"}),
              HasSubstr("\"remote_broker\": \"west\""));

  // A secret file others may read is refused before anything is sent.
  const std::string loose = consumer_dir_.File("loose");
  ASSERT_TRUE(WriteFileAtomically(loose, "x", 0644).ok());
  int code = 0;
  const std::string refused =
      Cli({"submit", "--max-duration", "60", "--secret-env-file",
           "TOKEN=" + loose, "--", "true"},
          &code);
  EXPECT_NE(code, 0);
  EXPECT_THAT(refused, HasSubstr("chmod 600"));

  // The export, taken while north runs (one read transaction of its WAL).
  const std::string live_export = Path("north-live.export");
  EXPECT_THAT(Export("north", live_export), HasSubstr("wrote"));

  StopAll();

  // THE GREP TEST: no byte of any file under the brokers' and sites'
  // directories (databases, -wal, -shm, logs, agent state, work dirs).
  EXPECT_THAT(FilesHolding(dir_.path(), kHomeSecret), ::testing::IsEmpty());
  EXPECT_THAT(FilesHolding(dir_.path(), kForwardedSecret),
              ::testing::IsEmpty());
  // The sealed tables are empty once the jobs ended.
  for (const auto& region : kRegions) {
    SQLite::Database db(Db(region.name), SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM job_secrets").getInt(), 0)
        << region.name;
  }
  // (The plain env is stored as before: the control for the grep.)
  EXPECT_THAT(FilesHolding(dir_.path(), kPlainMarker),
              Not(::testing::IsEmpty()));

  // The export after the stop (every entry signed): same verdict as the
  // broker's own file, and no jobs, environments or secrets in it.
  const std::string export_file = Path("north.export");
  Export("north", export_file);
  struct stat info {};
  ASSERT_EQ(::stat(export_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  int db_code = -1, export_code = -1, live_code = -1;
  const std::string db_verdict = Verify(Db("north"), &db_code);
  const std::string export_verdict = Verify(export_file, &export_code);
  EXPECT_EQ(db_code, 0) << db_verdict;
  EXPECT_EQ(export_code, 0) << export_verdict;
  EXPECT_THAT(db_verdict, HasSubstr("ledger OK"));
  EXPECT_EQ(export_verdict, db_verdict);
  const std::string live_verdict = Verify(live_export, &live_code);
  EXPECT_THAT(live_verdict, HasSubstr("ledger OK"));
  {
    SQLite::Database db(export_file, SQLite::OPEN_READONLY);
    for (const char* table :
         {"jobs", "job_secrets", "enrollments", "providers"}) {
      EXPECT_FALSE(db.tableExists(table)) << table;
    }
    EXPECT_GT(db.execAndGet("SELECT COUNT(*) FROM usage_records").getInt(), 0);
    EXPECT_GT(db.execAndGet("SELECT COUNT(*) FROM ledger_checkpoints").getInt(),
              0);
  }
  for (const std::string& value :
       {std::string(kPlainMarker), std::string(kHomeSecret),
        std::string(kForwardedSecret)}) {
    auto bytes = ReadFileToString(export_file, size_t{1} << 31);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(bytes->find(value), std::string::npos) << value;
  }

  // A changed export fails: one posting's amount moved by a minor unit.
  const std::string tampered = Path("north-tampered.export");
  std::filesystem::copy_file(export_file, tampered);
  {
    SQLite::Database db(tampered, SQLite::OPEN_READWRITE);
    ASSERT_EQ(db.exec("UPDATE ledger_postings SET amount = amount + 1 WHERE "
                      "rowid = (SELECT MAX(rowid) FROM ledger_postings)"),
              1);
  }
  int tampered_code = 0;
  const std::string tampered_verdict = Verify(tampered, &tampered_code);
  EXPECT_NE(tampered_code, 0) << tampered_verdict;
  EXPECT_THAT(tampered_verdict, HasSubstr("FAILED"));
  // ... and so does one whose payer of a job was changed.
  const std::string repaid = Path("north-repaid.export");
  std::filesystem::copy_file(export_file, repaid);
  {
    SQLite::Database db(repaid, SQLite::OPEN_READWRITE);
    ASSERT_GE(db.exec("UPDATE export_job_payers SET consumer = 'mallory'"), 1);
  }
  int repaid_code = 0;
  const std::string repaid_verdict = Verify(repaid, &repaid_code);
  EXPECT_NE(repaid_code, 0) << repaid_verdict;
}

}  // namespace
}  // namespace computenet::testing
