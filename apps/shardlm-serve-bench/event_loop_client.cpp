// run_streams_event_loop (event_loop_client.h): one epoll loop, one Conn per open request, each
// a small state machine: connecting -> sending the request -> reading the status line and
// headers -> reading the body (de-chunked when chunked) into the SSE splitter.
#include "apps/shardlm-serve-bench/event_loop_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "apps/shardlm-serve-bench/sse_parser.h"
#include "apps/shardlm-serve-bench/stream_state.h"

namespace shardlm::serve_bench {
namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxChunkLine = 4096;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string http_request(const ServerConfig& server, const StreamRequest& r) {
  const std::string body = request_body(r);
  std::string req = std::string("POST ") + endpoint_path(r.endpoint) + " HTTP/1.1\r\n";
  req += "Host: " + server.host + ":" + std::to_string(server.port) + "\r\n";
  req += "Accept: text/event-stream\r\nAccept-Encoding: identity\r\n";
  req += "Content-Type: application/json\r\nConnection: close\r\n";
  if (!server.api_key.empty()) req += "Authorization: Bearer " + server.api_key + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  req += body;
  return req;
}

class Conn {
 public:
  Conn(const StreamRequest& r, StreamResult& out, std::string request, Clock::time_point start)
      : out_(out), request_(std::move(request)), start_(start), state_(r.endpoint, start, out) {}

  enum class Phase { kConnecting, kSending, kHeaders, kBody, kFinished };

  int fd = -1;
  Phase phase = Phase::kConnecting;

  Clock::time_point start() const { return start_; }

  enum class Sent { kAll, kWait, kFailed };
  // Writes what is left of the request.
  Sent send_more() {
    while (sent_ < request_.size()) {
      const ssize_t n = ::send(fd, request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Sent::kWait;
        if (errno == EINTR) continue;
        fail_io("write", "sending the request failed: " + std::string(std::strerror(errno)));
        return Sent::kFailed;
      }
      sent_ += static_cast<size_t>(n);
    }
    return Sent::kAll;
  }

  // Bytes from the socket. False when the request is over (body complete or a failure).
  bool on_bytes(std::string_view data, Clock::time_point now) {
    if (phase == Phase::kHeaders) {
      in_.append(data);
      const size_t end = in_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (in_.size() > kMaxHeaderBytes) {
          return fail_io("read", "the answer's headers are longer than 64 KiB");
        }
        return true;
      }
      if (!parse_headers(std::string_view(in_).substr(0, end))) return false;
      std::string rest = in_.substr(end + 4);
      in_.clear();
      phase = Phase::kBody;
      return body_bytes(rest, now);
    }
    return body_bytes(data, now);
  }

  // The connection closed (orderly) or failed to read: the request ends here.
  void on_eof() {
    if (phase == Phase::kHeaders && out_.error.empty()) {
      fail_io("read", in_.empty() ? "the server closed the connection without an answer"
                                  : "the server closed the connection inside the headers");
    }
  }

  // A connect or read error.
  bool fail_io(const std::string& kind, const std::string& message) {
    if (out_.error.empty()) {
      out_.error_kind = kind;
      out_.error = message;
    }
    return false;
  }

  bool timed_out(Clock::time_point now, double timeout_s) {
    if (seconds(start_, now) <= timeout_s) return false;
    if (out_.error.empty()) {
      state_.fail("timeout", "no [DONE] within --timeout " + std::to_string(timeout_s) + " s");
    }
    return true;
  }

  // The request's result once it is over (as run_stream_request decides it).
  void finish(Clock::time_point now) {
    phase = Phase::kFinished;
    out_.total_s = seconds(start_, now);
    out_.http_status = status_;
    if (!out_.error.empty()) return;
    if (status_ != 200) {
      out_.error_kind = "http " + std::to_string(status_);
      out_.error = "HTTP " + std::to_string(status_) + ": " + error_message(error_body_);
      return;
    }
    if (!state_.done()) {
      out_.error_kind = "incomplete stream";
      out_.error = "the stream ended without data: [DONE]";
      return;
    }
    if (!out_.usage_reported) out_.completion_tokens = out_.text_chunks;
    out_.ok = true;
  }

