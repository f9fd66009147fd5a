// PeerWatch: one NETLINK_SOCK_DIAG lookup of a TCP connection by its endpoints.
#include "apps/shardlm-serve/peer_watch.h"

#if defined(__linux__)
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace shardlm::serve {

#if defined(__linux__)
namespace {

// Parses a numeric address into the 16 bytes sock_diag takes; the family, or -1.
int parse_address(const std::string& text, uint32_t out[4]) {
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, text.c_str(), out) == 1) return AF_INET;
  if (inet_pton(AF_INET6, text.c_str(), out) == 1) return AF_INET6;
  return -1;
}

}  // namespace

ConnectionState tcp_connection_state(const std::string& local_addr, int local_port,
                                     const std::string& peer_addr, int peer_port) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  const int family = parse_address(local_addr, msg.req.id.idiag_src);
  if (family < 0 || parse_address(peer_addr, msg.req.id.idiag_dst) != family) {
    return ConnectionState::kUnknown;
  }
  if (local_port <= 0 || local_port > 65535 || peer_port <= 0 || peer_port > 65535) {
    return ConnectionState::kUnknown;
  }
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;  // one socket, looked up by its full id
  msg.req.sdiag_family = static_cast<uint8_t>(family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  msg.req.id.idiag_sport = htons(static_cast<uint16_t>(local_port));
  msg.req.id.idiag_dport = htons(static_cast<uint16_t>(peer_port));
  msg.req.id.idiag_if = 0;
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return ConnectionState::kUnknown;
  ConnectionState state = ConnectionState::kUnknown;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) ==
      static_cast<ssize_t>(sizeof(msg))) {
    alignas(nlmsghdr) char buf[8192];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
      if (NLMSG_OK(h, static_cast<unsigned>(n))) {
        if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
          const auto* d = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
          // The server's end: ESTABLISHED while the client is there; CLOSE_WAIT once its FIN
          // came; later states only after the server itself closed.
          state = d->idiag_state == TCP_ESTABLISHED ? ConnectionState::kOpen
                                                    : ConnectionState::kClosedByPeer;
        } else if (h->nlmsg_type == NLMSG_ERROR) {
          const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
          // No such connection: the peer reset it and the kernel dropped it.
          if (e->error == -ENOENT) state = ConnectionState::kClosedByPeer;
        }
      }
    }
  }
  close(fd);
  return state;
}

#else

ConnectionState tcp_connection_state(const std::string&, int, const std::string&, int) {
  return ConnectionState::kUnknown;
}

#endif

PeerWatch::PeerWatch(std::string local_addr, int local_port, std::string peer_addr, int peer_port)
    : local_addr_(std::move(local_addr)),
      peer_addr_(std::move(peer_addr)),
      local_port_(local_port),
      peer_port_(peer_port) {
  watching_ = tcp_connection_state(local_addr_, local_port_, peer_addr_, peer_port_) ==
              ConnectionState::kOpen;
}

bool PeerWatch::gone(std::chrono::milliseconds interval) const {
  if (gone_) return true;
  if (!watching_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return false;
  next_check_ = now + interval;
  gone_ = tcp_connection_state(local_addr_, local_port_, peer_addr_, peer_port_) ==
          ConnectionState::kClosedByPeer;
  return gone_;
}

}  // namespace shardlm::serve
