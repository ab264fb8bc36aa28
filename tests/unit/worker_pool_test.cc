// WorkerPool: work on worker threads, completions back on the owner's
// thread through an eventfd in the owner's zmq::poll set.
#include "computenet/common/worker_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "computenet/common/ed25519.h"
#include "test_support.h"

namespace computenet {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using testing::WaitUntil;

// A bound for a broken wake-up, not a measurement.
constexpr int kBoundMs = 30000;

bool Readable(int fd, int timeout_ms) {
  pollfd item{fd, POLLIN, 0};
  return ::poll(&item, 1, timeout_ms) == 1 && (item.revents & POLLIN) != 0;
}

std::unique_ptr<WorkerPool> MustCreate(WorkerPoolOptions options) {
  auto pool = WorkerPool::Create(std::move(options));
  EXPECT_TRUE(pool.ok()) << pool.status().ToString();
  return pool.ok() ? std::move(*pool) : nullptr;
}

// The owner's loop: waits on the wake fd and drains until nothing is pending.
void DrainAll(WorkerPool& pool) {
  while (pool.pending() > 0) {
    ASSERT_TRUE(Readable(pool.wake_fd(), kBoundMs))
        << pool.pending() << " pending and no wake-up";
    pool.Drain();
  }
}

TEST(WorkerPoolTest, BatchOfEd25519VerificationsThroughThePool) {
  std::vector<SigningKey> keys;
  for (int i = 0; i < 4; ++i) {
    auto key = SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    keys.push_back(*key);
  }
  struct Record {
    std::string message;
    std::string signature;
    size_t key;
    bool genuine;
  };
  std::vector<Record> records;
  for (int i = 0; i < 200; ++i) {
    Record record;
    record.key = static_cast<size_t>(i) % keys.size();
    record.message = "usage record " + std::to_string(i);
    auto signature = keys[record.key].Sign(record.message);
    ASSERT_TRUE(signature.ok());
    record.signature = *signature;
    record.genuine = i % 7 != 0;
    if (!record.genuine) record.message += " (tampered)";
    records.push_back(record);
  }

  auto pool = MustCreate({.threads = 2});
  ASSERT_NE(pool, nullptr);
  const auto owner = std::this_thread::get_id();
  std::vector<int> verdicts(records.size(), -1);  // owner state, no lock
  std::atomic<int> off_owner{0};
  for (size_t i = 0; i < records.size(); ++i) {
    VerifyingKey key = keys[records[i].key].verifying_key();
    const Record record = records[i];
    ASSERT_TRUE(pool->Submit(
                        [key, record, owner, &off_owner] {
                          if (std::this_thread::get_id() != owner) ++off_owner;
                          return key.Verify(record.message, record.signature);
                        },
                        [&verdicts, i, owner](Status verified) {
                          EXPECT_EQ(std::this_thread::get_id(), owner);
                          verdicts[i] = verified.ok() ? 1 : 0;
                        })
                    .ok());
  }
  // The owner polls the pool's fd in its zmq::poll set, beside a socket.
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::pair);
  socket.bind("inproc://worker-pool-test");
  while (pool->pending() > 0) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, pool->wake_fd(), ZMQ_POLLIN, 0}};
    ASSERT_EQ(zmq::poll(items, 2, std::chrono::milliseconds(kBoundMs)), 1)
        << "no wake-up with " << pool->pending() << " pending";
    ASSERT_NE(items[1].revents & ZMQ_POLLIN, 0);
    pool->Drain();
  }
  EXPECT_EQ(off_owner.load(), 200) << "every verification ran on a worker";
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(verdicts[i], records[i].genuine ? 1 : 0) << "record " << i;
  }
  EXPECT_FALSE(Readable(pool->wake_fd(), 0)) << "nothing left to drain";
}

// Task 0 blocks until the other nine have finished; then it is let go.
struct HeldFirst {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> finished{0};
  std::vector<int> order;  // completions, on the owner

  void SubmitTen(WorkerPool& pool) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(pool.Submit(
                          [this, i] {
                            if (i == 0) released.wait();
                            ++finished;
                            return i;
                          },
                          [this](int id) { order.push_back(id); })
                      .ok());
    }
  }
};

TEST(WorkerPoolTest, OrderedCompletionsRunInSubmissionOrder) {
  auto pool = MustCreate({.threads = 3, .ordered = true});
  ASSERT_NE(pool, nullptr);
  HeldFirst held;
  held.SubmitTen(*pool);
  ASSERT_TRUE(WaitUntil([&] { return held.finished.load() == 9; },
                        std::chrono::milliseconds(kBoundMs)));
  ASSERT_TRUE(Readable(pool->wake_fd(), kBoundMs));
  EXPECT_EQ(pool->Drain(), 0u) << "1..9 wait for 0";
  EXPECT_TRUE(held.order.empty());
  held.release.set_value();
  DrainAll(*pool);
  EXPECT_THAT(held.order, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
}

TEST(WorkerPoolTest, UnorderedCompletionsRunInFinishOrder) {
  auto pool = MustCreate({.threads = 3});
  ASSERT_NE(pool, nullptr);
  HeldFirst held;
  held.SubmitTen(*pool);
  ASSERT_TRUE(WaitUntil([&] { return held.finished.load() == 9; },
                        std::chrono::milliseconds(kBoundMs)));
  ASSERT_TRUE(Readable(pool->wake_fd(), kBoundMs));
  EXPECT_EQ(pool->Drain(), 9u);
  EXPECT_THAT(held.order, UnorderedElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
  EXPECT_EQ(pool->pending(), 1u);
  held.release.set_value();
  DrainAll(*pool);
  ASSERT_EQ(held.order.size(), 10u);
  EXPECT_EQ(held.order.back(), 0) << "the held task finished last";
}

TEST(WorkerPoolTest, OneWorkerRunsInSubmissionOrder) {
  auto pool = MustCreate({.threads = 1});
  ASSERT_NE(pool, nullptr);
  std::vector<int> order;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(pool->Submit([i] { return i; },
                             [&order](int id) { order.push_back(id); })
                    .ok());
  }
  DrainAll(*pool);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

TEST(WorkerPoolTest, BoundedDrainKeepsTheWakeFdReadable) {
  auto pool = MustCreate({.threads = 2});
  ASSERT_NE(pool, nullptr);
  std::atomic<int> finished{0};
  int ran = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pool->Submit([&finished] { ++finished; },
                             [&ran] { ++ran; })
                    .ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return finished.load() == 5; },
                        std::chrono::milliseconds(kBoundMs)));
  EXPECT_EQ(pool->Drain(2), 2u);
  EXPECT_TRUE(Readable(pool->wake_fd(), 0)) << "three still ready";
  EXPECT_EQ(pool->Drain(), 3u);
  EXPECT_EQ(ran, 5);
  EXPECT_FALSE(Readable(pool->wake_fd(), 0));
  EXPECT_EQ(pool->Drain(), 0u);
}

