// The dense ops' cases of the op-test harness (see op_cases.h): embed, rms_norm, matmul, rope,
// attention, swiglu, add, copy_columns, max_element. The shapes are the union of those of the
// per-backend tests the harness replaced (cpu kernels_test, vulkan ops_test, cuda_ops_test);
// the comments say which code path a shape is there for. Not the paged-KV ops
// (op_cases_paged.cpp).
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kernels/ref/ref_ops.h"
#include "runtime/core/quant.h"
#include "runtime/core/status.h"
#include "tests/ops/op_cases.h"
#include "tests/runtime/test_util.h"

namespace shardlm::ops_test {

namespace {

using test::encode;
using test::random_floats;

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

// "3x40" for messages.
std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (int64_t v : d) s += (s.empty() ? "" : "x") + std::to_string(v);
  return s;
}

// ---- embed ----

struct EmbedShape {
  int64_t n_vocab_local, n_embd, vocab_start;
  std::vector<int32_t> ids;  // some outside [vocab_start, vocab_start + n_vocab_local)
};

void run_embed(OpRun& r, DType dt) {
  const EmbedShape shapes[] = {
      {11, 37, 20, {20, 3, 30, 31, 25, 0, 20}},
      {37, 21, 5, {5, 0, 41, 42, 17, 4, 100, 23}},
      // cuda: up to 8 ids ride in the kernel's parameters, more are uploaded
      {50, 72, 100, {100, 149, 3, 120, 150}},
      {50, 72, 100, {101, 0,   149, 99,  150, 130,  100, 110, 111, 112,
                     113, 114, 115, 116, 117, 2000, 140, 141, 142, 143}},
  };
  uint64_t seed = 10;
  for (const EmbedShape& s : shapes) {
    const int64_t n = static_cast<int64_t>(s.ids.size());
    const auto table = encode(random_floats(sz(s.n_vocab_local * s.n_embd), ++seed), dt);
    std::vector<float> want(sz(n * s.n_embd));
    ref::embed(s.ids.data(), n, table.data(), dt, s.n_vocab_local, s.vocab_start, s.n_embd,
               want.data());
    const Tensor t = r.weight(table, dt, {s.n_vocab_local, s.n_embd});  // [n_vocab_local, n_embd]
    const Tensor out = r.output({n, s.n_embd});                         // [n_tokens, n_embd]
    r.backend().embed(s.ids, t, s.vocab_start, out);
    r.check({Op::kEmbed, dt}, r.read(out), want,
            dims({s.n_vocab_local, s.n_embd}) + " table, " + std::to_string(n) + " ids");
    r.free_all();
  }
}

// ---- rms_norm ----

void run_rms_norm(OpRun& r) {
  // cuda: a warp per row up to 256 (q/k norm rows of 16), a block per row above, held in
  // registers when n % 4 == 0 and n <= 16384 (up to 4096 and above); odd sizes for the SIMD and
  // subgroup tails.
  const std::pair<int64_t, int64_t> shapes[] = {{7, 16},   {33, 256}, {5, 257},  {3, 4096},
                                                {3, 64},   {3, 300},  {3, 7},    {7, 129},
                                                {40, 128}, {2, 5120}, {2, 4102}, {1, 16388}};
  uint64_t seed = 20;
  for (auto [n_rows, n] : shapes) {
    const auto x = random_floats(sz(n_rows * n), ++seed, 3.0f);
    const auto w = random_floats(sz(n), ++seed);
    std::vector<float> want(x.size());
    ref::rms_norm(x.data(), w.data(), n_rows, n, 1e-6f, want.data());
    const Tensor tx = r.input(x, {n_rows, n});  // x [n_rows, n]
    const Tensor tw = r.weight_f32(w, {n});     // w [n]
    const Tensor out = r.output({n_rows, n});   // out [n_rows, n]
    r.backend().rms_norm(tx, tw, 1e-6f, out);
    r.check({Op::kRmsNorm}, r.read(out), want, dims({n_rows, n}));
    r.backend().rms_norm(tx, tw, 1e-6f, tx);  // out aliases x (the q/k norm)
    r.check({Op::kRmsNorm}, r.read(tx), want, dims({n_rows, n}) + " in place");
    r.free_all();
  }
}

// ---- matmul ----

// (n_in, n_out): tails of every vector width (67, 31, 30, 36), aligned sizes (vector loads;
// cuda's 16-byte loads at 1024; 4104 16-bit weights run cuda's four-in-flight loop several
// times and leave a 16-byte tail), a single output row.
constexpr std::pair<int64_t, int64_t> kMatmulShapes[] = {
    {67, 45},   {31, 9},    {30, 17},   {36, 70},   {64, 33},
    {128, 200}, {256, 130}, {1024, 72}, {4104, 24}, {16, 1}};
// GEMV token counts: cpu <= 16 (bf16 in token pairs); vulkan 1 (gemv), 2..8 (gemv8); cuda
// <= 8, each of its templates (1, 2, 3, 5, 8). GEMM token counts: cpu > 16 (tiled), vulkan
// gemm_tiled, cuda cuBLAS; 17 = cpu deterministic mode's 16-token GEMV group plus one.
constexpr int64_t kGemvTokens[] = {1, 2, 3, 5, 8, 16};
constexpr int64_t kGemmTokens[] = {9, 17, 33, 40, 70};

std::vector<float> matmul_ref(const OpRun& r, const std::vector<float>& x, int64_t n_tokens,
                              int64_t n_in, const std::vector<uint8_t>& w, DType dt, int64_t n_out,
                              const float* bias) {
  std::vector<float> y(sz(n_tokens * n_out));
  if (r.bf16_activations() && dt == DType::kBF16) {
    ref::matmul_bf16_activations(x.data(), n_tokens, n_in, w.data(), dt, n_out, bias, y.data());
  } else {
    ref::matmul(x.data(), n_tokens, n_in, w.data(), dt, n_out, bias, y.data());
  }
  return y;
}

void run_matmul(OpRun& r, DType dt, std::span<const int64_t> token_counts) {
  uint64_t seed = 30;
  for (int64_t n_tokens : token_counts) {
    for (auto [n_in, n_out] : kMatmulShapes) {
      const auto x = random_floats(sz(n_tokens * n_in), ++seed);
      const auto w = encode(random_floats(sz(n_out * n_in), ++seed), dt);
      const auto bias = random_floats(sz(n_out), ++seed);
      const Tensor tx = r.input(x, {n_tokens, n_in});    // x [n_tokens, n_in]
      const Tensor tw = r.weight(w, dt, {n_out, n_in});  // w [n_out, n_in]
      const Tensor tb = r.weight_f32(bias, {n_out});     // bias [n_out]
      for (bool with_bias : {false, true}) {
        const auto want =
            matmul_ref(r, x, n_tokens, n_in, w, dt, n_out, with_bias ? bias.data() : nullptr);
        const Tensor ty = r.output({n_tokens, n_out});  // y [n_tokens, n_out]
        r.backend().matmul(tx, tw, with_bias ? tb : Tensor{}, ty);
        r.check(
            {Op::kMatmul, dt, n_tokens, n_in}, r.read(ty), want,
            dims({n_tokens, n_in}) + " @ " + dims({n_out, n_in}) + (with_bias ? " + bias" : ""));
      }
      r.free_all();
    }
  }
}

// ---- rope ----

std::vector<float> inv_freq(int64_t head_dim, double theta) {
  std::vector<float> inv(sz(head_dim / 2));
  for (size_t i = 0; i < inv.size(); ++i) {
    inv[i] = static_cast<float>(
        1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim)));
  }
  return inv;
}

