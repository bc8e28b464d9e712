// The network side of `gaze serve` on Boost.Beast/Asio: asynchronous connections on a few I/O
// threads (idle connections cost no thread), bounded header and body sizes, timeouts, a
// connection limit, access logs, and a graceful shutdown on SIGTERM/SIGINT.
#pragma once

#include <memory>

#include "serve/metrics.h"
#include "serve/options.h"
#include "serve/router.h"

namespace gaze::serve {

class HttpServer {
 public:
  // Binds host:port (DataError if it cannot); serving starts with run().
  HttpServer(Router& router, Metrics& metrics, const ServeOptions& options);
  ~HttpServer();
  int port() const;  // the bound port (useful with port 0)
  // Serves until SIGTERM/SIGINT (or shutdown()): then /readyz answers 503, no connection is
  // accepted, requests already received are answered, idle connections are closed, and run()
  // returns once every connection has ended.
  void run();
  void shutdown();  // from any thread

  struct Impl;  // the I/O context, acceptor and connections (defined with them)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gaze::serve
