// InstantExecutor: an Executor for the load generator whose jobs finish as
// soon as they start (exit 0), so that what is measured is the network's
// own path: offer, accept, RUNNING, signed usage, SUCCEEDED. Each job is
// metered as having run 1 ms (one started second per card), so every job
// has a non-zero usage record to settle.
//
// Thread safety: driven from the agent's thread only (as any Executor);
// started() may be read from any thread.
#ifndef COMPUTENET_BENCH_LOADGEN_INSTANT_EXECUTOR_H_
#define COMPUTENET_BENCH_LOADGEN_INSTANT_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "computenet/provider/executor.h"

namespace computenet::loadgen {

class InstantExecutor final : public provider::Executor {
 public:
  explicit InstantExecutor(std::atomic<uint64_t>* started = nullptr)
      : started_(started) {}

  Status Start(const provider::ExecutionRequest& request) override {
    for (const auto& event : pending_) {
      if (event.job_id == request.job_id) {
        return AlreadyExistsError("job " + request.job_id + " is running");
      }
    }
    const int64_t now = ClockMs();
    uint32_t cards = 0;
    for (const auto& assignment : request.assignments) {
      cards += static_cast<uint32_t>(assignment.device_indices_size());
    }
    provider::ExecutionEvent started;
    started.job_id = request.job_id;
    started.kind = provider::ExecutionEvent::Kind::kStarted;
    started.start_ms = now - 1;
    started.cards = cards;
    started.model = request.model;
    provider::ExecutionEvent finished = started;
    finished.kind = provider::ExecutionEvent::Kind::kFinished;
    finished.final_state = v1::JOB_STATE_SUCCEEDED;
    finished.end_ms = now;
    pending_.push_back(std::move(started));
    pending_.push_back(std::move(finished));
    if (started_ != nullptr) started_->fetch_add(1, std::memory_order_relaxed);
    return OkStatus();
  }
  Status Cancel(const std::string& job_id, int /*grace_ms*/) override {
    return NotFoundError("job " + job_id + " is not running");
  }
  std::vector<provider::ExecutionEvent> Poll() override {
    std::vector<provider::ExecutionEvent> out;
    out.swap(pending_);
    return out;
  }
  std::vector<std::string> ActiveJobs() const override {
    std::vector<std::string> active;
    for (const auto& event : pending_) {
      if (event.kind == provider::ExecutionEvent::Kind::kStarted) {
        active.push_back(event.job_id);
      }
    }
    return active;
  }

 private:
  std::atomic<uint64_t>* started_;
  std::vector<provider::ExecutionEvent> pending_;
};

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_INSTANT_EXECUTOR_H_
