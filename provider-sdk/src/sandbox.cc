#include "computenet/provider/sandbox.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <csignal>
#include <fstream>
#include <sstream>

#include "computenet/common/files.h"

namespace computenet::provider {
namespace {

namespace fs = std::filesystem;

bool Exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

// The path with symlinks resolved as far as it exists, so that prefix tests
// compare like with like (/lib -> /usr/lib on merged-/usr systems).
std::string Canonical(const std::string& path) {
  std::error_code error;
  fs::path out = fs::weakly_canonical(fs::absolute(path, error), error);
  if (error) return fs::path(path).lexically_normal().string();
  return out.string();
}

// Whether path is base or lies beneath it (both canonical).
bool Within(const std::string& path, const std::string& base) {
  if (base == "/") return true;
  return path == base ||
         (path.size() > base.size() &&
          path.compare(0, base.size(), base) == 0 && path[base.size()] == '/');
}

std::string FindInPath(const std::string& name) {
  const char* env_path = std::getenv("PATH");
  std::stringstream search(env_path != nullptr ? env_path : "");
  std::string dir;
  while (std::getline(search, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  for (const char* fallback : {"/usr/bin/", "/bin/"}) {
    const std::string candidate = fallback + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs argv (no shell) with output discarded; its exit code, or -1.
int RunQuietly(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  std::vector<std::string> copy = argv;
  for (auto& arg : copy) args.push_back(arg.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Status WriteCgroupFile(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return FailedPreconditionError("cannot open " + path + ": " +
                                   std::strerror(errno));
  }
  const ssize_t wrote = ::write(fd, value.data(), value.size());
  const int error = errno;
  ::close(fd);
  if (wrote != static_cast<ssize_t>(value.size())) {
    return FailedPreconditionError("cannot write '" + value + "' to " + path +
                                   ": " + std::strerror(error));
  }
  return OkStatus();
}

// "key value" lines (memory.events, memory.oom_control): the value of key.
int64_t KeyedValue(const std::string& path, const std::string& key) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return 0;
  std::istringstream in(*text);
  std::string name;
  int64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

int64_t SingleValue(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return 0;
  try {
    return std::stoll(*text);
  } catch (const std::exception&) {
    return 0;
  }
}

// One line of /proc/self/mountinfo: mount point, fs type, super options.
struct Mount {
  std::string point;
  std::string type;
  std::string options;
};

std::vector<Mount> CgroupMounts() {
  std::vector<Mount> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root point options [optional...] - type source
    // super
    std::istringstream fields(line);
    std::string id, parent, device, root, point, options, field;
    fields >> id >> parent >> device >> root >> point >> options;
    while (fields >> field && field != "-") {
    }
    Mount mount;
    mount.point = point;
    fields >> mount.type >> field >> mount.options;
    if (mount.type == "cgroup" || mount.type == "cgroup2") {
      out.push_back(std::move(mount));
    }
  }
  return out;
}

// /proc/self/cgroup: for v2 the "0::" line's path; for a v1 controller the
// path of the hierarchy that lists it.
std::string OwnCgroup(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controller.empty()) {
      if (controllers.empty()) return path;
      continue;
    }
    std::stringstream list(controllers);
    std::string name;
    while (std::getline(list, name, ',')) {
      if (name == controller) return path;
    }
  }
  return "";
}

bool HasWord(const std::string& text, const std::string& word, char separator) {
  std::string flat = text;
  std::replace(flat.begin(), flat.end(), '\n', separator);
  std::stringstream list(flat);
  std::string item;
  while (std::getline(list, item, separator)) {
    if (item == word) return true;
  }
  return false;
}

// Makes dir (and parents) and checks the agent may make cgroups in it.
bool UsableCgroupDir(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  return !error && IsDirectory(dir) && ::access(dir.c_str(), W_OK) == 0;
}

std::string ParentFor(const std::string& mount_point, const std::string& own,
                      const std::string& configured) {
  if (!configured.empty() && configured[0] == '/' &&
      Within(configured, mount_point)) {
    return configured;  // a full path inside this hierarchy
  }
  const std::string below =
      configured.empty() ? own + "/computenet" : "/" + configured;
  return (fs::path(mount_point) / fs::path(below).relative_path())
      .lexically_normal()
      .string();
}

}  // namespace

std::vector<std::string> DefaultReadOnlyPaths() {
  return {"/usr",   "/bin",    "/sbin", "/lib", "/lib32",
          "/lib64", "/libx32", "/etc",  "/opt"};
}

std::vector<std::string> DefaultHiddenPaths() {
  // Credentials a system keeps under /etc: password hashes, sudo rules,
  // TLS and SSH host keys, Slurm's munge key, Kerberos keytabs, and an
  // agent config kept there.
  return {"/etc/shadow",      "/etc/shadow-",     "/etc/gshadow",
          "/etc/gshadow-",    "/etc/sudoers",     "/etc/sudoers.d",
          "/etc/ssh",         "/etc/ssl/private", "/etc/munge",
          "/etc/krb5.keytab", "/etc/computenet"};
}

const char* SandboxModeName(SandboxOptions::Mode mode) {
  return mode == SandboxOptions::Mode::kBwrap ? "bwrap" : "none";
}

StatusOr<std::shared_ptr<const Sandbox>> Sandbox::Create(
    SandboxOptions options, std::string work_dir, std::string state_dir) {
  std::shared_ptr<Sandbox> sandbox(new Sandbox());
  sandbox->work_dir_ = Canonical(work_dir);
  sandbox->state_dir_ = Canonical(state_dir.empty() ? work_dir : state_dir);
  if (options.read_only_paths.empty()) {
    options.read_only_paths = DefaultReadOnlyPaths();
  }
  if (options.device_dir.empty()) options.device_dir = "/dev";
  sandbox->options_ = std::move(options);
  const SandboxOptions& opts = sandbox->options_;
  if (opts.mode == SandboxOptions::Mode::kNone) {
    spdlog::warn(
        "SANDBOX DISABLED ([sandbox] mode = \"none\"): consumers' jobs run "
        "directly on this host with the agent's user, its files, network and "
        "every GPU");
    return std::shared_ptr<const Sandbox>(std::move(sandbox));
  }
  sandbox->bwrap_ =
      opts.bwrap_path.empty() ? FindInPath("bwrap") : opts.bwrap_path;
  if (sandbox->bwrap_.empty() || ::access(sandbox->bwrap_.c_str(), X_OK) != 0) {
    return FailedPreconditionError(
        "sandbox: bubblewrap (bwrap) not found" +
        (opts.bwrap_path.empty() ? std::string(" in PATH")
                                 : " at " + opts.bwrap_path) +
        "; install it (apt-get install bubblewrap) or set [sandbox] mode = "
        "\"none\" to run jobs unfenced");
  }
  // bwrap is there; can it make the namespaces here (no user namespaces,
  // a seccomp profile, a container without CAP_SYS_ADMIN all stop it)?
  if (RunQuietly({sandbox->bwrap_, "--unshare-pid", "--unshare-ipc",
                  "--unshare-uts", "--unshare-net", "--ro-bind", "/", "/",
                  "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"}) !=
      0) {
    return FailedPreconditionError(
        "sandbox: " + sandbox->bwrap_ +
        " cannot create namespaces on this host (run it by hand to see why: "
        "user namespaces disabled, seccomp, or a container without "
        "CAP_SYS_ADMIN); fix that or set [sandbox] mode = \"none\"");
  }

  // cgroups: v2 where its controllers can be delegated to our subtree,
  // else v1 where the memory controller is writable, else none.
  const auto mounts = CgroupMounts();
  for (const auto& mount : mounts) {
    if (mount.type != "cgroup2") continue;
    auto controllers = ReadFileToString(mount.point + "/cgroup.controllers");
    if (!controllers.ok() || !HasWord(*controllers, "memory", ' ')) {
      continue;  // a hybrid host's unified tree without controllers
    }
    const std::string parent =
        ParentFor(mount.point, OwnCgroup(""), opts.cgroup_parent);
    if (!UsableCgroupDir(parent)) continue;
    // The controllers must be enabled on every level from the hierarchy's
    // root down to our parent (a no-op where a delegated subtree has them
    // already); a level that holds processes refuses (EBUSY), and then the
    // limits cannot be had here.
    std::vector<fs::path> levels;
    for (fs::path level = parent; Within(level.string(), mount.point);
         level = level.parent_path()) {
      levels.push_back(level);
      if (level.string() == mount.point) break;
    }
    bool enabled = true;
    for (auto level = levels.rbegin(); level != levels.rend(); ++level) {
      const std::string control = (*level / "cgroup.subtree_control").string();
      if (!WriteCgroupFile(control, "+memory +pids").ok()) {
        enabled = false;
        break;
      }
      (void)WriteCgroupFile(control, "+cpu");  // CPU limits are optional
    }
    if (enabled) {
      sandbox->cgroup_kind_ = "v2";
      sandbox->v2_parent_ = parent;
      break;
    }
  }
  if (sandbox->cgroup_kind_ == "none") {
    for (const char* controller : {"memory", "pids", "cpu"}) {
      for (const auto& mount : mounts) {
        if (mount.type != "cgroup" ||
            !HasWord(mount.options, controller, ',')) {
          continue;
        }
        const std::string parent =
            ParentFor(mount.point, OwnCgroup(controller), opts.cgroup_parent);
        if (!UsableCgroupDir(parent)) break;
        if (std::string(controller) == "memory") sandbox->v1_memory_ = parent;
        if (std::string(controller) == "pids") sandbox->v1_pids_ = parent;
        if (std::string(controller) == "cpu") sandbox->v1_cpu_ = parent;
        break;
      }
    }
    if (!sandbox->v1_memory_.empty() || !sandbox->v1_pids_.empty()) {
      sandbox->cgroup_kind_ = "v1";
      if (sandbox->v1_memory_.empty() || sandbox->v1_pids_.empty() ||
          sandbox->v1_cpu_.empty()) {
        spdlog::warn(
            "sandbox: cgroup v1 without a writable {}{}{}controller: those "
            "limits are not enforced",
            sandbox->v1_memory_.empty() ? "memory " : "",
            sandbox->v1_pids_.empty() ? "pids " : "",
            sandbox->v1_cpu_.empty() ? "cpu " : "");
      }
    }
  }
  if (sandbox->cgroup_kind_ == "none") {
    spdlog::warn(
        "sandbox: no writable cgroup (v2 with delegated memory and pids "
        "controllers, or v1 memory/pids) for the agent: jobs' memory, CPU and "
        "pids limits are NOT enforced (set [sandbox] cgroup_parent to a "
        "delegated cgroup)");
  }
  spdlog::info("sandbox: bwrap ({}), cgroups {}{}", sandbox->bwrap_,
               sandbox->cgroup_kind_,
               sandbox->cgroup_kind_ == "v2"   ? " at " + sandbox->v2_parent_
               : sandbox->cgroup_kind_ == "v1" ? " at " + sandbox->v1_memory_
                                               : std::string());
  return std::shared_ptr<const Sandbox>(std::move(sandbox));
}

SandboxLimits Sandbox::LimitsFor(const v1::JobSpec& spec,
                                 uint32_t cards) const {
  SandboxLimits limits;
  const uint64_t per_card_site = options_.memory_mib_per_card;
  const uint64_t per_card_job = spec.host_memory_mib_per_card();
  uint64_t per_card = per_card_job > 0 ? per_card_job : per_card_site;
  if (per_card_job > 0 && per_card_site > 0) {
    per_card = std::min(per_card_job, per_card_site);
  }
  // A node with no cards (a CPU-only share) still gets one card's worth.
  const uint32_t units = std::max<uint32_t>(cards, 1);
  limits.memory_mib = per_card * units;
  limits.cpu_milli = spec.cpu_milli_per_card() * units;
  limits.pids_max = options_.pids_max;
  limits.network = spec.network_access() && options_.allow_network;
  return limits;
}

std::string Sandbox::Describe(const v1::JobSpec& spec, uint32_t cards) const {
  if (options_.mode == SandboxOptions::Mode::kNone) {
    return "sandbox: none (the job runs unfenced on the host)";
  }
  const SandboxLimits limits = LimitsFor(spec, cards);
  std::string out = "sandbox: bwrap";
  const bool memory =
      limits.memory_mib > 0 && (cgroup_kind_ == "v2" || !v1_memory_.empty());
  const bool pids =
      limits.pids_max > 0 && (cgroup_kind_ == "v2" || !v1_pids_.empty());
  const bool cpu =
      limits.cpu_milli > 0 && (cgroup_kind_ == "v2" || !v1_cpu_.empty());
  if (memory) out += ", memory " + std::to_string(limits.memory_mib) + " MiB";
  if (cpu) out += ", cpu " + std::to_string(limits.cpu_milli) + "m";
  if (pids) out += ", pids " + std::to_string(limits.pids_max);
  if (cgroup_kind_ == "none" &&
      (limits.memory_mib > 0 || limits.pids_max > 0 || limits.cpu_milli > 0)) {
    out += ", limits not enforced (no writable cgroup)";
  }
  out += limits.network ? ", network on" : ", network off";
  return out;
}

std::vector<std::string> Sandbox::CgroupDirs(
    const std::string& cgroup_name) const {
  std::vector<std::string> out;
  if (cgroup_kind_ == "v2") {
    out.push_back(v2_parent_ + "/" + cgroup_name);
  } else if (cgroup_kind_ == "v1") {
    for (const auto* parent : {&v1_memory_, &v1_pids_, &v1_cpu_}) {
      if (!parent->empty()) out.push_back(*parent + "/" + cgroup_name);
    }
  }
  return out;
}

StatusOr<SandboxedCommand> Sandbox::Prepare(
    const std::string& program, const std::vector<std::string>& command,
    const std::string& workspace, const v1::JobSpec& spec,
    const std::vector<uint32_t>& devices,
    const std::string& cgroup_name) const {
  SandboxedCommand out;
  const uint32_t cards = static_cast<uint32_t>(devices.size());
  out.description = Describe(spec, cards);
  if (options_.mode == SandboxOptions::Mode::kNone) {
    out.program = program;
    out.argv = command;
    return out;
  }
  const SandboxLimits limits = LimitsFor(spec, cards);
  if (spec.network_access() && !options_.allow_network) {
    return FailedPreconditionError(
        "the job asks for network access; this site's sandbox allows none "
        "([sandbox] allow_network = false)");
  }

  // cgroups first: a limit that cannot be written stops the start rather
  // than running the job without it while its status claims it.
  if (cgroup_kind_ != "none") {
    const std::string memory_bytes =
        std::to_string(limits.memory_mib * 1024 * 1024);
    const std::string pids = std::to_string(limits.pids_max);
    constexpr uint32_t kPeriodUs = 100000;
    const std::string quota = std::to_string(
        static_cast<uint64_t>(limits.cpu_milli) * kPeriodUs / 1000);
    // One left by a run that ended while no agent watched: its counters
    // (oom_kill) would be read as this run's.
    (void)RemoveCgroup(cgroup_name);
    for (const auto& dir : CgroupDirs(cgroup_name)) {
      std::error_code error;
      fs::create_directories(dir, error);
      if (error) {
        return FailedPreconditionError("sandbox: cannot create cgroup " + dir +
                                       ": " + error.message());
      }
      out.cgroup_procs.push_back(dir + "/cgroup.procs");
    }
    if (cgroup_kind_ == "v2") {
      const std::string dir = v2_parent_ + "/" + cgroup_name;
      if (limits.memory_mib > 0) {
        CN_RETURN_IF_ERROR(WriteCgroupFile(dir + "/memory.max", memory_bytes));
        // No swap: the limit is on what the job holds, not on RAM alone.
        (void)WriteCgroupFile(dir + "/memory.swap.max", "0");
      }
      if (limits.pids_max > 0) {
        CN_RETURN_IF_ERROR(WriteCgroupFile(dir + "/pids.max", pids));
      }
      if (limits.cpu_milli > 0 && Exists(dir + "/cpu.max")) {
        CN_RETURN_IF_ERROR(WriteCgroupFile(
            dir + "/cpu.max", quota + " " + std::to_string(kPeriodUs)));
      }
    } else {
      if (limits.memory_mib > 0 && !v1_memory_.empty()) {
        const std::string dir = v1_memory_ + "/" + cgroup_name;
        CN_RETURN_IF_ERROR(
            WriteCgroupFile(dir + "/memory.limit_in_bytes", memory_bytes));
        if (Exists(dir + "/memory.memsw.limit_in_bytes")) {
          (void)WriteCgroupFile(dir + "/memory.memsw.limit_in_bytes",
                                memory_bytes);
        }
      }
      if (limits.pids_max > 0 && !v1_pids_.empty()) {
        CN_RETURN_IF_ERROR(
            WriteCgroupFile(v1_pids_ + "/" + cgroup_name + "/pids.max", pids));
      }
      if (limits.cpu_milli > 0 && !v1_cpu_.empty()) {
        const std::string dir = v1_cpu_ + "/" + cgroup_name;
        CN_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpu.cfs_period_us",
                                           std::to_string(kPeriodUs)));
        CN_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpu.cfs_quota_us", quota));
      }
    }
  }

