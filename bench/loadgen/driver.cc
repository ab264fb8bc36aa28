// The load generator's consumers and job record (see driver.h).
#include "driver.h"

#include <chrono>
#include <random>
#include <zmq.hpp>

#include "computenet/common/envelope.h"
#include "computenet/common/transport.h"
#include "computenet/consumer/client.h"
#include "computenet/v1/consumer.pb.h"

namespace computenet::loadgen {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// --- JobTracker ------------------------------------------------------------

size_t JobTracker::NewJob(int step, int64_t due_ns, int64_t sent_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  JobTimes job;
  job.step = step;
  job.due_ns = due_ns;
  job.sent_ns = sent_ns;
  jobs_.push_back(job);
  return jobs_.size() - 1;
}

void JobTracker::Apply(JobTimes& job, v1::JobState state, int64_t now_ns,
                       int64_t charged, uint64_t card_seconds) {
  if (state >= v1::JOB_STATE_PLACED && job.placed_ns == 0)
    job.placed_ns = now_ns;
  if (state >= v1::JOB_STATE_RUNNING && job.running_ns == 0) {
    job.running_ns = now_ns;
  }
  if (state >= v1::JOB_STATE_SUCCEEDED && job.done_ns == 0) {
    job.done_ns = now_ns;
    job.final_state = state;
    job.charged = charged;
    job.card_seconds = card_seconds;
  }
}

void JobTracker::Accepted(size_t index, const std::string& job_id,
                          int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  JobTimes& job = jobs_[index];
  job.accepted_ns = now_ns;
  by_id_[job_id] = index;
  auto early = early_.find(job_id);
  if (early != early_.end()) {
    for (const auto& [state, at] : early->second.states) {
      Apply(job, state, at, early->second.charged, early->second.card_seconds);
    }
    early_.erase(early);
  }
}

void JobTracker::Refused(size_t index, StatusCode code, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_[index].refused_ns = now_ns;
  ++refusals_[code];
}

void JobTracker::OnEvent(const v1::JobInfo& job, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(job.job_id());
  if (it == by_id_.end()) {
    // The event stream and the submit reply travel on different
    // connections in sdk mode: keep it until the reply names the job.
    Early& early = early_[job.job_id()];
    early.states.emplace_back(job.state(), now_ns);
    early.charged = job.charged();
    early.card_seconds = job.card_seconds();
    return;
  }
  Apply(jobs_[it->second], job.state(), now_ns, job.charged(),
        job.card_seconds());
}

std::vector<JobTimes> JobTracker::Snapshot(size_t from) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (from >= jobs_.size()) return {};
  return std::vector<JobTimes>(jobs_.begin() + static_cast<ptrdiff_t>(from),
                               jobs_.end());
}

size_t JobTracker::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

std::map<StatusCode, uint64_t> JobTracker::refusals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refusals_;
}

size_t JobTracker::Outstanding(size_t from) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t outstanding = 0;
  for (size_t i = from; i < jobs_.size(); ++i) {
    const JobTimes& job = jobs_[i];
    if (job.refused_ns != 0) continue;
    if (job.accepted_ns == 0 || job.done_ns == 0) ++outstanding;
  }
  return outstanding;
}

// --- LoadDriver ------------------------------------------------------------

LoadDriver::LoadDriver(DriverOptions options, std::vector<v1::JobSpec> mix,
                       JobTracker* tracker)
    : options_(std::move(options)), mix_(std::move(mix)), tracker_(tracker) {}

LoadDriver::~LoadDriver() { Stop(); }

