#include "computenet/provider/slurm_executor.h"
#include "safe_path.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

namespace computenet::provider {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// POSIX shell single quoting: the only character to escape is ' itself.
std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

bool IsEnvName(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) ||
                        name[0] == '_')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool StartsWith(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > 300) line.resize(300);
  return line;
}

std::string JobName(const std::string& job_id) { return "cn-" + SafePathPart(job_id); }

// Live logs' node name for a batch job's one output pair (LogFiles).
std::string LogNodeName(const ExecutionRequest& request) {
  if (request.assignments.size() == 1) return request.assignments[0].node();
  return "all";
}

// The batch script for one placement. Slurm runs it on the first node of
// the allocation; it execs the command (so a TERM reaches it directly), or
// srun's one copy per node for a gang.
StatusOr<std::string> BatchScript(const ExecutionRequest& request,
                                  const std::string& srun) {
  for (const auto& arg : request.spec.command()) {
    if (arg.find('\0') != std::string::npos) {
      return InvalidArgumentError("command argument contains a NUL byte");
    }
  }
  // The batch script is a file on the site's (often shared) disk, and sbatch
  // keeps a copy in slurmctld's state: secret values would be written in
  // plaintext. Refused until they can reach the job another way.
  if (!request.spec.secret_env().empty()) {
    return FailedPreconditionError(
        "the Slurm executor does not take secret env: its batch script is "
        "a file on disk");
  }
  std::string script;
  script += "#!/bin/sh\n";
  script += "# ComputeNet job " + SafePathPart(request.job_id) +
            ", written by the provider's SlurmExecutor.\n";
  // Slurm's grant, before the consumer's environment can shadow it.
  script += "cn_devices=\"${CUDA_VISIBLE_DEVICES:-}\"\n";
  std::map<std::string, std::string> env(request.spec.env().begin(),
                                         request.spec.env().end());
  for (const auto& [name, value] : env) {
    if (!IsEnvName(name)) {
      return InvalidArgumentError("environment name '" + name.substr(0, 64) +
                                  "' is not a valid variable name");
    }
    for (std::string_view reserved : {"SLURM_", "SBATCH_", "SRUN_", "SALLOC_"}) {
      if (StartsWith(name, reserved)) {
        return InvalidArgumentError("environment name " + name +
                                    " is reserved for the site's scheduler");
      }
    }
    if (value.find('\0') != std::string::npos) {
      return InvalidArgumentError("environment value of " + name +
                                  " contains a NUL byte");
    }
    script += "export " + name + "=" + ShellQuote(value) + "\n";
  }
  const size_t num_nodes = request.assignments.size();
  script += "export COMPUTENET_JOB_ID=" + ShellQuote(request.job_id) + "\n";
  script += "export COMPUTENET_MODEL=" + ShellQuote(request.model) + "\n";
  script += "export COMPUTENET_NUM_NODES=" + std::to_string(num_nodes) + "\n";
  script += "export COMPUTENET_SLURM_JOB_ID=\"${SLURM_JOB_ID:-}\"\n";
  script += "export CUDA_VISIBLE_DEVICES=\"$cn_devices\" "
            "COMPUTENET_DEVICES=\"$cn_devices\"\n";
  std::string command;
  for (const auto& arg : request.spec.command()) {
    command += " " + ShellQuote(arg);
  }
  if (num_nodes <= 1) {
    script += "export COMPUTENET_NODE=\"${SLURMD_NODENAME:-}\" "
              "COMPUTENET_NODE_RANK=0\n";
    script += "exec" + command + "\n";
  } else {
    // One task per node; each sets its own node, rank and devices.
    script += "exec " + ShellQuote(srun) +
              " --kill-on-bad-exit=1 --ntasks-per-node=1 --ntasks=" +
              std::to_string(num_nodes) +
              " /bin/sh -c 'export COMPUTENET_NODE=\"${SLURMD_NODENAME:-}\" "
              "COMPUTENET_NODE_RANK=\"${SLURM_NODEID:-0}\" "
              "CUDA_VISIBLE_DEVICES=\"${CUDA_VISIBLE_DEVICES:-}\" "
              "COMPUTENET_DEVICES=\"${CUDA_VISIBLE_DEVICES:-}\"; "
              "exec \"$@\"' computenet" +
              command + "\n";
  }
  return script;
}

}  // namespace

