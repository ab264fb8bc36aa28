// ProviderAgent + ProcessExecutor: a job's exit wakes the agent's loop
// through the executor's wake descriptor. The agent runs with a one-minute
// tick against a minimal fake broker (a CURVE ROUTER on loopback), and the
// broker sends nothing once the job runs, so the only thing that can make
// the agent report the exit is the exit itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "computenet/common/envelope.h"
#include "computenet/common/identity.h"
#include "computenet/common/transport.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"
#include "computenet/v1/provider.pb.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using testing::MustGenerateIdentity;
using testing::TempDir;
using testing::WaitUntil;

// A bound for a broken wake-up, not a measurement.
constexpr auto kBound = std::chrono::seconds(30);

// Speaks just enough of the provider protocol: the registration reply and
// the placement go-ahead. It acknowledges nothing else.
class FakeBroker {
 public:
  FakeBroker() {
    auto keys = CurveKeyPair::Generate();
    EXPECT_TRUE(keys.ok());
    keys_ = *keys;
    auto router =
        BindCurveRouter(context_, keys_, "tcp://127.0.0.1:0", &endpoint_);
    EXPECT_TRUE(router.ok()) << router.status().ToString();
    router_ = std::move(*router);
  }

  const std::string& endpoint() const { return endpoint_; }
  const std::string& public_key() const { return keys_.public_z85; }

  // The next envelope from the agent, within the bound.
  std::optional<v1::Envelope> Next() {
    const auto until = std::chrono::steady_clock::now() + kBound;
    while (std::chrono::steady_clock::now() < until) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      auto frame = ReceiveRouted(router_);
      if (!frame.ok() || !frame->has_value()) continue;
      routing_id_ = (*frame)->routing_id;
      auto envelope = DecodeEnvelope((*frame)->payload);
      if (envelope.ok()) return *envelope;
    }
    return std::nullopt;
  }

  // The next envelope of this type (others are dropped unanswered).
  std::optional<v1::Envelope> NextOf(v1::MessageType type) {
    while (auto envelope = Next()) {
      if (envelope->type() == type) return envelope;
    }
    return std::nullopt;
  }

  void Reply(v1::MessageType type, uint64_t request_id,
             const google::protobuf::MessageLite& body) {
    Status ok = OkStatus();
    ASSERT_TRUE(SendRouted(router_, routing_id_,
                           EncodeEnvelope(type, request_id, ++sequence_, body,
                                          &ok))
                    .ok());
  }

 private:
  zmq::context_t context_{1};
  CurveKeyPair keys_;
  std::string endpoint_;
  zmq::socket_t router_;
  std::string routing_id_;
  uint64_t sequence_ = 0;
};

class ProviderAgentWakeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!agent_) return;
    agent_->Shutdown();
    // Wake the loop from its long tick so it sees the shutdown.
    v1::Heartbeat heartbeat;
    broker_.Reply(v1::MESSAGE_TYPE_HEARTBEAT, 0, heartbeat);
    if (thread_.joinable()) thread_.join();
  }

  TempDir dir_;
  FakeBroker broker_;
  std::unique_ptr<ProviderAgent> agent_;
  std::thread thread_;
};

TEST_F(ProviderAgentWakeTest, ExitIsReportedWithoutWaitingForTheTick) {
  ProcessExecutorOptions executor_options;
  executor_options.work_dir = dir_.File("work");
  auto executor = std::make_unique<ProcessExecutor>(executor_options);
  if (!executor->wakes_on_exit()) {
    GTEST_SKIP() << "pidfd_open unavailable here: exits are seen on the tick";
  }
  ProviderOptions options;
  options.broker_endpoint = broker_.endpoint();
  options.broker_public_key = broker_.public_key();
  options.tick_ms = 60 * 1000;  // 3000x the default
  options.usage_interval_s = 0;
  options.registration.set_site("site-a");
  options.registration.set_currency("CNY");
  v1::Node* node = options.registration.add_nodes();
  node->set_name("n1");
  v1::Accelerator* accelerator = node->add_accelerators();
  accelerator->set_model("A800");
  accelerator->set_count(1);
  auto agent = ProviderAgent::Create(std::move(options),
                                     MustGenerateIdentity("site-a"),
                                     std::move(executor));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  agent_ = std::move(*agent);
  thread_ = std::thread([this] { (void)agent_->Run(); });

  auto registration = broker_.NextOf(v1::MESSAGE_TYPE_REGISTER_PROVIDER);
  ASSERT_TRUE(registration.has_value());
  v1::RegisterProviderReply registered;
  registered.set_provider_name("site-a");
  broker_.Reply(v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY,
                registration->request_id(), registered);

  // The job blocks on a FIFO until the test lets it go.
  const std::string gate = dir_.File("gate");
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0);
  v1::PlacementOffer offer;
  offer.set_job_id("job-1");
  offer.set_consumer("alice");
  offer.set_model("A800");
  offer.set_attempt(1);
  *offer.mutable_spec() = testing::ShellJob("read line < '" + gate + "'");
  v1::NodeAssignment* assignment = offer.add_assignments();
  assignment->set_node("n1");
  assignment->add_device_indices(0);
  broker_.Reply(v1::MESSAGE_TYPE_PLACEMENT_OFFER, 0, offer);

  auto response = broker_.NextOf(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE);
  ASSERT_TRUE(response.has_value());
  v1::PlacementResponseReply go;
  go.set_job_id("job-1");
  go.set_proceed(true);
  broker_.Reply(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY,
                response->request_id(), go);
  auto running = broker_.NextOf(v1::MESSAGE_TYPE_JOB_STATUS_UPDATE);
  ASSERT_TRUE(running.has_value());
  auto running_update = DecodeBody<v1::JobStatusUpdate>(*running);
  ASSERT_TRUE(running_update.ok());
  ASSERT_EQ(running_update->state(), v1::JOB_STATE_RUNNING);

  // From here the broker is silent: only the job's exit can wake the agent.
  int writer = -1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        writer = ::open(gate.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        return writer >= 0;  // ENXIO until the job opens its end
      },
      kBound));
  ASSERT_EQ(::write(writer, "go\n", 3), 3);
  ::close(writer);

  std::vector<v1::MessageType> seen;
  std::optional<v1::JobStatusUpdate> final_update;
  while (!final_update.has_value()) {
    auto envelope = broker_.Next();
    ASSERT_TRUE(envelope.has_value())
        << "the job's exit was not reported: the agent was not woken";
    seen.push_back(envelope->type());
    if (envelope->type() != v1::MESSAGE_TYPE_JOB_STATUS_UPDATE) continue;
    auto update = DecodeBody<v1::JobStatusUpdate>(*envelope);
    ASSERT_TRUE(update.ok());
    if (update->state() != v1::JOB_STATE_RUNNING) final_update = *update;
  }
  EXPECT_EQ(final_update->job_id(), "job-1");
  EXPECT_EQ(final_update->state(), v1::JOB_STATE_SUCCEEDED);
  // The closing usage record goes before the final status.
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[seen.size() - 2], v1::MESSAGE_TYPE_USAGE_REPORT);
}