Status LoadDriver::Start() {
  if (mix_.empty()) return InvalidArgumentError("empty job mix");
  event_thread_ = std::thread([this] { EventLoop(); });
  if (!options_.pipelined && !options_.watch_only) {
    for (size_t c = 0; c < options_.consumers.size(); ++c) {
      submit_threads_.emplace_back([this, c] { SubmitLoop(c); });
    }
  }
  // A broker still busy with a registration storm may take a while.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (watch_replies_.load() < static_cast<int>(options_.consumers.size())) {
    if (std::chrono::steady_clock::now() > deadline) {
      return UnavailableError("consumers' WATCH_JOBS not answered in 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return OkStatus();
}

void LoadDriver::Stop() {
  stop_.store(true);
  plan_cv_.notify_all();
  for (auto& thread : submit_threads_) thread.join();
  submit_threads_.clear();
  if (event_thread_.joinable()) event_thread_.join();
}

StepSubmission LoadDriver::RunStep(int step, double rate, double seconds,
                                   uint64_t seed) {
  std::unique_lock<std::mutex> lock(plan_mu_);
  plan_.step = step;
  plan_.start_ns = NowNs() + 2'000'000;  // everyone starts together
  plan_.end_ns = plan_.start_ns + static_cast<int64_t>(seconds * 1e9);
  plan_.rate_per_consumer =
      rate / static_cast<double>(options_.consumers.size());
  plan_.seed = seed;
  ++plan_generation_;
  plan_done_ = 0;
  plan_result_ = StepSubmission();
  plan_cv_.notify_all();
  const size_t expected = options_.pipelined ? 1 : options_.consumers.size();
  plan_cv_.wait_for(lock, std::chrono::duration<double>(seconds + 60.0),
                    [&] { return plan_done_ >= expected || stop_.load(); });
  return plan_result_;
}

void LoadDriver::SubmitLoop(size_t consumer) {
  consumer::ClientOptions client_options;
  client_options.broker_endpoint = options_.endpoint;
  client_options.broker_public_key = options_.broker_public_key;
  client_options.request_timeout_ms = options_.request_timeout_ms;
  client_options.retries = 1;
  auto client =
      consumer::Client::Connect(client_options, options_.consumers[consumer]);
  uint64_t seen = 0;
  while (!stop_.load()) {
    Plan plan;
    {
      std::unique_lock<std::mutex> lock(plan_mu_);
      plan_cv_.wait(lock,
                    [&] { return stop_.load() || plan_generation_ > seen; });
      if (stop_.load()) return;
      seen = plan_generation_;
      plan = plan_;
    }
    StepSubmission local;
    std::mt19937_64 random(plan.seed * 7919 + consumer);
    std::exponential_distribution<double> gap(plan.rate_per_consumer);
    double due = static_cast<double>(plan.start_ns) + gap(random) * 1e9;
    uint64_t k = 0;
    while (due < static_cast<double>(plan.end_ns) && !stop_.load()) {
      ++local.due;
      const int64_t due_ns = static_cast<int64_t>(due);
      due += gap(random) * 1e9;
      const uint64_t draw = random();
      int64_t now = NowNs();
      if (now >= plan.end_ns || !client.ok()) {
        ++local.unsent;
        continue;
      }
      if (due_ns > now) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(due_ns - now));
      }
      const size_t index = tracker_->NewJob(plan.step, due_ns, NowNs());
      ++local.sent;
      auto reply = (*client)->Submit(
          Pick(draw), "s" + std::to_string(plan.step) + "-c" +
                          std::to_string(consumer) + "-" + std::to_string(k++));
      now = NowNs();
      if (reply.ok()) {
        tracker_->Accepted(index, reply->job_id(), now);
      } else {
        tracker_->Refused(index, reply.status().code(), now);
      }
    }
    std::lock_guard<std::mutex> lock(plan_mu_);
    plan_result_.due += local.due;
    plan_result_.sent += local.sent;
    plan_result_.unsent += local.unsent;
    ++plan_done_;
    plan_cv_.notify_all();
  }
}