StatusOr<std::unique_ptr<SlurmExecutor>> SlurmExecutor::Create(
    SlurmExecutorOptions options) {
  if (options.owner.empty() || options.owner.size() > 64) {
    return InvalidArgumentError("slurm executor: owner must be 1..64 bytes");
  }
  if (options.work_dir.empty()) {
    return InvalidArgumentError("slurm executor: work_dir is required");
  }
  if (options.gres_name.empty()) options.gres_name = "gpu";
  if (options.poll_interval_ms <= 0 || options.submit_timeout_ms < 0 ||
      options.timeout_grace_ms < 0 || options.commands.timeout_ms <= 0) {
    return InvalidArgumentError(
        "slurm executor: intervals and timeouts must be positive");
  }
  if (!options.clock) options.clock = SystemClock::Shared();
  std::unique_ptr<SlurmExecutor> executor(new SlurmExecutor(std::move(options)));
  // Adoption runs here, on the caller's thread, before the worker exists:
  // the agent must know its jobs before it registers.
  CN_RETURN_IF_ERROR(executor->Adopt());
  executor->worker_ = std::thread([raw = executor.get()] { raw->WorkerLoop(); });
  return executor;
}

SlurmExecutor::SlurmExecutor(SlurmExecutorOptions options)
    : options_(std::move(options)) {}

SlurmExecutor::~SlurmExecutor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (!jobs_.empty()) {
    spdlog::info("slurm executor stopping; {} job(s) stay in Slurm and will "
                 "be re-adopted by the next agent",
                 jobs_.size());
  }
}

// ---------------------------------------------------------------------------
// The caller's side: queue work, collect events. Never runs a command.

Status SlurmExecutor::Start(const ExecutionRequest& request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (active_.count(request.job_id) != 0) {
      return AlreadyExistsError("job " + request.job_id + " is already in Slurm");
    }
  }
  if (request.spec.command().empty() || request.assignments.empty()) {
    return InvalidArgumentError("job " + request.job_id +
                                " has no command or no assignment");
  }
  const std::string srun =
      options_.commands.bin_dir.empty() ? "srun"
                                        : options_.commands.bin_dir + "/srun";
  CN_ASSIGN_OR_RETURN(std::string script, BatchScript(request, srun));

  const std::filesystem::path job_dir =
      std::filesystem::path(options_.work_dir) / SafePathPart(request.job_id);
  std::error_code error;
  std::filesystem::create_directories(job_dir, error);
  if (error) {
    return FailedPreconditionError("cannot create " + job_dir.string() + ": " +
                                   error.message());
  }
  const std::string script_path = (job_dir / "job.sh").string();
  {
    std::ofstream out(script_path, std::ios::trunc);
    out << script;
    if (!out.flush()) {
      return FailedPreconditionError("cannot write " + script_path);
    }
  }

  Job job;
  job.job_id = request.job_id;
  job.model = request.model;
  job.max_duration_s = request.spec.max_duration_s();
  for (const auto& assignment : request.assignments) {
    job.cards += static_cast<uint32_t>(assignment.device_indices_size());
  }
  uint32_t cards_per_node = request.spec.cards_per_node();
  if (cards_per_node == 0) {
    cards_per_node =
        static_cast<uint32_t>(request.assignments[0].device_indices_size());
  }
  JobTag tag;
  tag.owner = options_.owner;
  tag.job_id = request.job_id;
  tag.model = request.model;
  tag.max_duration_s = job.max_duration_s;
  tag.cards = job.cards;
  job.sbatch_args = {
      "--parsable",
      "--job-name=" + JobName(request.job_id),
      "--comment=" + EncodeJobTag(tag),
      "--nodes=" + std::to_string(request.assignments.size()),
      "--ntasks-per-node=1",
      "--chdir=" + (request.workspace.empty() ? job_dir.string()
                                              : request.workspace),
      "--output=" + (job_dir / "slurm-%j.out").string(),
      // Apart, so live logs tell stderr (and keep its tail) from stdout.
      "--error=" + (job_dir / "slurm-%j.err").string(),
      "--open-mode=append",
  };
  auto& args = job.sbatch_args;
  if (cards_per_node > 0) {
    args.push_back("--gres=" + options_.gres_name + ":" +
                   std::to_string(cards_per_node));
  }
  if (job.max_duration_s > 0) {
    // Slurm counts minutes and enforces late; the executor enforces the
    // exact limit itself (Enforce) and Slurm's limit is the backstop.
    args.push_back("--time=" + std::to_string((job.max_duration_s + 59) / 60));
  }
  if (!options_.partition.empty()) args.push_back("--partition=" + options_.partition);
  if (!options_.account.empty()) args.push_back("--account=" + options_.account);
  args.insert(args.end(), options_.extra_sbatch_args.begin(),
              options_.extra_sbatch_args.end());
  args.push_back(script_path);

  {
    std::lock_guard<std::mutex> lock(mutex_);
    active_[request.job_id] = "";
    log_nodes_[request.job_id] = LogNodeName(request);
    Op op;
    op.kind = Op::Kind::kSubmit;
    op.job = std::move(job);
    ops_.push_back(std::move(op));
  }
  wake_.notify_all();
  return OkStatus();
}

