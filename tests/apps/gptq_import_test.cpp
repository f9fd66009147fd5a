// GPTQ checkpoints packed by shardlm-pack (packer/gptq_source.h). The test writes its own GPTQ
// checkpoints from a tiny random model, following the format AutoGPTQ / GPTQModel write
// (round-to-nearest symmetric quantization; qweight [n_in / (32 / bits), n_out] int32 packed along
// the input, qzeros [groups, n_out / (32 / bits)] int32, scales [groups, n_out] f16, g_idx [n_in]),
// and beside each its dequantized twin (every linear = scale * (q - zero), in f32). Checks:
//   - every quantized pack tensor, dequantized, equals the twin's f32 pack tensor exactly, for
//     4 and 8 bits, groups of 32 / 64 / 128 / whole rows, the v1 and v2 zero-point encodings, at
//     TP 1 and 2 (fused QKV and gate/up, row-parallel slices);
//   - the imported pack decodes like its twin (logits) and the same at TP 1 and 2;
//   - what shardlm cannot hold exactly (asymmetric zero points, act-order, 3 bits, AWQ, groups of
//     48, a quantized lm_head) and malformed tensors are refused with errors naming the field or
//     tensor, and nothing is written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/pack_reader.h"
#include "packer/packer.h"
#include "run_command.h"
#include "runtime/core/quant.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct GptqSpec {
  int bits = 4;
  int64_t group = 128;  // -1: one group per row
  bool v2 = false;      // checkpoint_format gptq_v2 (zero points stored as they are)
  bool act_order = false;
  bool asymmetric = false;
  std::string qweight_dtype = "I32";
};

