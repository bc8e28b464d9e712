// The settings of `gaze serve`, declared once: each is a member and its field, which the command
// line flags (--max-batch-tokens, ...) and the docs' table are made from.
#pragma once

#include <cstdint>
#include <string>

#include "gaze/io/config.h"

namespace gaze::serve {

enum class LogFormat { text, json, none };
GAZE_ENUM_NAMES(LogFormat, {LogFormat::text, "text"}, {LogFormat::json, "json"},
                {LogFormat::none, "none"})

struct ServeOptions {
  std::string host = "127.0.0.1";
  int64_t port = 8080;  // 0: any free port (printed when listening)
  // Dynamic batching: a batch holds at most max_batch_tokens tokens and max_batch_inputs inputs;
  // it waits for more requests at most max_wait_ms after its first one arrived (less when as many
  // inputs wait as the previous batch held).
  int64_t max_batch_tokens = 8192;
  int64_t max_batch_inputs = 128;
  int64_t max_wait_ms = 5;
  int64_t max_queue = 1024;  // inputs waiting per model; beyond: 429 with Retry-After
  int64_t max_inputs = 128;  // inputs per request; beyond: 422
  int64_t max_body_bytes = int64_t{4} << 20;
  int64_t timeout_ms = 30000;  // a request not answered by then: 504
  int64_t max_connections = 1024;
  int64_t http_threads = 2;         // network I/O and JSON only; inference has its own thread
  int64_t idle_timeout_ms = 30000;  // a connection silent this long (keep-alive or mid-request)
  LogFormat log_format = LogFormat::text;
};

inline config::Fields config_fields(ServeOptions& o) {
  using config::field;
  return {
      field("host", o.host).describe("address to listen on (0.0.0.0: every interface)"),
      field("port", o.port, 0, 65535).describe("TCP port (0: any free port, printed at start)"),
      field("max_batch_tokens", o.max_batch_tokens, 1, config::kMaxSize)
          .describe("the most tokens in a batch"),
      field("max_batch_inputs", o.max_batch_inputs, 1, 65536)
          .describe("the most inputs in a batch (1: no batching)"),
      field("max_wait_ms", o.max_wait_ms, 0, 60000)
          .describe("wait at most this long for a batch to fill after its first request"),
      field("max_queue", o.max_queue, 1, config::kMaxSize)
          .describe("inputs waiting per model; more: 429 with Retry-After"),
      field("max_inputs", o.max_inputs, 1, 65536).describe("inputs per request; more: 422"),
      field("max_body_bytes", o.max_body_bytes, 64, int64_t{1} << 30)
          .describe("request body size; larger: 413"),
      field("timeout_ms", o.timeout_ms, 1, 3600000)
          .describe("a request not answered in this time gets 504"),
      field("max_connections", o.max_connections, 1, 100000)
          .describe("open connections; more are answered 503 and closed"),
      field("http_threads", o.http_threads, 1, 64)
          .describe("threads for network I/O and JSON (inference runs on its own)"),
      field("idle_timeout_ms", o.idle_timeout_ms, 100, 3600000)
          .describe("close a connection silent this long (idle, or a request arriving too slowly)"),
      field("log_format", o.log_format)
          .describe("access log on stderr, one line per request: text, json or none"),
  };
}

}  // namespace gaze::serve