Status SlurmExecutor::Cancel(const std::string& job_id, int grace_ms) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (active_.count(job_id) == 0) {
      return NotFoundError("job " + job_id + " not running");
    }
    Op op;
    op.kind = Op::Kind::kCancel;
    op.job_id = job_id;
    op.grace_ms = grace_ms;
    ops_.push_back(std::move(op));
  }
  wake_.notify_all();
  return OkStatus();
}

std::vector<ExecutionEvent> SlurmExecutor::Poll() {
  std::vector<ExecutionEvent> out;
  std::lock_guard<std::mutex> lock(mutex_);
  out.swap(events_);
  for (const auto& event : out) {
    if (event.kind == ExecutionEvent::Kind::kFinished) {
      active_.erase(event.job_id);
      log_nodes_.erase(event.job_id);
    }
  }
  return out;
}

std::vector<LogFile> SlurmExecutor::LogFiles(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LogFile> files;
  auto active = active_.find(job_id);
  // The file names carry the Slurm job id (%j): known once submitted.
  if (active == active_.end() || active->second.empty()) return files;
  auto node = log_nodes_.find(job_id);
  const std::string name = node == log_nodes_.end() ? "slurm" : node->second;
  const std::filesystem::path job_dir =
      std::filesystem::path(options_.work_dir) / SafePathPart(job_id);
  files.push_back({name, v1::LOG_STREAM_STDOUT,
                   (job_dir / ("slurm-" + active->second + ".out")).string()});
  files.push_back({name, v1::LOG_STREAM_STDERR,
                   (job_dir / ("slurm-" + active->second + ".err")).string()});
  return files;
}

std::vector<std::string> SlurmExecutor::ActiveJobs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [job_id, slurm_id] : active_) out.push_back(job_id);
  return out;
}

Status SlurmExecutor::Adopt(const ExecutionRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Create() adopted every job of ours still in Slurm; one that is not
  // there may have ended and been purged, or never been submitted: which,
  // this executor cannot tell (a limit: sacct by comment could).
  if (active_.count(request.job_id) != 0) {
    log_nodes_[request.job_id] = LogNodeName(request);
    return OkStatus();
  }
  return UnavailableError("job " + request.job_id +
                          " is not in Slurm (ended and purged, or never "
                          "submitted)");
}

std::string SlurmExecutor::SlurmJobId(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = active_.find(job_id);
  return it == active_.end() ? std::string() : it->second;
}

SlurmExecutorStats SlurmExecutor::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void SlurmExecutor::Emit(ExecutionEvent event) {
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(std::move(event));
}

// ---------------------------------------------------------------------------
// The worker's side.

