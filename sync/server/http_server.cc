#include "sync/server/http_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "sync/server/http_connection.h"

namespace carnet {

using namespace http_internal;

namespace {

// Stop() waits this long at most for requests in flight; each is bounded by the limits anyway.
constexpr std::chrono::seconds kStopBound{120};
// After a failed accept (out of file descriptors), before trying again: no busy loop.
constexpr Millis kAcceptRetry{100};

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string ServerRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoringCase(key, name)) return value;
  }
  return "";
}

class HttpServer::Impl final : public Host {
 public:
  Impl(std::vector<HttpRoute> routes, HttpLimits limits, int worker_threads, HttpHooks hooks)
      : routes_(std::move(routes)),
        limits_(limits),
        workers_(std::max(1, worker_threads)),
        hooks_(std::move(hooks)),
        acceptor_(asio::make_strand(ioc_)),
        retry_(acceptor_.get_executor()),
        work_(asio::make_work_guard(ioc_)) {
    limits_.io_threads = std::max(1, limits_.io_threads);
    limits_.max_connections = std::max(1, limits_.max_connections);
    for (const HttpRoute& route : routes_) max_body_ = std::max(max_body_, route.body_limit);
  }
  ~Impl() override { Stop(); }

  Status Start(const std::string& host, int port,
               const std::function<std::string(SSL_CTX*)>& configure_tls);
  void Stop();
  int port() const { return port_; }

  const HttpRoute* Find(const std::string& method, const std::string& path) const override {
    for (const HttpRoute& route : routes_) {
      if (route.method == method && route.path == path) return &route;
    }
    return nullptr;
  }
  size_t MaxBodyLimit() const override { return max_body_; }
  const HttpLimits& limits() const override { return limits_; }
  const HttpHooks& hooks() const override { return hooks_; }
  asio::thread_pool& pool() override { return *pool_; }
  bool stopping() const override { return stopping_.load(); }
  bool ReserveBody(size_t bytes) override {
    if (bodies_.fetch_add(bytes) + bytes <= limits_.bodies_bytes) return true;
    bodies_.fetch_sub(bytes);
    return false;
  }
  void ReleaseBody(size_t bytes) override { bodies_.fetch_sub(bytes); }
  void Closed(const void* connection) override;

 private:
  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);

  std::vector<HttpRoute> routes_;
  HttpLimits limits_;
  int workers_;
  HttpHooks hooks_;
  size_t max_body_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> bodies_{0};
  bool started_ = false;
  int port_ = 0;
  // Declared before the io_context, so that connections its destructor releases find them.
  std::mutex mutex_;
  std::condition_variable closed_;
  std::unordered_map<const void*, std::weak_ptr<Connection>> connections_;
  int active_ = 0;
  bool accept_paused_ = false;
  asio::io_context ioc_;
  std::optional<asio::ssl::context> tls_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> reactor_;
  std::unique_ptr<asio::thread_pool> pool_;
};

Status HttpServer::Impl::Start(const std::string& host, int port,
                               const std::function<std::string(SSL_CTX*)>& configure_tls) {
  if (configure_tls) {
    try {
      tls_.emplace(asio::ssl::context::tls_server);
    } catch (const std::exception& e) {
      return InvalidArgument(std::string("cannot set up TLS: ") + e.what());
    }
    if (std::string error = configure_tls(tls_->native_handle()); !error.empty()) {
      return InvalidArgument(error);
    }
    // OpenSSL's read and write buffers (about 34 KiB) are given back while a connection idles.
    SSL_CTX_set_mode(tls_->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  }
  const std::string where = host + ":" + std::to_string(port);
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  auto endpoints = resolver.resolve(host, std::to_string(port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Status(StatusCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status(StatusCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  pool_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(workers_));
  Accept();
  for (int i = 0; i < limits_.io_threads; ++i) reactor_.emplace_back([this] { ioc_.run(); });
  started_ = true;
  return Status::Ok();
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stopping_) return;
  if (ec) {
    retry_.expires_after(kAcceptRetry);
    retry_.async_wait([this](beast::error_code waited) {
      if (!waited && !stopping_) Accept();
    });
    return;
  }
  // A reply goes out as headers then body: without TCP_NODELAY the body could wait for the
  // client's delayed acknowledgement of the headers, about 40 ms on Linux.
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<Connection> connection;
  if (tls_) {
    connection = std::make_shared<StreamConnection<beast::ssl_stream<beast::tcp_stream>>>(
        this, std::move(socket), *tls_);
  } else {
    connection = std::make_shared<StreamConnection<beast::tcp_stream>>(this, std::move(socket));
  }
  bool more = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    connections_[connection.get()] = connection;
    more = ++active_ < limits_.max_connections;
    accept_paused_ = !more;
  }
  connection->Begin();
  if (more) Accept();
}

void HttpServer::Impl::Closed(const void* connection) {
  bool resume = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.erase(connection);
    --active_;
    resume = accept_paused_ && !stopping_ && active_ < limits_.max_connections;
    if (resume) accept_paused_ = false;
  }
  closed_.notify_all();
  if (resume) asio::post(acceptor_.get_executor(), [this] { Accept(); });
}

void HttpServer::Impl::Stop() {
  if (!started_) return;
  started_ = false;
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  });
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, weak] : connections_) {
      if (std::shared_ptr<Connection> connection = weak.lock()) open.push_back(connection);
    }
  }
  for (const auto& connection : open) connection->StopIfIdle();
  open.clear();  // outside the lock: the last reference runs Closed()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_.wait_for(lock, kStopBound, [this] { return active_ == 0; });
  }
  work_.reset();
  ioc_.stop();
  for (std::thread& thread : reactor_) thread.join();
  reactor_.clear();
  pool_->join();
}

HttpServer::HttpServer(std::vector<HttpRoute> routes, HttpLimits limits, int worker_threads,
                       HttpHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(routes), limits, worker_threads, std::move(hooks))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Start(const std::string& host, int port,
                         const std::function<std::string(SSL_CTX*)>& configure_tls) {
  return impl_->Start(host, port, configure_tls);
}
void HttpServer::Stop() { impl_->Stop(); }
int HttpServer::port() const { return impl_->port(); }

}  // namespace carnet
