#include "serve/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "gaze/core/error.h"
#include "gaze/core/version.h"

namespace gaze::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kBufferLimit = 64 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A client-supplied string made safe for a one-line text log.
std::string printable(std::string_view s) {
  std::string out;
  for (const unsigned char c : s.substr(0, 512)) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

struct Session;

// "gaze/0.1.0 (commit 1a2b3c4)": which gaze answered, in every response.
const std::string& server_header() {
  static const std::string header =
      "gaze/" + std::string(gaze::version()) + " (commit " + std::string(gaze::git_commit()) + ")";
  return header;
}

struct HttpServer::Impl {
  Impl(Router& r, Metrics& m, const ServeOptions& o)
      : router(r),
        metrics(m),
        options(o),
        ioc(static_cast<int>(o.http_threads)),
        acceptor(asio::make_strand(ioc)),
        retry(acceptor.get_executor()),
        signals(ioc, SIGINT, SIGTERM) {}

  void accept();
  void begin_shutdown();
  void log(const std::string& remote, const std::string& method, const std::string& target,
           const HttpResponse& r, double ms);

  Router& router;
  Metrics& metrics;
  ServeOptions options;
  // Declared before the I/O context: handlers it still holds when it is destroyed (sessions among
  // them) may touch these.
  std::atomic<int64_t> open{0};
  std::atomic<bool> draining{false};
  std::mutex sessions_mu, log_mu;
  std::vector<std::weak_ptr<Session>> sessions;
  asio::io_context ioc;
  tcp::acceptor acceptor;  // on a strand of its own: accepting and closing never overlap
  asio::steady_timer retry;
  asio::signal_set signals;
};

// One connection: read a request, hand it to the router, write the answer, and again while the
// client keeps the connection alive.
struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket&& socket, HttpServer::Impl& server, bool refused)
      : stream(std::move(socket)), timer(stream.get_executor()), server(server), refused(refused) {
    ++server.open;
    server.metrics.connection_opened();
    beast::error_code ec;
    const auto endpoint = stream.socket().remote_endpoint(ec);
    if (!ec) remote = endpoint.address().to_string();
  }
  ~Session() {
    --server.open;
    server.metrics.connection_closed();
  }

  void start() {
    asio::dispatch(stream.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  void read() {
    parser.emplace();
    parser->header_limit(kHeaderLimit);
    parser->body_limit(static_cast<uint64_t>(server.options.max_body_bytes));
    stream.expires_after(refused ? std::chrono::milliseconds(1000)
                                 : std::chrono::milliseconds(server.options.idle_timeout_ms));
    reading = true;
    http::async_read_header(stream, buffer, *parser,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->on_read(ec);
                              self->read_body();
                            });
  }

  // A client that sent `Expect: 100-continue` waits for a go-ahead before its body (curl does for
  // bodies over 1 MB); a body too large is refused before it is sent.
  void read_body() {
    const auto& req = parser->get();
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser->is_done()) {
      const auto length = parser->content_length();
      if (length && *length > static_cast<uint64_t>(server.options.max_body_bytes))
        return on_read(http::error::body_limit);
      auto go = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                   req.version());
      return http::async_write(stream, *go,
                               [self = shared_from_this(), go](beast::error_code ec, size_t) {
                                 if (ec) return self->close();
                                 self->read_rest();
                               });
    }
    read_rest();
  }

  void read_rest() {
    http::async_read(
        stream, buffer, *parser,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  // Called on this connection's strand when the server drains: a connection waiting for a request
  // that has not begun is closed; one mid-request finishes it.
  void drain() {
    if (reading && buffer.size() == 0 && !(parser && parser->got_some())) {
      beast::error_code ec;
      stream.socket().cancel(ec);
    }
  }

  void on_read(beast::error_code ec) {
    reading = false;
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof)
      return close();
    if (ec) {
      keep_alive = false;
      method = "-";
      target = "-";
      start_time = Clock::now();
      if (ec == http::error::body_limit)
        return write(
            error_response(413, "payload_too_large",
                           fmt::format("the body is larger than {} bytes (--max-body-bytes)",
                                       server.options.max_body_bytes)));
      if (ec == http::error::header_limit)
        return write(error_response(
            431, "validation",
            fmt::format("the request line and headers exceed {} bytes", kHeaderLimit)));
      if (ec == http::error::buffer_overflow)
        return write(
            error_response(400, "validation",
                           fmt::format("a chunk header or trailer of the request exceeds {} bytes",
                                       kBufferLimit)));
      if (parser && parser->got_some())
        return write(error_response(400, "validation", "malformed HTTP request: " + ec.message()));
      return close();
    }
    http::request<http::string_body> req = parser->release();
    keep_alive = req.keep_alive();
    version = req.version();
    method = std::string(req.method_string());
    target = std::string(req.target());
    start_time = Clock::now();
    if (refused) {
      keep_alive = false;
      return write(error_response(503, "overloaded",
                                  fmt::format("too many open connections (--max-connections {})",
                                              server.options.max_connections)));
    }
    HttpRequest r{method, target, std::string(req[http::field::content_type]),
                  std::string(req[http::field::accept]), std::move(req.body())};

    // The answer may come from the inference thread: it is posted back to this connection's
    // strand, once (the first of the answer and the timeout wins). The work guard keeps the
    // I/O threads running while the request is in the engine.
    // The reply holds the connection only until it is answered: a job whose client timed out may
    // wait in the engine's queue a while longer without keeping its connection open.
    struct Reply {
      std::atomic<bool> sent{false};
      std::mutex mu;
      std::shared_ptr<Session> session;
      std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    };
    auto reply = std::make_shared<Reply>();
    reply->session = shared_from_this();
    reply->guard.emplace(server.ioc.get_executor());
    Respond respond = [reply](HttpResponse res) {
      if (reply->sent.exchange(true)) return;
      const std::lock_guard lock(reply->mu);
      const std::shared_ptr<Session> self = std::move(reply->session);
      asio::post(self->stream.get_executor(),
                 [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
      reply->guard.reset();
    };
    std::shared_ptr<Job> job;
    try {
      server.router.handle(r, respond, &job);
    } catch (const std::exception& e) {
      respond(error_response(500, "internal", std::string("internal error: ") + e.what()));
    }
    if (job && !reply->sent) {
      timer.expires_after(std::chrono::milliseconds(server.options.timeout_ms));
      timer.async_wait([job, respond, timeout = server.options.timeout_ms](beast::error_code ec) {
        if (ec) return;  // answered in time (the timer was cancelled)
        job->cancelled = true;
        HttpResponse r = error_response(
            504, "timeout", fmt::format("not answered within {} ms (--timeout-ms)", timeout));
        r.model = job->model;
        r.endpoint = enum_name(job->endpoint);
        r.inputs = std::ssize(job->texts);
        respond(std::move(r));
      });
    }
  }

  void write(HttpResponse r) {
    timer.cancel();
    if (r.json_body) {
      r.body = r.json_body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      r.json_body.reset();
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_time).count();
    server.metrics.request(r.model, r.endpoint, r.status, ms / 1000, r.inputs);
    server.log(remote, method, target, r, ms);
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version);
    res->set(http::field::server, server_header());
    res->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    // While draining, a connection stays open only for requests it has already sent (pipelined).
    const bool keep = keep_alive && (!server.draining || buffer.size() > 0);
    res->keep_alive(keep);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (method == "HEAD") res->body().clear();  // the headers, Content-Length included, only
    stream.expires_after(std::chrono::milliseconds(server.options.idle_timeout_ms));
    http::async_write(stream, *res,
                      [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
                        if (ec) return self->close();
                        if (keep && (!self->server.draining || self->buffer.size() > 0))
                          return self->read();
                        self->linger();
                      });
  }

  // After a last answer: stop sending, then read and drop what the client still sends for a
  // moment, so a client still writing a refused body reads our answer instead of a reset.
  void linger() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    if (!linger_until) linger_until = Clock::now() + kLingerTime;
    stream.expires_at(*linger_until);
    stream.async_read_some(asio::buffer(discard),
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (ec) return self->close();
                             self->linger();
                           });
  }

  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
  }

  beast::tcp_stream stream;
  asio::steady_timer timer;
  HttpServer::Impl& server;
  // Bytes read but not yet parsed: headers (16 KiB), chunk sizes, extensions and trailers. The
  // body goes to the request's string (body_limit), so nothing a client sends is unbounded.
  beast::flat_buffer buffer{kBufferLimit};
  std::optional<http::request_parser<http::string_body>> parser;
  std::array<char, 4096> discard{};
  std::optional<Clock::time_point> linger_until;
  bool refused;  // over --max-connections: answer 503 to its request and close
  bool reading = false, keep_alive = true;
  unsigned version = 11;
  std::string remote = "-", method, target;
  Clock::time_point start_time;
};

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!acceptor.is_open() || draining) return;
      // Out of file descriptors (or another transient failure): retrying at once would spin.
      retry.expires_after(std::chrono::milliseconds(50));
      retry.async_wait([this](beast::error_code e) {
        if (!e && acceptor.is_open() && !draining) accept();
      });
      return;
    }
    {
      // Over --max-connections a connection still gets a session, briefly: it reads the request
      // (for at most a second) and answers 503, so the client reads why instead of a reset.
      const bool refused = open >= options.max_connections;
      if (refused) metrics.connection_refused();
      auto session = std::make_shared<Session>(std::move(socket), *this, refused);
      {
        const std::lock_guard lock(sessions_mu);
        std::erase_if(sessions, [](const auto& w) { return w.expired(); });
        sessions.push_back(session);
      }
      session->start();
    }
    accept();
  });
}