void SlurmExecutor::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    std::deque<Op> ops;
    ops.swap(ops_);
    lock.unlock();
    int64_t now = options_.clock->NowMs();
    for (auto& op : ops) {
      if (op.kind == Op::Kind::kSubmit) {
        Job& job = jobs_[op.job.job_id] = std::move(op.job);
        job.submit_first_ms = job.submit_next_ms = now;
        continue;
      }
      auto it = jobs_.find(op.job_id);
      if (it == jobs_.end()) continue;  // finished meanwhile
      if (it->second.slurm_id.empty()) {
        EmitFinishedWithoutSlurm(it->second, v1::JOB_STATE_CANCELLED,
                                 "cancelled before Slurm had it", now);
        jobs_.erase(it);
        continue;
      }
      Stop(it->second, v1::JOB_STATE_CANCELLED, "cancelled", op.grace_ms, now);
      SendStopSignals(it->second, now);
    }
    bool any_submitted = false;
    int64_t next_wake = now + options_.poll_interval_ms;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      Job& job = it->second;
      if (job.slurm_id.empty() && job.submit_next_ms <= now) {
        Submit(job, now);
        now = options_.clock->NowMs();
        if (job.slurm_id.empty() && job.submit_next_ms == 0) {
          it = jobs_.erase(it);  // refused or given up: already reported
          continue;
        }
      }
      if (job.slurm_id.empty()) {
        next_wake = std::min(next_wake, job.submit_next_ms);
      } else {
        any_submitted = true;
      }
      ++it;
    }
    if (any_submitted && now >= next_poll_ms_) {
      next_poll_ms_ = now + options_.poll_interval_ms;
      Refresh(now);
    }
    if (any_submitted) next_wake = std::min(next_wake, next_poll_ms_);
    lock.lock();
    if (stop_ || !ops_.empty()) continue;
    const int64_t wait_ms = std::clamp<int64_t>(
        next_wake - options_.clock->NowMs(), 1, options_.poll_interval_ms);
    wake_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [this] { return stop_ || !ops_.empty(); });
  }
}

StatusOr<SubprocessResult> SlurmExecutor::Run(
    const std::string& command, const std::vector<std::string>& args) {
  auto result = RunSlurmCommand(options_.commands, command, args);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.commands;
  if (result.ok()) {
    stats_.command_ms += result->elapsed_ms;
    if (result->exit_code != 0) ++stats_.failed_commands;
  } else {
    ++stats_.failed_commands;
    if (result.status().code() == StatusCode::kDeadlineExceeded) {
      stats_.command_ms += options_.commands.timeout_ms;
    }
  }
  return result;
}

void SlurmExecutor::NoteUnreachable(const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Logged once per outage, not on every round.
  if (stats_.reachable) {
    spdlog::warn("Slurm unreachable ({}); retrying every {} ms", what,
                 options_.poll_interval_ms);
  }
  stats_.reachable = false;
}

void SlurmExecutor::NoteReachable() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!stats_.reachable) spdlog::info("Slurm reachable again");
  stats_.reachable = true;
}

StatusOr<std::vector<SqueueRow>> SlurmExecutor::ListJobs() {
  auto result = Run("squeue", {"--noheader", "--me", "--states=all",
                               "--format=" + std::string(kSqueueFormat)});
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kNotFound) return result.status();
    return UnavailableError("squeue: " + result.status().message());
  }
  if (result->exit_code != 0) {
    return UnavailableError("squeue exited with " +
                            std::to_string(result->exit_code) + ": " +
                            FirstLine(result->err));
  }
  NoteReachable();
  return ParseSqueue(result->out);
}

Status SlurmExecutor::Adopt() {
  auto rows = ListJobs();
  if (!rows.ok()) {
    return rows.status().WithContext(
        "cannot list Slurm jobs to re-adopt this agent's jobs");
  }
  for (const auto& row : *rows) {
    auto tag = DecodeJobTag(row.comment);
    if (!tag || tag->owner != options_.owner) continue;
    auto existing = jobs_.find(tag->job_id);
    if (existing != jobs_.end()) {
      // Two Slurm jobs for one ComputeNet job (a resubmission after a lost
      // sbatch reply): follow the one still alive, else the newest.
      const bool old_alive = !IsTerminal(ParseSlurmState(existing->second.last_state));
      const bool new_alive = !IsTerminal(ParseSlurmState(row.state));
      spdlog::warn("job {} has Slurm jobs {} and {}", tag->job_id,
                   existing->second.slurm_id, row.job_id);
      if (old_alive && !new_alive) continue;
    }
    Job job;
    job.job_id = tag->job_id;
    job.slurm_id = row.job_id;
    job.model = tag->model;
    job.cards = tag->cards;
    job.max_duration_s = tag->max_duration_s;
    job.last_state = row.state;
    jobs_[tag->job_id] = std::move(job);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [job_id, job] : jobs_) {
    adopted_.push_back(job_id);
    active_[job_id] = job.slurm_id;
    spdlog::info("re-adopted job {} (Slurm job {}, {})", job_id, job.slurm_id,
                 job.last_state);
  }
  return OkStatus();
}

