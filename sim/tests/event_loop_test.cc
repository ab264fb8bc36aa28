#include "computenet/sim/event_loop.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace computenet::sim {
namespace {

TEST(EventLoopTest, RunsEventsInTimeOrderAndSameTimeInScheduleOrder) {
  EventLoop loop;
  std::vector<std::string> ran;
  loop.At(30, [&] { ran.push_back("c"); });
  loop.At(10, [&] { ran.push_back("a1"); });
  loop.At(10, [&] { ran.push_back("a2"); });
  loop.At(20, [&] { ran.push_back("b"); });
  EXPECT_EQ(loop.Run(), 4u);
  EXPECT_EQ(ran, (std::vector<std::string>{"a1", "a2", "b", "c"}));
  EXPECT_EQ(loop.now_ms(), 30);
}

TEST(EventLoopTest, KeepsTheClockAtTheEventTimeAndNeverGoesBack) {
  EventLoop loop(100);
  std::vector<int64_t> seen;
  loop.At(150, [&] {
    seen.push_back(loop.clock()->NowMs());
    // In the past: runs at now, after what is already due now.
    loop.At(50, [&] { seen.push_back(loop.clock()->NowMs()); });
    loop.After(25, [&] { seen.push_back(loop.now_ms()); });
  });
  loop.Run();
  EXPECT_EQ(seen, (std::vector<int64_t>{150, 150, 175}));
}

TEST(EventLoopTest, RunUntilLeavesLaterEventsPending) {
  EventLoop loop;
  int count = 0;
  for (int t = 1; t <= 10; ++t) loop.At(t * 100, [&] { ++count; });
  EXPECT_EQ(loop.RunUntil(500), 5u);
  EXPECT_EQ(count, 5);
  EXPECT_EQ(loop.pending(), 5u);
  EXPECT_EQ(loop.Run(), 5u);
  EXPECT_EQ(count, 10);
}

TEST(EventLoopTest, EventsMayScheduleManyMore) {
  EventLoop loop;
  int count = 0;
  std::function<void()> chain = [&] {
    if (++count < 1000) {
      loop.After(1, chain);
      loop.After(1, [] {});
    }
  };
  loop.At(0, chain);
  loop.Run();
  EXPECT_EQ(count, 1000);
  EXPECT_EQ(loop.now_ms(), 999);
}

}  // namespace
}  // namespace computenet::sim
