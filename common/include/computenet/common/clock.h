// Clock: the one source of "now" for brokers and agents, injectable so tests
// advance time instead of sleeping.
//
// Thread safety: all methods of SystemClock and FakeClock are thread-safe.
#ifndef COMPUTENET_COMMON_CLOCK_H_
#define COMPUTENET_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace computenet {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  // A process-wide instance; never destroyed.
  static std::shared_ptr<Clock> Shared();
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t delta_ms) { now_ms_.fetch_add(delta_ms); }
  void SetMs(int64_t now_ms) { now_ms_.store(now_ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace computenet

#endif  // COMPUTENET_COMMON_CLOCK_H_