void run_rope(OpRun& r) {
  // Large positions (angles up to 32767 rad); cuda: <= 8 positions ride in the parameters.
  const std::vector<int32_t> position_sets[] = {{0, 1, 17, 511, 4095, 32767},
                                                {5, 6, 7, 8, 9, 10, 11, 12, 13, 30000}};
  const int64_t n_head = 3;
  uint64_t seed = 40;
  for (int64_t head_dim : {16, 24, 64, 128}) {
    for (double theta : {10000.0, 1000000.0}) {
      for (const std::vector<int32_t>& pos : position_sets) {
        const int64_t n = static_cast<int64_t>(pos.size());
        const auto x = random_floats(sz(n * n_head * head_dim), ++seed);
        const auto inv = inv_freq(head_dim, theta);
        std::vector<float> want = x;
        ref::rope(want.data(), n, n_head, head_dim, pos.data(), inv.data());
        const Tensor tx = r.input(x, {n, n_head, head_dim});  // x [n_tokens, n_head, head_dim]
        const Tensor ti = r.input(inv, {head_dim / 2});       // inv_freq [head_dim / 2]
        r.backend().rope(tx, pos, ti);
        r.check({Op::kRope}, r.read(tx), want,
                "head_dim " + std::to_string(head_dim) + " theta " + std::to_string(theta) + ", " +
                    std::to_string(n) + " positions");
        r.free_all();
      }
    }
  }
}