bool is_linear(const std::string& name) {
  return name.size() > 12 && name.compare(name.size() - 12, 12, "_proj.weight") == 0;
}

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Writes `ck` quantized by GPTQ's round-to-nearest into gptq_dir (config with its
// quantization_config) and the dequantized values into twin_dir (a plain f32 checkpoint).
void write_gptq_pair(const testing::TinyCheckpoint& ck, const GptqSpec& g, const std::string& gptq_dir,
                     const std::string& twin_dir) {
  fs::create_directories(gptq_dir);
  fs::create_directories(twin_dir);
  const int per = 32 / g.bits;
  const int maxq = (1 << g.bits) - 1;
  const int zero = 1 << (g.bits - 1);
  std::vector<testing::RawTensor> quant, twin;
  for (const auto& [name, values] : ck.values) {
    const std::vector<int64_t>& shape = ck.shapes.at(name);
    if (!is_linear(name)) {
      quant.push_back({name, "F32", shape, bytes_of(values)});
      twin.push_back({name, "F32", shape, bytes_of(values)});
      continue;
    }
    const int64_t n_out = shape[0], n_in = shape[1];
    const int64_t group = g.group == -1 ? n_in : g.group;
    const int64_t n_groups = (n_in + group - 1) / group;
    std::vector<uint16_t> scales(static_cast<size_t>(n_groups * n_out));
    std::vector<int32_t> zeros(static_cast<size_t>(n_groups * n_out), zero);
    if (g.asymmetric) zeros[1] = zero - 3;
    std::vector<int32_t> q(static_cast<size_t>(n_out * n_in));
    std::vector<float> deq(q.size());
    for (int64_t n = 0; n < n_out; ++n)
      for (int64_t gi = 0; gi < n_groups; ++gi) {
        const int64_t k0 = gi * group, k1 = std::min(n_in, k0 + group);
        float amax = 0;
        for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(values[n * n_in + k]));
        const uint16_t h = f32_to_f16(2 * amax / maxq);
        scales[gi * n_out + n] = h;
        const float s = f16_to_f32(h);
        const int z = zeros[gi * n_out + n];
        for (int64_t k = k0; k < k1; ++k) {
          const int v = std::clamp(static_cast<int>(std::nearbyint(values[n * n_in + k] / s)) + z, 0, maxq);
          q[n * n_in + k] = v;
          deq[n * n_in + k] = s * static_cast<float>(v - z);
        }
      }
    std::vector<int32_t> qweight(static_cast<size_t>(n_in / per * n_out), 0);
    for (int64_t k = 0; k < n_in; ++k)
      for (int64_t n = 0; n < n_out; ++n)
        qweight[(k / per) * n_out + n] |= static_cast<int32_t>(static_cast<uint32_t>(q[n * n_in + k]) << (g.bits * (k % per)));
    std::vector<int32_t> qzeros(static_cast<size_t>(n_groups * (n_out / per)), 0);
    for (int64_t gi = 0; gi < n_groups; ++gi)
      for (int64_t n = 0; n < n_out; ++n) {
        const uint32_t stored = static_cast<uint32_t>(zeros[gi * n_out + n] - (g.v2 ? 0 : 1));
        qzeros[gi * (n_out / per) + n / per] |= static_cast<int32_t>(stored << (g.bits * (n % per)));
      }
    std::vector<int32_t> g_idx(static_cast<size_t>(n_in));
    for (int64_t k = 0; k < n_in; ++k) g_idx[k] = static_cast<int32_t>(k / group);
    if (g.act_order) std::swap(g_idx[0], g_idx[n_in - 1]);
    const std::string base = name.substr(0, name.size() - 7);
    std::vector<uint8_t> qw = bytes_of(qweight);
    if (g.qweight_dtype == "F32") {  // the same bytes under a wrong dtype
      quant.push_back({base + ".qweight", "F32", {n_in / per, n_out}, qw});
    } else {
      quant.push_back({base + ".qweight", "I32", {n_in / per, n_out}, qw});
    }
    quant.push_back({base + ".qzeros", "I32", {n_groups, n_out / per}, bytes_of(qzeros)});
    quant.push_back({base + ".scales", "F16", {n_groups, n_out}, bytes_of(scales)});
    quant.push_back({base + ".g_idx", "I32", {n_in}, bytes_of(g_idx)});
    twin.push_back({name, "F32", shape, bytes_of(deq)});
  }
  json cfg = ck.config;
  testing::write_text(twin_dir + "/config.json", cfg.dump(2));
  cfg["quantization_config"] = {{"quant_method", "gptq"},  {"bits", g.bits},
                                {"group_size", g.group},   {"desc_act", g.act_order},
                                {"sym", !g.asymmetric},    {"checkpoint_format", g.v2 ? "gptq_v2" : "gptq"},
                                {"true_sequential", true}, {"static_groups", false}};
  testing::write_text(gptq_dir + "/config.json", cfg.dump(2));
  for (const char* f : {"generation_config.json", "tokenizer_config.json"}) {
    fs::copy_file(fs::path(ck.dir) / f, fs::path(gptq_dir) / f, fs::copy_options::overwrite_existing);
    fs::copy_file(fs::path(ck.dir) / f, fs::path(twin_dir) / f, fs::copy_options::overwrite_existing);
  }
  testing::write_file(gptq_dir + "/model.safetensors", testing::safetensors_bytes(quant));
  testing::write_file(twin_dir + "/model.safetensors", testing::safetensors_bytes(twin));
}

testing::TinySpec tiny_spec() {
  testing::TinySpec s;  // every linear's inputs are whole 32-blocks at TP 2, and outputs a multiple of 8
  s.architecture = "Qwen3ForCausalLM";
  s.model_type = "qwen3";
  s.n_vocab = 128;
  s.n_embd = 128;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 32;
  s.n_ff = 256;
  return s;
}

PackResult pack(const std::string& model, const std::string& out, int tp, std::optional<DType> weights = {}) {
  PackOptions o;
  o.model_dir = model;
  o.out_dir = out;
  o.tp_size = tp;
  o.quantize = weights;
  return pack_checkpoint(o);
}

void check_packed_rows(const std::string& family);

// Qwen3 (q/k norms) for every scheme, and Qwen2 (q/k/v biases, which stay float) for one.
TEST(GptqImport, PackedRowsEqualTheDequantizedCheckpointExactly) {
  for (const char* family : {"qwen3", "qwen2"}) {
    SCOPED_TRACE(family);
    check_packed_rows(family);
  }
}

