// Sandbox: how the ProcessExecutor fences a consumer's job on the host
// (docs/sdk.md, "Sandbox"). With bubblewrap (bwrap) each node's process runs
// in its own pid, mount, ipc and uts namespaces (and network namespace
// unless the job asked for network and the site allows it), sees the host
// file system only through read-only binds of the directories the site
// lists (never the agent's keys, state or work directories, other jobs'
// workspaces, /home, /root, /etc/shadow), a private /tmp, its own /proc, a
// minimal /dev holding only its assigned GPU device nodes, and its own
// workspace read-write. Memory, CPU and pids limits go through cgroups (v2,
// else v1) where the host lets the agent write them.
//
// Thread safety: SandboxOptions is a plain value. A Sandbox is immutable
// after Create and may be read from any thread; its methods that touch
// cgroups act on the files of one job node and are safe to call
// concurrently for different nodes.
#ifndef COMPUTENET_PROVIDER_SANDBOX_H_
#define COMPUTENET_PROVIDER_SANDBOX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::provider {

// The [sandbox] table of a site config, or set by an SDK user.
struct SandboxOptions {
  enum class Mode {
    kNone,   // jobs run directly on the host (an explicit choice)
    kBwrap,  // bubblewrap
  };
  // A library default of kNone keeps ProcessExecutor usable where bwrap is
  // absent; the site config (computenet-provider) defaults to kBwrap.
  Mode mode = Mode::kNone;
  // The bwrap binary; empty: found in PATH (then /usr/bin/bwrap).
  std::string bwrap_path;
  // Host paths bound read-only at the same place inside. Empty: the default
  // list, DefaultReadOnlyPaths(). Missing paths are skipped.
  std::vector<std::string> read_only_paths;
  // Host paths bound read-write at the same place (a shared scratch file
  // system, say). None by default.
  std::vector<std::string> writable_paths;
  // Host paths never visible inside even where they lie beneath a
  // read-only path (an empty directory or file is mounted over them): the
  // agent's identity directory, its config. The work and state directories
  // are always hidden.
  std::vector<std::string> hidden_paths;
  // Where the GPU device nodes are (nvidia0, nvidiactl, ...); tests point it
  // at fake nodes. Inside they always appear under /dev.
  std::string device_dir = "/dev";
  // Host memory per card when the job's spec gives none
  // (host_memory_mib_per_card), and the most a job may ask per card; 0: no
  // site value.
  uint64_t memory_mib_per_card = 0;
  // Most processes and threads per node; 0: no limit.
  uint32_t pids_max = 4096;
  // Whether a job whose spec has network_access keeps the host's network.
  bool allow_network = true;
  // The cgroup directory (v2) or the name below each v1 controller's
  // mount under which job cgroups are made. Empty: the agent's own
  // cgroup, "computenet" below it.
  std::string cgroup_parent;
};

// /usr, /bin, /sbin, /lib*, /etc (with its secrets hidden), /opt.
std::vector<std::string> DefaultReadOnlyPaths();
// Files and directories of /etc that are hidden even when /etc is bound.
std::vector<std::string> DefaultHiddenPaths();
// "bwrap" or "none".
const char* SandboxModeName(SandboxOptions::Mode mode);

// The limits of one node of a job.
struct SandboxLimits {
  uint64_t memory_mib = 0;  // 0: none
  uint32_t cpu_milli = 0;   // thousandths of a core; 0: none
  uint32_t pids_max = 0;    // 0: none
  bool network = false;     // the host network is visible
};

// What the sandbox prepared for one node: the command line to execve, the
// cgroup files the job joins, and a one-line description for the job's
// status.
struct SandboxedCommand {
  std::vector<std::string> argv;  // bwrap ... -- command..., or the command
  std::string program;            // argv[0], resolved
  // cgroup.procs files (one per v1 controller, one for v2) the job process
  // writes its pid to before it execs; empty when no cgroup applies.
  std::vector<std::string> cgroup_procs;
  std::string description;  // e.g. "sandbox: bwrap, memory 2048 MiB, ..."
};

class Sandbox {
 public:
  // Checks the options: mode bwrap with no bwrap found (or one that cannot
  // make namespaces here) is FAILED_PRECONDITION naming the fix. Detects
  // cgroups (a warning, not an error, where none is writable). mode none
  // logs a warning: jobs run unfenced.
  static StatusOr<std::shared_ptr<const Sandbox>> Create(SandboxOptions options,
                                                         std::string work_dir,
                                                         std::string state_dir);

  const SandboxOptions& options() const { return options_; }
  // "v2", "v1" or "none".
  const std::string& cgroup_kind() const { return cgroup_kind_; }

  // The limits a node with `cards` cards gets under spec.
  SandboxLimits LimitsFor(const v1::JobSpec& spec, uint32_t cards) const;

  // Prepares one node's run: makes its cgroup and writes its limits, and
  // builds the bwrap command line. cgroup_name is unique per job run and
  // node. FAILED_PRECONDITION if the job asks for network the site does not
  // allow, or a limit cannot be written.
  StatusOr<SandboxedCommand> Prepare(const std::string& program,
                                     const std::vector<std::string>& command,
                                     const std::string& workspace,
                                     const v1::JobSpec& spec,
                                     const std::vector<uint32_t>& devices,
                                     const std::string& cgroup_name) const;

  // The description Prepare gives, without preparing (for a run taken back
  // after a restart).
  std::string Describe(const v1::JobSpec& spec, uint32_t cards) const;

  // After the node's process ended: whether its cgroup's memory limit
  // killed something (memory.events oom_kill, memory.oom_control oom_kill,
  // else memory.failcnt with a SIGKILL).
  bool MemoryLimitHit(const std::string& cgroup_name, bool killed) const;
  // Kills what is left of the ended node in its cgroup (SIGKILL to every
  // pid listed), then removes the cgroup directories (best effort; false if
  // one is still busy, to retry later).
  bool RemoveCgroup(const std::string& cgroup_name) const;

 private:
  Sandbox() = default;
  std::vector<std::string> CgroupDirs(const std::string& cgroup_name) const;

  SandboxOptions options_;
  std::string work_dir_;
  std::string state_dir_;
  std::string bwrap_;
  std::string cgroup_kind_ = "none";
  // v2: the parent directory. v1: controller -> parent directory.
  std::string v2_parent_;
  std::string v1_memory_;
  std::string v1_pids_;
  std::string v1_cpu_;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SANDBOX_H_
