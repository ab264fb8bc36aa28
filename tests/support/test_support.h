// Test support: temporary directories, identities, and an in-process
// federation of real parts (a Broker, ProviderAgents with ProcessExecutors,
// consumer Clients) talking over real CURVE sockets on loopback ephemeral
// ports, each component on its own thread as in production.
#ifndef COMPUTENET_TESTS_SUPPORT_TEST_SUPPORT_H_
#define COMPUTENET_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "computenet/broker/broker.h"
#include "jobs/store.h"
#include "computenet/common/clock.h"
#include "computenet/common/identity.h"
#include "computenet/consumer/client.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"

namespace computenet::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls condition every 10 ms until it holds or timeout passes; returns
// whether it held. For waiting on real processes and sockets, not for time
// that an injected clock can advance.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Dies with the status message if not OK (for fixture set-up).
Identity MustGenerateIdentity(const std::string& name);

// One node with `cards` cards of `model` in `fabric`.
v1::Node MakeNode(const std::string& name, const std::string& fabric,
                  const std::string& model, uint32_t cards);
v1::RegisterProvider MakeRegistration(const std::string& site,
                                      const std::vector<v1::Node>& nodes,
                                      const std::map<std::string, int64_t>& prices);

// The cards of one node given to a job; milli > 0: a share of each.
v1::NodeAssignment MakeAssignment(const std::string& node,
                                  const std::vector<uint32_t>& devices,
                                  uint32_t milli = 0);

// A job running `command` through /bin/sh on `cards` cards.
v1::JobSpec ShellJob(const std::string& command, uint32_t cards = 1,
                     const std::vector<std::string>& models = {});

// Consumers that Federation enrolls are funded with this much (minor
// units, an operator top-up) unless a test asks otherwise, so tests that
// are not about money need not think about holds.
inline constexpr int64_t kTestConsumerFunds = 1'000'000'000'000;

// A broker, its providers and consumers, all real, in this process.
class Federation {
 public:
  explicit Federation(broker::BrokerOptions options = {});
  // With a given broker identity: for brokers that pin each other as peers
  // (each needs the other's keys in its options before either starts).
  Federation(broker::BrokerOptions options, Identity broker_identity);
  ~Federation();

  broker::Broker& broker() { return *broker_; }
  broker::Store& OpenStore();  // a second connection to the broker's file
  const Identity& broker_identity() const { return broker_identity_; }
  const std::string& db_path() const { return db_path_; }
  const std::string& dir() const { return dir_.path(); }

  // Enrolls an identity under role; returns it. A consumer is funded with
  // kTestConsumerFunds.
  Identity Enroll(broker::Role role, const std::string& name);
  // Enrolls a consumer funded with `funds` (0: none).
  Identity EnrollConsumer(const std::string& name, int64_t funds);
  // The identity enrolled under name (any role). Dies if there is none.
  Identity IdentityOf(const std::string& name) const;
  // An operator top-up of a consumer's account (on the test's own
  // connection to the broker's file, as `computenet-broker topup` does).
  void TopUp(const std::string& consumer, int64_t amount,
             const std::string& key);

  // Enrolls and starts a provider agent with a ProcessExecutor. The
  // executor's clock may differ from the agent's (metering tests pass a
  // FakeClock). Returns the agent once the broker has its registration.
  provider::ProviderAgent& AddProvider(
      const std::string& name, v1::RegisterProvider registration,
      std::shared_ptr<Clock> executor_clock = nullptr,
      provider::ProviderOptions options = {});
  // Enrolls and starts a provider agent that runs placements through the
  // given executor (e.g. a SlurmExecutor).
  provider::ProviderAgent& AddProvider(const std::string& name,
                                       v1::RegisterProvider registration,
                                       std::unique_ptr<provider::Executor> executor,
                                       provider::ProviderOptions options = {});
  void StopProvider(const std::string& name);

  // Enrolls a consumer (funded with `funds`) and connects a Client for it.
  std::unique_ptr<consumer::Client> AddConsumer(
      const std::string& name, int64_t funds = kTestConsumerFunds);
  std::unique_ptr<consumer::Client> ConnectClient(const Identity& identity);

  // Stops and restarts the broker on the same database and endpoint.
  void RestartBroker();

 private:
  struct RunningProvider {
    std::string name;
    std::unique_ptr<provider::ProviderAgent> agent;
    std::thread thread;
  };
  void StartBroker();
  void StopBroker();

  TempDir dir_;
  broker::BrokerOptions options_;
  std::string db_path_;
  Identity broker_identity_;
  std::unique_ptr<broker::Broker> broker_;
  std::thread broker_thread_;
  std::unique_ptr<broker::Store> store_;
  std::vector<std::unique_ptr<RunningProvider>> providers_;
  std::map<std::string, Identity> identities_;
};

}  // namespace computenet::testing


namespace computenet::testing {

// A real child process (posix_spawn), output appended to log_path; killed
// with SIGKILL when destroyed if still running.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env,
               const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  int pid() const { return pid_; }
  void Signal(int signal);
  // The exit status (128 + signal if signalled), or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  int pid_ = -1;
  bool reaped_ = false;
};

// Runs argv to completion; returns its exit status and appends its output
// (stdout and stderr) to *output.
int RunCommand(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env,
               std::string* output);

}  // namespace computenet::testing

#endif  // COMPUTENET_TESTS_SUPPORT_TEST_SUPPORT_H_
