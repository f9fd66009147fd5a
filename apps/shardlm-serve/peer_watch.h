// PeerWatch: tells whether the client of a request that writes nothing until it ends (a
// non-streaming completion) has hung up, so that its sequences can be cancelled and their KV
// blocks freed at once instead of after the whole generation.
// The HTTP library does not hand its handlers the connection's socket; PeerWatch finds it among
// the process's open descriptors by the connection's two endpoints (a TCP connection is unique
// by them), once per request. Linux only (/proc/self/fd); elsewhere nothing is found.
// Not here: streaming requests (a failed write tells them), HTTP itself.
#pragma once
#include <string>

namespace shardlm::serve {

class PeerWatch {
 public:
  // The accepted socket whose local end is local_addr:local_port and whose peer is
  // peer_addr:peer_port (numeric addresses, as the HTTP library reports them); not found() when
  // there is none.
  static PeerWatch find(const std::string& local_addr, int local_port, const std::string& peer_addr,
                        int peer_port);
  bool found() const { return fd_ >= 0; }
  // True once the peer has closed or reset the connection (what nginx reports as 499). Never
  // blocks; false when not found(). A client that pipelines its next request is still there.
  bool gone() const;

 private:
  int fd_ = -1;  // borrowed: the connection's thread owns and closes it after the request
};

}  // namespace shardlm::serve
