// Private to the provider SDK: how a job id becomes a directory (and Slurm
// job) name. The executors and the agent's site data must agree on it, since
// the agent prepares the workspace the executor runs the job in.
//
// Thread safety: a pure function; safe from any thread.
#ifndef COMPUTENET_PROVIDER_SAFE_PATH_H_
#define COMPUTENET_PROVIDER_SAFE_PATH_H_

#include <string>

namespace computenet::provider {

// The text with every character outside [A-Za-z0-9._-] replaced by '_', and
// a '_' in front of an empty or dot-leading result (so ".", ".." and the
// site's own dot directories are never a job's name).
inline std::string SafePathPart(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SAFE_PATH_H_