// ---- attention ----

struct AttnShape {
  int64_t n_tokens, n_kv, n_head, n_head_kv, head_dim, window;
  bool contiguous;  // positions n_kv - n_tokens .. n_kv - 1, else spread out of order
};

std::string describe(const AttnShape& c) {
  return std::to_string(c.n_tokens) + " tokens, " + std::to_string(c.n_kv) + " keys, heads " +
         std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + ", head_dim " +
         std::to_string(c.head_dim) + ", window " + std::to_string(c.window) +
         (c.contiguous ? "" : ", spread positions");
}

void run_attention_shape(OpRun& r, const AttnShape& c, uint64_t seed) {
  std::vector<int32_t> pos(sz(c.n_tokens));
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    pos[sz(t)] =
        static_cast<int32_t>(c.contiguous ? c.n_kv - c.n_tokens + t : (t * 37 + 11) % c.n_kv);
  }
  const auto q = random_floats(sz(c.n_tokens * c.n_head * c.head_dim), seed);
  const auto k = random_floats(sz(c.n_kv * c.n_head_kv * c.head_dim), seed + 1);
  const auto v = random_floats(sz(c.n_kv * c.n_head_kv * c.head_dim), seed + 2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> want(q.size());
  ref::attention(q.data(), k.data(), v.data(), pos.data(), c.n_tokens, c.n_kv, c.n_head,
                 c.n_head_kv, c.head_dim, c.window, scale, want.data());
  const Tensor tq = r.input(q, {c.n_tokens, c.n_head, c.head_dim});  // [n_tokens, n_head, hd]
  const Tensor tk = r.input(k, {c.n_kv, c.n_head_kv, c.head_dim});   // [n_kv, n_head_kv, hd]
  const Tensor tv = r.input(v, {c.n_kv, c.n_head_kv, c.head_dim});   // [n_kv, n_head_kv, hd]
  const Tensor out = r.output({c.n_tokens, c.n_head * c.head_dim});  // [n_tokens, n_head * hd]
  r.backend().attention(tq, tk, tv, pos, c.window, scale, out);
  r.check({Op::kAttention, DType::kF32, c.n_tokens}, r.read(out), want, describe(c));
  r.free_all();
}

// Up to 8 tokens: cuda's decode kernel (split-K), cpu's split-K rows, vulkan's single pass or
// split-K by variant.
constexpr AttnShape kAttnDecode[] = {
    {1, 1, 4, 4, 16, 0, true},        // the first token
    {1, 700, 32, 8, 128, 0, true},    // split-K over several splits, GQA 4
    {1, 300, 12, 1, 24, 0, true},     // MQA, group 12 (cuda: two head chunks), head_dim 24
    {1, 300, 8, 2, 48, 0, true},      // three vulkan key blocks
    {2, 260, 2, 2, 256, 0, true},     // head_dim 256 (vulkan: two dims per invocation)
    {3, 13, 6, 2, 20, 1, true},       // window 1: each query sees itself only
    {3, 90, 8, 2, 48, 6, true},       // sliding window
    {3, 130, 4, 2, 128, 100, true},   // window inside the cache
    {5, 105, 8, 1, 32, 0, true},      // a chunk after a cached prefix, MQA
    {5, 45, 6, 2, 128, 17, true},     // window 17
    {7, 7, 4, 4, 16, 0, true},        // a short prompt from an empty cache
    {8, 257, 16, 16, 256, 0, false},  // cuda's decode limit, positions out of order
};
// More than 8 tokens: cuda's prefill kernel, cpu's tiled path (40 = two query blocks).
constexpr AttnShape kAttnPrefill[] = {
    {9, 9, 4, 2, 32, 0, true},       // the smallest prefill, from position 0
    {40, 40, 4, 2, 24, 6, true},     // sliding window
    {40, 41, 4, 1, 32, 4, true},     // MQA, window 4
    {40, 100, 8, 2, 64, 0, true},    // after 60 cached tokens
    {37, 37, 6, 3, 128, 5, true},    // window 5
    {20, 64, 4, 1, 256, 0, false},   // head_dim 256 (cuda: > 48 KiB shared memory)
    {33, 33, 24, 2, 16, 0, true},    // group 12 (cuda: rows split over head chunks)
    {40, 300, 4, 2, 128, 17, true},  // a long cache, window 17
};