void check_packed_rows(const std::string& family) {
  testing::TempDir tmp;
  testing::TinySpec spec = tiny_spec();
  if (family == "qwen2") {
    spec.architecture = "Qwen2ForCausalLM";
    spec.model_type = "qwen2";
  }
  const testing::TinyCheckpoint ck = testing::write_tiny_checkpoint(tmp / "ckpt", spec);
  std::vector<GptqSpec> specs = {
      {4, 128, false}, {4, 32, true}, {4, -1, false}, {8, 64, false}, {8, 128, true}};
  if (family == "qwen2") specs = {{4, 64, false}};
  for (size_t i = 0; i < specs.size(); ++i) {
    const GptqSpec& g = specs[i];
    const std::string what = std::to_string(g.bits) + "-bit, group " + std::to_string(g.group) + (g.v2 ? ", v2" : ", v1");
    const std::string dir = tmp / ("case" + std::to_string(i));
    write_gptq_pair(ck, g, dir + "/gptq", dir + "/twin");
    for (int tp : {1, 2}) {
      const std::string tps = std::to_string(tp);
      const PackResult a = pack(dir + "/gptq", dir + "/pack-gptq-" + tps, tp);
      const PackResult b = pack(dir + "/twin", dir + "/pack-twin-" + tps, tp);
      const json summary = json::parse(testing::read_file(dir + "/pack-gptq-" + tps + "/pack.json"));
      EXPECT_EQ(summary.value("weights_from", ""), "gptq " + std::to_string(g.bits) + "-bit, " +
                                                      (g.group == -1 ? std::string("one group per row")
                                                                     : "groups of " + std::to_string(g.group)));
      for (int r = 0; r < tp; ++r) {
        auto qp = PackReader::open(a.rank_paths[r]);
        auto fp = PackReader::open(b.rank_paths[r]);
        // 4 bits in groups of 128 pack as int4g128 where every rank holds whole groups (TP 1 here;
        // at TP 2 o_proj's 64 inputs per rank split one, so the pack is int4).
        const DType dt = g.bits == 8                                    ? DType::kInt8
                         : g.group > 0 && g.group % 128 == 0 && tp == 1 ? DType::kInt4G128
                                                                        : DType::kInt4;
        EXPECT_EQ(qp->weight_dtype(), dt) << what;
        EXPECT_EQ(qp->embedding_dtype(), DType::kF32) << what;
        int quantized = 0;
        for (const PackTensor& t : qp->tensors()) {
          const PackTensor& f = fp->require(t.name);
          ASSERT_EQ(t.shape, f.shape) << t.name;
          if (!is_quantized(t.dtype)) {
            ASSERT_EQ(t.nbytes, f.nbytes) << t.name;
            EXPECT_EQ(std::memcmp(t.data, f.data, t.nbytes), 0) << what << ": " << t.name;
            continue;
          }
          ++quantized;
          EXPECT_EQ(t.dtype, dt) << t.name;
          ASSERT_EQ(f.dtype, DType::kF32);
          const int64_t n_in = t.shape[1];
          std::vector<float> row(static_cast<size_t>(n_in));
          int64_t mismatches = 0;
          for (int64_t j = 0; j < t.shape[0]; ++j) {
            dequantize_row(dt, t.data + j * row_bytes(dt, n_in), n_in, row.data());
            mismatches += std::memcmp(row.data(), f.data + j * n_in * 4, static_cast<size_t>(n_in) * 4) != 0;
          }
          EXPECT_EQ(mismatches, 0) << what << ", TP " << tp << " rank " << r << ": " << t.name;
        }
        EXPECT_EQ(quantized, 8) << "wqkv, wo, w_gate_up, w_down of 2 layers";
      }
    }
  }
}

std::vector<float> last_logits(const std::string& pack_dir, std::vector<int32_t> prompt) {
  EngineOptions eo;
  eo.pack_dir = pack_dir;
  eo.n_threads = 2;
  eo.n_ctx = 128;
  eo.activations = MatmulActivations::kF32;
  Engine e(eo);
  return e.eval(prompt, false);
}

