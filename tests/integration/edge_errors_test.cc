// Clear errors at the edge: a key the broker refuses, a broker whose key is
// not the pinned one, and a broker that is not there are three different
// failures, told apart from the client socket's monitor (DealerChannel) by
// the consumer SDK, the computenet CLI (exit codes 4, 6, 5) and the provider
// agent (exit codes 4 and 6 at start). A real computenet-broker runs as a
// child process with real CURVE and its ZAP handler; its log shows how many
// handshakes each key tried.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "computenet/common/exit_codes.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

// A loopback TCP listener on an ephemeral port, for "something listens
// there". close_at_once: accept and close every connection (a server that
// is not ZMTP); otherwise accept and never answer.
class RawListener {
 public:
  explicit RawListener(bool close_at_once) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) !=
            0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(address.sin_port);
    if (close_at_once) {
      acceptor_ = std::thread([this] {
        while (true) {
          const int connection = ::accept(fd_, nullptr, nullptr);
          if (connection < 0) return;  // shut down
          static constexpr char kReply[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
          (void)!::write(connection, kReply, sizeof(kReply) - 1);
          ::close(connection);
        }
      });
    }
  }
  ~RawListener() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (acceptor_.joinable()) acceptor_.join();
  }
  std::string endpoint() const {
    return "tcp://127.0.0.1:" + std::to_string(port_);
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
};

// An endpoint where nothing listens: a port that was just free.
std::string NothingListens() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length),
            0);
  ::close(fd);
  return "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
}

class EdgeErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Run({COMPUTENET_BROKER_BIN, "keygen", "--name", "hub", "--out",
         dir_.File("broker-keys")});
    // Another broker's keys: pinning its identity.pub is the wrong key.
    Run({COMPUTENET_BROKER_BIN, "keygen", "--name", "elsewhere", "--out",
         dir_.File("other-broker-keys")});
    for (const char* name : {"alice", "mallory", "site-a", "site-x"}) {
      Run({COMPUTENET_CLI_BIN, "keygen", "--name", name, "--out",
           dir_.File(std::string(name) + "-keys")});
    }
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role", "consumer",
         "--identity", dir_.File("alice-keys/identity.pub")});
    Run({COMPUTENET_BROKER_BIN, "enroll", "--db", db_, "--role", "provider",
         "--identity", dir_.File("site-a-keys/identity.pub")});
    // mallory and site-x are never enrolled.
    StartBroker("tcp://127.0.0.1:0");
  }

  void StartBroker(const std::string& endpoint) {
    std::remove(dir_.File("endpoint").c_str());
    broker_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{COMPUTENET_BROKER_BIN, "run", "--db", db_,
                                 "--keys", dir_.File("broker-keys"),
                                 "--broker-id", "hub", "--endpoint", endpoint,
                                 "--heartbeat-ms", "200", "--endpoint-file",
                                 dir_.File("endpoint")},
        std::map<std::string, std::string>{}, dir_.File("broker.log"));
    ASSERT_TRUE(WaitUntil([&] {
      std::ifstream in(dir_.File("endpoint"));
      return static_cast<bool>(in >> endpoint_);
    }));
  }

  void TearDown() override {
    broker_->Signal(SIGTERM);
    EXPECT_EQ(broker_->Wait(), 0);
  }

  void Run(const std::vector<std::string>& argv) {
    std::string output;
    ASSERT_EQ(RunCommand(argv, {}, &output), 0) << output;
  }

  PublicIdentity PublicOf(const std::string& keys) {
    auto identity = PublicIdentity::LoadFile(dir_.File(keys + "/identity.pub"));
    EXPECT_TRUE(identity.ok()) << identity.status().ToString();
    return *identity;
  }

  std::unique_ptr<consumer::Client> ClientFor(const std::string& keys,
                                              const std::string& endpoint,
                                              const std::string& broker_keys,
                                              int request_timeout_ms,
                                              int retries) {
    auto identity = Identity::Load(dir_.File(keys));
    EXPECT_TRUE(identity.ok()) << identity.status().ToString();
    consumer::ClientOptions options;
    options.broker_endpoint = endpoint;
    options.broker_public_key = PublicOf(broker_keys).curve_public;
    options.request_timeout_ms = request_timeout_ms;
    options.retries = retries;
    auto client = consumer::Client::Connect(options, std::move(*identity));
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return std::move(*client);
  }

  // How many handshakes of `keys` the broker's ZAP handler refused so far.
  // The broker answers ZAP requests in order on its loop thread, so after a
  // later connection was served, every earlier refusal is in the log.
  size_t RefusalsOf(const std::string& keys) {
    return CountOf(ReadFile(dir_.File("broker.log")),
                   "refused unenrolled key " + PublicOf(keys).curve_public);
  }

  // A served request on a fresh connection of an enrolled key.
  void ExpectBrokerServes() {
    auto alice = ClientFor("alice-keys", endpoint_, "broker-keys", 5000, 2);
    EXPECT_TRUE(alice->ListJobs().ok());
  }

  int Cli(const std::vector<std::string>& args,
          const std::map<std::string, std::string>& env, std::string* output) {
    std::vector<std::string> argv = {COMPUTENET_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, env, output);
  }

  std::map<std::string, std::string> CliEnv(const std::string& keys,
                                            const std::string& endpoint,
                                            const std::string& broker_keys) {
    return {{"COMPUTENET_BROKER", endpoint},
            {"COMPUTENET_BROKER_IDENTITY",
             dir_.File(broker_keys + "/identity.pub")},
            {"COMPUTENET_IDENTITY", dir_.File(keys)}};
  }

  std::string SiteConfig(const std::string& name, const std::string& keys,
                         const std::string& broker_keys) {
    const std::string path = dir_.File(name + ".toml");
    std::ofstream(path) << "broker_endpoint = \"" << endpoint_ << "\"\n"
                        << "broker_identity = \"" << broker_keys
                        << "/identity.pub\"\n"
                        << "identity_dir = \"" << keys << "\"\n"
                        << "work_dir = \"work-" << name << "\"\n"
                        << "state_dir = \"state-" << name << "\"\n"
                        << "site = \"" << name << "\"\nregion = \"north\"\n"
                        << "currency = \"CNY\"\n[prices]\nA800 = 3600\n"
                        << "[[nodes]]\nname = \"n1\"\nfabric = \"ib\"\n"
                        << "accelerators = [ { model = \"A800\", memory_mib "
                           "= 81920, count = 4 } ]\n";
    return path;
  }

  TempDir dir_;
  std::string db_ = dir_.File("broker.db");
  std::string endpoint_;
  std::unique_ptr<ChildProcess> broker_;
};

TEST_F(EdgeErrorsTest, UnenrolledKeyIsRefusedAtOnceAndNotRetried) {
  // Default timeout and retries: before, this was 3 x 5 s and UNAVAILABLE.
  auto mallory = ClientFor("mallory-keys", endpoint_, "broker-keys", 5000, 2);
  // The client connects at once; its handshake is refused before the first
  // call, which reports that refusal rather than trying a new connection.
  ASSERT_TRUE(WaitUntil([&] { return RefusalsOf("mallory-keys") == 1; }));
  auto listed = mallory->ListJobs();
  EXPECT_EQ(listed.status().code(), StatusCode::kUnauthenticated)
      << listed.status().ToString();
  EXPECT_THAT(listed.status().message(),
              StartsWith("key refused by the broker at " + endpoint_ +
                         " (ZAP status 400)"));
  ExpectBrokerServes();
  // One handshake: no retry on a fresh connection.
  EXPECT_EQ(RefusalsOf("mallory-keys"), 1u);
  // The next call on the same client says the same, again without retries.
  EXPECT_EQ(mallory->Submit(ShellJob("true")).status().code(),
            StatusCode::kUnauthenticated);
  ExpectBrokerServes();
  EXPECT_EQ(RefusalsOf("mallory-keys"), 2u);
}