void LoadDriver::EventLoop() {
  zmq::context_t context(1);
  const size_t consumers = options_.consumers.size();
  std::vector<std::unique_ptr<DealerChannel>> channels;
  std::vector<zmq::pollitem_t> items;
  for (const auto& identity : options_.consumers) {
    DealerOptions dealer;
    dealer.endpoint = options_.endpoint;
    dealer.server_public_key = options_.broker_public_key;
    dealer.client_keys = identity.curve();
    dealer.send_timeout_ms = 5000;  // for WATCH_JOBS, while connecting
    auto channel = DealerChannel::Connect(context, dealer);
    if (!channel.ok()) return;
    (void)(*channel)->Send(v1::MESSAGE_TYPE_WATCH_JOBS,
                           (*channel)->NextRequestId(), v1::WatchJobs());
    // From now on never block: a full pipe is back-pressure to count.
    (*channel)->socket().set(zmq::sockopt::sndtimeo, 0);
    items.push_back(
        zmq::pollitem_t{(*channel)->socket().handle(), 0, ZMQ_POLLIN, 0});
    channels.push_back(std::move(*channel));
  }
  // Pipelined submissions: per consumer, its schedule and requests in flight.
  struct Pipe {
    std::mt19937_64 random;
    std::exponential_distribution<double> gap;
    double next_due = 0;
    uint64_t k = 0;
    std::unordered_map<uint64_t, size_t> in_flight;  // request id -> job
  };
  std::vector<Pipe> pipes(consumers);
  uint64_t seen = 0;
  Plan plan;
  bool active = false;
  StepSubmission local;
  v1::SubmitJob submit;

  while (!stop_.load()) {
    int64_t now = NowNs();
    int timeout_ms = 5;
    if (options_.pipelined) {
      if (!active) {
        std::lock_guard<std::mutex> lock(plan_mu_);
        if (plan_generation_ > seen) {
          seen = plan_generation_;
          plan = plan_;
          active = true;
          local = StepSubmission();
          for (size_t c = 0; c < consumers; ++c) {
            pipes[c].random.seed(plan.seed * 7919 + c);
            pipes[c].gap =
                std::exponential_distribution<double>(plan.rate_per_consumer);
            pipes[c].next_due = static_cast<double>(plan.start_ns) +
                                pipes[c].gap(pipes[c].random) * 1e9;
          }
        }
      }
      if (active) {
        bool all_done = true;
        for (size_t c = 0; c < consumers; ++c) {
          Pipe& pipe = pipes[c];
          while (pipe.next_due < static_cast<double>(plan.end_ns) &&
                 pipe.next_due <= static_cast<double>(now)) {
            const int64_t due_ns = static_cast<int64_t>(pipe.next_due);
            *submit.mutable_spec() = Pick(pipe.random());
            submit.set_idempotency_key("s" + std::to_string(plan.step) + "-c" +
                                       std::to_string(c) + "-" +
                                       std::to_string(pipe.k));
            const uint64_t id = channels[c]->NextRequestId();
            const int64_t sent_at = NowNs();
            if (!channels[c]
                     ->Send(v1::MESSAGE_TYPE_SUBMIT_JOB, id, submit)
                     .ok()) {
              break;  // pipe full: try again on the next round
            }
            ++pipe.k;
            ++local.due;
            ++local.sent;
            pipe.in_flight[id] = tracker_->NewJob(plan.step, due_ns, sent_at);
            pipe.next_due += pipe.gap(pipe.random) * 1e9;
          }
          if (now >= plan.end_ns) {
            // Whatever was due and could not be sent is unsent.
            while (pipe.next_due < static_cast<double>(plan.end_ns)) {
              ++local.due;
              ++local.unsent;
              pipe.next_due += pipe.gap(pipe.random) * 1e9;
            }
          }
          if (pipe.next_due < static_cast<double>(plan.end_ns))
            all_done = false;
        }
        if (all_done) {
          active = false;
          std::lock_guard<std::mutex> lock(plan_mu_);
          plan_result_ = local;
          ++plan_done_;
          plan_cv_.notify_all();
        } else {
          timeout_ms = 1;
        }
      }
    }
    try {
      zmq::poll(items.data(), items.size(),
                std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t&) {
      return;
    }
    now = NowNs();
    for (size_t c = 0; c < consumers; ++c) {
      if ((items[c].revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t message;
      for (int n = 0; n < 1000 && channels[c]->socket().recv(
                                      message, zmq::recv_flags::dontwait);
           ++n) {
        auto envelope = DecodeEnvelope(message.to_string_view());
        if (!envelope.ok()) continue;
        switch (envelope->type()) {
          case v1::MESSAGE_TYPE_JOB_EVENT: {
            auto event = DecodeBody<v1::JobEvent>(*envelope);
            if (event.ok()) tracker_->OnEvent(event->job(), now);
            events_.fetch_add(1, std::memory_order_relaxed);
            break;
          }
          case v1::MESSAGE_TYPE_WATCH_JOBS_REPLY:
            watch_replies_.fetch_add(1);
            break;
          case v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY:
          case v1::MESSAGE_TYPE_ERROR: {
            auto& in_flight = pipes[c].in_flight;
            auto it = in_flight.find(envelope->request_id());
            Status status = StatusFromProto(envelope->status());
            if (it == in_flight.end()) {
              // request id 0: the rate limiter dropped some frame unseen.
              if (!status.ok())
                tracker_->Refused(tracker_->NewJob(-1, now, now), status.code(),
                                  now);
              break;
            }
            if (status.ok()) {
              auto reply = DecodeBody<v1::SubmitJobReply>(*envelope);
              if (reply.ok())
                tracker_->Accepted(it->second, reply->job_id(), now);
            } else {
              tracker_->Refused(it->second, status.code(), now);
            }
            in_flight.erase(it);
            break;
          }
          default:
            break;
        }
      }
    }
  }
}

}  // namespace computenet::loadgen
