#include "computenet/common/job_state.h"

namespace computenet {

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_PLACED: return "placed";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

uint32_t TotalCards(const v1::JobInfo& job) {
  uint32_t cards = 0;
  for (const auto& assignment : job.assignments()) {
    cards += static_cast<uint32_t>(assignment.device_indices_size());
  }
  return cards;
}

}  // namespace computenet
