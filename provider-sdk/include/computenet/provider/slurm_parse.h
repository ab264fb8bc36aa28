// Parsers for the output of Slurm's client commands, and the mapping from
// Slurm job states to ComputeNet's. Pure functions over text: no I/O, so
// every odd case Slurm can print (empty output, extra whitespace, "(null)"
// and "Unknown" times, job array ids "123_4", multi-cluster ids
// "123;cluster", "CLUSTER:" banners, unknown states) is unit-tested.
//
// Output formats the SlurmExecutor asks for (see slurm_executor.h):
//   sbatch --parsable                 "<job id>[;<cluster>]"
//   squeue --noheader --format=...    one '|'-separated row per job
//   scontrol [-o] show job|node       "Key=Value Key=Value ..." records
//   sacct --parsable2 --noheader      '|'-separated rows
// Times are read either as epoch seconds (the executor sets
// SLURM_TIME_FORMAT=%s) or as Slurm's ISO "YYYY-MM-DDTHH:MM:SS" local time.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_PROVIDER_SLURM_PARSE_H_
#define COMPUTENET_PROVIDER_SLURM_PARSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::provider {

// A job id as sbatch --parsable prints it.
struct SlurmJobRef {
  std::string job_id;   // "123" (or "123_4" for an array task)
  std::string cluster;  // empty unless multi-cluster ("123;cluster")
};
// INVALID_ARGUMENT if the text holds no job id.
StatusOr<SlurmJobRef> ParseSbatchParsable(std::string_view text);

// One scontrol record: "Key=Value" pairs in order, duplicates kept (per-node
// detail lines repeat keys). A token without '=' continues the previous
// value (values such as OS=Linux 6.1 #1 SMP contain spaces).
class SlurmRecord {
 public:
  std::vector<std::pair<std::string, std::string>> fields;
  // The first value of key; empty if absent.
  std::string Get(std::string_view key) const;
  bool Has(std::string_view key) const;
  std::vector<std::string> GetAll(std::string_view key) const;
};
// Parses `scontrol show job|node` output, one-line (-o) or multi-line;
// records are separated by blank lines or start again at the record's first
// key (JobId=, NodeName=). Empty text gives no records.
std::vector<SlurmRecord> ParseScontrolRecords(std::string_view text);

// Epoch seconds from "1795243293" or "2026-11-21T06:40:01" (local time);
// nullopt for "", "0", "None", "NONE", "Unknown", "(null)", "N/A" or junk.
std::optional<int64_t> ParseSlurmTime(std::string_view text);

// "3:0" -> 3; "0:15" -> 143 (128 + signal); "1" -> 1; nullopt for junk.
std::optional<int32_t> ParseSlurmExitCode(std::string_view text);

enum class SlurmState {
  kPending,      // PENDING, REQUEUED, REQUEUE_HOLD, REQUEUE_FED, RESV_DEL_HOLD
  kRunning,      // RUNNING, CONFIGURING, COMPLETING, SUSPENDED, STOPPED,
                 // SIGNALING, STAGE_OUT, RESIZING
  kCompleted,
  kFailed,
  kTimeout,
  kCancelled,
  kNodeFail,
  kPreempted,
  kOutOfMemory,
  kBootFail,
  kDeadline,
  kUnknown,  // a state this code does not know: keep polling, never fail
};
// Accepts long and short names ("RUNNING", "R", "CANCELLED by 0",
// "CANCELLED+", " completed "), case-insensitively.
SlurmState ParseSlurmState(std::string_view text);
bool IsTerminal(SlurmState state);
bool HasStarted(SlurmState state);  // running or terminal