TEST_F(ProviderAgentWakeTest, AnOfferTheSitePolicyRefusesIsRejectedWithFailedPrecondition) {
  ProcessExecutorOptions executor_options;
  executor_options.work_dir = dir_.File("work");
  ProviderOptions options;
  options.broker_endpoint = broker_.endpoint();
  options.broker_public_key = broker_.public_key();
  options.usage_interval_s = 0;
  options.registration.set_site("site-a");
  options.registration.set_currency("CNY");
  options.registration.mutable_policy()->add_denied_organizations("mallory-corp");
  options.registration.mutable_policy()->set_max_duration_s(3600);
  v1::Node* node = options.registration.add_nodes();
  node->set_name("n1");
  v1::Accelerator* accelerator = node->add_accelerators();
  accelerator->set_model("A800");
  accelerator->set_count(1);
  auto agent = ProviderAgent::Create(std::move(options), MustGenerateIdentity("site-a"),
                                     std::make_unique<ProcessExecutor>(executor_options));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  agent_ = std::move(*agent);
  thread_ = std::thread([this] { (void)agent_->Run(); });
  auto registration = broker_.NextOf(v1::MESSAGE_TYPE_REGISTER_PROVIDER);
  ASSERT_TRUE(registration.has_value());
  auto registered_body = DecodeBody<v1::RegisterProvider>(*registration);
  ASSERT_TRUE(registered_body.ok());
  EXPECT_EQ(registered_body->policy().denied_organizations_size(), 1)
      << "the policy travels with the registration";
  v1::RegisterProviderReply registered;
  registered.set_provider_name("site-a");
  broker_.Reply(v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY, registration->request_id(),
                registered);

  // As if a broker ignored the policy: each offer is refused, naming why.
  struct Case {
    std::string organization;
    uint32_t max_duration_s;
    std::string why;
  };
  int n = 0;
  for (const Case& c : {Case{"mallory-corp", 60, "is denied"},
                        Case{"alice-org", 7200, "at most 3600 s"}}) {
    v1::PlacementOffer offer;
    offer.set_job_id("job-" + std::to_string(++n));
    offer.set_consumer("someone");
    offer.set_organization(c.organization);
    offer.set_model("A800");
    offer.set_attempt(1);
    *offer.mutable_spec() = testing::ShellJob("true");
    offer.mutable_spec()->set_max_duration_s(c.max_duration_s);
    v1::NodeAssignment* assignment = offer.add_assignments();
    assignment->set_node("n1");
    assignment->add_device_indices(0);
    broker_.Reply(v1::MESSAGE_TYPE_PLACEMENT_OFFER, 0, offer);
    auto response = broker_.NextOf(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE);
    ASSERT_TRUE(response.has_value());
    auto body = DecodeBody<v1::PlacementResponse>(*response);
    ASSERT_TRUE(body.ok());
    EXPECT_EQ(body->job_id(), offer.job_id());
    EXPECT_FALSE(body->accepted());
    EXPECT_EQ(body->status().code(), v1::Status::FAILED_PRECONDITION);
    EXPECT_NE(body->reason().find(c.why), std::string::npos) << body->reason();
  }
}

TEST(ProviderAgentOptionsTest, TickMustBePositive) {
  ProviderOptions options;
  options.broker_endpoint = "tcp://127.0.0.1:1";
  auto keys = CurveKeyPair::Generate();
  ASSERT_TRUE(keys.ok());
  options.broker_public_key = keys->public_z85;
  options.tick_ms = 0;
  ProcessExecutorOptions executor_options;
  executor_options.work_dir = "/nonexistent";
  auto agent = ProviderAgent::Create(
      std::move(options), MustGenerateIdentity("site-a"),
      std::make_unique<ProcessExecutor>(executor_options));
  EXPECT_EQ(agent.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace computenet::provider