std::vector<std::string> SlurmExecutor::ClusterArgs(const Job& job) const {
  if (job.cluster.empty()) return {};
  return {"--clusters=" + job.cluster};
}

void SlurmExecutor::EmitFinishedWithoutSlurm(const Job& job, v1::JobState state,
                                             const std::string& message,
                                             int64_t now_ms) {
  ExecutionEvent finished;
  finished.kind = ExecutionEvent::Kind::kFinished;
  finished.job_id = job.job_id;
  finished.model = job.model;
  finished.final_state = state;
  finished.exit_code = -1;
  finished.message = message;
  // Never ran: no card-seconds, but the placement's cards (the broker
  // checks the record against the placement).
  finished.start_ms = finished.end_ms = now_ms;
  finished.cards = job.cards;
  spdlog::info("job {} finished before Slurm ran it: {}", job.job_id, message);
  Emit(std::move(finished));
}

void SlurmExecutor::Submit(Job& job, int64_t now_ms) {
  ++job.submit_attempts;
  auto give_up = [&](const std::string& message) {
    EmitFinishedWithoutSlurm(job, v1::JOB_STATE_FAILED, message, now_ms);
    job.submit_next_ms = 0;  // tells the loop to drop it
  };
  auto retry_later = [&](const std::string& why) {
    NoteUnreachable(why);
    // The submission may have reached slurmctld even though its reply did
    // not reach us: look for it by its comment before sending it again.
    auto rows = ListJobs();
    if (rows.ok()) {
      for (const auto& row : *rows) {
        auto tag = DecodeJobTag(row.comment);
        if (tag && tag->owner == options_.owner && tag->job_id == job.job_id) {
          job.slurm_id = row.job_id;
          job.last_state = row.state;
          spdlog::info("job {}: sbatch failed ({}) but Slurm has it as {}",
                       job.job_id, why, row.job_id);
          std::lock_guard<std::mutex> lock(mutex_);
          active_[job.job_id] = job.slurm_id;
          return;
        }
      }
    }
    if (now_ms - job.submit_first_ms >= options_.submit_timeout_ms) {
      give_up("Slurm unreachable for " +
              std::to_string((now_ms - job.submit_first_ms) / 1000) +
              " s: " + why);
      return;
    }
    const int shift = std::min(job.submit_attempts - 1, 4);
    job.submit_next_ms = now_ms + std::min<int64_t>(int64_t{500} << shift, 8000);
  };

  auto result = Run("sbatch", job.sbatch_args);
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kDeadlineExceeded) {
      return retry_later(result.status().message());
    }
    return give_up("cannot run sbatch: " + result.status().message());
  }
  if (result->exit_code != 0) {
    if (IsTransientSlurmError(result->err)) {
      return retry_later("sbatch: " + FirstLine(result->err));
    }
    return give_up("Slurm refused the job: " + FirstLine(result->err));
  }
  auto ref = ParseSbatchParsable(result->out);
  if (!ref.ok()) return give_up(ref.status().message());
  NoteReachable();
  job.slurm_id = ref->job_id;
  job.cluster = ref->cluster;
  job.last_state = "PENDING";
  job.sbatch_args.clear();
  spdlog::info("job {} submitted to Slurm as {}", job.job_id, ref->job_id);
  std::lock_guard<std::mutex> lock(mutex_);
  active_[job.job_id] = job.slurm_id;
}

void SlurmExecutor::Stop(Job& job, v1::JobState state,
                         const std::string& reason, int grace_ms,
                         int64_t now_ms) {
  if (job.stopping) {
    // A second, harsher request (e.g. cancel with no grace) shortens it.
    job.kill_at_ms = std::min(job.kill_at_ms, now_ms + std::max(grace_ms, 0));
    return;
  }
  job.stopping = true;
  job.stop_state = state;
  job.stop_reason = reason;
  job.kill_at_ms = now_ms + std::max(grace_ms, 0);
}

