// shardlm-bench end to end on tiny packed checkpoints: the JSON report has every figure, the
// bytes per decoded token are exactly what docs/benchmarks.md defines (recomputed here from the
// rank files), --batch runs several engines, --baseline pairs two packs run for run, and bad
// input fails with a message naming it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/pack_reader.h"
#include "packer/packer.h"
#include "run_command.h"
#include "tiny_checkpoint.h"
#if defined(SHARDLM_BENCH_TEST_VULKAN)
#include "vk_test_util.h"
#endif

namespace shardlm {
namespace {

using testing::CliResult;

CliResult run_bench(const std::string& args, const std::string& env = "") {
  return testing::run_command(env + " " + std::string(SHARDLM_BENCH_BIN) + " " + args);
}

std::string pack_tiny(const testing::TempDir& d, int tp, bool tied) {
  testing::TinySpec spec;
  spec.architecture = "Qwen3ForCausalLM";
  spec.model_type = "qwen3";
  spec.tied = tied;
  spec.dtype = "BF16";
  testing::write_tiny_checkpoint(d / "hf", spec);
  PackOptions o;
  o.model_dir = d / "hf";
  o.out_dir = d / "pack";
  o.tp_size = tp;
  o.plan.device_total_bytes = 1ull << 30;
  pack_checkpoint(o);
  return d / "pack";
}

// The bytes one decode step reads, counted independently of the bench: every tensor of every
// rank except an untied embedding table, one embedding row, K and V (elements of kv_bytes bytes:
// 2 for the default bf16 pool) of every layer and local kv head for each attended position.
struct Expected {
  double weights = 0, embed_row = 0, kv_per_pos = 0;
};

Expected expected_bytes(const std::string& dir, double kv_bytes) {
  Expected e;
  const PackSet set = find_pack_set(dir);
  for (const std::string& path : set.rank_paths) {
    const auto p = PackReader::open(path);
    const bool tied = p->find("output") == nullptr;
    for (const PackTensor& t : p->tensors()) {
      if (t.name == "tok_embd" && !tied) continue;
      e.weights += static_cast<double>(t.nbytes);
    }
    e.embed_row = static_cast<double>(p->config().n_embd) * dtype_size(p->weight_dtype());
    e.kv_per_pos +=
        2.0 * p->config().n_layer * p->parallel().n_head_kv_local * p->config().head_dim * kv_bytes;
  }
  return e;
}

TEST(BenchCli, JsonReportHasEveryFigureAndExactByteCounts) {
  for (int tp : {1, 2}) {
    for (bool tied : {false, true}) {
      testing::TempDir d;
      const std::string pack = pack_tiny(d, tp, tied);
      const CliResult r = run_bench(
          "--pack " + pack + " --prompt-len 12 --gen 6 --reps 2 --threads 2 --bw-mib 16 --json");
      ASSERT_EQ(r.code, 0) << r.out;
      const auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["model"]["tp"], tp);
      EXPECT_EQ(j["model"]["weight_dtype"], "bf16");
      for (const char* key : {"load_s", "first_ttft_s", "ttft_s", "prefill_tok_s", "decode_tok_s",
                              "decode_gbs", "prefill_gflops", "peak_rss_bytes"}) {
        EXPECT_GT(j[key].get<double>(), 0.0) << key;
      }
      EXPECT_EQ(j["decode_tok_s_reps"].size(), 2u);
      // Roofline figures come from probes measured around every rep.
      EXPECT_EQ(j["roofline_fraction_reps"].size(), 2u);
      EXPECT_GT(j["roofline_fraction"].get<double>(), 0.0);
      // The headline roofline divides by the larger of the read and triad probes, so the
      // fraction of the read probe alone can only be as large or larger, rep by rep.
      const auto& strict = j["roofline_fraction_reps"];
      const auto& reps = j["decode_tok_s_reps"];
      ASSERT_EQ(j["weight_read_gbs_reps"].size(), 2u);
      for (size_t i = 0; i < 2; ++i) {
        const double read_frac = j["decode_gbs"].get<double>() / j["decode_tok_s"].get<double>() *
                                 reps[i].get<double>() / j["weight_read_gbs_reps"][i].get<double>();
        EXPECT_GE(read_frac * (1 + 1e-9), strict[i].get<double>()) << "rep " << i;
      }
      EXPECT_GE(j["roofline_fraction_vs_weight_read"].get<double>() * (1 + 1e-9),
                j["roofline_fraction"].get<double>());
      EXPECT_GT(j["peak_gflops"]["f32"].get<double>(), 0.0);
      for (const char* key : {"read", "read_one_thread", "copy", "triad"}) {
        EXPECT_GT(j["reference_bandwidth_gbs"][key].get<double>(), 0.0) << key;
      }

      EXPECT_EQ(j["kv_dtype"], "bf16");
      const Expected e = expected_bytes(pack, 2.0);
      // Decode step j (1..5) attends 12 + j positions: the mean is 12 + 6 / 2 = 15.
      const double want = e.weights + e.embed_row + e.kv_per_pos * 15.0;
      EXPECT_DOUBLE_EQ(j["weight_bytes"].get<double>(), e.weights) << "tp " << tp;
      EXPECT_DOUBLE_EQ(j["bytes_per_token"].get<double>(), want) << "tp " << tp;
      EXPECT_NEAR(j["decode_gbs"].get<double>(), want * j["decode_tok_s"].get<double>() / 1e9,
                  1e-9 * want);
    }
  }
}

TEST(BenchCli, TableOutputAndBatchOfIndependentEngines) {
  testing::TempDir d;
  const std::string pack = pack_tiny(d, 1, false);
  CliResult r = run_bench("--pack " + pack + " --prompt-len 8 --gen 4 --reps 1 --no-probe");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* line :
       {"load (open to ready)", "TTFT", "prefill", "decode", "bytes per decoded", "peak RSS"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  r = run_bench("--pack " + pack + " --prompt-len 8 --gen 4 --reps 1 --bw-mib 16");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* line : {"roofline", "vs read bandwidth", "weight stream", "triad", "peak"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  r = run_bench("--pack " + pack + " --prompt-len 8 --gen 4 --reps 1 --no-probe --batch 2 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["batch"], 2);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0.0);
}

TEST(BenchCli, BaselinePacksRunInPairsAndReportTheirRatios) {
  // --baseline: the same tiny model at TP 2 as the baseline of its TP 1 pack. Three pairs, each
  // ratio the pack's rep over the baseline's rep of the same pair, the headline their median.
  testing::TempDir d1, d2;
  const std::string pack = pack_tiny(d1, 1, false), base = pack_tiny(d2, 2, false);
  CliResult r = run_bench("--pack " + pack + " --baseline " + base +
                          " --prompt-len 8 --gen 4 --reps 3 --threads 2 --no-probe --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["baseline"]["pack"], base);
  EXPECT_EQ(j["baseline"]["weight_dtype"], "bf16");
  EXPECT_EQ(j["baseline"]["backend_settings"], "");  // --backend-settings'
  for (const char* what : {"decode", "prefill"}) {
    const std::string key = std::string(what) + "_tok_s_reps";
    const auto& mine = j[key];
    const auto& theirs = j["baseline"][key];
    const auto& ratios = j[std::string(what) + "_ratio_reps"];
    ASSERT_EQ(mine.size(), 3u) << what;
    ASSERT_EQ(theirs.size(), 3u) << what;
    ASSERT_EQ(ratios.size(), 3u) << what;
    std::vector<double> sorted;
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_GT(theirs[i].get<double>(), 0.0) << what << " pair " << i;
      EXPECT_NEAR(ratios[i].get<double>(), mine[i].get<double>() / theirs[i].get<double>(),
                  1e-12 * ratios[i].get<double>())
          << what << " pair " << i;
      sorted.push_back(ratios[i].get<double>());
    }
    std::sort(sorted.begin(), sorted.end());
    EXPECT_DOUBLE_EQ(j[std::string(what) + "_ratio"].get<double>(), sorted[1]) << what;
  }
  r = run_bench("--pack " + pack + " --baseline " + base +
                " --prompt-len 8 --gen 4 --reps 1 --no-probe");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("pack / baseline"), std::string::npos) << r.out;

  // Another model as the baseline (a different vocabulary), --batch, another mode: refused.
  testing::TempDir d3;
  testing::TinySpec other;
  other.architecture = "Qwen3ForCausalLM";
  other.model_type = "qwen3";
  other.dtype = "BF16";
  other.n_vocab += 64;
  testing::write_tiny_checkpoint(d3 / "hf", other);
  PackOptions po;
  po.model_dir = d3 / "hf";
  po.out_dir = d3 / "pack";
  po.plan.device_total_bytes = 1ull << 30;
  pack_checkpoint(po);
  r = run_bench("--pack " + pack + " --baseline " + (d3 / "pack") + " --gen 4 --reps 1 --no-probe");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("vocabulary"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(d3 / "pack"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --baseline " + base + " --batch 2 --gen 4 --reps 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--baseline"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --baseline " + base + " --concurrency 2 --gen 4");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--baseline"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --baseline " + (d1 / "missing") + " --gen 4 --reps 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("missing"), std::string::npos) << r.out;
}

TEST(BenchCli, BaselineBackendSettingsPairOneSettingAgainstAnother) {
  // The same pack on both sides, --baseline with its own backend settings: the pairs run and
  // the report names them; a bad one is refused by the baseline's backend, and the flag needs
  // --baseline.
  testing::TempDir d1;
  const std::string pack = pack_tiny(d1, 1, false);
  CliResult r = run_bench("--pack " + pack + " --baseline " + pack +
                          " --backend-settings kv_touch=on --baseline-backend-settings "
                          "kv_touch=off --prompt-len 8 --gen 4 --reps 2 --no-probe --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["baseline"]["backend_settings"], "kv_touch=off");
  EXPECT_EQ(j["decode_ratio_reps"].size(), 2u) << r.out;
  r = run_bench("--pack " + pack + " --baseline " + pack +
                " --baseline-backend-settings kv_touch=off --prompt-len 8 --gen 4 --reps 1 "
                "--no-probe");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("backend settings kv_touch=off"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --baseline " + pack +
                " --baseline-backend-settings kv_touch=maybe --gen 4 --reps 1 --no-probe");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("kv_touch=maybe"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --baseline-backend-settings kv_touch=off --gen 4 --reps 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--baseline-backend-settings needs --baseline"), std::string::npos) << r.out;
}

TEST(BenchCli, HostBackendReportsNoDeviceMemory) {
  testing::TempDir d;
  const std::string pack = pack_tiny(d, 1, false);
  const CliResult r =
      run_bench("--pack " + pack + " --prompt-len 8 --gen 3 --reps 1 --no-probe --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["device_memory_bytes"].is_null()) << r.out;
}

#if defined(SHARDLM_BENCH_TEST_VULKAN)
// A device backend reports the device memory it held at its peak: at least the weights it
// uploaded (every rank's tensors), the same in the table and in the JSON.
TEST(BenchCli, DeviceBackendReportsDeviceMemory) {
  auto backend = test::make_test_backend();
  SHARDLM_REQUIRE_VULKAN(backend);
  backend.reset();
  for (int tp : {1, 2}) {
    testing::TempDir d;
    const std::string pack = pack_tiny(d, tp, false);
    const std::string args =
        "--pack " + pack + " --backend vulkan --prompt-len 8 --gen 3 --reps 1 --no-probe";
    CliResult r = run_bench(args + " --json");
    ASSERT_EQ(r.code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j["device_memory_bytes"].is_number()) << r.out;
    const Expected e = expected_bytes(pack, 2.0);  // only its weights are compared
    EXPECT_GE(j["device_memory_bytes"].get<double>(), e.weights) << "tp " << tp;
    r = run_bench(args);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("device memory            peak"), std::string::npos) << r.out;
  }
}
#endif

TEST(BenchCli, BadInputFailsClearly) {
  testing::TempDir d;
  const std::string pack = pack_tiny(d, 1, false);
  CliResult r = run_bench("--pack " + (d / "missing"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("missing"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --gen 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--gen"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --batch 0");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--batch"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --gen 4 --reps 1 --no-probe", "SHARDLM_CPU_ISA=sse9");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("SHARDLM_CPU_ISA=sse9"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --gen 4 --reps 1 --no-probe", "SHARDLM_CPU_AMX_SPLITS=7");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("SHARDLM_CPU_AMX_SPLITS=7"), std::string::npos) << r.out;
  r = run_bench("--pack " + pack + " --backend nosuch --gen 4");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("nosuch"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace shardlm
