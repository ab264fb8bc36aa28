// One-at-a-time job latency through a real ProviderAgent + ProcessExecutor,
// against a minimal fake broker (a CURVE ROUTER in this process that speaks
// just enough of the provider protocol: register, offer, go-ahead, acks).
//
// Each job runs this binary again with --child, which writes its
// CLOCK_MONOTONIC time (ns) to stdout (the job's log) right before it exits.
// The fake broker notes when the job's final JOB_STATUS_UPDATE arrives, so
//   exit -> status = arrival of the final status - the child's last timestamp
// (includes the agent noticing the exit, reaping, signing the usage record,
// and one CURVE hop on loopback). Also reported: offer sent -> final status.
//
// Usage: agent_exit_latency [jobs=300]. Prints p50/p90/p99/max in ms, and
// exits 1 if it measured nothing.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "computenet/common/envelope.h"
#include "computenet/common/files.h"
#include "computenet/common/identity.h"
#include "computenet/common/transport.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"
#include "computenet/v1/provider.pb.h"

namespace {

namespace cn = computenet;
namespace v1 = computenet::v1;

int64_t MonotonicNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index =
      static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

void Print(const char* what, const std::vector<double>& ms) {
  std::printf("%-26s n=%zu p50=%.2f p90=%.2f p99=%.2f max=%.2f ms\n", what,
              ms.size(), Percentile(ms, 0.5), Percentile(ms, 0.9),
              Percentile(ms, 0.99), Percentile(ms, 1.0));
}

class FakeBroker {
 public:
  FakeBroker(zmq::context_t& context, zmq::socket_t router)
      : context_(context), router_(std::move(router)) {}

  // Waits up to timeout_ms for one envelope from the agent.
  bool Receive(int timeout_ms, v1::Envelope* envelope, int64_t* at_ns) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if ((item.revents & ZMQ_POLLIN) == 0) return false;
    *at_ns = MonotonicNs();
    auto frame = cn::ReceiveRouted(router_);
    if (!frame.ok() || !frame->has_value()) return false;
    routing_id_ = (*frame)->routing_id;
    auto decoded = cn::DecodeEnvelope((*frame)->payload);
    if (!decoded.ok()) return false;
    *envelope = std::move(*decoded);
    return true;
  }

  void Send(v1::MessageType type, uint64_t request_id,
            const google::protobuf::MessageLite& body) {
    cn::Status ok = cn::OkStatus();
    (void)cn::SendRouted(
        router_, routing_id_,
        cn::EncodeEnvelope(type, request_id, ++sequence_, body, &ok));
  }

