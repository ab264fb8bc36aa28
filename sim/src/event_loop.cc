#include "computenet/sim/event_loop.h"

#include <utility>

namespace computenet::sim {

EventLoop::EventLoop(int64_t start_ms)
    : now_ms_(start_ms), clock_(std::make_shared<FakeClock>(start_ms)) {}

void EventLoop::At(int64_t at_ms, std::function<void()> fn) {
  events_.push(
      Event{at_ms < now_ms_ ? now_ms_ : at_ms, sequence_++, std::move(fn)});
}

uint64_t EventLoop::RunUntil(int64_t until_ms) {
  uint64_t ran = 0;
  while (!events_.empty() && events_.top().at_ms <= until_ms) {
    // Moved out before pop: the event may schedule others, which can
    // reallocate the heap.
    Event event = std::move(const_cast<Event&>(events_.top()));
    events_.pop();
    now_ms_ = event.at_ms;
    clock_->SetMs(now_ms_);
    event.fn();
    ++ran;
  }
  return ran;
}

}  // namespace computenet::sim
