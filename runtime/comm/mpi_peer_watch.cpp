// watch_mpi_peers (see mpi_peer_watch.h): the peer table is built once per call, outside any
// signal; the handler only reads it and uses async-signal-safe calls (kill, open, read, write).
#include "runtime/comm/mpi_peer_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

constexpr int kHostChars = 64;

struct Peer {
  pid_t pid = 0;
  char label[128] = {};     // "rank 1 (pid 4242 on node-a)"
  char stat_path[40] = {};  // "/proc/4242/stat"
};

struct PeerTable {
  char prefix[192] = {};       // "shardlm-run: error (comm): mpi rank 0: "
  char interrupted[160] = {};  // "shardlm-run: mpi rank 0: "
  std::vector<Peer> local;     // the other ranks on this host
  bool others_elsewhere = false;
};

// Tables are never freed (a handler may be reading the previous one when a new one is
// published); g_tables keeps them reachable.
std::atomic<const PeerTable*> g_table{nullptr};
std::mutex g_tables_mu;
std::vector<const PeerTable*>* g_tables = new std::vector<const PeerTable*>();

size_t append(char* buf, size_t n, size_t cap, const char* s) {
  while (*s != '\0' && n + 1 < cap) buf[n++] = *s++;
  return n;
}

// A rank's process is gone once the pid no longer exists or is a zombie ('Z') or dead ('X') in
// /proc/PID/stat (the state follows the last ')' of the command name).
bool gone(const Peer& p) {
  if (kill(p.pid, 0) == -1 && errno == ESRCH) return true;
  const int fd = open(p.stat_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return true;
  const char* close_paren = nullptr;
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] == ')') close_paren = buf + i;
  }
  if (close_paren == nullptr || close_paren + 2 >= buf + n) return false;
  const char state = close_paren[2];
  return state == 'Z' || state == 'X';
}

void on_sigterm(int) {
  const int saved_errno = errno;
  const PeerTable* t = g_table.load(std::memory_order_acquire);
  if (t != nullptr) {
    char line[2048];
    size_t n = 0;
    int n_gone = 0;
    for (const Peer& p : t->local) {
      if (!gone(p)) continue;
      n = append(line, n, sizeof(line), n_gone == 0 ? t->prefix : ", ");
      n = append(line, n, sizeof(line), p.label);
      ++n_gone;
    }
    if (n_gone > 0) {
      n = append(line, n, sizeof(line), n_gone == 1 ? " has ended" : " have ended");
      n = append(line, n, sizeof(line), " (killed or crashed); mpirun is stopping the job\n");
    } else {
      n = append(line, n, sizeof(line), t->interrupted);
      n = append(line, n, sizeof(line),
                 t->others_elsewhere
                     ? "stopped by SIGTERM from the launcher; no rank on this host has ended, so a "
                       "rank on another host died or the job was interrupted (mpirun's message "
                       "names it)\n"
                     : "stopped by SIGTERM from the launcher; every other rank is still running, "
                       "so the job was interrupted\n");
    }
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
  }
  // End as SIGTERM's default action would have: same exit status for the launcher.
  signal(SIGTERM, SIG_DFL);
  raise(SIGTERM);
  errno = saved_errno;
}

}  // namespace

void watch_mpi_peers(MPI_Comm comm) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);

  struct Entry {
    int64_t pid;
    char host[kHostChars];
  };
  Entry mine{};
  mine.pid = static_cast<int64_t>(getpid());
  if (gethostname(mine.host, kHostChars - 1) != 0) std::strcpy(mine.host, "?");
  std::vector<Entry> all(static_cast<size_t>(size));
  if (MPI_Allgather(&mine, sizeof(Entry), MPI_BYTE, all.data(), sizeof(Entry), MPI_BYTE, comm) !=
      MPI_SUCCESS) {
    fail(StatusCode::kComm, "mpi rank " + std::to_string(rank) +
                                ": exchanging host names and pids with the other ranks failed");
  }

  auto* table = new PeerTable();
  std::snprintf(table->prefix, sizeof(table->prefix),
                "%s: error (%s): mpi rank %d: ", program_invocation_short_name,
                status_name(StatusCode::kComm), rank);
  std::snprintf(table->interrupted, sizeof(table->interrupted),
                "%s: mpi rank %d: ", program_invocation_short_name, rank);
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    const Entry& e = all[static_cast<size_t>(r)];
    if (std::strncmp(e.host, mine.host, kHostChars) != 0) {
      table->others_elsewhere = true;
      continue;
    }
    Peer p;
    p.pid = static_cast<pid_t>(e.pid);
    std::snprintf(p.label, sizeof(p.label), "rank %d (pid %lld on %.*s)", r,
                  static_cast<long long>(e.pid), kHostChars, e.host);
    std::snprintf(p.stat_path, sizeof(p.stat_path), "/proc/%lld/stat",
                  static_cast<long long>(e.pid));
    table->local.push_back(p);
  }
  {
    std::lock_guard<std::mutex> lock(g_tables_mu);
    g_tables->push_back(table);
  }
  g_table.store(table, std::memory_order_release);

  struct sigaction current {};
  if (sigaction(SIGTERM, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
      (current.sa_flags & SA_SIGINFO) == 0) {
    struct sigaction sa {};
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
  }
}

}  // namespace shardlm