void run_attention(OpRun& r, std::span<const AttnShape> shapes) {
  uint64_t seed = 50;
  for (const AttnShape& c : shapes) run_attention_shape(r, c, seed += 3);
}

// ---- swiglu, add, copy_columns, max_element ----

void run_swiglu(OpRun& r) {
  struct Shape {
    int64_t n_tokens, n_ff;
    float magnitude;  // of gate and up values: silu(g) * u reaches ~magnitude^2
  };
  uint64_t seed = 60;
  for (const Shape& s :
       {Shape{3, 50, 4}, Shape{2, 3072, 4}, Shape{1, 77, 120}, Shape{5, 77, 6}, Shape{6, 300, 4}}) {
    const auto gu = random_floats(sz(s.n_tokens * 2 * s.n_ff), ++seed, s.magnitude);
    std::vector<float> want(sz(s.n_tokens * s.n_ff));
    ref::swiglu(gu.data(), s.n_tokens, s.n_ff, want.data());
    const Tensor tgu = r.input(gu, {s.n_tokens, 2 * s.n_ff});  // gate_up [n_tokens, 2 * n_ff]
    const Tensor out = r.output({s.n_tokens, s.n_ff});         // out [n_tokens, n_ff]
    r.backend().swiglu(tgu, out);
    r.check({Op::kSwiglu}, r.read(out), want,
            dims({s.n_tokens, s.n_ff}) + " magnitude " + std::to_string(s.magnitude));
    r.free_all();
  }
}

void run_add(OpRun& r) {
  const std::vector<int64_t> shapes[] = {{1000}, {100000}, {4, 512}};
  uint64_t seed = 70;
  for (const std::vector<int64_t>& shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const auto y = random_floats(sz(n), ++seed), x = random_floats(sz(n), ++seed);
    std::vector<float> want = y;
    ref::add(want.data(), x.data(), n);
    const bool two_d = shape.size() == 2;
    const Tensor ty = two_d ? r.input(y, {shape[0], shape[1]}) : r.input(y, {n});  // y
    const Tensor tx = two_d ? r.input(x, {shape[0], shape[1]}) : r.input(x, {n});  // x, as y
    r.backend().add(ty, tx);
    r.check({Op::kAdd}, r.read(ty), want, std::to_string(n) + " elements");
    r.free_all();
  }
}

void run_copy_columns(OpRun& r) {
  struct Shape {
    int64_t n_rows, n_src_cols, col_begin, n_cols;
  };
  uint64_t seed = 80;
  for (const Shape& s : {Shape{4, 30, 17, 9}, Shape{5, 40, 7, 13}, Shape{1, 64, 0, 64}}) {
    const auto src = random_floats(sz(s.n_rows * s.n_src_cols), ++seed);
    std::vector<float> want(sz(s.n_rows * s.n_cols));
    ref::copy_columns(src.data(), s.n_rows, s.n_src_cols, s.col_begin, s.n_cols, want.data());
    const Tensor tsrc = r.input(src, {s.n_rows, s.n_src_cols});  // src [n_rows, n_src_cols]
    const Tensor dst = r.output({s.n_rows, s.n_cols});           // dst [n_rows, n_cols]
    r.backend().copy_columns(tsrc, s.col_begin, dst);
    r.check({Op::kCopyColumns}, r.read(dst), want, dims({s.n_rows, s.n_src_cols}));
    r.free_all();
  }
  // The QKV split into rows 3..5 of a larger cache-like tensor: the other rows stay untouched.
  const int64_t rows = 3, src_cols = 40, col_begin = 24, n_cols = 8;
  const auto src = random_floats(sz(rows * src_cols), ++seed);
  const auto cache0 = random_floats(sz(8 * n_cols), ++seed);
  std::vector<float> want = cache0;
  ref::copy_columns(src.data(), rows, src_cols, col_begin, n_cols, want.data() + 3 * n_cols);
  const Tensor tsrc = r.input(src, {rows, src_cols});  // src [3, 40]
  const Tensor cache = r.input(cache0, {8, 2, 4});     // cache [8, 2, 4]
  r.backend().copy_columns(tsrc, col_begin, cache.slice_rows(3, rows));
  r.check({Op::kCopyColumns}, r.read(cache), want, "into rows 3..5 of [8, 2, 4]");
  r.free_all();
}

