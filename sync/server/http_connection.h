// One connection of HttpServer (sync/server/http_server.h), plain or TLS: reads a request within the
// limits, runs its route on the worker pool, writes the reply, and waits for the next one.
// Private to sync/server/http_server.cc.
#pragma once

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "sync/server/http_server.h"

namespace carnet::http_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// The connection's read buffer: a request's header fields, and a body passing through. An idle
// connection reads into kIdleReadBytes only, and its buffer is shrunk: idle ones cost little.
constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr size_t kIdleReadBytes = 1024;
// After refusing a request whose body was not read, the rest is read and dropped for a while
// before closing: closing at once would reset the connection and could destroy the reply before
// the client reads it.
constexpr size_t kLingerBytes = 16 * 1024 * 1024;
constexpr Millis kLinger{2000};

// What a connection needs of the server that accepted it.
class Host {
 public:
  virtual ~Host() = default;
  virtual const HttpRoute* Find(const std::string& method, const std::string& path) const = 0;
  virtual size_t MaxBodyLimit() const = 0;
  virtual const HttpLimits& limits() const = 0;
  virtual const HttpHooks& hooks() const = 0;
  virtual asio::thread_pool& pool() = 0;
  virtual bool stopping() const = 0;
  // Counts `bytes` more of request bodies held, all connections together; false (and nothing
  // counted) past HttpLimits::bodies_bytes.
  virtual bool ReserveBody(size_t bytes) = 0;
  virtual void ReleaseBody(size_t bytes) = 0;
  // Called by the connection's destructor.
  virtual void Closed(const void* connection) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  virtual void Begin() = 0;
  // On a connection waiting for a request: closes it (the server is stopping).
  virtual void StopIfIdle() = 0;
};

template <class Stream>
class StreamConnection final : public Connection {
 public:
  template <class... Args>
  StreamConnection(Host* host, Args&&... args)
      : host_(host),
        limits_(host->limits()),
        stream_(std::forward<Args>(args)...),
        buffer_(kReadBufferBytes) {}
  ~StreamConnection() override {
    host_->ReleaseBody(reserved_);
    host_->Closed(this);
  }

  void Begin() override {
    asio::dispatch(stream_.get_executor(), [self = Self()] { self->Handshake(); });
  }
  void StopIfIdle() override {
    asio::post(stream_.get_executor(), [self = Self()] {
      if (self->state_ == State::kIdle) self->Lowest().cancel();
    });
  }

