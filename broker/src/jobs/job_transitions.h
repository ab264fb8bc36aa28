// The job state machine as a table: which state changes the broker may
// store. Every write of a job row goes through Store::UpdateJob, which checks
// the change against this table, so an illegal transition (a finished job
// queued again, a running job re-offered) is refused with
// FAILED_PRECONDITION instead of stored.
//
//   from \ to   QUEUED  PLACED  RUNNING  SUCCEEDED  FAILED  CANCELLED
//   QUEUED      keep    place   mirror   mirror     fail    cancel
//   PLACED      requeue keep    start    finish     fail    cancel
//   RUNNING     requeue -       keep     finish     fail    cancel
//   terminal    -       -       -        keep (the same terminal state only)
//
// keep: the row changes without a state change (reason, usage, charge).
// place: the queue placed it; requeue: offer rejected or lost, provider
// reclaimed its spare capacity, a forward declined; start: the provider
// reported it running; finish: reported ended (PLACED -> SUCCEEDED when the
// job ended before its RUNNING report was stored); mirror: a job forwarded
// to a peer follows the peer's reports, which may skip states the home
// broker never saw (QUEUED -> RUNNING or straight to the end).
// A terminal state is final: nothing moves a job out of it.
//
// Thread safety: a pure function; safe from any thread.
#ifndef COMPUTENET_BROKER_JOBS_JOB_TRANSITIONS_H_
#define COMPUTENET_BROKER_JOBS_JOB_TRANSITIONS_H_

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::broker {

// OK if a job may go from `from` to `to`; FAILED_PRECONDITION naming both
// otherwise (and for states outside the enum).
Status CheckJobTransition(v1::JobState from, v1::JobState to);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_JOBS_JOB_TRANSITIONS_H_