// What a finished Slurm job means to ComputeNet.
struct SlurmOutcome {
  v1::JobState state = v1::JOB_STATE_FAILED;
  int32_t exit_code = 0;
  std::string message;  // says Slurm's state and reason
};
// COMPLETED -> SUCCEEDED; FAILED, TIMEOUT, NODE_FAIL, PREEMPTED,
// OUT_OF_MEMORY, BOOT_FAIL, DEADLINE -> FAILED; CANCELLED -> FAILED
// ("cancelled in Slurm", e.g. by the site's admin) since ComputeNet's
// CANCELLED means the consumer asked. `state_text` and `reason` are Slurm's
// words, kept in the message. Callers handle cancellations they asked for.
SlurmOutcome MapSlurmOutcome(std::string_view state_text,
                             std::string_view reason,
                             std::optional<int32_t> exit_code);

// One row of `squeue --noheader --format=%A|%i|%T|%S|%e|%r|%k`.
struct SqueueRow {
  std::string job_id;      // %A: the unique id ("124" for array task 123_1)
  std::string display_id;  // %i: "123_1" for array tasks, else = job_id
  std::string state;       // %T
  std::optional<int64_t> start_s;  // %S (an estimate while pending)
  std::optional<int64_t> end_s;    // %e
  std::string reason;      // %r
  std::string comment;     // %k, the rest of the line ('|' allowed)
};
// The format string that ParseSqueue reads.
inline constexpr std::string_view kSqueueFormat = "%A|%i|%T|%S|%e|%r|%k";
// Skips blank lines, "CLUSTER: x" banners and rows too short to parse.
std::vector<SqueueRow> ParseSqueue(std::string_view text);

// One row of `sacct -X --noheader --parsable2
//   --format=JobIDRaw,JobName,State,ExitCode,Start,End,AllocTRES`.
struct SacctRow {
  std::string job_id;
  std::string name;
  std::string state;
  std::optional<int32_t> exit_code;
  std::optional<int64_t> start_s;
  std::optional<int64_t> end_s;
  std::string alloc_tres;
};
inline constexpr std::string_view kSacctFormat =
    "JobIDRaw,JobName,State,ExitCode,Start,End,AllocTRES";
std::vector<SacctRow> ParseSacct(std::string_view text);

// One generic resource as Slurm lists it: "gpu:8", "gpu:a800:8(S:0-1)",
// "gres:gpu:2" (TresPerNode), "gpu:2(IDX:0-1)", "gpu" (count 1).
struct GresEntry {
  std::string name;  // "gpu"
  std::string type;  // "a800", or empty
  uint32_t count = 0;
};
// Parses a comma-separated list; "(null)", "N/A" and "" give none. Commas
// inside parentheses ("(S:0,1)") do not split.
std::vector<GresEntry> ParseGresList(std::string_view text);
// Cards of `name` ("gpu"; a typed name "gpu:a800" counts only that type).
uint32_t CountGres(std::string_view list, std::string_view name);
// Cards from a TRES list "cpu=1,node=1,gres/gpu=2,gres/gpu:a800=2": the
// count of gres/<name>; 0 if absent.
uint32_t CountTresGres(std::string_view tres, std::string_view name);

// What the executor writes into a job's --comment so that it can find its
// own jobs again after a restart (ids restart at 1 when slurmctld loses its
// state, so a remembered Slurm id is never trusted alone).
struct JobTag {
  std::string owner;   // the agent's owner tag (its site)
  std::string job_id;  // the ComputeNet job id
  std::string model;
  uint32_t max_duration_s = 0;
  uint32_t cards = 0;  // requested, all nodes together
};
// "computenet/v1;owner=..;job=..;model=..;max_s=..;cards=..": values
// percent-encoded outside [A-Za-z0-9._-], so the comment has no spaces,
// quotes, '|' or ';' of its own.
std::string EncodeJobTag(const JobTag& tag);
// nullopt if the comment is not one of ours (or is malformed).
std::optional<JobTag> DecodeJobTag(std::string_view comment);

// True if a command's stderr says the controller could not be reached (a
// restart, a network blip): retry later rather than give up.
bool IsTransientSlurmError(std::string_view stderr_text);
// True if it says the job id is unknown (purged after MinJobAge).
bool IsInvalidJobIdError(std::string_view stderr_text);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SLURM_PARSE_H_
