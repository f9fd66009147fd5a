// shardlm-run end to end: --tokenize with a real tokenizer carried in the pack, and greedy ids
// from the program equal to the Hugging Face reference of a committed fixture.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "packer/packer.h"
#include "run_command.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {
namespace fs = std::filesystem;

using testing::CliResult;

CliResult run_cli(const std::string& args) {
  return testing::run_command(std::string(SHARDLM_RUN_BIN) + " " + args);
}

void pack(const std::string& model, const std::string& out, int tp) {
  PackOptions o;
  o.model_dir = model;
  o.out_dir = out;
  o.tp_size = tp;
  o.plan.device_total_bytes = 1ull << 30;
  pack_checkpoint(o);
}

TEST(RunCli, TokenizePrintsIdsOfTheCarriedTokenizer) {
  testing::TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  const std::string tok = std::string(SHARDLM_TESTDATA_DIR) + "/tokenizer/qwen3";
  fs::copy_file(tok + "/tokenizer.json", d / "hf/tokenizer.json", fs::copy_options::overwrite_existing);
  fs::copy_file(tok + "/tokenizer_config.json", d / "hf/tokenizer_config.json", fs::copy_options::overwrite_existing);
  pack(d / "hf", d / "pack", 1);
  CliResult r = run_cli("--pack " + (d / "pack") + " --tokenize --prompt 'Hello world'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "9707,1879\n");  // Qwen tokenizer ids (see testdata llamacpp/ggml-vocab-qwen2)
  r = run_cli("--pack " + (d / "pack") + " --tokenize --prompt ''");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "\n");
}

TEST(RunCli, TokenizeWithoutTokenizerSaysWhatToDo) {
  testing::TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  pack(d / "hf", d / "pack", 1);
  CliResult r = run_cli("--pack " + (d / "pack") + " --tokenize --prompt hi");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("carries no tokenizer.json"), std::string::npos) << r.out;
}

TEST(RunCli, GreedyIdsMatchHuggingFaceAtTp2) {
  const std::string fixture = std::string(SHARDLM_FIXTURES_DIR) + "/hf/qwen3_qknorm_headdim32_tied_bf16";
  std::ifstream in(fixture + "/reference.json");
  const auto ref = nlohmann::json::parse(in);
  std::string prompt, want;
  for (auto& id : ref["prompt_ids"]) prompt += (prompt.empty() ? "" : ",") + std::to_string(id.get<int>());
  for (auto& id : ref["greedy_ids"]) want += (want.empty() ? "" : ",") + std::to_string(id.get<int>());
  testing::TempDir d;
  pack(fixture, d / "pack", 2);
  CliResult r = run_cli("--pack " + (d / "pack") + " --prompt-ids " + prompt + " --max-tokens " +
                        std::to_string(ref["greedy_ids"].size()) + " --ignore-eos --print-ids");
  ASSERT_EQ(r.code, 0) << r.out;
  // stdout's one line (the ids) among stderr's timing lines
  EXPECT_NE(r.out.find("\n" + want + "\n"), std::string::npos) << r.out;
}

TEST(RunCli, BadArgumentsExitNonZero) {
  CliResult r = run_cli("--pack /nonexistent-pack --prompt-ids 1,2");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("/nonexistent-pack"), std::string::npos) << r.out;
  r = run_cli("--pack /tmp --prompt-ids 1,x");
  EXPECT_EQ(r.code, 2);
}

}  // namespace
}  // namespace shardlm