std::vector<int32_t> greedy(const std::string& pack_dir, int n) {
  EngineOptions eo;
  eo.pack_dir = pack_dir;
  eo.n_threads = 2;
  eo.n_ctx = 128;
  Engine e(eo);
  std::vector<int32_t> prompt = {3, 17, 42, 99, 5}, out;
  int32_t next = e.eval_argmax(prompt);
  for (int i = 0; i < n; ++i) {
    out.push_back(next);
    next = e.eval_argmax(std::span<const int32_t>(&next, 1));
  }
  return out;
}

TEST(GptqImport, DecodesLikeTheDequantizedCheckpointAtTp1And2) {
  testing::TempDir tmp;
  const testing::TinyCheckpoint ck = testing::write_tiny_checkpoint(tmp / "ckpt", tiny_spec());
  write_gptq_pair(ck, GptqSpec{}, tmp / "gptq", tmp / "twin");
  pack(tmp / "gptq", tmp / "g1", 1);
  pack(tmp / "gptq", tmp / "g2", 2);
  pack(tmp / "twin", tmp / "t1", 1);
  // 32 prompt tokens: the prefill GEMM multiplies f32 activations by the exactly dequantized
  // weights (decode-sized steps would quantize the activations to int8 on VNNI machines).
  std::vector<int32_t> prompt;
  for (int i = 0; i < 32; ++i) prompt.push_back((i * 37 + 3) % 128);
  const std::vector<float> a = last_logits(tmp / "g1", prompt), b = last_logits(tmp / "t1", prompt);
  ASSERT_EQ(a.size(), b.size());
  float max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
    max_abs = std::max(max_abs, std::fabs(b[i]));
  }
  EXPECT_GT(max_abs, 0.1f);
  EXPECT_LT(max_diff, 1e-4f * max_abs + 1e-5f) << "imported int4 vs its dequantized f32 twin";
  EXPECT_EQ(greedy(tmp / "g1", 24), greedy(tmp / "g2", 24)) << "the imported pack at TP 1 and TP 2";
}

// The CLI: shardlm-pack takes a GPTQ checkpoint without --weights, --inspect shows int4 (at TP 2,
// where a rank's o_proj slice splits a group of 128) or int4g128 (TP 1), --weights int4 expands
// the groups at TP 1, and a refused one exits non-zero with the message on stderr.
TEST(GptqImport, TheCliPacksAndRefuses) {
  testing::TempDir tmp;
  const testing::TinyCheckpoint ck = testing::write_tiny_checkpoint(tmp / "ckpt", tiny_spec());
  write_gptq_pair(ck, GptqSpec{}, tmp / "gptq", tmp / "twin");
  const std::string bin = SHARDLM_PACK_BIN;
  testing::CliResult r = testing::run_command(bin + " --model " + tmp / "gptq" + " --out " +
                                              tmp / "p" + " --tp 2 --quiet 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  r = testing::run_command(bin + " --inspect " + tmp / "p" + " 2>&1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("weights int4 ("), std::string::npos) << r.out;
  for (const char* weights : {"", " --weights int4g128", " --weights int4"}) {
    const std::string out = tmp / (std::string("p1") + weights);
    r = testing::run_command(bin + " --model " + tmp / "gptq" + " --out '" + out + "' --quiet" +
                             weights + " 2>&1");
    ASSERT_EQ(r.code, 0) << weights << ": " << r.out;
    r = testing::run_command(bin + " --inspect '" + out + "' 2>&1");
    EXPECT_NE(r.out.find(std::string(weights) == " --weights int4" ? "weights int4 ("
                                                                   : "weights int4g128 ("),
              std::string::npos)
        << weights << ": " << r.out;
  }
  r = testing::run_command(bin + " --model " + tmp / "gptq" + " --out " + tmp / "q" +
                           " --weights int8 2>&1");
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("leave out --weights int8"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "q"));
}