void SlurmExecutor::SendStopSignals(Job& job, int64_t now_ms) {
  const std::vector<std::string> cluster = ClusterArgs(job);
  auto scancel = [&](std::vector<std::string> args) -> bool {
    args.insert(args.begin(), cluster.begin(), cluster.end());
    args.push_back(job.slurm_id);
    auto result = Run("scancel", args);
    if (!result.ok()) {
      NoteUnreachable("scancel: " + result.status().message());
      return false;
    }
    if (result->exit_code != 0) {
      if (IsTransientSlurmError(result->err)) {
        NoteUnreachable("scancel: " + FirstLine(result->err));
        return false;
      }
      // E.g. "Job is pending execution" or already completing: nothing to
      // signal, and a plain scancel settles it.
      spdlog::debug("scancel {}: {}", job.slurm_id, FirstLine(result->err));
    }
    return true;
  };
  const bool pending = ParseSlurmState(job.last_state) == SlurmState::kPending;
  if (!job.term_sent) {
    if (pending) {
      // Nothing runs yet (as far as we know): cancel outright; should it
      // have started meanwhile, Slurm itself sends TERM, then KILL.
      if (!scancel({})) return;
      job.term_sent = job.kill_sent = true;
      return;
    }
    if (now_ms >= job.kill_at_ms) {  // no grace
      if (!scancel({"--signal=KILL", "--full"}) || !scancel({})) return;
      job.term_sent = job.kill_sent = true;
      return;
    }
    if (!scancel({"--signal=TERM", "--full"})) return;
    job.term_sent = true;
  }
  if (!job.kill_sent && now_ms >= job.kill_at_ms) {
    if (!scancel({"--signal=KILL", "--full"}) || !scancel({})) return;
    job.kill_sent = true;
  }
}

void SlurmExecutor::EmitStarted(Job& job, int64_t start_ms) {
  job.started_reported = true;
  job.start_ms = start_ms;
  ExecutionEvent started;
  started.kind = ExecutionEvent::Kind::kStarted;
  started.job_id = job.job_id;
  started.start_ms = start_ms;
  started.cards = job.cards;
  started.model = job.model;
  spdlog::info("job {} running in Slurm job {}", job.job_id, job.slurm_id);
  Emit(std::move(started));
}

void SlurmExecutor::Enforce(Job& job, int64_t now_ms) {
  if (!job.stopping && job.max_duration_s > 0 && job.start_ms > 0 &&
      now_ms - job.start_ms > static_cast<int64_t>(job.max_duration_s) * 1000) {
    Stop(job, v1::JOB_STATE_FAILED,
         "exceeded max duration of " + std::to_string(job.max_duration_s) + " s",
         options_.timeout_grace_ms, now_ms);
  }
  if (job.stopping && !job.kill_sent) SendStopSignals(job, now_ms);
}

SlurmExecutor::Lookup SlurmExecutor::FromScontrol(const Job& job, Final* out) {
  std::vector<std::string> args = ClusterArgs(job);
  args.insert(args.end(), {"-d", "show", "job", job.slurm_id});
  auto result = Run("scontrol", args);
  if (!result.ok()) {
    NoteUnreachable("scontrol: " + result.status().message());
    return Lookup::kRetry;
  }
  if (result->exit_code != 0) {
    if (IsInvalidJobIdError(result->err)) return Lookup::kGone;
    NoteUnreachable("scontrol: " + FirstLine(result->err));
    return Lookup::kRetry;
  }
  for (const auto& record : ParseScontrolRecords(result->out)) {
    if (record.Get("JobId") != job.slurm_id) continue;
    // After a controller state wipe the id may belong to someone else.
    auto tag = DecodeJobTag(record.Get("Comment"));
    if (!tag || tag->owner != options_.owner || tag->job_id != job.job_id) {
      return Lookup::kGone;
    }
    const SlurmState state = ParseSlurmState(record.Get("JobState"));
    if (!IsTerminal(state)) return Lookup::kNotFinished;
    out->state = record.Get("JobState");
    out->reason = record.Get("Reason");
    out->exit_code = ParseSlurmExitCode(record.Get("ExitCode"));
    out->start_s = ParseSlurmTime(record.Get("StartTime"));
    out->end_s = ParseSlurmTime(record.Get("EndTime"));
    // Allocated cards: accounting TRES if the site tracks gres there, else
    // the job's GRES allocation, else what each node was asked for.
    const std::string base = options_.gres_name.substr(0, options_.gres_name.find(':'));
    uint32_t cards = CountTresGres(record.Get("TRES"), base);
    if (cards == 0) cards = CountGres(record.Get("JOB_GRES"), base);
    if (cards == 0) {
      for (const auto& node_gres : record.GetAll("GRES")) {
        cards += CountGres(node_gres, base);
      }
    }
    if (cards == 0) {
      uint32_t nodes = 1;
      const std::string num_nodes = record.Get("NumNodes");
      if (!num_nodes.empty() &&
          std::all_of(num_nodes.begin(), num_nodes.end(), ::isdigit) &&
          num_nodes.size() < 9) {
        nodes = static_cast<uint32_t>(std::stoul(num_nodes));
      }
      cards = CountGres(record.Get("TresPerNode"), base) * nodes;
    }
    out->cards = cards;
    out->source = "scontrol";
    return Lookup::kFound;
  }
  return Lookup::kGone;
}