  // Answers whatever needs an answer; returns the envelope's type.
  void Answer(const v1::Envelope& envelope) {
    switch (envelope.type()) {
      case v1::MESSAGE_TYPE_REGISTER_PROVIDER: {
        v1::RegisterProviderReply reply;
        reply.set_provider_name("site-bench");
        reply.set_heartbeat_interval_ms(1000);
        reply.set_heartbeat_liveness(3);
        Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY, envelope.request_id(),
             reply);
        registered_ = true;
        break;
      }
      case v1::MESSAGE_TYPE_HEARTBEAT: {
        v1::Heartbeat heartbeat;
        Send(v1::MESSAGE_TYPE_HEARTBEAT, 0, heartbeat);
        break;
      }
      case v1::MESSAGE_TYPE_PLACEMENT_RESPONSE: {
        auto response = cn::DecodeBody<v1::PlacementResponse>(envelope);
        v1::PlacementResponseReply reply;
        if (response.ok()) reply.set_job_id(response->job_id());
        reply.set_proceed(response.ok() && response->accepted());
        Send(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, envelope.request_id(),
             reply);
        break;
      }
      case v1::MESSAGE_TYPE_JOB_STATUS_UPDATE: {
        auto update = cn::DecodeBody<v1::JobStatusUpdate>(envelope);
        v1::JobStatusUpdateReply reply;
        if (update.ok()) reply.set_job_id(update->job_id());
        Send(v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY, envelope.request_id(),
             reply);
        break;
      }
      case v1::MESSAGE_TYPE_USAGE_REPORT: {
        v1::UsageReportReply reply;
        Send(v1::MESSAGE_TYPE_USAGE_REPORT_REPLY, envelope.request_id(),
             reply);
        break;
      }
      default:
        break;
    }
  }

  bool registered() const { return registered_; }

 private:
  zmq::context_t& context_;
  zmq::socket_t router_;
  std::string routing_id_;
  uint64_t sequence_ = 0;
  bool registered_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--child") {
    std::printf("%lld\n", static_cast<long long>(MonotonicNs()));
    std::fflush(stdout);
    _exit(0);
  }
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 300;
  const std::string self = std::filesystem::canonical("/proc/self/exe");
  const std::filesystem::path work =
      std::filesystem::temp_directory_path() /
      ("agent_exit_latency." + std::to_string(::getpid()));
  std::filesystem::create_directories(work);

  zmq::context_t context(1);
  auto broker_keys = cn::CurveKeyPair::Generate();
  auto identity = cn::Identity::Generate("site-bench");
  if (!broker_keys.ok() || !identity.ok()) {
    std::fprintf(stderr, "cannot make keys\n");
    return 1;
  }
  std::string endpoint;
  auto router = cn::BindCurveRouter(context, *broker_keys,
                                    "tcp://127.0.0.1:0", &endpoint);
  if (!router.ok()) {
    std::fprintf(stderr, "bind: %s\n", router.status().ToString().c_str());
    return 1;
  }
  FakeBroker broker(context, std::move(*router));

  cn::provider::ProviderOptions options;
  options.broker_endpoint = endpoint;
  options.broker_public_key = broker_keys->public_z85;
  options.usage_interval_s = 0;
  auto* registration = &options.registration;
  registration->set_site("site-bench");
  registration->set_region("north");
  registration->set_currency("CNY");
  v1::Node* node = registration->add_nodes();
  node->set_name("n1");
  v1::Accelerator* accelerator = node->add_accelerators();
  accelerator->set_model("A800");
  accelerator->set_count(1);
  cn::provider::ProcessExecutorOptions executor_options;
  executor_options.work_dir = (work / "jobs").string();
  auto agent = cn::provider::ProviderAgent::Create(
      std::move(options), std::move(*identity),
      std::make_unique<cn::provider::ProcessExecutor>(executor_options));
  if (!agent.ok()) {
    std::fprintf(stderr, "agent: %s\n", agent.status().ToString().c_str());
    return 1;
  }
  std::thread agent_thread([&] { (void)(*agent)->Run(); });

  v1::Envelope envelope;
  int64_t at_ns = 0;
  for (int i = 0; i < 500 && !broker.registered(); ++i) {
    if (broker.Receive(10, &envelope, &at_ns)) broker.Answer(envelope);
  }
  std::vector<double> exit_to_status;
  std::vector<double> offer_to_final;
  for (int i = 0; i < jobs && broker.registered(); ++i) {
    const std::string job_id = "job-" + std::to_string(i);
    v1::PlacementOffer offer;
    offer.set_job_id(job_id);
    offer.set_consumer("alice");
    offer.set_model("A800");
    offer.set_attempt(1);
    offer.mutable_spec()->add_command(self);
    offer.mutable_spec()->add_command("--child");
    offer.mutable_spec()->set_cards_per_node(1);
    offer.mutable_spec()->set_nodes(1);
    offer.mutable_spec()->set_max_duration_s(60);
    v1::NodeAssignment* assignment = offer.add_assignments();
    assignment->set_node("n1");
    assignment->add_device_indices(0);
    const int64_t offered_ns = MonotonicNs();
    broker.Send(v1::MESSAGE_TYPE_PLACEMENT_OFFER, 0, offer);
    bool done = false;
    const int64_t give_up_ns = offered_ns + int64_t{10} * 1000000000;
    while (!done && MonotonicNs() < give_up_ns) {
      if (!broker.Receive(100, &envelope, &at_ns)) continue;
      broker.Answer(envelope);
      if (envelope.type() != v1::MESSAGE_TYPE_JOB_STATUS_UPDATE) continue;
      auto update = cn::DecodeBody<v1::JobStatusUpdate>(envelope);
      if (!update.ok() || update->job_id() != job_id ||
          update->state() == v1::JOB_STATE_RUNNING) {
        continue;
      }
      done = true;
      offer_to_final.push_back(static_cast<double>(at_ns - offered_ns) / 1e6);
      auto log = cn::ReadFileToString(
          (work / "jobs" / job_id / "n1.out").string());
      if (update->state() == v1::JOB_STATE_SUCCEEDED && log.ok()) {
        const long long exited_ns = std::atoll(log->c_str());
        if (exited_ns > 0) {
          exit_to_status.push_back(
              static_cast<double>(at_ns - exited_ns) / 1e6);
        }
      }
    }
    if (!done) {
      std::fprintf(stderr, "job %s did not finish\n", job_id.c_str());
      break;
    }
  }
  (*agent)->Shutdown();
  agent_thread.join();
  std::error_code ignored;
  std::filesystem::remove_all(work, ignored);

  std::printf("one at a time, %d jobs (process executor, fake broker)\n",
              jobs);
  Print("exit -> final status", exit_to_status);
  Print("offer -> final status", offer_to_final);
  return exit_to_status.empty() ? 1 : 0;
}
