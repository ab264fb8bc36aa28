#include "computenet/provider/executor.h"

#include "computenet/common/clock.h"

namespace computenet::provider {

int64_t Executor::ClockMs() const { return SystemClock::Shared()->NowMs(); }

}  // namespace computenet::provider
