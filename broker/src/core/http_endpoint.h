// HttpEndpoint: the broker's read-only HTTP side for monitoring, on its own
// thread: GET /metrics (Prometheus text format), /healthz (the loop is
// turning) and /readyz (it serves requests). Nothing on it changes state and
// nothing it shows is secret; it is plain HTTP, so it binds to loopback
// unless the operator configures another address (docs/operations.md).
//
// Thread safety: Start() and the destructor from one thread; the handlers
// are called on the endpoint's thread and must be thread-safe.
#ifndef COMPUTENET_BROKER_CORE_HTTP_ENDPOINT_H_
#define COMPUTENET_BROKER_CORE_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "computenet/common/status.h"

namespace httplib {
class Server;
}

namespace computenet::broker {

struct HttpHandlers {
  std::function<std::string()> metrics;  // the /metrics body
  std::function<bool()> healthy;         // /healthz: 200 or 503
  std::function<bool()> ready;           // /readyz: 200 or 503
};

class HttpEndpoint {
 public:
  // address: "HOST:PORT" (PORT 0: any free port). INVALID_ARGUMENT for a
  // malformed address; UNAVAILABLE if it cannot be bound.
  static StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& address,
                                                       HttpHandlers handlers);
  ~HttpEndpoint();  // stops serving and joins the thread
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // "http://HOST:PORT", with the port actually bound.
  const std::string& url() const { return url_; }

 private:
  HttpEndpoint() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string url_;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_HTTP_ENDPOINT_H_