void check_max_element(OpRun& r, const std::vector<float>& x, const std::string& what) {
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t i = ref::argmax(x.data(), n);
  const Tensor tx = r.input(x, {n});  // x [n]
  const Backend::MaxElement m = r.backend().max_element(tx);
  // Indices < 2^24 are exact as floats: one check of {value, index}.
  r.check({Op::kMaxElement}, {m.value, static_cast<float>(m.index)},
          {x[sz(i)], static_cast<float>(i)}, what + " {value, index}");
  r.free_all();
}

void run_max_element(OpRun& r) {
  // One block, chunk boundaries (cuda: 4096 per chunk), a vocabulary row.
  for (int64_t n : {1, 7, 255, 1000, 4096, 4097, 151936}) {
    check_max_element(r, random_floats(sz(n), 90 + sz(n)), std::to_string(n) + " elements");
  }
  // Ties go to the lowest index: within a block, and across chunks of a long row.
  std::vector<float> ties = random_floats(600, 91, 0.5f);
  ties[17] = ties[300] = ties[599] = 2.0f;
  check_max_element(r, ties, "600 elements, ties at 17, 300, 599");
  std::vector<float> far = random_floats(151936, 92);
  far[10] = far[100000] = 1e9f;
  check_max_element(r, far, "151936 elements, ties at 10 and 100000");
}

// ---- block-quantized weights (int8, int4, int4g128) ----

// Rows of random weights quantized with runtime/core/quant.h.   out [n_rows rows of row_bytes]
std::vector<uint8_t> quantized_rows(DType dt, int64_t n_rows, int64_t n_in, uint64_t seed) {
  const auto v = random_floats(sz(n_rows * n_in), seed);
  std::vector<uint8_t> out(sz(n_rows) * row_bytes(dt, n_in));
  for (int64_t j = 0; j < n_rows; ++j) {
    uint8_t* row = out.data() + j * row_bytes(dt, n_in);
    quantize_row(dt, v.data() + j * n_in, n_in, row);
    // q = -128 (byte 0): never written by the quantizer, but 8-bit GPTQ imports can hold it.
    if (dt == DType::kInt8)
      for (int64_t k = 3; k < n_in; k += 29) row[k] = 0;
  }
  return out;
}

// A backend without kernels for `dt` skips the case (the harness turns kUnsupported into a skip).
void need_weight_dtype(OpRun& r, DType dt) {
  if (!r.backend().supports_weight_dtype(dt))
    fail(StatusCode::kUnsupported, std::string("no kernels for ") + dtype_name(dt) + " weights");
}

// n_in: whole blocks of 32; up to 160, int4 rows are one group of fewer than 16 blocks; 544 and
// 1056 are whole groups of 16 (512 inputs) and a last group of 1 block.
// int4g128 takes the shapes of whole 128-input scale groups: 128 (one group of 4 blocks), 640 and
// 1152 (whole groups of 16 blocks, then one of 4).
constexpr std::pair<int64_t, int64_t> kQuantMatmulShapes[] = {
    {32, 9}, {64, 33}, {96, 7}, {160, 45}, {544, 17}, {1056, 24}, {128, 5}, {640, 19}, {1152, 11}};

