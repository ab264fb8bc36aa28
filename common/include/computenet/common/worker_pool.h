// WorkerPool: a few threads for blocking work that must stay off an event
// loop: Ed25519 verification of usage records and replicas, checkpoint
// signing, anything CPU-bound that would stall the loop's poll for more than
// a few milliseconds.
//
// The loop's thread (the owner) Submit()s work; a worker runs it and what it
// returns, a completion, is posted back to the owner, who runs it in
// Drain(). The owner learns there is something to drain from wake_fd(), an
// eventfd it adds to its zmq::poll set beside its sockets:
//
//   zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
//                              {nullptr, pool->wake_fd(), ZMQ_POLLIN, 0}};
//   zmq::poll(items, 2, tick);
//   if (items[1].revents & ZMQ_POLLIN) pool->Drain();
//
// Completions run in the order the work finished, or, with
// WorkerPoolOptions::ordered, in the order it was submitted (a finished task
// waits for every earlier one). Work that throws is logged and has no
// completion; a completion that throws is logged and Drain() goes on.
//
// Thread-safety rule: everything here is for the owner's thread only
// (Create may run elsewhere, before the owner takes over). Work runs on a
// worker thread and must not touch the owner's state: capture what it needs
// by value. Only the completion it returns touches the owner's state, on the
// owner's thread, inside Drain(), so that state needs no locks.
#ifndef COMPUTENET_COMMON_WORKER_POOL_H_
#define COMPUTENET_COMMON_WORKER_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "computenet/common/status.h"

namespace computenet {

struct WorkerPoolOptions {
  // Worker threads; at least 1.
  int threads = 2;
  // Tasks submitted and not yet started, at most; Submit() beyond it is
  // RESOURCE_EXHAUSTED (back-pressure for the loop). At least 1.
  size_t max_queued = 65536;
  // Run completions in submission order instead of finish order.
  bool ordered = false;
  // Prefix of the worker threads' names (at most 15 characters shown).
  std::string name = "cn-worker";
};

class WorkerPool {
 public:
  // Runs on the owner's thread, in Drain().
  using Completion = std::function<void()>;
  // Runs on a worker; returns the completion (may be empty: nothing to do).
  using Work = std::function<Completion()>;

  // INVALID_ARGUMENT on bad options; INTERNAL if the eventfd or the threads
  // cannot be made.
  static StatusOr<std::unique_ptr<WorkerPool>> Create(
      WorkerPoolOptions options);

  // Shutdown(), then waits for the work still running. Completions not yet
  // drained are dropped without running.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues work. FAILED_PRECONDITION after Shutdown(); RESOURCE_EXHAUSTED
  // if max_queued tasks are waiting to start; INVALID_ARGUMENT if empty.
  Status Submit(Work work);

  // Convenience: work() runs on a worker, done(result) on the owner (done()
  // if work returns void). Both are copied into a std::function, so they
  // must be copyable.
  template <typename WorkFn, typename DoneFn>
  Status Submit(WorkFn work, DoneFn done);

  // Runs up to max completions that are ready, on this (the owner's)
  // thread; returns how many ran. If some stay ready, wake_fd() stays
  // readable.
  size_t Drain(size_t max = SIZE_MAX);

  // Readable (POLLIN) while completions wait for Drain(). Owned by the pool.
  int wake_fd() const { return wake_fd_; }

  // Tasks submitted whose completion has neither run nor been dropped.
  size_t pending() const { return submitted_ - retired_; }

  // Stops taking work and drops the tasks that have not started (their
  // completions never run); returns how many were dropped. Does not block:
  // work already running finishes, and its completions can still be
  // drained. Idempotent.
  size_t Shutdown();

 private:
  struct Task {
    uint64_t sequence = 0;
    Work work;
  };
  struct Finished {
    uint64_t sequence = 0;
    Completion completion;
  };

  WorkerPool(WorkerPoolOptions options, int wake_fd)
      : options_(std::move(options)), wake_fd_(wake_fd) {}
  void WorkerLoop();
  // With mutex_ held: makes wake_fd_ readable, once until the next Drain.
  void WakeLocked();
  void ClearWakeLocked();
  // Moves finished work from the workers' list to the owner's.
  void CollectFinished();

  const WorkerPoolOptions options_;
  const int wake_fd_;

  // Shared with the workers, under mutex_.
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<Task> queue_;
  std::vector<Finished> finished_;
  bool stopping_ = false;
  bool wake_armed_ = false;
  std::vector<std::thread> threads_;

  // The owner's alone.
  uint64_t submitted_ = 0;  // also the next task's sequence number
  uint64_t retired_ = 0;    // completions run or dropped
  bool shut_down_ = false;
  // Finished work not run yet: in finish order, or by sequence (ordered).
  std::deque<Finished> ready_;
  std::map<uint64_t, Completion> ready_by_sequence_;
  uint64_t next_in_order_ = 0;  // ordered: the next sequence to run
};

template <typename WorkFn, typename DoneFn>
Status WorkerPool::Submit(WorkFn work, DoneFn done) {
  using Result = std::invoke_result_t<WorkFn&>;
  return Submit(Work([work = std::move(work),
                      done = std::move(done)]() mutable -> Completion {
    if constexpr (std::is_void_v<Result>) {
      work();
      return [done]() mutable { done(); };
    } else {
      auto result = std::make_shared<Result>(work());
      return [done, result]() mutable { done(std::move(*result)); };
    }
  }));
}

}  // namespace computenet

#endif  // COMPUTENET_COMMON_WORKER_POOL_H_
