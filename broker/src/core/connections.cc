#include "core/connections.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

namespace computenet::broker {

void ConnectionTable::Note(const RoutedFrame& frame) {
  if (frame.source_fd < 0) return;
  auto it = by_routing_id_.find(frame.routing_id);
  if (it != by_routing_id_.end() && it->second.fd == frame.source_fd &&
      it->second.curve_key == frame.curve_key &&
      it->second.user_id == frame.user_id) {
    return;
  }
  struct stat info;
  if (::fstat(frame.source_fd, &info) != 0) return;
  Connection connection{frame.curve_key, frame.user_id, frame.source_fd,
                        info.st_dev, info.st_ino};
  if (it != by_routing_id_.end()) {
    it->second = std::move(connection);
    return;
  }
  by_routing_id_.emplace(frame.routing_id, std::move(connection));
  PruneIfLarge();
}

bool ConnectionTable::StillOpen(const Connection& connection) {
  struct stat info;
  return ::fstat(connection.fd, &info) == 0 &&
         info.st_dev == connection.device && info.st_ino == connection.inode;
}

template <typename Match>
std::vector<std::string> ConnectionTable::DropIf(Match match) {
  std::vector<std::string> dropped;
  for (auto it = by_routing_id_.begin(); it != by_routing_id_.end();) {
    if (!match(it->second)) {
      ++it;
      continue;
    }
    if (StillOpen(it->second)) {
      // The reading side only: libzmq reads end of file and closes the
      // connection itself. Shutting down the writing side too would make its
      // next write raise SIGPIPE.
      if (::shutdown(it->second.fd, SHUT_RD) == 0) {
        dropped.push_back(it->first);
      } else {
        spdlog::warn("dropping a connection of {}: {}", it->second.user_id,
                     std::strerror(errno));
      }
    }
    it = by_routing_id_.erase(it);
  }
  return dropped;
}

std::vector<std::string> ConnectionTable::DropKey(
    const std::string& curve_key) {
  return DropIf([&](const Connection& c) { return c.curve_key == curve_key; });
}

std::vector<std::string> ConnectionTable::DropUser(const std::string& user_id) {
  return DropIf([&](const Connection& c) { return c.user_id == user_id; });
}

void ConnectionTable::Forget(const std::set<std::string>& routing_ids) {
  for (const auto& id : routing_ids) by_routing_id_.erase(id);
}

void ConnectionTable::PruneIfLarge() {
  if (by_routing_id_.size() < prune_at_) return;
  for (auto it = by_routing_id_.begin(); it != by_routing_id_.end();) {
    it = StillOpen(it->second) ? std::next(it) : by_routing_id_.erase(it);
  }
  // Amortized: the next prune waits until the live set has doubled.
  prune_at_ = std::max<size_t>(1024, 2 * by_routing_id_.size());
}

}  // namespace computenet::broker
