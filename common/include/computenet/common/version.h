// The ComputeNet release every binary and library of this build belongs to
// (CMake's project version), for `--version` and diagnostics.
//
// Thread safety: constants; safe from any thread.
#ifndef COMPUTENET_COMMON_VERSION_H_
#define COMPUTENET_COMMON_VERSION_H_

#include <string>

namespace computenet {

#ifndef COMPUTENET_VERSION_STRING
#error "COMPUTENET_VERSION_STRING comes from common/CMakeLists.txt"
#endif

// "0.1.0".
inline constexpr char kVersion[] = COMPUTENET_VERSION_STRING;

// "<program> <version>", what `--version` prints.
inline std::string VersionLine(const std::string& program) {
  return program + " " + kVersion;
}

}  // namespace computenet

#endif  // COMPUTENET_COMMON_VERSION_H_
