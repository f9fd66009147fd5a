// PeerWatch: finding a connection's socket by its endpoints; peeking for a hang-up.
#include "apps/shardlm-serve/peer_watch.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

namespace shardlm::serve {

namespace {

// The numeric address and port of one end of a socket; false when it has none (not a TCP/IP
// socket, or not connected).
bool endpoint(int fd, bool peer, std::string* addr, int* port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  const int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                      : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0 || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) return false;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host), serv, sizeof(serv),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return false;
  }
  *addr = host;
  *port = std::atoi(serv);
  return true;
}

}  // namespace

PeerWatch PeerWatch::find(const std::string& local_addr, int local_port,
                          const std::string& peer_addr, int peer_port) {
  PeerWatch w;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return w;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat st {};
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    std::string la, pa;
    int lp = -1, pp = -1;
    if (!endpoint(static_cast<int>(fd), false, &la, &lp) || lp != local_port) continue;
    if (!endpoint(static_cast<int>(fd), true, &pa, &pp) || pp != peer_port) continue;
    if (la == local_addr && pa == peer_addr) {
      w.fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return w;
}

bool PeerWatch::gone() const {
  if (fd_ < 0) return false;
  pollfd p{};
  p.fd = fd_;
  p.events = POLLIN | POLLRDHUP;
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true;
  // Readable: either the peer's FIN (a peek reads 0 bytes) or its next pipelined request.
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

}  // namespace shardlm::serve