SlurmExecutor::Lookup SlurmExecutor::FromSacct(const Job& job, Final* out) {
  if (!sacct_available_) return Lookup::kGone;
  std::vector<std::string> args = ClusterArgs(job);
  args.insert(args.end(), {"-X", "--noheader", "--parsable2",
                           "--jobs=" + job.slurm_id,
                           "--format=" + std::string(kSacctFormat)});
  auto result = Run("sacct", args);
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kNotFound) {
      sacct_available_ = false;
      return Lookup::kGone;
    }
    return Lookup::kRetry;
  }
  if (result->exit_code != 0) {
    if (IsTransientSlurmError(result->err)) return Lookup::kRetry;
    // "Slurm accounting storage is disabled": this site keeps none.
    spdlog::info("sacct unavailable ({}); not asking it again",
                 FirstLine(result->err));
    sacct_available_ = false;
    return Lookup::kGone;
  }
  const std::string base = options_.gres_name.substr(0, options_.gres_name.find(':'));
  for (const auto& row : ParseSacct(result->out)) {
    if (row.job_id != job.slurm_id || row.name != JobName(job.job_id)) continue;
    if (!IsTerminal(ParseSlurmState(row.state))) return Lookup::kNotFinished;
    out->state = row.state;
    out->exit_code = row.exit_code;
    out->start_s = row.start_s;
    out->end_s = row.end_s;
    out->cards = CountTresGres(row.alloc_tres, base);
    out->source = "sacct";
    return Lookup::kFound;
  }
  return Lookup::kGone;
}

SlurmExecutor::Lookup SlurmExecutor::FromJobcomp(const Job& job, Final* out) {
  if (options_.jobcomp_file.empty()) return Lookup::kGone;
  std::ifstream in(options_.jobcomp_file, std::ios::binary);
  if (!in) return Lookup::kGone;
  // Only the tail: the file grows forever and ours are recent.
  constexpr std::streamoff kTail = 4 << 20;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(size > kTail ? size - kTail : 0);
  std::string line;
  std::optional<Final> found;
  const std::string name = JobName(job.job_id);
  while (std::getline(in, line)) {
    if (line.find("JobId=" + job.slurm_id + " ") == std::string::npos) continue;
    for (const auto& record : ParseScontrolRecords(line)) {
      if (record.Get("JobId") != job.slurm_id || record.Get("Name") != name) continue;
      Final final;
      final.state = record.Get("JobState");
      final.exit_code = ParseSlurmExitCode(record.Get("ExitCode"));
      final.start_s = ParseSlurmTime(record.Get("StartTime"));
      final.end_s = ParseSlurmTime(record.Get("EndTime"));
      final.source = "jobcomp";
      found = final;  // the last entry wins (a requeued job logs twice)
    }
  }
  if (!found) return Lookup::kGone;
  *out = *found;
  return Lookup::kFound;
}