TEST_F(EdgeErrorsTest, WrongPinnedBrokerKeyFailsTheHandshake) {
  auto alice = ClientFor("alice-keys", endpoint_, "other-broker-keys", 5000, 2);
  auto listed = alice->ListJobs();
  EXPECT_EQ(listed.status().code(), StatusCode::kFailedPrecondition)
      << listed.status().ToString();
  EXPECT_THAT(listed.status().message(),
              StartsWith("handshake with " + endpoint_ +
                         " failed: the broker's public key does not match the "
                         "pinned key, or it is not a ComputeNet broker"));
  // Never a key refusal: the broker could not even read alice's key.
  EXPECT_EQ(RefusalsOf("alice-keys"), 0u);
  ExpectBrokerServes();
}

TEST_F(EdgeErrorsTest, ServerThatIsNotZmtpFailsTheHandshake) {
  RawListener http(/*close_at_once=*/true);
  auto alice = ClientFor("alice-keys", http.endpoint(), "broker-keys", 5000, 2);
  auto listed = alice->ListJobs();
  EXPECT_EQ(listed.status().code(), StatusCode::kFailedPrecondition)
      << listed.status().ToString();
  EXPECT_THAT(listed.status().message(),
              StartsWith("handshake with " + http.endpoint() + " failed"));
}

TEST_F(EdgeErrorsTest, NothingListeningIsUnavailable) {
  const std::string nobody = NothingListens();
  auto alice = ClientFor("alice-keys", nobody, "broker-keys", 300, 1);
  auto listed = alice->ListJobs();
  EXPECT_EQ(listed.status().code(), StatusCode::kUnavailable)
      << listed.status().ToString();
  EXPECT_THAT(listed.status().message(),
              StartsWith("broker unreachable at " + nobody));
  EXPECT_THAT(listed.status().message(), HasSubstr("2 attempts"));
}

TEST_F(EdgeErrorsTest, ServerThatNeverAnswersIsUnavailableNotRefused) {
  // A stopped broker: TCP connects (the kernel accepts), nothing answers.
  RawListener silent(/*close_at_once=*/false);
  auto alice =
      ClientFor("alice-keys", silent.endpoint(), "broker-keys", 300, 1);
  auto listed = alice->ListJobs();
  EXPECT_EQ(listed.status().code(), StatusCode::kUnavailable)
      << listed.status().ToString();
  EXPECT_THAT(listed.status().message(),
              StartsWith("broker unreachable at " + silent.endpoint()));
}

TEST_F(EdgeErrorsTest, CliExitCodesTellRefusedFromHandshakeFromUnreachable) {
  std::string output;
  EXPECT_EQ(
      Cli({"jobs"}, CliEnv("alice-keys", endpoint_, "broker-keys"), &output),
      kExitOk)
      << output;
  output.clear();
  EXPECT_EQ(
      Cli({"jobs"}, CliEnv("mallory-keys", endpoint_, "broker-keys"), &output),
      kExitRefused)
      << output;
  EXPECT_THAT(output,
              HasSubstr("UNAUTHENTICATED: key refused by the broker at " +
                        endpoint_ + " (ZAP status 400)"));
  EXPECT_EQ(RefusalsOf("mallory-keys"), 1u);  // the CLI did not retry
  output.clear();
  EXPECT_EQ(Cli({"jobs"}, CliEnv("alice-keys", endpoint_, "other-broker-keys"),
                &output),
            kExitWrongState)
      << output;
  EXPECT_THAT(output, HasSubstr("FAILED_PRECONDITION: handshake with " +
                                endpoint_ + " failed"));
  output.clear();
  const std::string nobody = NothingListens();
  EXPECT_EQ(Cli({"--request-timeout", "0.3", "--retries", "0", "jobs"},
                CliEnv("alice-keys", nobody, "broker-keys"), &output),
            kExitUnavailable)
      << output;
  EXPECT_THAT(output,
              HasSubstr("UNAVAILABLE: broker unreachable at " + nobody));
  // The help says which code is which.
  output.clear();
  EXPECT_EQ(Cli({"--help"}, {}, &output), kExitOk);
  EXPECT_THAT(output, HasSubstr("4  refused: the broker refused your key"));
  EXPECT_THAT(output, HasSubstr("the\n     handshake failed"));
}