// Packing `model` fails with `code` and a message holding every one of `parts`; nothing is written.
void expect_refused(const std::string& model, const std::string& out, StatusCode code,
                    const std::vector<std::string>& parts, std::optional<DType> weights = {}) {
  try {
    pack(model, out, 1, weights);
    ADD_FAILURE() << model << ": packed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out)) << out;
}

TEST(GptqImport, WhatShardlmCannotHoldIsRefusedWithTheFieldNamed) {
  testing::TempDir tmp;
  const testing::TinyCheckpoint ck = testing::write_tiny_checkpoint(tmp / "ckpt", tiny_spec());
  // A copy of checkpoint `from` with its config.json edited.
  auto with_config = [&](const std::string& name, const std::function<void(json&)>& edit,
                         const std::string& from = "good") {
    const fs::path dir = tmp / name;
    fs::create_directories(dir);
    for (const char* f : {"model.safetensors", "generation_config.json", "tokenizer_config.json"})
      fs::copy_file(tmp / (from + "/" + std::string(f)), dir / f);
    json cfg = json::parse(testing::read_file(tmp / (from + "/config.json")));
    edit(cfg);
    testing::write_text(dir / "config.json", cfg.dump(2));
    return dir.string();
  };
  GptqSpec asym;
  asym.asymmetric = true;
  write_gptq_pair(ck, asym, tmp / "asym", tmp / "asym-twin");
  expect_refused(tmp / "asym", tmp / "out", StatusCode::kUnsupported,
                 {"quantization_config.sym is false"});
  // sym claimed true, but a zero point is not the symmetric one: the data is checked, not only the flag.
  expect_refused(with_config("asym-claimed-sym", [](json& c) { c["quantization_config"]["sym"] = true; }, "asym"),
                 tmp / "out", StatusCode::kUnsupported, {".qzeros", "zero point 5", "asymmetric"});

  GptqSpec act;
  act.act_order = true;
  write_gptq_pair(ck, act, tmp / "act", tmp / "act-twin");
  expect_refused(tmp / "act", tmp / "out", StatusCode::kUnsupported, {".g_idx", "desc_act"});

  GptqSpec bad_dtype;
  bad_dtype.qweight_dtype = "F32";
  write_gptq_pair(ck, bad_dtype, tmp / "f32q", tmp / "f32q-twin");
  expect_refused(tmp / "f32q", tmp / "out", StatusCode::kFormat, {".qweight", "has dtype F32", "I32"});

  write_gptq_pair(ck, GptqSpec{}, tmp / "good", tmp / "good-twin");
  expect_refused(tmp / "good", tmp / "out", StatusCode::kInvalidArg, {"gptq 4-bit", "leave out --weights int8"},
                 DType::kInt8);

  expect_refused(with_config("bits3", [](json& c) { c["quantization_config"]["bits"] = 3; }), tmp / "out",
                 StatusCode::kUnsupported, {"quantization_config.bits is 3"});
  expect_refused(with_config("awq", [](json& c) { c["quantization_config"]["quant_method"] = "awq"; }), tmp / "out",
                 StatusCode::kUnsupported, {"quant_method is 'awq'", "--weights int4"});
  expect_refused(with_config("g48", [](json& c) { c["quantization_config"]["group_size"] = 48; }), tmp / "out",
                 StatusCode::kUnsupported, {"group_size is 48"});
  expect_refused(with_config("head", [](json& c) { c["quantization_config"]["lm_head"] = true; }), tmp / "out",
                 StatusCode::kUnsupported, {"lm_head"});
  expect_refused(with_config("v3", [](json& c) { c["quantization_config"]["checkpoint_format"] = "marlin"; }),
                 tmp / "out", StatusCode::kUnsupported, {"checkpoint_format is 'marlin'"});
  expect_refused(with_config("bits-str", [](json& c) { c["quantization_config"]["bits"] = "4"; }), tmp / "out",
                 StatusCode::kFormat, {"quantization_config.bits has the wrong type"});
  // v1 zero points (stored 7) read as v2: 7 is not symmetric, and the message asks about the format.
  expect_refused(with_config("v1-as-v2", [](json& c) { c["quantization_config"]["checkpoint_format"] = "gptq_v2"; }),
                 tmp / "out", StatusCode::kUnsupported, {"zero point 7", "checkpoint_format"});
  expect_refused(with_config("noconfig", [](json& c) { c.erase("quantization_config"); }), tmp / "out",
                 StatusCode::kFormat, {"q_proj.weight", "held quantized", "quantization_config"});
}

}  // namespace
}  // namespace shardlm
