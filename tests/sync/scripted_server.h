// An HTTP server on 127.0.0.1 whose replies a test scripts: the faults a real server or network
// produces (errors, lost replies, stalls), on demand and deterministically.
#pragma once

#include <httplib.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/wire.h"

namespace carnet::testing {

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

struct SeenRequest {
  std::string path;
  std::multimap<std::string, std::string> headers;
  std::string body;
  int remote_port = 0;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class ScriptedServer {
 public:
  ScriptedServer() : ScriptedServer(std::make_unique<httplib::Server>(), "http") {}
  // Serves https with the PEM certificate and key in these files.
  ScriptedServer(const std::string& cert_file, const std::string& key_file)
      : ScriptedServer(std::make_unique<httplib::SSLServer>(cert_file.c_str(), key_file.c_str()),
                       "https") {}
  ~ScriptedServer() {
    server_->stop();
    thread_.join();
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }

  // The answer to the next request on `path` not answered by an earlier Then().
  void Then(const std::string& path, Handler handler) {
    std::lock_guard<std::mutex> lock(mutex_);
    script_[path].push_back(std::move(handler));
  }
  // The answer on `path` once its script is used up.
  void Otherwise(const std::string& path, Handler handler) {
    std::lock_guard<std::mutex> lock(mutex_);
    fallback_[path] = std::move(handler);
  }

  std::vector<SeenRequest> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }
  std::vector<SeenRequest> requests(const std::string& path) {
    std::vector<SeenRequest> out;
    for (SeenRequest& r : requests()) {
      if (r.path == path) out.push_back(std::move(r));
    }
    return out;
  }

 private:
  ScriptedServer(std::unique_ptr<httplib::Server> server, std::string scheme)
      : server_(std::move(server)), scheme_(std::move(scheme)) {
    REQUIRE(server_->is_valid());
    server_->set_keep_alive_timeout(1);
    server_->set_tcp_nodelay(true);
    server_->Post(
        ".*", [this](const httplib::Request& req, httplib::Response& res) { Dispatch(req, res); });
    port_ = server_->bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::yield();
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res) {
    Handler handler;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen_.push_back(SeenRequest{
          req.path, {req.headers.begin(), req.headers.end()}, req.body, req.remote_port});
      auto& queue = script_[req.path];
      if (!queue.empty()) {
        handler = std::move(queue.front());
        queue.pop_front();
      } else if (auto it = fallback_.find(req.path); it != fallback_.end()) {
        handler = it->second;
      }
    }
    if (handler) {
      handler(req, res);
    } else {
      res.status = 404;
      res.set_content("no script for " + req.path, "text/plain");
    }
  }

  std::unique_ptr<httplib::Server> server_;
  std::string scheme_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::map<std::string, std::deque<Handler>> script_;
  std::map<std::string, Handler> fallback_;
  std::vector<SeenRequest> seen_;
};

// Handlers run on the server's threads, where Catch must not be called: they answer a
// malformed request with an error the test then sees on its own thread.

// Reads a request body in the format its Content-Type names.
template <typename Message>
bool Parse(const httplib::Request& req, Message* message) {
  std::optional<wire::Format> format =
      wire::FormatFromContentType(req.get_header_value("Content-Type"));
  return format && wire::Decode(req.body, *format, message).ok();
}

// Replies in the protocol's encoding, in the format the request asked for.
template <typename Message>
void Send(const httplib::Request& req, httplib::Response& res, int status, const Message& message) {
  wire::Format format =
      wire::FormatFromContentType(req.get_header_value("Accept")).value_or(wire::Format::kJson);
  Result<std::string> body = wire::Encode(message, format);
  res.status = body.ok() ? status : 500;
  res.set_content(body.ok() ? *body : body.status().ToString(),
                  body.ok() ? wire::ContentType(format) : "text/plain");
}

inline void BadRequest(httplib::Response& res) {
  res.status = 400;
  res.set_content("the test server could not read the request", "text/plain");
}

inline Handler ErrorHandler(int status, StatusCode code, int64_t server_time_ms = 0) {
  return [=](const httplib::Request& req, httplib::Response& res) {
    wire::ErrorReply error{StatusCodeName(code), "scripted " + std::to_string(status),
                           status >= 500 || status == 413, server_time_ms};
    Send(req, res, status, error);
  };
}

inline Handler TextHandler(int status, std::string text, std::string type = "text/html") {
  return [=](const httplib::Request&, httplib::Response& res) {
    res.status = status;
    res.set_content(text, type);
  };
}

// Declares a body longer than it sends, then drops the connection: a reply lost mid-way.
inline Handler CutHandler() {
  return [](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(4096, "application/json", [](size_t, size_t, httplib::DataSink& sink) {
      sink.write("{\"message\":", 11);
      return false;
    });
  };
}

// Answers after `delay_ms`: past the client's timeout, a stalled server.
inline Handler SlowHandler(int delay_ms, Handler then) {
  return [=](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    then(req, res);
  };
}

}  // namespace carnet::testing
