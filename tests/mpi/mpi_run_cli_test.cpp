// shardlm-run under `mpirun -n N` (one process per rank, rank 0 driving) against the same
// program in one process: for every HF fixture family at tp 2 and 4 (where its heads divide),
// the greedy ids equal the Hugging Face reference and the in-process run; with the rank-ordered
// reduction the dumped prompt logits are byte-identical to the in-process ones; once over TCP
// (--mca btl tcp,self). A process count other than the pack's tp and rank files of different
// pack sets are refused with a message. This test is a plain program; it starts mpirun itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "packer/packer.h"
#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {
namespace fs = std::filesystem;

struct Proc {
  int code;
  std::string out;
};

Proc sh(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string mpirun(int n, const std::string& extra = "") {
  return std::string(SHARDLM_MPIEXEC) + " --allow-run-as-root --oversubscribe " + extra + " -n " +
         std::to_string(n) + " ";
}

std::string run_bin() {
  return SHARDLM_RUN_BIN;
}

// The line of comma-separated ids among the program's stderr lines.
std::string ids_line(const std::string& out) {
  std::istringstream s(out);
  std::string line, ids;
  while (std::getline(s, line)) {
    if (!line.empty() && line.find_first_not_of("0123456789,") == std::string::npos) ids = line;
  }
  return ids;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Largest |a - b| over the prefill_logits of two --dump-logits files (infinity when the shapes
// differ).
float max_logit_diff(const fs::path& a, const fs::path& b) {
  std::ifstream fa(a), fb(b);
  const auto ja = nlohmann::json::parse(fa), jb = nlohmann::json::parse(fb);
  const auto& ra = ja["prefill_logits"];
  const auto& rb = jb["prefill_logits"];
  if (ra.size() != rb.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    if (ra[i].size() != rb[i].size()) return INFINITY;
    for (size_t j = 0; j < ra[i].size(); ++j) {
      m = std::max(m, std::fabs(ra[i][j].get<float>() - rb[i][j].get<float>()));
    }
  }
  return m;
}

bool pack_at(const fs::path& model, const fs::path& out, int tp) {
  PackOptions o;
  o.model_dir = model.string();
  o.out_dir = out.string();
  o.tp_size = tp;
  o.plan.device_total_bytes = 1ull << 30;
  try {
    pack_checkpoint(o);
  } catch (const Error& e) {
    if (e.code() == StatusCode::kInvalidArg) return false;  // heads do not divide by tp
    throw;
  }
  return true;
}

TEST(MpiRunCli, EveryFixtureMatchesTheInProcessRunAtTp2And4) {
  int tested = 0;
  for (const auto& entry : fs::directory_iterator(std::string(SHARDLM_FIXTURES_DIR) + "/hf")) {
    std::ifstream in(entry.path() / "reference.json");
    if (!in) continue;
    const auto ref = nlohmann::json::parse(in);
    std::string prompt, want;
    for (auto& id : ref["prompt_ids"])
      prompt += (prompt.empty() ? "" : ",") + std::to_string(id.get<int>());
    for (auto& id : ref["greedy_ids"])
      want += (want.empty() ? "" : ",") + std::to_string(id.get<int>());
    for (int tp : {2, 4}) {
      SCOPED_TRACE(entry.path().filename().string() + " tp " + std::to_string(tp));
      testing::TempDir d;
      if (!pack_at(entry.path(), d / "pack", tp)) continue;
      const std::string args = " --pack " + (d / "pack") + " --prompt-ids " + prompt +
                               " --max-tokens " + std::to_string(ref["greedy_ids"].size()) +
                               " --ignore-eos --print-ids --activations f32 --threads " +
                               std::to_string(tp);
      const Proc local = sh(run_bin() + args + " --dump-logits " + (d / "local.json"));
      ASSERT_EQ(local.code, 0) << local.out;
      const Proc fast = sh(mpirun(tp) + run_bin() + args + " --dump-logits " + (d / "fast.json"));
      ASSERT_EQ(fast.code, 0) << fast.out;
      // The fast reduction sums in MPI's order: the logits within the HF parity tolerance.
      const float err = max_logit_diff(fs::path(d / "fast.json"), fs::path(d / "local.json"));
      EXPECT_LE(err, 1e-4f * ref["prefill_logits_range"].get<float>()) << "fast-reduction logits";
      EXPECT_NE(fast.out.find("one process per rank"), std::string::npos) << fast.out;
      EXPECT_EQ(ids_line(fast.out), want);
      EXPECT_EQ(ids_line(fast.out), ids_line(local.out));
      const Proc ordered = sh(mpirun(tp) + run_bin() + args + " --mpi-reduction rank-ordered" +
                              " --dump-logits " + (d / "mpi.json"));
      ASSERT_EQ(ordered.code, 0) << ordered.out;
      EXPECT_EQ(ids_line(ordered.out), want);
      EXPECT_EQ(file_bytes(fs::path(d / "mpi.json")), file_bytes(fs::path(d / "local.json")))
          << "rank-ordered logits are not the in-process bits";
      ++tested;
    }
  }
  EXPECT_GE(tested, 10);
}

TEST(MpiRunCli, OverTcpAndRefusals) {
  const fs::path fixture = fs::path(SHARDLM_FIXTURES_DIR) / "hf/qwen3_mqa_f32";
  std::ifstream in(fixture / "reference.json");
  const auto ref = nlohmann::json::parse(in);
  std::string prompt, want;
  for (auto& id : ref["prompt_ids"])
    prompt += (prompt.empty() ? "" : ",") + std::to_string(id.get<int>());
  for (auto& id : ref["greedy_ids"])
    want += (want.empty() ? "" : ",") + std::to_string(id.get<int>());
  testing::TempDir d;
  ASSERT_TRUE(pack_at(fixture, d / "pack", 2));
  const std::string args = " --pack " + (d / "pack") + " --prompt-ids " + prompt +
                           " --max-tokens " + std::to_string(ref["greedy_ids"].size()) +
                           " --ignore-eos --print-ids";
  const Proc tcp = sh(mpirun(2, "--mca btl tcp,self") + run_bin() + args);
  ASSERT_EQ(tcp.code, 0) << tcp.out;
  EXPECT_EQ(ids_line(tcp.out), want);

  const Proc three = sh(mpirun(3) + run_bin() + args);
  EXPECT_NE(three.code, 0);
  EXPECT_NE(three.out.find("3 processes but the pack set"), std::string::npos) << three.out;

  // Rank 1's file from another model's pack set (same shapes, other weights and pack id).
  const fs::path other = fs::path(SHARDLM_FIXTURES_DIR) / "hf/llama_gqa_f32";
  ASSERT_TRUE(pack_at(other, d / "other", 2));
  fs::copy_file(fs::path(d / "other/rank-1-of-2.shardlm"), fs::path(d / "pack/rank-1-of-2.shardlm"),
                fs::copy_options::overwrite_existing);
  const Proc mixed = sh(mpirun(2) + run_bin() + args);
  EXPECT_NE(mixed.code, 0);
  EXPECT_NE(mixed.out.find("belongs to a different pack"), std::string::npos) << mixed.out;
}

// shardlm-chat under mpirun (stdin reaches rank 0) answers as the in-process REPL does: the same
// seeded replies, turn reuse through the prefix cache included.
TEST(MpiChat, TheReplUnderMpirunEqualsTheInProcessOne) {
  const std::string pack = std::string(SHARDLM_API_FIXTURE_DIR) + "/tp2";
  const std::string input = "printf 'Hello there\\nAnd a second question?\\n/stats\\n' | ";
  const Proc local = sh(input + SHARDLM_CHAT_BIN + std::string(" --pack ") + pack +
                        " --threads 2 --seed 3 --max-tokens 8 -q");
  const Proc mpi = sh(input + mpirun(2) + SHARDLM_CHAT_BIN + std::string(" --pack ") + pack +
                      " --threads 2 --seed 3 --max-tokens 8 -q");
  ASSERT_EQ(local.code, 0) << local.out;
  ASSERT_EQ(mpi.code, 0) << mpi.out;
  // The two replies (the lines after each prompt) are the same; /stats shows the reuse.
  auto replies = [](const std::string& out) {
    std::istringstream s(out);
    std::string line, all;
    while (std::getline(s, line)) {
      if (line.rfind("> /stats", 0) == 0) break;
      if (line.rfind("prompt:", 0) != 0) all += line + "\n";
    }
    return all;
  };
  EXPECT_EQ(replies(mpi.out), replies(local.out)) << mpi.out << "\n---\n" << local.out;
  EXPECT_NE(mpi.out.find("prefix cache served 16 of"), std::string::npos) << mpi.out;
}

// The C ABI worker example (apps/examples/c/mpi_worker_example.c) under mpirun -n 2 prints the
// greedy ids the in-process shardlm-run prints for the same ids.
TEST(MpiChat, TheCAbiWorkerExampleGivesTheInProcessIds) {
  const std::string pack = std::string(SHARDLM_API_FIXTURE_DIR) + "/tp2";
  const Proc local = sh(run_bin() + " --pack " + pack +
                        " --prompt-ids 9707,1879,11,1246 --max-tokens 6 --ignore-eos --print-ids");
  ASSERT_EQ(local.code, 0) << local.out;
  const Proc mpi =
      sh(mpirun(2) + SHARDLM_WORKER_EXAMPLE + std::string(" ") + pack + " 9707,1879,11,1246 6");
  ASSERT_EQ(mpi.code, 0) << mpi.out;
  const std::string ids = ids_line(mpi.out);
  EXPECT_EQ(ids, ids_line(local.out)) << mpi.out;
  EXPECT_EQ(std::count(ids.begin(), ids.end(), ','), 5) << ids;
}

// shardlm-bench under mpirun: the one-request mode reports the MPI communicator's all-reduce,
// and --concurrency runs its requests through the scheduler over two processes.
TEST(MpiBench, BothModesRunUnderMpirunAndReportTheCommunicator) {
  const std::string pack = std::string(SHARDLM_API_FIXTURE_DIR) + "/tp2";
  const Proc one = sh(mpirun(2) + SHARDLM_BENCH_BIN + std::string(" --pack ") + pack +
                      " --prompt-len 8 --gen 4 --reps 1 --warmup 0 --json");
  ASSERT_EQ(one.code, 0) << one.out;
  const auto j1 = nlohmann::json::parse(one.out.substr(one.out.find('{')));
  EXPECT_EQ(j1["communicator"]["kind"], "mpi (fast), one process per rank");
  EXPECT_GT(j1["communicator"]["all_reduce_token_us"].get<double>(), 0.0);
  EXPECT_GT(j1["decode_tok_s"].get<double>(), 0.0);
  const Proc many = sh(mpirun(2) + SHARDLM_BENCH_BIN + std::string(" --pack ") + pack +
                       " --concurrency 3 --prompt-len 8 --gen 4 --reps 1 --warmup 0 --json");
  ASSERT_EQ(many.code, 0) << many.out;
  const auto j2 = nlohmann::json::parse(many.out.substr(many.out.find('{')));
  EXPECT_GT(j2["aggregate_decode_tok_s"].get<double>(), 0.0);
  EXPECT_TRUE(j2["one_sequence_engine_decode_tok_s"].is_null());  // in-process only
}

}  // namespace
}  // namespace shardlm