void HttpServer::Impl::begin_shutdown() {
  if (draining.exchange(true)) return;
  router.set_draining();
  metrics.set_ready(false);
  std::fprintf(stderr, "gaze serve: draining: answering the requests already received\n");
  asio::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
    retry.cancel();
    signals.clear(ec);  // a second Ctrl-C ends the process at once
    signals.cancel(ec);
    const std::lock_guard lock(sessions_mu);
    for (const auto& w : sessions)
      if (auto s = w.lock()) asio::post(s->stream.get_executor(), [s] { s->drain(); });
  });
}

void HttpServer::Impl::log(const std::string& remote, const std::string& method,
                           const std::string& target, const HttpResponse& r, double ms) {
  if (options.log_format == LogFormat::none) return;
  std::string line;
  if (options.log_format == LogFormat::json) {
    const nlohmann::json j = {{"time", utc_now()}, {"remote", remote},       {"method", method},
                              {"path", target},    {"status", r.status},     {"ms", ms},
                              {"model", r.model},  {"endpoint", r.endpoint}, {"inputs", r.inputs}};
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    line = fmt::format("{} {} \"{} {}\" {} {:.1f}ms inputs={}\n", utc_now(), remote,
                       printable(method), printable(target), r.status, ms, r.inputs);
  }
  const std::lock_guard lock(log_mu);
  std::fputs(line.c_str(), stderr);
}

HttpServer::HttpServer(Router& router, Metrics& metrics, const ServeOptions& options)
    : impl_(std::make_unique<Impl>(router, metrics, options)) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  GAZE_CHECK(!ec, DataError, "--host {}: not an IP address ({})", options.host, ec.message());
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  GAZE_CHECK(!ec, DataError, "cannot listen on {}:{}: {}", options.host, options.port,
             ec.message());
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void HttpServer::shutdown() {
  impl_->begin_shutdown();
}

void HttpServer::run() {
  Impl& s = *impl_;
  s.signals.async_wait([&s](beast::error_code ec, int) {
    if (!ec) s.begin_shutdown();
  });
  s.metrics.set_ready(true);
  s.accept();
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < s.options.http_threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : threads) t.join();
}

}  // namespace gaze::serve