TEST(WorkerPoolTest, ShutdownWithWorkInFlight) {
  auto pool = MustCreate({.threads = 1});
  ASSERT_NE(pool, nullptr);
  std::promise<void> started;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::vector<std::string> completed;
  std::atomic<int> worked{0};
  ASSERT_TRUE(pool->Submit(
                      [&started, released, &worked] {
                        started.set_value();
                        released.wait();
                        ++worked;
                      },
                      [&completed] { completed.push_back("running"); })
                  .ok());
  started.get_future().wait();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool->Submit([&worked] { ++worked; },
                             [&completed] { completed.push_back("queued"); })
                    .ok());
  }
  EXPECT_EQ(pool->pending(), 4u);
  EXPECT_EQ(pool->Shutdown(), 3u) << "the three queued are dropped";
  EXPECT_EQ(pool->Shutdown(), 0u) << "idempotent";
  EXPECT_EQ(pool->Submit([] { return WorkerPool::Completion(); }).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool->pending(), 1u) << "only the running one";
  release.set_value();
  DrainAll(*pool);
  EXPECT_THAT(completed, ElementsAre("running"));
  EXPECT_EQ(worked.load(), 1) << "dropped work never ran";
}

TEST(WorkerPoolTest, DestructorWaitsForRunningWorkAndDropsCompletions) {
  std::atomic<int> worked{0};
  int completed = 0;
  {
    auto pool = MustCreate({.threads = 2});
    ASSERT_NE(pool, nullptr);
    std::promise<void> release;
    auto released = release.get_future().share();
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(pool->Submit(
                          [released, &worked] {
                            released.wait();
                            ++worked;
                          },
                          [&completed] { ++completed; })
                      .ok());
    }
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(pool->Submit([&worked] { ++worked; },
                               [&completed] { ++completed; })
                      .ok());
    }
    std::thread releaser([&release] { release.set_value(); });
    releaser.join();
    // Destroyed with work running or queued and nothing drained.
  }
  EXPECT_EQ(completed, 0) << "no completion runs after the owner let go";
  EXPECT_GE(worked.load(), 0);
  EXPECT_LE(worked.load(), 22);
}

TEST(WorkerPoolTest, QueueBoundPushesBack) {
  auto pool = MustCreate({.threads = 1, .max_queued = 2});
  ASSERT_NE(pool, nullptr);
  std::promise<void> started;
  std::promise<void> release;
  auto released = release.get_future().share();
  ASSERT_TRUE(pool->Submit([&started, released] {
                    started.set_value();
                    released.wait();
                    return WorkerPool::Completion();
                  })
                  .ok());
  started.get_future().wait();  // running: no longer queued
  auto nothing = [] { return WorkerPool::Completion(); };
  EXPECT_TRUE(pool->Submit(nothing).ok());
  EXPECT_TRUE(pool->Submit(nothing).ok());
  EXPECT_EQ(pool->Submit(nothing).code(), StatusCode::kResourceExhausted);
  release.set_value();
  DrainAll(*pool);
  EXPECT_TRUE(pool->Submit(nothing).ok()) << "room again";
  DrainAll(*pool);
}

TEST(WorkerPoolTest, ThrowingWorkHasNoCompletionAndDoesNotStallOrder) {
  auto pool = MustCreate({.threads = 2, .ordered = true});
  ASSERT_NE(pool, nullptr);
  std::vector<int> order;
  ASSERT_TRUE(pool->Submit(
                      []() -> int { throw std::runtime_error("boom"); },
                      [&order](int id) { order.push_back(id); })
                  .ok());
  ASSERT_TRUE(pool->Submit([] { return 1; },
                           [&order](int id) { order.push_back(id); })
                  .ok());
  ASSERT_TRUE(pool->Submit(
                      [] { return 2; },
                      [](int) { throw std::runtime_error("completion boom"); })
                  .ok());
  ASSERT_TRUE(pool->Submit([] { return 3; },
                           [&order](int id) { order.push_back(id); })
                  .ok());
  DrainAll(*pool);
  EXPECT_THAT(order, ElementsAre(1, 3));
  EXPECT_EQ(pool->pending(), 0u);
}

TEST(WorkerPoolTest, BadOptionsAreRejected) {
  EXPECT_EQ(WorkerPool::Create({.threads = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WorkerPool::Create({.max_queued = 0}).status().code(),
            StatusCode::kInvalidArgument);
  auto pool = MustCreate({});
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->Submit(WorkerPool::Work()).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace computenet
