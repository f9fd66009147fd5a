// The shardlm-pack program end to end: exit codes and one-line messages, --plan-only/--json,
// --inspect and --verify, output that cannot be written, a full disk, Ctrl-C.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "run_command.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {
namespace fs = std::filesystem;

struct CliRun {
  int code;
  std::string out;  // stdout + stderr
};

CliRun run_cli(const std::string& args) {
  const std::string cmd = std::string(SHARDLM_PACK_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(PackCli, PacksInspectsAndVerifies) {
  testing::TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  CliRun r = run_cli("--model " + (d / "hf") + " --out " + (d / "pack") + " --tp 2 --gpu-mem 1GiB --n-ctx 128");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("wrote 2 rank file(s)"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(d / "pack/rank-0-of-2.shardlm"));
  EXPECT_TRUE(fs::exists(d / "pack/rank-1-of-2.shardlm"));
  EXPECT_TRUE(fs::exists(d / "pack/pack.json"));

  r = run_cli("--inspect " + (d / "pack") + " --verify");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("LlamaForCausalLM (llama), 2 layers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.1.w_gate_up"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("all checksums OK"), std::string::npos) << r.out;

  r = run_cli("--inspect " + (d / "pack") + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tp"], 2);
  EXPECT_EQ(j["ranks"][1]["n_head_local"], 2);

  // Corrupt a tensor byte: --verify fails naming it.
  auto bytes = testing::read_file(d / "pack/rank-1-of-2.shardlm");
  bytes[4096 + 7] ^= 0x10;  // first tensor in the data section: tok_embd
  testing::write_file(d / "pack/rank-1-of-2.shardlm", bytes);
  r = run_cli("--inspect " + (d / "pack") + " --verify");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("rank-1-of-2.shardlm: tensor 'tok_embd' fails its checksum"), std::string::npos) << r.out;
}

TEST(PackCli, PlanOnlyJsonWritesNothing) {
  testing::TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  CliRun r = run_cli("--model " + (d / "hf") + " --out " + (d / "pack") + " --plan-only --json --gpu h100 --max-seq 256 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ranks"][0]["device_total_bytes"], 81559ull << 20);
  EXPECT_EQ(j["ranks"][0]["n_ctx"], 256);
  EXPECT_TRUE(j["ranks"][0]["fits"].get<bool>());
  EXPECT_FALSE(fs::exists(d / "pack"));
}

TEST(PackCli, WeightsThatDoNotFitAreReportedWithNumbers) {
  testing::TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  CliRun r = run_cli("--model " + (d / "hf") + " --plan-only --gpu-mem 1MiB --reserve 0");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("exceed the budget"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("does not fit"), std::string::npos) << r.out;
}

TEST(PackCli, BadInputExitsNonZeroWithOneMessage) {
  testing::TempDir d;
  CliRun r = run_cli("--model " + (d / "nothing") + " --out " + (d / "pack"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("shardlm-pack: error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing/config.json"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;

  testing::write_tiny_checkpoint(d / "hf", {});
  r = run_cli("--model " + (d / "hf") + " --out " + (d / "pack") + " --tp 3");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--tp 3 does not divide num_attention_heads 4"), std::string::npos) << r.out;

  r = run_cli("--model " + (d / "hf") + " --out " + (d / "pack") + " --dtype q4");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--dtype must be bf16, f16 or f32"), std::string::npos) << r.out;

  r = run_cli("--model " + (d / "hf") + " --out " + (d / "pack") + " --weights int3");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--weights must be int8, int4 or int4g128, got 'int3'"), std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(d / "pack"));

  r = run_cli("--model " + (d / "hf") + " --bogus");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("bogus"), std::string::npos) << r.out;

  r = run_cli("--inspect " + (d / "hf"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("no rank-<r>-of-<N>.shardlm files"), std::string::npos) << r.out;
}

// Output that cannot be written: a path under a non-directory, a file where the folder should be,
// and a disk that fills up mid-pack (a file size limit, ulimit -f, with SIGXFSZ ignored so the
// write fails with EFBIG as a full disk fails with ENOSPC). Each exits 1 with one message naming
// the path, and the pack already in the output folder is left byte for byte, with no staging
// folder beside it.
TEST(PackCli, UnwritableOutputOrAFullDiskFailsAndKeepsTheOldPack) {
  testing::TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  CliRun r = run_cli("--model " + (d / "hf") + " --out " + (d / "pack") + " -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<uint8_t> old_rank = testing::read_file(d / "pack/rank-0-of-1.shardlm");
  const std::vector<uint8_t> old_json = testing::read_file(d / "pack/pack.json");

  testing::write_text(d / "afile", "x");
  r = run_cli("--model " + (d / "hf") + " --out " + (d / "afile/pack") + " -q");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(d / "afile/pack"), std::string::npos) << r.out;
  r = run_cli("--model " + (d / "hf") + " --out " + (d / "afile") + " -q");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("a file of that name exists"), std::string::npos) << r.out;

  const std::string limited = "sh -c \"trap '' XFSZ; ulimit -f 8; exec " + std::string(SHARDLM_PACK_BIN) +
                              " --model " + (d / "hf") + " --out " + (d / "pack") + " --tp 2 -q\"";
  const testing::CliResult full = testing::run_command(limited);
  EXPECT_EQ(full.code, 1) << full.out;
  EXPECT_NE(full.out.find("write failed: File too large (over the file size limit"), std::string::npos)
      << full.out;
  EXPECT_EQ(std::count(full.out.begin(), full.out.end(), '\n'), 1) << full.out;
  EXPECT_EQ(testing::read_file(d / "pack/rank-0-of-1.shardlm"), old_rank);
  EXPECT_EQ(testing::read_file(d / "pack/pack.json"), old_json);
  EXPECT_FALSE(fs::exists(d / "pack/rank-0-of-2.shardlm"));
  for (const auto& e : fs::directory_iterator(d.path()))
    EXPECT_EQ(e.path().filename().string().find(".packing-"), std::string::npos) << e.path();
}

// Ctrl-C while packing: shardlm-pack stops at the next chunk, exits 130 with one line, removes its
// staging folder and leaves the pack already in the output folder byte for byte.
TEST(PackCli, SigintStopsPackingAndKeepsTheOldPack) {
  testing::TempDir d;
  testing::TinySpec small;
  testing::write_tiny_checkpoint(d / "small", small);
  CliRun r = run_cli("--model " + (d / "small") + " --out " + (d / "pack") + " -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<uint8_t> old_rank = testing::read_file(d / "pack/rank-0-of-1.shardlm");
  testing::TinySpec big;  // a 32000 x 1024 f32 embedding and lm_head: packing takes a while
  big.n_vocab = 32000;
  big.n_embd = 1024;
  big.n_ff = 64;
  big.n_head = 4;
  big.n_head_kv = 2;
  big.head_dim = 8;
  big.n_layer = 1;
  testing::write_tiny_checkpoint(d / "big", big);

  const std::string bin = SHARDLM_PACK_BIN, model = d / "big", out = d / "pack", log = d / "log";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(bin.c_str(), bin.c_str(), "--model", model.c_str(), "--out", out.c_str(), "-q", nullptr);
    ::_exit(127);
  }
  // The staging folder appears once packing has begun (the handler is installed before).
  bool started = false;
  for (int i = 0; i < 20000 && !started; ++i) {
    for (const auto& e : fs::directory_iterator(d.path()))
      started = started || e.path().filename().string().find(".pack.packing-") == 0;
    if (!started) ::usleep(500);
  }
  EXPECT_TRUE(started);
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::vector<uint8_t> bytes = testing::read_file(log);
  const std::string text(bytes.begin(), bytes.end());
  ASSERT_TRUE(WIFEXITED(status)) << text;
  EXPECT_EQ(WEXITSTATUS(status), 130) << text;
  EXPECT_NE(text.find("shardlm-pack: interrupted: packing interrupted; the output folder is as it was"),
            std::string::npos)
      << text;
  EXPECT_EQ(testing::read_file(d / "pack/rank-0-of-1.shardlm"), old_rank);
  for (const auto& e : fs::directory_iterator(d.path()))
    EXPECT_EQ(e.path().filename().string().find(".packing-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace shardlm
