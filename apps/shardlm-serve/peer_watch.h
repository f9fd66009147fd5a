// PeerWatch: tells whether the client of a request that writes nothing until it ends (a
// non-streaming completion) has hung up, so that its sequences can be cancelled and their KV
// blocks freed at once instead of after the whole generation.
// The HTTP library does not hand its handlers the connection's socket, and other threads open and
// close sockets all the time, so PeerWatch never touches descriptors: it asks the kernel for the
// state of the TCP connection with the request's two endpoints (NETLINK_SOCK_DIAG, what `ss`
// uses). Once the client has closed or reset it, the server's end is in CLOSE_WAIT or gone.
// Linux only; elsewhere, or when the kernel does not answer, gone() stays false.
// Not here: streaming requests (a failed write tells them), HTTP itself.
#pragma once
#include <chrono>
#include <string>

namespace shardlm::serve {

class PeerWatch {
 public:
  // The connection whose local end is local_addr:local_port and whose peer is
  // peer_addr:peer_port (numeric IPv4 or IPv6 addresses, as the HTTP library reports them).
  // Asks the kernel once: a connection it does not report open now is never watched (so a
  // lookup that cannot work never cancels a live request).
  PeerWatch(std::string local_addr, int local_port, std::string peer_addr, int peer_port);
  bool watching() const { return watching_; }
  // True once the peer has closed or reset the connection (what nginx reports as 499). Asks
  // the kernel at most every `interval` (the answer in between is the last one); never blocks.
  bool gone(std::chrono::milliseconds interval = std::chrono::milliseconds(20)) const;

 private:
  std::string local_addr_, peer_addr_;
  int local_port_, peer_port_;
  bool watching_ = false;
  mutable bool gone_ = false;
  mutable std::chrono::steady_clock::time_point next_check_{};
};

// The kernel's answer for one connection: open, closed by the peer (or reset: no such
// connection any more), or no answer (not Linux, a bad address, netlink refused).
enum class ConnectionState { kOpen, kClosedByPeer, kUnknown };
ConnectionState tcp_connection_state(const std::string& local_addr, int local_port,
                                     const std::string& peer_addr, int peer_port);

}  // namespace shardlm::serve