void run_matmul_quantized(OpRun& r, DType dt, std::span<const int64_t> token_counts) {
  need_weight_dtype(r, dt);
  uint64_t seed = 60;
  for (int64_t n_tokens : token_counts) {
    for (auto [n_in, n_out] : kQuantMatmulShapes) {
      if (n_in % quant_scale_inputs(dt) != 0) continue;
      const auto x = random_floats(sz(n_tokens * n_in), ++seed);
      const auto w = quantized_rows(dt, n_out, n_in, ++seed);
      const auto bias = random_floats(sz(n_out), ++seed);
      const Tensor tx = r.input(x, {n_tokens, n_in});    // x [n_tokens, n_in]
      const Tensor tw = r.weight(w, dt, {n_out, n_in});  // w [n_out rows of row_bytes(dt, n_in)]
      const Tensor tb = r.weight_f32(bias, {n_out});     // bias [n_out]
      for (bool with_bias : {false, true}) {
        std::vector<float> want(sz(n_tokens * n_out));
        ref::matmul(x.data(), n_tokens, n_in, w.data(), dt, n_out,
                    with_bias ? bias.data() : nullptr, want.data());
        const Tensor ty = r.output({n_tokens, n_out});  // y [n_tokens, n_out]
        r.backend().matmul(tx, tw, with_bias ? tb : Tensor{}, ty);
        r.check(
            {Op::kMatmul, dt, n_tokens, n_in}, r.read(ty), want,
            dims({n_tokens, n_in}) + " @ " + dims({n_out, n_in}) + (with_bias ? " + bias" : ""));
      }
      r.free_all();
    }
  }
}

void run_embed_quantized(OpRun& r, DType dt) {
  need_weight_dtype(r, dt);
  // 96: one int4 group of 3 blocks; int4g128: 640, a whole group of 16 blocks and one of 4.
  const int64_t n_vocab_local = 13, n_embd = dt == DType::kInt4G128 ? 640 : 96, vocab_start = 20;
  const std::vector<int32_t> ids = {20, 3, 32, 25, 33, 0, 20};  // 3, 33, 0 outside the shard
  const auto table = quantized_rows(dt, n_vocab_local, n_embd, 70);
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<float> want(sz(n * n_embd));
  ref::embed(ids.data(), n, table.data(), dt, n_vocab_local, vocab_start, n_embd, want.data());
  const Tensor t = r.weight(table, dt, {n_vocab_local, n_embd});  // [n_vocab_local, n_embd]
  const Tensor out = r.output({n, n_embd});                       // [n_tokens, n_embd]
  r.backend().embed(ids, t, vocab_start, out);
  r.check({Op::kEmbed, dt}, r.read(out), want, dims({n_vocab_local, n_embd}) + " table");
  r.free_all();
}

}  // namespace

std::vector<OpCase> dense_op_cases() {
  std::vector<OpCase> c;
  for (DType dt : kAllDtypes) {
    c.push_back(
        {std::string("embed_") + dtype_name(dt), Op::kEmbed, [dt](OpRun& r) { run_embed(r, dt); }});
  }
  c.push_back({"rms_norm", Op::kRmsNorm, run_rms_norm});
  for (DType dt : kAllDtypes) {
    const std::string d = dtype_name(dt);
    c.push_back(
        {"matmul_" + d + "_gemv", Op::kMatmul, [dt](OpRun& r) { run_matmul(r, dt, kGemvTokens); }});
    c.push_back(
        {"matmul_" + d + "_gemm", Op::kMatmul, [dt](OpRun& r) { run_matmul(r, dt, kGemmTokens); }});
  }
  for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
    const std::string d = dtype_name(dt);
    c.push_back({"embed_" + d, Op::kEmbed, [dt](OpRun& r) { run_embed_quantized(r, dt); }});
    c.push_back({"matmul_" + d + "_gemv", Op::kMatmul,
                 [dt](OpRun& r) { run_matmul_quantized(r, dt, kGemvTokens); }});
    c.push_back({"matmul_" + d + "_gemm", Op::kMatmul,
                 [dt](OpRun& r) { run_matmul_quantized(r, dt, kGemmTokens); }});
  }
  c.push_back({"rope", Op::kRope, run_rope});
  c.push_back(
      {"attention_decode", Op::kAttention, [](OpRun& r) { run_attention(r, kAttnDecode); }});
  c.push_back(
      {"attention_prefill", Op::kAttention, [](OpRun& r) { run_attention(r, kAttnPrefill); }});
  c.push_back({"swiglu", Op::kSwiglu, run_swiglu});
  c.push_back({"add", Op::kAdd, run_add});
  c.push_back({"copy_columns", Op::kCopyColumns, run_copy_columns});
  c.push_back({"max_element", Op::kMaxElement, run_max_element});
  return c;
}

}  // namespace shardlm::ops_test
