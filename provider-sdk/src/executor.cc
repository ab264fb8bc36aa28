#include "computenet/provider/executor.h"

#include "computenet/common/clock.h"

namespace computenet::provider {

int64_t Executor::ClockMs() const { return SystemClock::Shared()->NowMs(); }

}  // namespace computenet::provider

namespace computenet::provider {

Status Executor::Adopt(const ExecutionRequest& request) {
  return UnimplementedError("this executor cannot take back job " +
                            request.job_id + " after an agent restart");
}

}  // namespace computenet::provider

namespace computenet::provider {

std::vector<LogFile> Executor::LogFiles(const std::string&) const { return {}; }

}  // namespace computenet::provider
