// ConnectionTable: which live connection (ROUTER routing id) uses which key
// and party, so that the broker can drop every connection of a key retired
// by a rotation, or of a revoked party, while the party's other
// connections keep working.
//
// libzmq's ROUTER has no call to close one peer. The table keeps the file
// descriptor libzmq reports as each connection's source (ZMQ_SRCFD) with
// the socket's identity (device and inode), and drops a connection by
// shutting down the reading side of that socket: libzmq sees end of file,
// closes the connection and forgets the routing id. The identity is checked
// first, so a descriptor number that libzmq has since reused for another
// connection is never touched.
//
// Thread safety: owned and used by the broker's core-loop thread.
#ifndef COMPUTENET_BROKER_CORE_CONNECTIONS_H_
#define COMPUTENET_BROKER_CORE_CONNECTIONS_H_

#include <sys/types.h>

#include <cstddef>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "computenet/common/transport.h"

namespace computenet::broker {

class ConnectionTable {
 public:
  // Remembers the frame's connection (a hash lookup when it is known).
  void Note(const RoutedFrame& frame);
  // Drops every live connection that uses curve_key (Z85) / of user_id
  // ("<role>/<name>"). Returns the routing ids dropped.
  std::vector<std::string> DropKey(const std::string& curve_key);
  std::vector<std::string> DropUser(const std::string& user_id);
  // Forgets connections known to be gone.
  void Forget(const std::set<std::string>& routing_ids);
  size_t size() const { return by_routing_id_.size(); }

 private:
  struct Connection {
    std::string curve_key;
    std::string user_id;
    int fd = -1;
    dev_t device = 0;
    ino_t inode = 0;
  };
  // Whether fd is still the socket noted for the connection.
  static bool StillOpen(const Connection& connection);
  template <typename Match>
  std::vector<std::string> DropIf(Match match);
  // Forgets connections whose socket is gone, when the table has grown.
  void PruneIfLarge();

  std::unordered_map<std::string, Connection> by_routing_id_;
  size_t prune_at_ = 1024;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_CONNECTIONS_H_
