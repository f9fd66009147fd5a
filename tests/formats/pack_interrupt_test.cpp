// The shardlm-pack program killed with SIGKILL at 240 points spread over a whole run (a
// checkpoint of ~10 MB): after every kill the output folder holds either no pack that opens or a
// complete pack whose every rank opens and verifies, and a file under a rank file's final name is
// always complete. With a valid pack of another checkpoint already in the folder, a killed
// re-pack at tp 1 and at tp 2 leaves that pack byte-identical or the complete new one (the
// packer swaps a staging folder in whole), and a complete pack always has its pack.json.
// Not covered: power loss (only process death; the fsyncs are not tested), re-packing at another
// tp over an existing pack.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/pack_reader.h"
#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

extern char** environ;

namespace shardlm {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr int kKills = 240;

testing::TinySpec checkpoint_spec(uint32_t seed) {
  testing::TinySpec s;  // ~10 MB of f32 weights
  s.n_vocab = 4096;
  s.n_embd = 128;
  s.n_ff = 512;
  s.n_layer = 6;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 32;
  s.seed = seed;
  return s;
}

// Starts shardlm-pack packing `model` into `out`; its output goes to /dev/null.
pid_t start_pack(const std::string& model, const std::string& out, int tp) {
  std::vector<std::string> args = {
      SHARDLM_PACK_BIN,   "--model",   model,  "--out",   out,   "--tp",
      std::to_string(tp), "--gpu-mem", "1GiB", "--n-ctx", "128", "--quiet"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, SHARDLM_PACK_BIN, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Runs shardlm-pack to completion; returns its wall time in seconds (negative on failure).
double timed_pack(const std::string& model, const std::string& out, int tp) {
  const auto t0 = Clock::now();
  const pid_t pid = start_pack(model, out, tp);
  if (pid < 0) return -1;
  const int status = wait_status(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Killed {
  bool finished = false;  // the process had already exited 0 when the signal came
  bool killed = false;    // it died of the SIGKILL
};

// Starts a pack and sends SIGKILL `delay` seconds after the spawn returned.
Killed pack_and_kill(const std::string& model, const std::string& out, int tp, double delay) {
  Killed k;
  const pid_t pid = start_pack(model, out, tp);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return k;
  const auto whole = static_cast<time_t>(delay);
  const timespec ts{whole, static_cast<long>((delay - static_cast<double>(whole)) * 1e9)};
  ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
  ::kill(pid, SIGKILL);
  const int status = wait_status(pid);
  k.finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  k.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  EXPECT_TRUE(k.finished || k.killed) << "shardlm-pack ended otherwise: status " << status;
  return k;
}

struct FolderState {
  bool set_opens = false;  // find_pack_set found a complete set and every rank verified
  uint64_t pack_id = 0;
  int rank_files = 0;  // files under a final rank-file name
  int temp_files = 0;  // leftover "<rank file>.tmp-<pid>"
  std::string set_error;
};

const std::regex& temp_name() {
  static const std::regex re(R"(rank-\d+-of-\d+\.shardlm\.tmp-\d+)");
  return re;
}

// Every file under a final rank-file name must open and verify on its own (the writer renames
// only finished, fsynced files); then the folder as a pack set either fails to be found, with
// an Error, or is complete at tp `tp` and every rank opens and verifies.
FolderState inspect(const std::string& out, int tp) {
  FolderState s;
  if (!fs::is_directory(out)) {
    s.set_error = "no folder";
    return s;
  }
  static const std::regex rank_re(R"(rank-\d+-of-\d+\.shardlm)");
  for (auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, temp_name())) ++s.temp_files;
    if (!std::regex_match(name, rank_re)) continue;
    ++s.rank_files;
    try {
      PackReader::open(e.path().string())->verify_tensors();
    } catch (const Error& err) {
      ADD_FAILURE() << "a file under a final rank-file name does not verify: " << err.what();
    }
  }
  PackSet set;
  try {
    set = find_pack_set(out);
  } catch (const Error& err) {
    s.set_error = err.what();
    EXPECT_NE(s.set_error.find(out), std::string::npos) << s.set_error;
    return s;
  }
  EXPECT_EQ(set.tp_size, tp);
  for (const std::string& p : set.rank_paths) {
    try {
      auto pack = PackReader::open(p);
      pack->verify_tensors();
      EXPECT_FALSE(pack->file_names().empty()) << p;
      s.pack_id = pack->pack_id();
    } catch (const Error& err) {
      ADD_FAILURE() << "the pack set is found but a rank does not verify: " << err.what();
      return s;
    }
  }
  s.set_opens = true;
  return s;
}

void remove_temp_files(const std::string& out) {
  if (!fs::is_directory(out)) return;
  for (auto& e : fs::directory_iterator(out))
    if (std::regex_match(e.path().filename().string(), temp_name())) fs::remove(e.path());
}

bool pack_json_parses(const std::string& out) {
  const fs::path p = fs::path(out) / "pack.json";
  if (!fs::exists(p)) return false;
  const auto bytes = testing::read_file(p.string());
  return nlohmann::json::accept(bytes.begin(), bytes.end());
}

void print_states(const std::map<std::string, int>& states) {
  for (auto& [what, n] : states) std::printf("[ kills    ]   %4d  %s\n", n, what.c_str());
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

class PackInterrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_tiny_checkpoint(dir_ / "hf", checkpoint_spec(1));
    testing::write_tiny_checkpoint(dir_ / "hf-new", checkpoint_spec(2));
  }

  struct Reference {
    double duration = 0;  // median of 3 full runs
    uint64_t pack_id = 0;
  };
  // Packs `model` at `tp` three times into a scratch folder: the pack id a complete pack has,
  // and the duration the kills are spread over.
  Reference reference(const std::string& model, int tp) {
    Reference ref;
    std::vector<double> runs;
    const std::string out = dir_ / "ref";
    for (int i = 0; i < 3; ++i) {
      fs::remove_all(out);
      runs.push_back(timed_pack(model, out, tp));
      EXPECT_GT(runs.back(), 0) << "shardlm-pack " << SHARDLM_PACK_BIN << " failed on " << model;
    }
    std::sort(runs.begin(), runs.end());
    ref.duration = runs[1];
    const FolderState s = inspect(out, tp);
    EXPECT_TRUE(s.set_opens) << s.set_error;
    ref.pack_id = s.pack_id;
    fs::remove_all(out);
    std::printf("[ kills    ] one full run of shardlm-pack --tp %d: %.1f ms (median of 3)\n", tp,
                ref.duration * 1e3);
    return ref;
  }

  // Delay of kill i: spread evenly over [0, 1.1 x duration]; the last kKillsAfterTheEnd come at
  // 2..9 x duration, after the end even when the machine is busy, so the sweep always sees
  // finished runs too.
  static constexpr int kKillsAfterTheEnd = 8;
  static double delay(const Reference& ref, int i) {
    constexpr int spread = kKills - kKillsAfterTheEnd;
    if (i >= spread) return ref.duration * (2 + i - spread);
    return ref.duration * 1.1 * i / (spread - 1);
  }

  // Kills a re-pack of hf-new at `tp` over an existing pack of hf at `tp` kKills times. Counts
  // the states: "old pack intact" (opens, byte-identical), "new pack complete", "mixed set
  // refused" (the ranks each verify, but come from both packs and find_pack_set refuses the
  // set), and anything else (a failure).
  std::map<std::string, int> repack_sweep(int tp) {
    const auto t0 = Clock::now();
    const Reference old_ref = reference(dir_ / "hf", tp);
    Reference new_ref = reference(dir_ / "hf-new", tp);
    EXPECT_NE(old_ref.pack_id, new_ref.pack_id);
    std::map<std::string, int> states;
    const std::string out = dir_ / "out";
    fs::remove_all(out);
    EXPECT_GT(timed_pack(dir_ / "hf", out, tp), 0);
    std::map<std::string, std::vector<uint8_t>> old_files;
    for (int r = 0; r < tp; ++r) {
      const std::string name = rank_file_name(r, tp);
      old_files[name] = testing::read_file(out + "/" + name);
    }
    auto restore = [&] {
      remove_temp_files(out);
      for (auto& [name, bytes] : old_files) testing::write_file(out + "/" + name, bytes);
    };
    auto old_intact = [&] {
      for (auto& [name, bytes] : old_files)
        if (testing::read_file(out + "/" + name) != bytes) return false;
      return true;
    };
    // A re-pack over a pack takes longer than a pack into an empty folder (the renames replace
    // files, the restored old pack is still being written back): spread the kills over that.
    std::vector<double> runs;
    for (int i = 0; i < 3; ++i) {
      restore();
      runs.push_back(timed_pack(dir_ / "hf-new", out, tp));
      EXPECT_GT(runs.back(), 0);
    }
    restore();
    std::sort(runs.begin(), runs.end());
    new_ref.duration = runs[1];
    std::printf("[ kills    ] one re-pack over the existing pack: %.1f ms (median of 3)\n",
                new_ref.duration * 1e3);
    int killed = 0, finished = 0, temp_left = 0;
    for (int i = 0; i < kKills; ++i) {
      const Killed k = pack_and_kill(dir_ / "hf-new", out, tp, delay(new_ref, i));
      killed += k.killed;
      finished += k.finished;
      const FolderState s = inspect(out, tp);
      temp_left += s.temp_files > 0;
      if (s.set_opens && s.pack_id == old_ref.pack_id) {
        EXPECT_TRUE(old_intact()) << "kill " << i << ": the old pack opens but its bytes changed";
        ++states["old pack intact"];
      } else if (s.set_opens && s.pack_id == new_ref.pack_id) {
        ++states["new pack complete"];
      } else if (!s.set_opens && s.rank_files == tp &&
                 s.set_error.find("belongs to a different pack") != std::string::npos) {
        ++states["mixed set refused"];
      } else {
        ADD_FAILURE() << "kill " << i << " at " << delay(new_ref, i) * 1e3
                      << " ms: neither the old pack nor the complete new one: "
                      << (s.set_opens ? "a pack of an unknown id" : s.set_error);
        ++states["other"];
      }
      if (k.finished) {
        EXPECT_EQ(s.pack_id, new_ref.pack_id) << "kill " << i << ": the run finished";
      }
      if (s.pack_id != old_ref.pack_id) {
        restore();
      } else {
        remove_temp_files(out);
      }
      if (::testing::Test::HasFailure()) break;
    }
    std::printf(
        "[ kills    ] %d re-packs at tp %d over an existing pack: %d killed, %d had "
        "finished; %d left temporary files; %.1f s\n",
        kKills, tp, killed, finished, temp_left, seconds_since(t0));
    print_states(states);
    EXPECT_EQ(killed + finished, kKills);
    EXPECT_GT(states["old pack intact"], 0);
    EXPECT_GT(states["new pack complete"], 0);
    EXPECT_EQ(states["other"], 0);
    return states;
  }

  TempDir dir_;
};

TEST_F(PackInterrupt, KilledPackNeverLeavesAnIncompletePack) {
  const auto t0 = Clock::now();
  constexpr int tp = 2;
  const Reference ref = reference(dir_ / "hf", tp);
  const std::string out = dir_ / "out";
  std::map<std::string, int> states;
  int killed = 0, finished = 0, temp_left = 0, json_bad = 0;
  for (int i = 0; i < kKills; ++i) {
    fs::remove_all(out);
    const Killed k = pack_and_kill(dir_ / "hf", out, tp, delay(ref, i));
    killed += k.killed;
    finished += k.finished;
    const FolderState s = inspect(out, tp);
    temp_left += s.temp_files > 0;
    // Staging folders of killed runs are removed by the next run: at most this run's is left.
    int staging = 0;
    for (auto& e : fs::directory_iterator(dir_.path()))
      staging += e.path().filename().string().rfind(".out.packing-", 0) == 0;
    EXPECT_LE(staging, 1) << "kill " << i << ": staging folders of earlier runs are left";
    if (s.set_opens) {
      EXPECT_EQ(s.pack_id, ref.pack_id) << "kill " << i;
      EXPECT_EQ(s.rank_files, tp) << "kill " << i;
      ++states["complete pack"];
      json_bad += !pack_json_parses(out);
    } else if (s.rank_files == 0) {
      ++states[s.temp_files > 0 ? "no pack, temporary files only" : "no pack, no rank files"];
    } else {
      ++states["no pack: " + s.set_error.substr(s.set_error.find(": ") + 2)];
    }
    if (k.finished) {
      EXPECT_TRUE(s.set_opens) << "kill " << i << ": the run finished, " << s.set_error;
    }
    if (::testing::Test::HasFailure()) break;
  }
  std::printf(
      "[ kills    ] %d runs at tp %d: %d killed, %d had finished; %d left temporary "
      "files; %d complete packs without a parseable pack.json; %.1f s\n",
      kKills, tp, killed, finished, temp_left, json_bad, seconds_since(t0));
  print_states(states);
  EXPECT_EQ(killed + finished, kKills);
  EXPECT_EQ(json_bad, 0) << "pack.json is written in the staging folder, before the swap";
  // The kills span the run: some land before anything is renamed, some after the end.
  EXPECT_GT(states["no pack, no rank files"] + states["no pack, temporary files only"], 0);
  EXPECT_GT(states["complete pack"], 0);
}

// One rank file: its rename is the commit, so a kill leaves the old pack byte for byte or the
// whole new one.
TEST_F(PackInterrupt, KilledRepackKeepsTheExistingPack) {
  const auto states = repack_sweep(1);
  EXPECT_EQ(states.count("mixed set refused"), 0u);
}

// Several rank files: the packer builds the new set in a staging folder and swaps the whole
// folder in one rename (RENAME_EXCHANGE), so a kill leaves the old set or the new one, never
// ranks of both (before that, a kill between two per-file renames lost the old pack).
TEST_F(PackInterrupt, KilledMultiRankRepackKeepsTheExistingPack) {
  const auto states = repack_sweep(2);
  EXPECT_EQ(states.count("mixed set refused"), 0u);
}

}  // namespace
}  // namespace shardlm
