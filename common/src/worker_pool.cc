#include "computenet/common/worker_pool.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>

namespace computenet {

StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(
    WorkerPoolOptions options) {
  if (options.threads < 1) {
    return InvalidArgumentError("worker pool: threads must be at least 1");
  }
  if (options.max_queued < 1) {
    return InvalidArgumentError("worker pool: max_queued must be at least 1");
  }
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return InternalError(std::string("worker pool: eventfd: ") +
                         std::strerror(errno));
  }
  std::unique_ptr<WorkerPool> pool(new WorkerPool(std::move(options), fd));
  try {
    for (int i = 0; i < pool->options_.threads; ++i) {
      pool->threads_.emplace_back([raw = pool.get()] { raw->WorkerLoop(); });
      const std::string name =
          (pool->options_.name + "-" + std::to_string(i)).substr(0, 15);
      (void)pthread_setname_np(pool->threads_.back().native_handle(),
                               name.c_str());
    }
  } catch (const std::system_error& error) {
    return InternalError(std::string("worker pool: cannot start a thread: ") +
                         error.what());  // the destructor joins the rest
  }
  return pool;
}

WorkerPool::~WorkerPool() {
  (void)Shutdown();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  ::close(wake_fd_);
}

Status WorkerPool::Submit(Work work) {
  if (!work) return InvalidArgumentError("worker pool: empty work");
  if (shut_down_) return FailedPreconditionError("worker pool is shut down");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.size() >= options_.max_queued) {
      return ResourceExhaustedError("worker pool: " +
                                    std::to_string(queue_.size()) +
                                    " tasks already wait to start");
    }
    queue_.push_back(Task{submitted_, std::move(work)});
  }
  ++submitted_;
  work_ready_.notify_one();
  return OkStatus();
}

void WorkerPool::WorkerLoop() {
  while (true) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Shutdown() empties the queue: stopping with nothing left means done.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    Completion completion;
    try {
      completion = task.work();
    } catch (const std::exception& error) {
      spdlog::error("worker pool: task {} threw: {}", task.sequence,
                    error.what());
    } catch (...) {
      spdlog::error("worker pool: task {} threw", task.sequence);
    }
    task.work = nullptr;  // release what the work captured, off the lock
    std::lock_guard<std::mutex> lock(mutex_);
    finished_.push_back(Finished{task.sequence, std::move(completion)});
    WakeLocked();
  }
}

void WorkerPool::WakeLocked() {
  if (wake_armed_) return;
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow, which one write per Drain
  // never reaches.
  (void)!::write(wake_fd_, &one, sizeof(one));
  wake_armed_ = true;
}

void WorkerPool::ClearWakeLocked() {
  if (!wake_armed_) return;
  uint64_t count = 0;
  (void)!::read(wake_fd_, &count, sizeof(count));
  wake_armed_ = false;
}

void WorkerPool::CollectFinished() {
  std::vector<Finished> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished.swap(finished_);
    ClearWakeLocked();
  }
  for (auto& item : finished) {
    if (options_.ordered) {
      ready_by_sequence_.emplace(item.sequence, std::move(item.completion));
    } else {
      ready_.push_back(std::move(item));
    }
  }
}

size_t WorkerPool::Drain(size_t max) {
  CollectFinished();
  size_t ran = 0;
  bool more = false;
  while (true) {
    Completion completion;
    if (options_.ordered) {
      auto it = ready_by_sequence_.begin();
      if (it == ready_by_sequence_.end() || it->first != next_in_order_) break;
      if (ran == max) {
        more = true;
        break;
      }
      completion = std::move(it->second);
      ready_by_sequence_.erase(it);
      ++next_in_order_;
    } else {
      if (ready_.empty()) break;
      if (ran == max) {
        more = true;
        break;
      }
      completion = std::move(ready_.front().completion);
      ready_.pop_front();
    }
    ++retired_;
    ++ran;
    if (!completion) continue;
    try {
      completion();
    } catch (const std::exception& error) {
      spdlog::error("worker pool: completion threw: {}", error.what());
    } catch (...) {
      spdlog::error("worker pool: completion threw");
    }
  }
  if (more) {
    // Left for the next Drain: keep the owner's poll waking for them.
    std::lock_guard<std::mutex> lock(mutex_);
    WakeLocked();
  }
  return ran;
}

size_t WorkerPool::Shutdown() {
  if (shut_down_) return 0;
  shut_down_ = true;
  std::deque<Task> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  work_ready_.notify_all();
  // The queue is FIFO and nothing is submitted after this, so the dropped
  // tasks are the last sequence numbers: in order, nothing waits for them.
  retired_ += dropped.size();
  return dropped.size();
}

}  // namespace computenet
