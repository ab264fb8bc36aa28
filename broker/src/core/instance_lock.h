// InstanceLock: one broker per database. A running broker holds an exclusive
// flock(2) on "<database>.lock", which records its pid; a second broker on
// the same file is refused, naming the holder, instead of both writing it.
// The kernel releases the lock when the process ends, however it ends
// (SIGKILL included), so a crash never leaves a stale lock behind. Operator
// commands that open the database next to a running broker (enroll, revoke,
// topup) do not take it: SQLite serializes their writes.
//
// Thread safety: an InstanceLock is owned by one thread; Acquire may be
// called from any.
#ifndef COMPUTENET_BROKER_CORE_INSTANCE_LOCK_H_
#define COMPUTENET_BROKER_CORE_INSTANCE_LOCK_H_

#include <memory>
#include <string>

#include "computenet/common/status.h"

namespace computenet::broker {

class InstanceLock {
 public:
  // Takes the lock for database_path. FAILED_PRECONDITION naming the
  // holder's pid if another broker holds it; UNAVAILABLE if the lock file
  // cannot be opened.
  static StatusOr<std::unique_ptr<InstanceLock>> Acquire(
      const std::string& database_path);
  ~InstanceLock();  // releases it

  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  InstanceLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_INSTANCE_LOCK_H_
