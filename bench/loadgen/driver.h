// The load generator's consumers: an open-loop job stream from M enrolled
// consumers, and the record of what happened to every job.
//
// Arrivals are Poisson at rate/M per consumer, decided in advance; each
// job's latencies count from its *due* time, so a client that falls behind
// shows up as latency (no coordinated omission). Two ways to submit:
//   sdk       (default) one consumer::Client per consumer, each on its own
//             thread; Client::Submit waits for its reply, so at most M
//             submissions are in flight;
//   pipelined one DealerChannel per consumer speaking SUBMIT_JOB directly,
//             all from one thread, without waiting for replies (for rates
//             beyond M / round-trip time).
// Either way a DealerChannel per consumer sends WATCH_JOBS and receives its
// jobs' JOB_EVENTs (PLACED, RUNNING, SUCCEEDED with the charge), stamped on
// arrival.
//
// Thread safety: JobTracker is internally locked. LoadDriver's methods are
// called from one (the main) thread; it runs its own threads inside.
#ifndef COMPUTENET_BENCH_LOADGEN_DRIVER_H_
#define COMPUTENET_BENCH_LOADGEN_DRIVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "computenet/common/identity.h"
#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::loadgen {

// Nanoseconds on the steady clock.
int64_t NowNs();

struct JobTimes {
  int step = -1;
  int64_t due_ns = 0;  // when the open-loop schedule wanted it sent
  int64_t sent_ns = 0;
  int64_t accepted_ns = 0;  // SUBMIT_JOB_REPLY OK
  int64_t refused_ns = 0;   // SUBMIT_JOB_REPLY not OK (or send failed)
  int64_t placed_ns = 0;    // first event at PLACED or later
  int64_t running_ns = 0;
  int64_t done_ns = 0;  // terminal event
  v1::JobState final_state = v1::JOB_STATE_UNSPECIFIED;
  int64_t charged = 0;  // minor units, from the terminal event
  uint64_t card_seconds = 0;
  // Ended SUCCEEDED. The agent sends the closing usage record before the
  // terminal status on one ordered connection, and the broker handles them
  // in order, so by then the usage is posted.
  bool cleared() const { return final_state == v1::JOB_STATE_SUCCEEDED; }
  // ... with a non-zero metered usage (a job of 0 ms meters 0 card-seconds
  // and is charged nothing; the InstantExecutor meters 1 ms, so 1 s/card).
  bool settled() const { return cleared() && card_seconds > 0; }
};

class JobTracker {
 public:
  size_t NewJob(int step, int64_t due_ns, int64_t sent_ns);
  void Accepted(size_t index, const std::string& job_id, int64_t now_ns);
  void Refused(size_t index, StatusCode code, int64_t now_ns);
  void OnEvent(const v1::JobInfo& job, int64_t now_ns);
  std::vector<JobTimes> Snapshot(size_t from = 0) const;
  size_t size() const;
  std::map<StatusCode, uint64_t> refusals() const;
  // Jobs sent and not yet answered, or accepted and not yet terminal.
  size_t Outstanding(size_t from) const;

 private:
  struct Early {  // events that arrived before the submit reply
    std::vector<std::pair<v1::JobState, int64_t>> states;
    int64_t charged = 0;
    uint64_t card_seconds = 0;
  };
  void Apply(JobTimes& job, v1::JobState state, int64_t now_ns, int64_t charged,
             uint64_t card_seconds);

  mutable std::mutex mu_;
  std::vector<JobTimes> jobs_;
  std::unordered_map<std::string, size_t> by_id_;
  std::unordered_map<std::string, Early> early_;
  std::map<StatusCode, uint64_t> refusals_;
};

struct DriverOptions {
  std::string endpoint;
  std::string broker_public_key;
  std::vector<Identity> consumers;
  bool pipelined = false;
  // Only watch events (the caller submits, e.g. the Slurm side by side).
  bool watch_only = false;
  int request_timeout_ms = 10'000;
};

// What the submit side did in one step.
struct StepSubmission {
  uint64_t due = 0;  // arrivals scheduled in the window
  uint64_t sent = 0;
  uint64_t unsent = 0;  // due in the window but the client was still busy
};

class LoadDriver {
 public:
  LoadDriver(DriverOptions options, std::vector<v1::JobSpec> mix,
             JobTracker* tracker);
  ~LoadDriver();
  // Connects every consumer and subscribes to its jobs' events.
  Status Start();
  // Runs one open-loop step of `seconds` at `rate` jobs/s in total; returns
  // when the window closes (jobs may still be in flight).
  StepSubmission RunStep(int step, double rate, double seconds, uint64_t seed);
  void Stop();
  uint64_t events_received() const { return events_.load(); }

 private:
  struct Plan {
    int step = -1;
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    double rate_per_consumer = 0;
    uint64_t seed = 0;
  };
  void EventLoop();                  // watchers (+ pipelined submits)
  void SubmitLoop(size_t consumer);  // sdk mode, one per consumer
  const v1::JobSpec& Pick(uint64_t draw) const {
    return mix_[draw % mix_.size()];
  }

  DriverOptions options_;
  std::vector<v1::JobSpec> mix_;
  JobTracker* tracker_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> events_{0};
  std::atomic<int> watch_replies_{0};
  std::thread event_thread_;
  std::vector<std::thread> submit_threads_;

  std::mutex plan_mu_;
  std::condition_variable plan_cv_;
  Plan plan_;
  uint64_t plan_generation_ = 0;
  size_t plan_done_ = 0;  // submit threads (or the event loop) done with it
  StepSubmission plan_result_;
};

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_DRIVER_H_
