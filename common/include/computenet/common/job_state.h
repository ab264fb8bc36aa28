// Job state helpers shared by the broker, the CLI and the SDKs: which states
// are terminal, their names, and a placed job's card total.
//   QUEUED -> PLACED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
//   PLACED | RUNNING -> QUEUED (offer rejected or lost, reclaim, requeue)
//   QUEUED | PLACED -> CANCELLED | FAILED
// The broker's table of transitions is in broker/src/jobs/job_manager.h.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_JOB_STATE_H_
#define COMPUTENET_COMMON_JOB_STATE_H_

#include <cstdint>
#include <string>

#include "computenet/v1/job.pb.h"

namespace computenet {

bool IsTerminal(v1::JobState state);
// "queued", "placed", ... for logs and the CLI.
std::string JobStateName(v1::JobState state);
// Cards assigned over all nodes (0 before placement).
uint32_t TotalCards(const v1::JobInfo& job);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_JOB_STATE_H_
