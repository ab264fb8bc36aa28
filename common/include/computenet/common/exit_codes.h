// Exit codes of the command-line tools (computenet, computenet-broker), one
// table for all, so a script can tell "fix the command" from "try again
// later" from "the job failed" (README, "Exit codes"):
//
//   0  ok
//   1  failure not listed below (internal error, data loss, ...)
//   2  usage: bad arguments or input (INVALID_ARGUMENT, OUT_OF_RANGE)
//   3  not found (NOT_FOUND)
//   4  refused: permission denied, unauthenticated
//   5  unavailable: the broker did not answer in time (UNAVAILABLE,
//      DEADLINE_EXCEEDED): retrying may help
//   6  refused in the current state: fix the state first
//      (FAILED_PRECONDITION, ALREADY_EXISTS, RESOURCE_EXHAUSTED, ABORTED)
//   7  the job ended but did not succeed (submit --wait, wait)
//
// Thread safety: stateless; safe from any thread.
#ifndef COMPUTENET_COMMON_EXIT_CODES_H_
#define COMPUTENET_COMMON_EXIT_CODES_H_

#include "computenet/common/status.h"

namespace computenet {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitRefused = 4,
  kExitUnavailable = 5,
  kExitWrongState = 6,
  kExitJobFailed = 7,
};

// The exit code for a status (kExitOk for OK).
ExitCode ExitCodeFor(const Status& status);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_EXIT_CODES_H_
