// PeerWatch (apps/shardlm-serve/peer_watch.h) on real loopback TCP connections made here: the
// server's end reads open while the client is connected, closed once the client closes or
// resets it, and a connection that does not exist is never watched.
#include "apps/shardlm-serve/peer_watch.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace shardlm::serve {
namespace {

// A listening socket on 127.0.0.1, one client connected to it and the accepted end.
struct Connection {
  int listener = -1, client = -1, server = -1;
  int server_port = 0, client_port = 0;

  Connection() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener, 4), 0);
    EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
    server_port = ntohs(a.sin_port);
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    server = accept(listener, nullptr, nullptr);
    sockaddr_in c{};
    len = sizeof(c);
    EXPECT_EQ(getsockname(client, reinterpret_cast<sockaddr*>(&c), &len), 0);
    client_port = ntohs(c.sin_port);
  }
  ~Connection() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
    close(listener);
  }
  ConnectionState state() const {
    return tcp_connection_state("127.0.0.1", server_port, "127.0.0.1", client_port);
  }
};

// Skips where the kernel takes no sock_diag requests (PeerWatch then never watches: documented).
#define SKIP_WITHOUT_SOCK_DIAG()                                              \
  do {                                                                        \
    const int nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);         \
    if (nl < 0)                                                               \
      GTEST_SKIP() << "no NETLINK_SOCK_DIAG here: non-streaming disconnects " \
                      "are not detected on this kernel";                      \
    close(nl);                                                                \
  } while (0)

// The kernel processes a close on loopback at once, but give it a moment on a busy machine.
ConnectionState settle(const Connection& c, ConnectionState want) {
  ConnectionState s = c.state();
  for (int i = 0; i < 100 && s != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    s = c.state();
  }
  return s;
}

TEST(PeerWatchTest, OpenUntilTheClientCloses) {
  SKIP_WITHOUT_SOCK_DIAG();
  Connection c;
  ASSERT_GE(c.server, 0);
  EXPECT_EQ(c.state(), ConnectionState::kOpen);
  PeerWatch w("127.0.0.1", c.server_port, "127.0.0.1", c.client_port);
  EXPECT_TRUE(w.watching());
  EXPECT_FALSE(w.gone(std::chrono::milliseconds(0)));
  // Data the client sends (a pipelined request) is not a hang-up.
  ASSERT_EQ(write(c.client, "GET", 3), 3);
  EXPECT_FALSE(w.gone(std::chrono::milliseconds(0)));
  close(c.client);
  c.client = -1;
  EXPECT_EQ(settle(c, ConnectionState::kClosedByPeer), ConnectionState::kClosedByPeer);
  EXPECT_TRUE(w.gone(std::chrono::milliseconds(0)));
}

TEST(PeerWatchTest, AResetConnectionIsClosed) {
  SKIP_WITHOUT_SOCK_DIAG();
  Connection c;
  ASSERT_GE(c.server, 0);
  linger l{1, 0};  // close() sends a RST
  ASSERT_EQ(setsockopt(c.client, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
  close(c.client);
  c.client = -1;
  EXPECT_EQ(settle(c, ConnectionState::kClosedByPeer), ConnectionState::kClosedByPeer);
}

TEST(PeerWatchTest, AConnectionThatDoesNotExistIsNeverWatched) {
  Connection c;
  ASSERT_GE(c.server, 0);
  // The right ports the wrong way round, and a peer address that is not the client's.
  PeerWatch swapped("127.0.0.1", c.client_port, "127.0.0.2", c.server_port);
  EXPECT_FALSE(swapped.watching());
  EXPECT_FALSE(swapped.gone(std::chrono::milliseconds(0)));
  PeerWatch bad("not an address", c.server_port, "127.0.0.1", c.client_port);
  EXPECT_FALSE(bad.watching());
  EXPECT_EQ(tcp_connection_state("127.0.0.1", 0, "127.0.0.1", c.client_port),
            ConnectionState::kUnknown);
}

}  // namespace
}  // namespace shardlm::serve