TEST_F(EdgeErrorsTest, ProviderWhoseKeyIsRefusedExitsAtStartSayingWhy) {
  ChildProcess provider({COMPUTENET_PROVIDER_BIN, "--config",
                         SiteConfig("site-x", "site-x-keys", "broker-keys")},
                        {}, dir_.File("site-x.log"));
  EXPECT_EQ(provider.Wait(), kExitRefused);
  const std::string log = ReadFile(dir_.File("site-x.log"));
  EXPECT_THAT(log, HasSubstr("key refused by the broker at " + endpoint_ +
                             " (ZAP status 400)"));
  EXPECT_THAT(log, HasSubstr("enroll this site's identity.pub (CURVE key " +
                             PublicOf("site-x-keys").curve_public + ")"));
  // It gave up at the first refusal instead of reconnecting.
  ExpectBrokerServes();
  EXPECT_EQ(RefusalsOf("site-x-keys"), 1u);
}

TEST_F(EdgeErrorsTest, ProviderPinningTheWrongBrokerKeyExitsAtStart) {
  ChildProcess provider(
      {COMPUTENET_PROVIDER_BIN, "--config",
       SiteConfig("site-a", "site-a-keys", "other-broker-keys")},
      {}, dir_.File("site-a.log"));
  EXPECT_EQ(provider.Wait(), kExitWrongState);
  const std::string log = ReadFile(dir_.File("site-a.log"));
  EXPECT_THAT(log, HasSubstr("handshake with " + endpoint_ + " failed"));
  EXPECT_THAT(log, HasSubstr("check broker_endpoint and broker_identity"));
  EXPECT_THAT(log, Not(HasSubstr("registered as provider")));
}

TEST_F(EdgeErrorsTest, ProviderRefusedAfterItRegisteredKeepsRetryingSayingWhy) {
  ChildProcess provider({COMPUTENET_PROVIDER_BIN, "--config",
                         SiteConfig("site-a", "site-a-keys", "broker-keys")},
                        {}, dir_.File("site-a.log"));
  ASSERT_TRUE(WaitUntil([&] {
    return ReadFile(dir_.File("site-a.log")).find("registered as provider") !=
           std::string::npos;
  })) << ReadFile(dir_.File("site-a.log"));
  Run({COMPUTENET_BROKER_BIN, "revoke", "--db", db_, "--role", "provider",
       "--name", "site-a"});
  // A restart on the same endpoint makes the agent connect again. (A
  // revoked key's open connection is item 3's business.)
  broker_->Signal(SIGTERM);
  ASSERT_EQ(broker_->Wait(), 0);
  StartBroker(endpoint_);
  // Its next handshakes are refused; it says so each time and tries again
  // (its jobs may still be running), rather than exiting.
  const std::string refused = "key refused by the broker at " + endpoint_;
  EXPECT_TRUE(WaitUntil([&] {
    return CountOf(ReadFile(dir_.File("site-a.log")), refused) >= 2;
  })) << ReadFile(dir_.File("site-a.log"));
  EXPECT_THAT(ReadFile(dir_.File("site-a.log")), HasSubstr("; retrying in "));
  EXPECT_GE(CountOf(ReadFile(dir_.File("broker.log")),
                    "refused revoked key " + PublicOf("site-a-keys").curve_public),
            2u);
  provider.Signal(SIGTERM);
  EXPECT_EQ(provider.Wait(), 0);
}

}  // namespace
}  // namespace computenet::testing
