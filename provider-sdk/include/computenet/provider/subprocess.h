// RunSubprocess: runs one external program to completion WITHOUT a shell
// (argv vector, posix_spawnp), captures its stdout and stderr separately, and
// bounds it with a timeout. The site agent uses it to drive the site's
// scheduler commands (sbatch, squeue, scontrol, scancel, sacct): arguments are
// never re-parsed by a shell, so job names, comments and paths cannot inject
// commands.
//
// The child gets stdin from /dev/null, runs in its own process group (the
// whole group is SIGKILLed on timeout), and inherits no descriptor of ours but
// its two pipes (all pipes are opened close-on-exec, so concurrent spawns in
// other threads cannot keep them open either).
//
// Thread safety: RunSubprocess is safe to call from several threads at once.
#ifndef COMPUTENET_PROVIDER_SUBPROCESS_H_
#define COMPUTENET_PROVIDER_SUBPROCESS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::provider {

struct SubprocessOptions {
  // argv[0] is looked up in PATH unless it contains a '/'. Required.
  std::vector<std::string> argv;
  // Variables set (or replaced) on top of this process's environment.
  std::map<std::string, std::string> env;
  // The child is killed (SIGKILL to its group) after this long. Default 5 s.
  int timeout_ms = 5000;
  // Output kept per stream; the rest is read and dropped (so the child never
  // blocks on a full pipe) and `truncated` is set. Default 8 MiB.
  size_t max_output_bytes = size_t{8} << 20;
};

struct SubprocessResult {
  int exit_code = 0;  // exit status, or 128 + signal if it was signalled
  std::string out;    // stdout
  std::string err;    // stderr
  bool truncated = false;
  int64_t elapsed_ms = 0;
};

// Runs the program and waits for it. Returns its result whatever its exit
// code. INVALID_ARGUMENT on an empty argv or an argument containing NUL;
// NOT_FOUND if the program does not exist; FAILED_PRECONDITION if it cannot
// be started otherwise (e.g. not executable); DEADLINE_EXCEEDED (message
// includes what it wrote to stderr) if it was killed for the timeout;
// INTERNAL if pipes cannot be made.
StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SUBPROCESS_H_
