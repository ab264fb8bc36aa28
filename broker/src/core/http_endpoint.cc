#include "core/http_endpoint.h"

#include <httplib.h>

#include <charconv>

namespace computenet::broker {

StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const std::string& address, HttpHandlers handlers) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0) {
    const char* first = address.data() + colon + 1;
    const char* last = address.data() + address.size();
    auto [end, error] = std::from_chars(first, last, port);
    if (error != std::errc() || end != last || first == last) port = -1;
  }
  if (port < 0 || port > 65535) {
    return InvalidArgumentError("metrics address '" + address +
                                "' is not HOST:PORT (e.g. 127.0.0.1:9464)");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:9464
  }
  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint());
  endpoint->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *endpoint->server_;
  // Small and bounded: monitoring reads, nothing else.
  server.set_payload_max_length(64 * 1024);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.Get("/metrics", [metrics = handlers.metrics](
                             const httplib::Request&,
                             httplib::Response& response) {
    response.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  auto probe = [](std::function<bool()> check) {
    return [check = std::move(check)](const httplib::Request&,
                                      httplib::Response& response) {
      const bool ok = check();
      response.status = ok ? 200 : 503;
      response.set_content(ok ? "ok\n" : "unavailable\n", "text/plain");
    };
  };
  server.Get("/healthz", probe(handlers.healthy));
  server.Get("/readyz", probe(handlers.ready));
  const int bound = port == 0 ? server.bind_to_any_port(host)
                              : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return UnavailableError("cannot bind the metrics endpoint to " + address);
  }
  const bool bracket = host.find(':') != std::string::npos;
  endpoint->url_ = "http://" + (bracket ? "[" + host + "]" : host) + ":" +
                   std::to_string(bound);
  endpoint->thread_ = std::thread([&server] { server.listen_after_bind(); });
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace computenet::broker
