#include "core/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace computenet::broker {

StatusOr<std::unique_ptr<InstanceLock>> InstanceLock::Acquire(
    const std::string& database_path) {
  const std::string path = database_path + ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return UnavailableError("cannot open lock file " + path + ": " +
                            std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char buffer[32] = {};
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
    ::close(fd);
    std::string holder;
    for (ssize_t i = 0; i < n && buffer[i] >= '0' && buffer[i] <= '9'; ++i) {
      holder += buffer[i];
    }
    if (error == EWOULDBLOCK) {
      return FailedPreconditionError(
          "database " + database_path + " is in use by another broker" +
          (holder.empty() ? "" : " (pid " + holder + ")") +
          "; one broker per database (lock " + path + ")");
    }
    return UnavailableError("cannot lock " + path + ": " +
                            std::strerror(error));
  }
  // Ours: record who holds it, for the next one's error message.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) !=
                                     static_cast<ssize_t>(pid.size())) {
    // The lock holds regardless; only the message of a second broker
    // would lack the pid.
  }
  return std::unique_ptr<InstanceLock>(new InstanceLock(path, fd));
}

InstanceLock::~InstanceLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace computenet::broker
