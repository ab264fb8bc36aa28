#include "test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>

#include "computenet/ledger/ledger.h"

namespace computenet::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/computenet-XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  // COMPUTENET_KEEP_TEST_DIRS=1 keeps logs and databases for a post-mortem.
  if (std::getenv("COMPUTENET_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

Identity MustGenerateIdentity(const std::string& name) {
  auto identity = Identity::Generate(name);
  if (!identity.ok()) {
    ADD_FAILURE() << identity.status().ToString();
    std::abort();
  }
  return std::move(*identity);
}

v1::Node MakeNode(const std::string& name, const std::string& fabric,
                  const std::string& model, uint32_t cards) {
  v1::Node node;
  node.set_name(name);
  node.set_fabric_id(fabric);
  auto* accelerator = node.add_accelerators();
  accelerator->set_model(model);
  accelerator->set_memory_mib(81920);
  accelerator->set_count(cards);
  return node;
}

v1::RegisterProvider MakeRegistration(
    const std::string& site, const std::vector<v1::Node>& nodes,
    const std::map<std::string, int64_t>& prices) {
  v1::RegisterProvider registration;
  registration.set_site(site);
  registration.set_region("north");
  registration.set_currency("CNY");
  for (const auto& node : nodes) *registration.add_nodes() = node;
  for (const auto& [model, price] : prices) {
    auto* entry = registration.add_prices();
    entry->set_model(model);
    entry->set_per_card_hour(price);
  }
  return registration;
}

v1::NodeAssignment MakeAssignment(const std::string& node,
                                  const std::vector<uint32_t>& devices,
                                  uint32_t milli) {
  v1::NodeAssignment assignment;
  assignment.set_node(node);
  for (uint32_t device : devices) assignment.add_device_indices(device);
  assignment.set_milli(milli);
  return assignment;
}

v1::JobSpec ShellJob(const std::string& command, uint32_t cards,
                     const std::vector<std::string>& models) {
  v1::JobSpec spec;
  spec.add_command("/bin/sh");
  spec.add_command("-c");
  spec.add_command(command);
  spec.set_cards_per_node(cards);
  spec.set_nodes(1);
  spec.set_max_duration_s(600);
  for (const auto& model : models) spec.add_accelerator_models(model);
  return spec;
}

Federation::Federation(broker::BrokerOptions options)
    : Federation(std::move(options), MustGenerateIdentity("test-broker")) {}

Federation::Federation(broker::BrokerOptions options, Identity broker_identity)
    : options_(std::move(options)),
      db_path_(dir_.File("broker.db")),
      broker_identity_(std::move(broker_identity)) {
  options_.database_path = db_path_;
  if (options_.broker_id == "broker") options_.broker_id = "test";
  options_.endpoint = "tcp://127.0.0.1:0";
  if (options_.heartbeat_interval_ms == 1000) {
    options_.heartbeat_interval_ms = 100;  // fast loss detection in tests
  }
  StartBroker();
}

Federation::~Federation() {
  for (auto& provider : providers_) {
    provider->agent->Shutdown();
    if (provider->thread.joinable()) provider->thread.join();
  }
  StopBroker();
}

void Federation::StartBroker() {
  auto broker = broker::Broker::Create(options_, broker_identity_);
  if (!broker.ok()) {
    ADD_FAILURE() << broker.status().ToString();
    std::abort();
  }
  broker_ = std::move(*broker);
  // Restarts reuse the port the first start picked.
  options_.endpoint = broker_->endpoint();
  broker_thread_ = std::thread([this] {
    Status status = broker_->Run();
    if (!status.ok()) ADD_FAILURE() << status.ToString();
  });
}

void Federation::StopBroker() {
  if (!broker_) return;
  broker_->Shutdown();
  if (broker_thread_.joinable()) broker_thread_.join();
  broker_.reset();
}

void Federation::RestartBroker() {
  StopBroker();
  StartBroker();
}

broker::Store& Federation::OpenStore() {
  if (!store_) {
    auto store = broker::Store::Open(db_path_);
    if (!store.ok()) {
      ADD_FAILURE() << store.status().ToString();
      std::abort();
    }
    store_ = std::move(*store);
  }
  return *store_;
}

Identity Federation::Enroll(broker::Role role, const std::string& name) {
  if (role == broker::Role::kConsumer) {
    return EnrollConsumer(name, kTestConsumerFunds);
  }
  Identity identity = MustGenerateIdentity(name);
  Status enrolled = OpenStore().Enroll(role, identity.Public(), 0);
  if (!enrolled.ok()) ADD_FAILURE() << enrolled.ToString();
  identities_.insert_or_assign(name, identity);
  return identity;
}

Identity Federation::IdentityOf(const std::string& name) const {
  auto it = identities_.find(name);
  if (it == identities_.end()) {
    ADD_FAILURE() << "no identity " << name;
    std::abort();
  }
  return it->second;
}

Identity Federation::EnrollConsumer(const std::string& name, int64_t funds) {
  Identity identity = MustGenerateIdentity(name);
  Status enrolled =
      OpenStore().Enroll(broker::Role::kConsumer, identity.Public(), 0);
  if (!enrolled.ok()) ADD_FAILURE() << enrolled.ToString();
  identities_.insert_or_assign(name, identity);
  if (funds > 0) TopUp(name, funds, "test-funding-" + name);
  return identity;
}

void Federation::TopUp(const std::string& consumer, int64_t amount,
                       const std::string& key) {
  ledger::Ledger ledger(OpenStore().database());
  auto posted = ledger.TopUp(consumer, amount, key, "test funding",
                             SystemClock::Shared()->NowMs());
  if (!posted.ok()) ADD_FAILURE() << posted.status().ToString();
}

provider::ProviderAgent& Federation::AddProvider(
    const std::string& name, v1::RegisterProvider registration,
    std::shared_ptr<Clock> executor_clock, provider::ProviderOptions options) {
  provider::ProcessExecutorOptions executor_options;
  executor_options.work_dir = dir_.File("work-" + name);
  executor_options.clock = std::move(executor_clock);
  executor_options.timeout_grace_ms = 500;
  return AddProvider(
      name, std::move(registration),
      std::make_unique<provider::ProcessExecutor>(std::move(executor_options)),
      std::move(options));
}

provider::ProviderAgent& Federation::AddProvider(
    const std::string& name, v1::RegisterProvider registration,
    std::unique_ptr<provider::Executor> executor,
    provider::ProviderOptions options) {
  Identity identity = Enroll(broker::Role::kProvider, name);
  options.broker_endpoint = broker_->endpoint();
  options.broker_public_key = broker_identity_.curve().public_z85;
  options.registration = std::move(registration);
  options.heartbeat_interval_ms = 100;
  options.reconnect_initial_ms = 50;
  options.reconnect_max_ms = 400;
  auto agent = provider::ProviderAgent::Create(
      std::move(options), std::move(identity), std::move(executor));
  if (!agent.ok()) {
    ADD_FAILURE() << agent.status().ToString();
    std::abort();
  }
  auto running = std::make_unique<RunningProvider>();
  running->name = name;
  running->agent = std::move(*agent);
  auto* raw = running->agent.get();
  running->thread = std::thread([raw] {
    Status status = raw->Run();
    if (!status.ok()) ADD_FAILURE() << status.ToString();
  });
  providers_.push_back(std::move(running));
  EXPECT_TRUE(WaitUntil([raw] { return raw->registered(); }))
      << "provider " << name << " did not register";
  return *raw;
}

void Federation::StopProvider(const std::string& name) {
  for (auto it = providers_.begin(); it != providers_.end(); ++it) {
    if ((*it)->name != name) continue;
    (*it)->agent->Shutdown();
    if ((*it)->thread.joinable()) (*it)->thread.join();
    providers_.erase(it);
    return;
  }
}

std::unique_ptr<consumer::Client> Federation::AddConsumer(
    const std::string& name, int64_t funds) {
  return ConnectClient(EnrollConsumer(name, funds));
}

std::unique_ptr<consumer::Client> Federation::ConnectClient(
    const Identity& identity) {
  consumer::ClientOptions options;
  options.broker_endpoint = broker_->endpoint();
  options.broker_public_key = broker_identity_.curve().public_z85;
  options.request_timeout_ms = 3000;
  options.retries = 1;
  auto client = consumer::Client::Connect(std::move(options), identity);
  if (!client.ok()) {
    ADD_FAILURE() << client.status().ToString();
    std::abort();
  }
  return std::move(*client);
}

}  // namespace computenet::testing

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

extern char** environ;

namespace computenet::testing {

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env,
                           const std::string& log_path) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& arg : args) cargv.push_back(arg.data());
  cargv.push_back(nullptr);
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text(*entry);
    auto eq = text.find('=');
    if (eq != std::string::npos) merged[text.substr(0, eq)] = text.substr(eq + 1);
  }
  for (const auto& [key, value] : env) merged[key] = value;
  std::vector<std::string> env_storage;
  for (const auto& [key, value] : merged) env_storage.push_back(key + "=" + value);
  std::vector<char*> cenv;
  for (auto& entry : env_storage) cenv.push_back(entry.data());
  cenv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  if (posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(),
                  cenv.data()) == 0) {
    pid_ = pid;
  }
  posix_spawn_file_actions_destroy(&actions);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  bool done = WaitUntil(
      [&] {
        if (reaped_) return true;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) reaped_ = true;
        return reaped_;
      },
      timeout);
  if (!done) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int RunCommand(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env,
               std::string* output) {
  TempDir dir;
  const std::string log = dir.File("out");
  int code;
  {
    ChildProcess child(argv, env, log);
    code = child.Wait(std::chrono::seconds(120));
  }
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  if (output != nullptr) *output += text.str();
  return code;
}

}  // namespace computenet::testing