 private:
  enum class Body { kChunked, kLength, kToClose };
  enum class Chunk { kSize, kData, kDataEnd, kTrailers };

  bool parse_headers(std::string_view head) {
    const size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK"
    const size_t sp = status_line.find(' ');
    if (status_line.rfind("HTTP/", 0) != 0 || sp == std::string_view::npos ||
        status_line.size() < sp + 4) {
      return fail_io("read", "not an HTTP answer: " + std::string(status_line.substr(0, 80)));
    }
    status_ = std::atoi(std::string(status_line.substr(sp + 1, 3)).c_str());
    size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string_view::npos) e = head.size();
      const std::string_view line = head.substr(pos, e - pos);
      pos = e + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string name = lower(line.substr(0, colon));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) {
        body_ = Body::kChunked;
      } else if (name == "content-length" && body_ != Body::kChunked) {
        body_ = Body::kLength;
        left_ = std::atoll(std::string(value).c_str());
      }
    }
    return true;
  }

  // Body bytes as they arrive; de-chunks them. False when the body is complete or failed.
  bool body_bytes(std::string_view data, Clock::time_point now) {
    if (body_ == Body::kToClose) return deliver(data, now);
    if (body_ == Body::kLength) {
      const size_t n =
          std::min<size_t>(data.size(), static_cast<size_t>(std::max<int64_t>(left_, 0)));
      left_ -= static_cast<int64_t>(n);
      if (!deliver(data.substr(0, n), now)) return false;
      return left_ > 0;
    }
    in_.append(data);
    size_t pos = 0;
    bool more = true;
    while (more) {
      switch (chunk_) {
        case Chunk::kSize: {
          const size_t e = in_.find("\r\n", pos);
          if (e == std::string::npos) {
            if (in_.size() - pos > kMaxChunkLine)
              return fail_io("read", "a chunk size line is too long");
            more = false;
            break;
          }
          const std::string line = in_.substr(pos, e - pos);
          pos = e + 2;
          char* endp = nullptr;
          const long long size = std::strtoll(line.c_str(), &endp, 16);
          if (endp == line.c_str() || size < 0) {
            return fail_io("read", "a bad chunk size line: " + line.substr(0, 40));
          }
          left_ = size;
          chunk_ = size == 0 ? Chunk::kTrailers : Chunk::kData;
          break;
        }
        case Chunk::kData: {
          const size_t n = std::min<size_t>(in_.size() - pos, static_cast<size_t>(left_));
          if (n == 0) {
            more = false;
            break;
          }
          if (!deliver(std::string_view(in_).substr(pos, n), now)) return false;
          pos += n;
          left_ -= static_cast<int64_t>(n);
          if (left_ == 0) chunk_ = Chunk::kDataEnd;
          break;
        }
        case Chunk::kDataEnd:
          if (in_.size() - pos < 2) {
            more = false;
            break;
          }
          pos += 2;  // the CRLF after a chunk's data
          chunk_ = Chunk::kSize;
          break;
        case Chunk::kTrailers: {
          const size_t e = in_.find("\r\n", pos);
          if (e == std::string::npos) {
            more = false;
            break;
          }
          const bool last = e == pos;  // the empty line after the trailers
          pos = e + 2;
          if (last) {
            in_.clear();
            return false;  // the body is complete
          }
          break;
        }
      }
    }
    in_.erase(0, pos);
    return true;
  }

  bool deliver(std::string_view data, Clock::time_point now) {
    if (data.empty()) return true;
    if (status_ != 200) {  // an error answer: keep its body for the message
      if (error_body_.size() < kMaxErrorBody) error_body_.append(data);
      return true;
    }
    events_.clear();
    parser_.feed(data, events_);
    for (const std::string& e : events_) {
      if (!state_.on_event(e, now)) return false;
    }
    return true;
  }

  StreamResult& out_;
  std::string request_;
  size_t sent_ = 0;
  Clock::time_point start_;
  StreamState state_;
  SseParser parser_;
  std::vector<std::string> events_;
  std::string in_;  // header bytes, then chunked bytes not yet decoded
  int status_ = 0;
  Body body_ = Body::kToClose;
  Chunk chunk_ = Chunk::kSize;
  int64_t left_ = 0;  // Content-Length bytes left, or the current chunk's data left
  std::string error_body_;
};

}  // namespace

