// Small file helpers: read a whole file, write one atomically, and write
// secrets with mode 0600 from the first byte (no window where others can read).
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_FILES_H_
#define COMPUTENET_COMMON_FILES_H_

#include <string>

#include "computenet/common/status.h"

namespace computenet {

// Returns the file's bytes; NOT_FOUND if it does not exist, INTERNAL on other
// I/O errors; RESOURCE_EXHAUSTED if it is larger than max_bytes.
StatusOr<std::string> ReadFileToString(const std::string& path,
                                       size_t max_bytes = 16 << 20);

// Writes through a temporary file + rename, so readers see old or new whole.
// mode applies to the new file (e.g. 0600 for secrets, 0644 otherwise).
Status WriteFileAtomically(const std::string& path, const std::string& data,
                           int mode);

// Like ReadFileToString, but FAILED_PRECONDITION if group or others may read
// or write the file: secrets must be 0600 (or stricter).
StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_FILES_H_
