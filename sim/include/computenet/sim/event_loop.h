// EventLoop: the simulator's discrete-event loop on a virtual clock. Events
// run in order of their time, and events at the same time in the order they
// were scheduled, so a run is a pure function of its inputs and seed. The
// loop sets the FakeClock the real JobQueue reads, so the queue's aging and
// fair share see simulated time.
//
// Thread safety: not thread-safe; one thread runs the loop and the events
// it calls schedule more from that thread.
#ifndef COMPUTENET_SIM_EVENT_LOOP_H_
#define COMPUTENET_SIM_EVENT_LOOP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <vector>

#include "computenet/common/clock.h"

namespace computenet::sim {

class EventLoop {
 public:
  explicit EventLoop(int64_t start_ms = 0);

  // Runs fn at at_ms; a time in the past runs at now (time never goes back).
  void At(int64_t at_ms, std::function<void()> fn);
  void After(int64_t delay_ms, std::function<void()> fn) {
    At(now_ms_ + delay_ms, std::move(fn));
  }
  // Runs events until none is left or the next is later than until_ms.
  // Returns the number of events run.
  uint64_t RunUntil(int64_t until_ms);
  uint64_t Run() { return RunUntil(INT64_MAX); }

  int64_t now_ms() const { return now_ms_; }
  size_t pending() const { return events_.size(); }
  // The clock the loop keeps at now_ms(), for code that reads a Clock.
  const std::shared_ptr<FakeClock>& clock() const { return clock_; }

 private:
  struct Event {
    int64_t at_ms;
    uint64_t sequence;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      if (a.at_ms != b.at_ms) return a.at_ms > b.at_ms;
      return a.sequence > b.sequence;
    }
  };

  int64_t now_ms_;
  uint64_t sequence_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  std::shared_ptr<FakeClock> clock_;
};

}  // namespace computenet::sim

#endif  // COMPUTENET_SIM_EVENT_LOOP_H_