 private:
  enum class State { kHandshake, kIdle, kReading, kWorking, kWriting, kClosing };
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  std::shared_ptr<StreamConnection> Self() {
    return std::static_pointer_cast<StreamConnection>(shared_from_this());
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Handshake() {
    if constexpr (kTls) {
      state_ = State::kHandshake;
      Lowest().expires_after(Millis(limits_.header_timeout_ms));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = Self()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->WaitForRequest();
                              });
    } else {
      WaitForRequest();
    }
  }

  // Idle until a request's first byte, for the keep-alive time; then its header deadline runs.
  void WaitForRequest() {
    if (host_->stopping()) return Close();
    if (buffer_.size() > 0) return ReadHeader();
    state_ = State::kIdle;
    buffer_.shrink_to_fit();
    Lowest().expires_after(Millis(limits_.keep_alive_ms));
    stream_.async_read_some(buffer_.prepare(kIdleReadBytes),
                            [self = Self()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    state_ = State::kReading;
    request_ = ServerRequest{};
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_.header_bytes));
    parser_->body_limit(host_->MaxBodyLimit());  // lowered to the route's once it is known
    Lowest().expires_after(Millis(limits_.header_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = Self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      return Refuse(431, "header fields over " + std::to_string(limits_.header_bytes) + " bytes");
    }
    if (ec == http::error::body_limit) return Refuse(413, TooLarge(host_->MaxBodyLimit()));
    if (ec) return IsHttpError(ec) ? Refuse(400, "malformed request: " + ec.message()) : Close();
    const auto& message = parser_->get();
    request_.method = std::string(message.method_string());
    const std::string target(message.target());
    request_.path = target.substr(0, target.find('?'));
    for (const auto& field : message) {
      request_.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    keep_alive_ = message.keep_alive();
    ServerResponse screened;
    if (host_->hooks().screen && host_->hooks().screen(request_, screened)) {
      return Answer(std::move(screened), /*close=*/true);
    }
    route_ = host_->Find(request_.method, request_.path);
    if (route_ == nullptr)
      return Refuse(404, "no route for " + request_.method + " " + request_.path);
    const auto length = parser_->content_length();
    if (length && *length > route_->body_limit) return Refuse(413, TooLarge(route_->body_limit));
    parser_->body_limit(route_->body_limit);
    body_start_ = Clock::now();
    body_bytes_ = 0;
    ReadBody();
  }

  // Read by pieces, so that a body trickling in is cut off by its rate and not only by time.
  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    Lowest().expires_after(Millis(limits_.body_grace_ms));
    http::async_read_some(stream_, buffer_, *parser_,
                          [self = Self()](beast::error_code ec, size_t n) { self->OnBody(ec, n); });
  }

  void OnBody(beast::error_code ec, size_t n) {
    if (ec == http::error::body_limit) return Refuse(413, TooLarge(route_->body_limit));
    if (ec) return IsHttpError(ec) ? Refuse(400, "malformed body: " + ec.message()) : Close();
    body_bytes_ += n;
    const size_t held = parser_->get().body().size();
    if (held > reserved_) {
      if (!host_->ReserveBody(held - reserved_)) {
        return Refuse(503, "too many request bodies at once: retry later");
      }
      reserved_ = held;
    }
    const auto elapsed_ms = std::chrono::duration_cast<Millis>(Clock::now() - body_start_).count();
    if (elapsed_ms > limits_.body_grace_ms &&
        body_bytes_ * 1000 < limits_.body_min_bytes_per_s * static_cast<size_t>(elapsed_ms)) {
      return Close();
    }
    ReadBody();
  }

  void Dispatch() {
    state_ = State::kWorking;
    request_.body = std::move(parser_->get().body());
    parser_.reset();
    asio::post(host_->pool(), [self = Self()] {
      ServerResponse response;
      try {
        self->route_->handler(self->request_, response);
      } catch (...) {
        response = ServerResponse{};
        self->host_->hooks().refuse(500, "unexpected error while serving the request", response);
      }
      asio::dispatch(self->stream_.get_executor(),
                     [self, response = std::move(response)]() mutable {
                       self->Answer(std::move(response), /*close=*/false);
                     });
    });
  }

  void Refuse(int status, const std::string& message) {
    ServerResponse response;
    host_->hooks().refuse(status, message, response);
    Answer(std::move(response), /*close=*/true);
  }

  void Answer(ServerResponse response, bool close) {
    state_ = State::kWriting;
    if (host_->hooks().answered) host_->hooks().answered(request_, response);
    std::string().swap(request_.body);
    host_->ReleaseBody(reserved_);
    reserved_ = 0;
    ++served_;
    const bool unread = parser_.has_value() && !parser_->is_done();
    const bool keep = !close && !unread && keep_alive_ && !host_->stopping() &&
                      served_ < limits_.max_requests_per_connection;
    reply_ = {};
    reply_.version(11);
    reply_.result(static_cast<unsigned>(response.status));
    if (!response.content_type.empty())
      reply_.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) reply_.set(name, value);
    reply_.keep_alive(keep);
    if (keep) {
      reply_.set("Keep-Alive",
                 "timeout=" + std::to_string(std::max<int64_t>(1, limits_.keep_alive_ms / 1000)) +
                     ", max=" + std::to_string(limits_.max_requests_per_connection - served_));
    }
    reply_.body() = std::move(response.body);
    reply_.prepare_payload();
    Lowest().expires_after(Millis(limits_.write_timeout_ms));
    http::async_write(stream_, reply_, [self = Self(), keep, unread](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      if (keep) return self->WaitForRequest();
      unread ? self->Linger() : self->Close();
    });
  }

  void Linger() {
    state_ = State::kClosing;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Lowest().expires_after(kLinger);  // for every read of the drain together
    Drain();
  }

  void Drain() {
    buffer_.clear();
    Lowest().async_read_some(buffer_.prepare(kReadBufferBytes),
                             [self = Self()](beast::error_code ec, size_t n) {
                               self->drained_ += n;
                               if (ec || self->drained_ >= kLingerBytes) return self->Close();
                               self->Drain();
                             });
  }

  void Close() {
    state_ = State::kClosing;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  // A request the client got wrong, worth an answer; not one it gave up (closed, timed out).
  static bool IsHttpError(const beast::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }
  static std::string TooLarge(size_t limit) {
    return "request body over " + std::to_string(limit) + " bytes";
  }

  Host* host_;
  const HttpLimits& limits_;
  Stream stream_;
  beast::flat_buffer buffer_;
  State state_ = State::kHandshake;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerRequest request_;
  const HttpRoute* route_ = nullptr;
  bool keep_alive_ = false;
  Clock::time_point body_start_;
  size_t body_bytes_ = 0;
  size_t reserved_ = 0;  // of the bodies' budget (Host::ReserveBody)
  int served_ = 0;
  size_t drained_ = 0;
  http::response<http::string_body> reply_;
};

}  // namespace carnet::http_internal
