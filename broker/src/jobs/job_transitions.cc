#include "jobs/job_transitions.h"

#include <array>

#include "computenet/common/job_state.h"

namespace computenet::broker {
namespace {

// Rows and columns in enum order: QUEUED=1 .. CANCELLED=6 (0 unspecified).
constexpr int kStates = 7;
constexpr bool kAllowed[kStates][kStates] = {
    //            -  QUEUED PLACED RUNNING SUCC   FAILED CANCEL
    /* -      */ {false, false, false, false, false, false, false},
    /* QUEUED */ {false, true, true, true, true, true, true},
    /* PLACED */ {false, true, true, true, true, true, true},
    /* RUNNING*/ {false, true, false, true, true, true, true},
    /* SUCC   */ {false, false, false, false, true, false, false},
    /* FAILED */ {false, false, false, false, false, true, false},
    /* CANCEL */ {false, false, false, false, false, false, true},
};

bool InRange(v1::JobState state) {
  return static_cast<int>(state) > 0 && static_cast<int>(state) < kStates;
}

}  // namespace

Status CheckJobTransition(v1::JobState from, v1::JobState to) {
  if (InRange(from) && InRange(to) &&
      kAllowed[static_cast<int>(from)][static_cast<int>(to)]) {
    return OkStatus();
  }
  return FailedPreconditionError("a job may not go from " + JobStateName(from) +
                                 " to " + JobStateName(to));
}

}  // namespace computenet::broker
