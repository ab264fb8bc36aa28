#include "computenet/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace computenet {
namespace {

std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

StatusOr<std::string> ReadFileToString(const std::string& path,
                                       size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError(ErrnoText("open", path));
    return InternalError(ErrnoText("open", path));
  }
  std::string data;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status error = InternalError(ErrnoText("read", path));
      ::close(fd);
      return error;
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      ::close(fd);
      return ResourceExhaustedError(path + " is larger than " +
                                    std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return data;
}

Status WriteFileAtomically(const std::string& path, const std::string& data,
                           int mode) {
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  static_cast<mode_t>(mode));
  if (fd < 0) return InternalError(ErrnoText("create", temp));
  // open() honours the umask; fchmod makes the mode exactly what was asked.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    Status error = InternalError(ErrnoText("chmod", temp));
    ::close(fd);
    ::unlink(temp.c_str());
    return error;
  }
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status error = InternalError(ErrnoText("write", temp));
      ::close(fd);
      ::unlink(temp.c_str());
      return error;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temp.c_str());
    return InternalError(ErrnoText("sync", temp));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Status error = InternalError(ErrnoText("rename", temp));
    ::unlink(temp.c_str());
    return error;
  }
  return OkStatus();
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return NotFoundError(ErrnoText("stat", path));
    return InternalError(ErrnoText("stat", path));
  }
  if ((info.st_mode & 077) != 0) {
    return FailedPreconditionError(
        path + " is readable by group or others; chmod 600 it");
  }
  return ReadFileToString(path, 64 << 10);
}

}  // namespace computenet
