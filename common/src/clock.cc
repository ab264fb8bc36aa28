#include "computenet/common/clock.h"

#include <chrono>

namespace computenet {

int64_t SystemClock::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<Clock> SystemClock::Shared() {
  static const auto* const kClock =
      new std::shared_ptr<Clock>(std::make_shared<SystemClock>());
  return *kClock;
}

}  // namespace computenet