std::vector<StreamResult> run_streams_event_loop(const ServerConfig& server,
                                                 const std::vector<StreamRequest>& requests,
                                                 int concurrency) {
  std::vector<StreamResult> results(requests.size());
  if (requests.empty()) return results;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  const int gai =
      ::getaddrinfo(server.host.c_str(), std::to_string(server.port).c_str(), &hints, &addrs);
  if (gai != 0 || addrs == nullptr) {
    for (StreamResult& r : results) {
      r.error_kind = "connection";
      r.error = "could not resolve " + server.host + ": " + ::gai_strerror(gai);
    }
    return results;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addr_guard(addrs, ::freeaddrinfo);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    for (StreamResult& r : results) {
      r.error_kind = "http client";
      r.error = std::string("epoll_create1: ") + std::strerror(errno);
    }
    return results;
  }

  std::vector<std::unique_ptr<Conn>> open;
  size_t next = 0;
  const auto close_conn = [&](Conn& c, Clock::time_point now) {
    if (c.fd >= 0) {
      ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      c.fd = -1;
    }
    c.finish(now);
  };
  const auto start_next = [&] {
    while (open.size() < static_cast<size_t>(std::max(concurrency, 1)) && next < requests.size()) {
      const size_t i = next++;
      const Clock::time_point now = Clock::now();
      auto c =
          std::make_unique<Conn>(requests[i], results[i], http_request(server, requests[i]), now);
      c->fd = ::socket(addrs->ai_family, addrs->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       addrs->ai_protocol);
      if (c->fd < 0) {
        c->fail_io("connection", std::string("socket: ") + std::strerror(errno));
        close_conn(*c, now);
        continue;
      }
      const int one = 1;
      ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (::connect(c->fd, addrs->ai_addr, addrs->ai_addrlen) != 0 && errno != EINPROGRESS) {
        c->fail_io("connection", "could not connect: " + std::string(std::strerror(errno)));
        close_conn(*c, now);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.ptr = c.get();
      ::epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      open.push_back(std::move(c));
    }
  };

  std::vector<epoll_event> events(64);
  std::string buf(64 * 1024, '\0');
  while (true) {
    start_next();
    if (open.empty()) break;
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 50);
    const Clock::time_point now = Clock::now();
    for (int e = 0; e < n; ++e) {
      Conn& c = *static_cast<Conn*>(events[e].data.ptr);
      const uint32_t what = events[e].events;
      if (c.phase == Conn::Phase::kConnecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          c.fail_io("connection", "could not connect: " + std::string(std::strerror(err)));
          close_conn(c, now);
          continue;
        }
        c.phase = Conn::Phase::kSending;
      }
      if (c.phase == Conn::Phase::kSending) {
        const Conn::Sent sent = c.send_more();
        if (sent == Conn::Sent::kWait && (what & (EPOLLERR | EPOLLHUP)) == 0) {
          continue;  // the socket is full: wait for EPOLLOUT again
        }
        if (sent != Conn::Sent::kAll) {
          c.fail_io("write", "sending the request failed: the connection was closed");
          close_conn(c, now);
          continue;
        }
        c.phase = Conn::Phase::kHeaders;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = &c;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        continue;
      }
      // Reading: everything the socket holds now.
      bool over = false;
      while (!over) {
        const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          if (!c.on_bytes(std::string_view(buf.data(), static_cast<size_t>(r)), now)) over = true;
        } else if (r == 0) {
          c.on_eof();
          over = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          break;
        } else if (errno != EINTR) {
          c.fail_io("read", "reading the answer failed: " + std::string(std::strerror(errno)));
          over = true;
        }
      }
      if (over) close_conn(c, now);
    }
    for (auto& c : open) {
      if (c->phase != Conn::Phase::kFinished && c->timed_out(now, server.timeout_s)) {
        close_conn(*c, now);
      }
    }
    open.erase(std::remove_if(open.begin(), open.end(),
                              [](const std::unique_ptr<Conn>& c) {
                                return c->phase == Conn::Phase::kFinished;
                              }),
               open.end());
  }
  ::close(ep);
  return results;
}

}  // namespace shardlm::serve_bench