  std::vector<std::string>& argv = out.argv;
  argv = {bwrap_, "--unshare-pid", "--unshare-ipc", "--unshare-uts"};
  if (!limits.network) argv.push_back("--unshare-net");
  // bwrap's parent is the node's supervisor, which outlives the agent (it is
  // what a restarted agent adopts); if the supervisor itself dies nothing
  // can record the job's end, so the sandbox goes with it.
  argv.push_back("--die-with-parent");
  // Run as root, bwrap keeps the job's capabilities, and with CAP_SYS_ADMIN
  // in its mount namespace a job could unmount the masks below (exposing
  // the agent's keys) or remount the read-only binds read-write. None is
  // kept; no_new_privs (bwrap's) stops setuid binaries from getting any.
  // (Unprivileged, bwrap gives the job none anyway.)
  if (::geteuid() == 0) argv.insert(argv.end(), {"--cap-drop", "ALL"});
  // A private /tmp first, so that binds below it (a site's path under
  // /tmp) stay visible.
  argv.insert(argv.end(), {"--tmpfs", "/tmp"});
  std::vector<std::string> visible;  // canonical roots of the host's binds
  for (const auto& path : options_.read_only_paths) {
    if (!Exists(path)) continue;
    argv.insert(argv.end(), {"--ro-bind", path, path});
    visible.push_back(Canonical(path));
  }
  for (const auto& path : options_.writable_paths) {
    if (!Exists(path)) continue;
    argv.insert(argv.end(), {"--bind", path, path});
    visible.push_back(Canonical(path));
  }
  // Mask what must not be seen where it lies beneath a bind: an empty tmpfs
  // over a directory (made read-only once the workspace is mounted in it),
  // /dev/null over a file.
  std::vector<std::string> hidden = DefaultHiddenPaths();
  hidden.insert(hidden.end(), options_.hidden_paths.begin(),
                options_.hidden_paths.end());
  hidden.push_back(work_dir_);
  hidden.push_back(state_dir_);
  std::vector<std::string> masked_dirs;
  for (const auto& path : hidden) {
    if (!Exists(path)) continue;
    const std::string real = Canonical(path);
    const bool beneath =
        std::any_of(visible.begin(), visible.end(), [&](const auto& root) {
          return Within(real, root) || Within(path, root);
        });
    if (!beneath) continue;
    if (IsDirectory(path)) {
      argv.insert(argv.end(), {"--tmpfs", path});
      masked_dirs.push_back(path);
    } else {
      argv.insert(argv.end(), {"--ro-bind", "/dev/null", path});
    }
  }
  argv.insert(argv.end(), {"--proc", "/proc", "--dev", "/dev"});
  // Only the job's own GPUs, plus the driver's control nodes.
  const std::string device_dir = options_.device_dir;
  for (uint32_t index : devices) {
    const std::string name = "nvidia" + std::to_string(index);
    argv.insert(argv.end(),
                {"--dev-bind-try", device_dir + "/" + name, "/dev/" + name});
  }
  for (const char* name :
       {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}) {
    argv.insert(argv.end(), {"--dev-bind-try", device_dir + "/" + name,
                             std::string("/dev/") + name});
  }
  argv.insert(argv.end(), {"--bind", workspace, workspace});
  for (const auto& path : masked_dirs) {
    argv.insert(argv.end(), {"--remount-ro", path});
  }
  argv.insert(argv.end(), {"--chdir", workspace, "--"});
  argv.insert(argv.end(), command.begin(), command.end());
  // Inside, the job's own PATH finds the program; the host path resolved at
  // Start would be wrong where it is not under a bound directory.
  out.program = bwrap_;
  (void)program;
  return out;
}

bool Sandbox::MemoryLimitHit(const std::string& cgroup_name,
                             bool killed) const {
  if (cgroup_kind_ == "v2") {
    const std::string dir = v2_parent_ + "/" + cgroup_name;
    return KeyedValue(dir + "/memory.events", "oom_kill") > 0 ||
           (killed && KeyedValue(dir + "/memory.events", "max") > 0 &&
            KeyedValue(dir + "/memory.events", "oom") > 0);
  }
  if (cgroup_kind_ == "v1" && !v1_memory_.empty()) {
    const std::string dir = v1_memory_ + "/" + cgroup_name;
    if (KeyedValue(dir + "/memory.oom_control", "oom_kill") > 0) return true;
    // Kernels before 4.13 do not count OOM kills: a SIGKILL after the limit
    // was hit is the best evidence there is.
    return killed && SingleValue(dir + "/memory.failcnt") > 0;
  }
  return false;
}

bool Sandbox::RemoveCgroup(const std::string& cgroup_name) const {
  bool all = true;
  for (const auto& dir : CgroupDirs(cgroup_name)) {
    // The node has ended: whatever of it is still in its cgroup (a process
    // that outlived the sandbox's pid namespace teardown) goes now. Every
    // pid listed is in the job's cgroup, so no stranger is hit.
    std::ifstream procs(dir + "/cgroup.procs");
    for (long pid = 0; procs >> pid;) {
      if (pid > 1) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) all = false;
  }
  return all;
}

}  // namespace computenet::provider