bool SlurmExecutor::TryFinish(Job& job, const SqueueRow* row, int64_t now_ms) {
  Final final;
  Lookup lookup = FromScontrol(job, &final);
  if (lookup == Lookup::kGone) lookup = FromSacct(job, &final);
  if (lookup == Lookup::kGone) lookup = FromJobcomp(job, &final);
  if (lookup == Lookup::kRetry || lookup == Lookup::kNotFinished) return false;
  if (lookup == Lookup::kGone) {
    final.state = "UNKNOWN";
    final.reason = "is no longer known to slurmctld, sacct or the jobcomp file";
    final.source = "none";
  }
  if (row != nullptr) {
    if (!final.start_s) final.start_s = row->start_s;
    if (!final.end_s) final.end_s = row->end_s;
  }

  ExecutionEvent finished;
  finished.kind = ExecutionEvent::Kind::kFinished;
  finished.job_id = job.job_id;
  finished.model = job.model;
  finished.end_ms = final.end_s ? *final.end_s * 1000 : now_ms;
  finished.start_ms = final.start_s ? *final.start_s * 1000
                                    : (job.start_ms > 0 ? job.start_ms
                                                        : finished.end_ms);
  finished.start_ms = std::min(finished.start_ms, finished.end_ms);
  // The broker checks usage against the placement: report the cards held,
  // and the requested count where Slurm did not say.
  finished.cards = final.cards > 0 ? final.cards : job.cards;
  if (!job.started_reported && final.start_s &&
      (finished.end_ms > finished.start_ms ||
       ParseSlurmState(final.state) != SlurmState::kCancelled)) {
    EmitStarted(job, finished.start_ms);
  }
  const std::string slurm_words =
      final.state + (final.reason.empty() || final.reason == "None"
                         ? std::string()
                         : ", reason " + final.reason);
  if (lookup == Lookup::kGone) {
    finished.final_state = job.stopping ? job.stop_state : v1::JOB_STATE_FAILED;
    finished.exit_code = -1;
    finished.message = "outcome unknown: Slurm job " + job.slurm_id + " " +
                       final.reason;
  } else if (job.stopping) {
    // We stopped it: our reason, whatever Slurm calls the end (a job that
    // dies of our TERM shows as FAILED or CANCELLED there).
    SlurmOutcome outcome = MapSlurmOutcome(final.state, final.reason,
                                           final.exit_code);
    finished.final_state = job.stop_state;
    finished.exit_code = outcome.exit_code != 0 ? outcome.exit_code : -1;
    finished.message = job.stop_reason + " (Slurm: " + slurm_words + ")";
  } else {
    SlurmOutcome outcome = MapSlurmOutcome(final.state, final.reason,
                                           final.exit_code);
    finished.final_state = outcome.state;
    finished.exit_code = outcome.exit_code;
    finished.message = outcome.message;
  }
  spdlog::info("job {} finished in Slurm job {}: {} exit {} {} (from {})",
               job.job_id, job.slurm_id, v1::JobState_Name(finished.final_state),
               finished.exit_code, finished.message, final.source);
  Emit(std::move(finished));
  return true;
}

void SlurmExecutor::Refresh(int64_t now_ms) {
  const int64_t started = SteadyMs();
  auto rows = ListJobs();
  if (!rows.ok()) {
    NoteUnreachable(rows.status().message());
  } else {
    std::map<std::string, const SqueueRow*> by_id;
    for (const auto& row : *rows) by_id[row.job_id] = &row;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      Job& job = it->second;
      if (job.slurm_id.empty()) {  // not submitted yet
        ++it;
        continue;
      }
      const SqueueRow* row = nullptr;
      auto found = by_id.find(job.slurm_id);
      if (found != by_id.end()) {
        auto tag = DecodeJobTag(found->second->comment);
        // The same id for a job that is not ours: the controller lost its
        // state and numbers again from 1. Ours is gone.
        if (tag && tag->owner == options_.owner && tag->job_id == job.job_id) {
          row = found->second;
        }
      }
      bool finished = false;
      if (row != nullptr) {
        const SlurmState state = ParseSlurmState(row->state);
        if (row->state != job.last_state || row->reason != job.last_reason) {
          spdlog::debug("job {} (Slurm {}): {} {}", job.job_id, job.slurm_id,
                        row->state, row->reason);
        }
        job.last_state = row->state;
        job.last_reason = row->reason;
        if (state == SlurmState::kRunning && !job.started_reported) {
          EmitStarted(job, row->start_s ? *row->start_s * 1000 : now_ms);
        }
        if (IsTerminal(state)) {
          finished = TryFinish(job, row, now_ms);
        } else {
          Enforce(job, now_ms);
        }
      } else {
        finished = TryFinish(job, nullptr, now_ms);
      }
      it = finished ? jobs_.erase(it) : std::next(it);
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.polls;
  stats_.last_poll_ms = SteadyMs() - started;
}

}  // namespace computenet::provider
