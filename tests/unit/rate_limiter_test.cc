// RateLimiter: a token bucket per key, driven by an injected time.
#include "computenet/common/rate_limiter.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "computenet/common/clock.h"

namespace computenet {
namespace {

int TakeAll(RateLimiter& limiter, const std::string& key, int64_t now_ms,
            int attempts) {
  int allowed = 0;
  for (int i = 0; i < attempts; ++i) {
    if (limiter.Allow(key, now_ms)) ++allowed;
  }
  return allowed;
}

TEST(RateLimiterTest, BurstThenRefusal) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(limiter.Allow("alice", clock.NowMs())) << "request " << i;
  }
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
}

TEST(RateLimiterTest, RefillsOverTime) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/2, /*burst=*/4);
  EXPECT_EQ(TakeAll(limiter, "alice", clock.NowMs(), 10), 4);

  // 2 tokens/s: one token every 500 ms.
  clock.AdvanceMs(499);
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
  clock.AdvanceMs(1);
  EXPECT_TRUE(limiter.Allow("alice", clock.NowMs()));
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));

  clock.AdvanceMs(1000);
  EXPECT_EQ(TakeAll(limiter, "alice", clock.NowMs(), 10), 2);
}

TEST(RateLimiterTest, RefillIsCappedAtBurst) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/10, /*burst=*/3);
  EXPECT_EQ(TakeAll(limiter, "alice", clock.NowMs(), 10), 3);
  clock.AdvanceMs(3'600'000);  // an hour idle
  EXPECT_EQ(TakeAll(limiter, "alice", clock.NowMs(), 100), 3);
}

TEST(RateLimiterTest, SustainedRateWithCoarseRequests) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/10, /*burst=*/1);
  int allowed = 0;
  // Ask every 100 ms for 10 s: each request finds exactly one new token.
  for (int i = 0; i < 100; ++i) {
    if (limiter.Allow("alice", clock.NowMs())) ++allowed;
    clock.AdvanceMs(100);
  }
  EXPECT_EQ(allowed, 100);
}

TEST(RateLimiterTest, SustainedRateMatchesConfiguration) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/10, /*burst=*/1);
  int allowed = 0;
  // Ask every 10 ms for 10 s: 10 per second get through (100 in all). Ten
  // refills of 0.1 token must make a whole token, whatever the rounding of
  // the bucket's arithmetic.
  for (int i = 0; i < 1000; ++i) {
    if (limiter.Allow("alice", clock.NowMs())) ++allowed;
    clock.AdvanceMs(10);
  }
  EXPECT_GE(allowed, 99);
  EXPECT_LE(allowed, 101);
}

TEST(RateLimiterTest, KeysAreIndependent) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/2);
  EXPECT_EQ(TakeAll(limiter, "alice", clock.NowMs(), 5), 2);
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
  // Bob's bucket is full even though Alice's is empty.
  EXPECT_TRUE(limiter.Allow("bob", clock.NowMs()));
  EXPECT_TRUE(limiter.Allow("bob", clock.NowMs()));
  EXPECT_FALSE(limiter.Allow("bob", clock.NowMs()));
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
}

TEST(RateLimiterTest, TimeGoingBackwardsAddsNoTokens) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/1);
  EXPECT_TRUE(limiter.Allow("alice", clock.NowMs()));
  clock.AdvanceMs(-10'000);
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
  clock.AdvanceMs(10'000);
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
  clock.AdvanceMs(1000);
  EXPECT_TRUE(limiter.Allow("alice", clock.NowMs()));
}

TEST(RateLimiterTest, ZeroRateNeverRefills) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_second=*/0, /*burst=*/2);
  EXPECT_EQ(TakeAll(limiter, "alice", clock.NowMs(), 5), 2);
  clock.AdvanceMs(1'000'000);
  EXPECT_FALSE(limiter.Allow("alice", clock.NowMs()));
}

}  // namespace
}  // namespace computenet
