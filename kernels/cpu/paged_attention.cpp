// CPU kernels of the paged KV cache: store_kv (a step's K/V rows into the pools at their slots)
// and paged_attention (a whole step of many sequences against the pools, through the block
// tables). Not the pool's memory or bookkeeping (runtime/model/kv_pool.h, engine/).
//
// paged_attention cuts the step into independent work items, sorted longest first and handed
// to the pool's threads by an atomic counter (any thread may run any item). Every item walks
// its keys in chunks: the chunk's K rows are gathered through the block table and widened to
// f32 (KernelTable::widen) into a per-thread tile, scored, folded into each query row's running
// max / sum / unnormalized output (online softmax, flash-attention style: the scratch does not
// grow with the context), then the V rows are widened and accumulated. All f32.
//  - row items (sequences with < kTiledMinTokens query tokens, i.e. decode): the few tokens x
//    every query head. A block's slots hold all kv heads contiguously, so each chunk is read as
//    runs of whole blocks (a streaming read) and every query head of every GQA group is served
//    from it: KV is read once per sequence.
//    Scores per query row by attn_scores_row, P.V by attn_pv_row. On a bf16 pool (the
//    default KV dtype) these read the pool in place through a pointer per position and widen
//    in registers (attn_scores_row_bf16 / attn_pv_rows_bf16: the same bits as widening first),
//    so decode never writes a widened copy of the cache. Those in-place reads go head by head,
//    a whole token apart; with Context::touch_kv each chunk's K and V lines are first read
//    once in address order (touch_rows), a stream the hardware prefetchers follow, so the
//    head passes find them in cache and skip their own prefetches (Zen 4: 0.73-0.90x of the
//    attention time cold; software prefetches of the next chunk, all at once or spread over
//    the rows, changed nothing there); in cache, a GQA group's rows are scored together
//    (attn_scores_group_bf16_dot: each K row loaded once for them, the same bits; 0.92-0.93x).
//    An f8e4m3 pool is staged instead:
//    each chunk's rows are converted once to bf16 (exact: bf16 holds every f8e4m3 value) into
//    the thread's scratch, which the same kernels then read as a bf16 pool; the conversion is
//    shared by every query head of a GQA group. When the step has too few
//    items to keep the pool busy (few sequences, long contexts), an item's keys are split into
//    ranges of >= kMinSplitKeys (split-K, "flash decoding"), whose partial softmaxes are merged
//    exactly afterwards.
//  - tiled items (prefill chunks): up to kTileRows query rows = a tile of tokens x the query
//    heads of one kv head (a GQA group shares every K/V chunk), keys transposed per chunk and
//    scored by the register-blocked attn_scores, P.V by attn_pv. KV is read once per
//    (query tile, kv head).
//    With bf16 activations (Context::bf16_activations, what PyTorch's bf16 attention does) the
//    tile's queries and its softmax numerators are rounded to bf16 before their products (sums
//    stay f32): on a bf16 or f8e4m3 pool with VDPBF16PS (bf16_dot_supported(), head_dim a
//    multiple of 32) both products run on the bf16 GEMM tile of gemm_bf16_dot.h, the pool's K
//    rows packed as they are (f8e4m3 rows converted to bf16 first, exactly) and V's as pairs of
//    positions, no widening; elsewhere the f32 loops multiply the rounded values (the same
//    products). Row items (decode) round the same two operands; their
//    scores run on VDPBF16PS (attention_bf16_dot.h) where the tiles do and head_dim <= 256 (the
//    query's bf16 bits against K read in place, ~15% less time than widening: they are bound by
//    reading the cache), their P.V on the f32 loops.
//
// Deterministic mode (deterministic = true): every query row goes through exactly the same
// floating-point operations whatever else is in the step (other sequences, how many of its own
// tokens, i.e. prefill chunking) and whatever the thread count. Every sequence takes the row
// path (prefill chunks in tiles of kTileRows / group tokens per kv head), never split; a row's
// keys are visited in chunks of kRowChunk positions aligned to absolute multiples of kRowChunk,
// so they depend only on the row's own position and window; each chunk is scored over all its
// kRowChunk keys (keys the row may not see are computed and then ignored), so the micro-kernel's
// grouping of a key never depends on the neighbours; chunk softmaxes are merged in chunk order;
// threads only split independent items. Bits still depend on the ISA level. Cost: no split-K,
// so a decode sequence is one item and a step of fewer decode sequences than threads leaves
// threads idle (a lone 4k-token decode runs on one thread); prefill scores go row by row
// (attn_scores_row) instead of the register-blocked attn_scores on transposed keys, measured
// ~10-20% slower on prefill chunks (head_dim 128); decode steps with at least as many sequences
// as threads cost the same as fast mode.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/kernel_table.h"
#if defined(SHARDLM_CPU_BF16_DOT)
#include "kernels/cpu/attention_bf16_dot.h"
#include "kernels/cpu/gemm_bf16_dot.h"
#endif

namespace shardlm::cpu {

namespace {

constexpr int64_t kTiledMinTokens = 4;     // fewer query tokens in a sequence: the row path
constexpr int64_t kChunk = 128;            // key positions per step of tiled items
constexpr int64_t kDotScoresMaxHd = 256;   // attn_scores_row_bf16_dot's largest head_dim
constexpr int64_t kRowChunk = 64;          // key positions per step of row items; deterministic
                                           // mode aligns them to multiples of kRowChunk
constexpr int64_t kTileRows = 128;         // query rows (tokens x heads of a group) per tile
constexpr int64_t kMinSplitKeys = 128;     // a split-K range has at least this many keys
constexpr int64_t kItemsPerThread = 4;     // split until an item costs <= total / (this x threads)
constexpr int64_t kStoreMinElems = 16384;  // store_kv: elements per thread at least

int64_t round16(int64_t n) {
  return (n + 15) / 16 * 16;
}

struct Item {
  int64_t cost;         // ~ query rows x keys, for the longest-first order
  int64_t k0, k1;       // key positions [k0, k1) of this split-K range (whole context otherwise)
  int64_t partial;      // float offset of this group's partials [n_split][rows][hd + 2]
  int32_t seq, t0, t1;  // sequence and its query tokens [t0, t1) of the step
  int32_t kvh0, n_kvh;  // kv heads [kvh0, kvh0 + n_kvh) and their query heads
  int32_t split, n_split;
  bool tiled;
  // Query row r: token t0 + r / (n_kvh * group), head kvh0 * group + r % (n_kvh * group).
  int64_t rows(int64_t group) const { return (t1 - t0) * n_kvh * group; }
};

// One thread's scratch (floats, 64-byte aligned slices). R = most rows of an item.
struct Scratch {
  float* kbuf;   // one chunk's K rows, widened: [kChunk, hd] or [kRowChunk, n_kvh, hd]; an
                 // f8e4m3 pool's row items stage them here as bf16 (stage_f8_rows)
  float* ktr;    // [hd, kChunk] the same keys transposed (tiled items)
  float* vbuf;   // one chunk's V rows, widened, as kbuf
  float* s;      // [R, kChunk] scores, then probabilities
  float* qb;     // [R, hd] gathered queries (tiled items)
  float* o;      // [R, hd] unnormalized outputs
  float* tmp;    // [R, hd] one chunk's P.V (tiled items)
  float* m;      // [R] running max
  float* l;      // [R] running sum
  float* alpha;  // [R] this chunk's rescale of the row (< 0: row not in this chunk)
  // Row items on a bf16 pool read K/V in place (no widened copy): one pointer per (kv head,
  // position) of the chunk, and a row of zeros for positions the row may not see.
  const uint16_t** kp;  // [n_kv_heads, kRowChunk]
  const uint16_t** vp;  // [n_kv_heads, kRowChunk]
  uint16_t* zero_row;   // [hd] bf16 zeros
  // Tiled items on the bf16 tile (tiled_words words; null otherwise): the queries and one
  // chunk's probabilities as bf16 pair panels, the chunk's K and V packed as its weights.
  uint32_t* qp;         // bf16_gemm_pack_x of [R, hd]
  uint32_t* pp;         // bf16_gemm_pack_x of [R, kChunk]
  uint32_t* kp_packed;  // [kChunk / 32][hd / 2][32]: key panels
  uint32_t* vp_packed;  // [hd / 32][kChunk / 2][32]: output-dim panels

  // kv: floats of one chunk's widened K (or V) rows; kvh: kv heads of a row item at most.
  // tiled: words of the bf16 tile's buffers (0 without them).
  static int64_t floats(int64_t rows, int64_t hd, int64_t kv, int64_t kvh, int64_t tiled) {
    const int64_t ptr_floats = round16(kvh * kRowChunk * int64_t{sizeof(void*) / sizeof(float)});
    return 2 * round16(kv) + round16(hd * kChunk) + round16(rows * kChunk) +
           3 * round16(rows * hd) + 3 * round16(rows) + 2 * ptr_floats + round16(hd) + tiled;
  }
  static Scratch carve(float* p, int64_t rows, int64_t hd, int64_t kv, int64_t kvh,
                       bool bf16_tiles) {
    Scratch sc;
    auto take = [&](int64_t n) {
      float* r = p;
      p += round16(n);
      return r;
    };
    sc.kbuf = take(kv);
    sc.ktr = take(hd * kChunk);
    sc.vbuf = take(kv);
    sc.s = take(rows * kChunk);
    sc.qb = take(rows * hd);
    sc.o = take(rows * hd);
    sc.tmp = take(rows * hd);
    sc.m = take(rows);
    sc.l = take(rows);
    sc.alpha = take(rows);
    const int64_t ptr_floats = kvh * kRowChunk * int64_t{sizeof(void*) / sizeof(float)};
    sc.kp = reinterpret_cast<const uint16_t**>(take(ptr_floats));
    sc.vp = reinterpret_cast<const uint16_t**>(take(ptr_floats));
    sc.zero_row = reinterpret_cast<uint16_t*>(take(hd));
    std::fill(sc.zero_row, sc.zero_row + hd, uint16_t{0});
    sc.qp = sc.pp = sc.kp_packed = sc.vp_packed = nullptr;
#if defined(SHARDLM_CPU_BF16_DOT)
    if (bf16_tiles) {
      auto words = [&](int64_t n) { return reinterpret_cast<uint32_t*>(take(n)); };
      sc.qp = words(bf16_gemm_x_words(rows, hd));
      sc.pp = words(bf16_gemm_x_words(rows, kChunk));
      sc.kp_packed = words(kChunk * (hd / 2));
      sc.vp_packed = words(hd * (kChunk / 2));
    }
#else
    (void)bf16_tiles;
#endif
    return sc;
  }
  // Words of the bf16 tile's buffers for `rows` rows.
  static int64_t tiled_words(int64_t rows, int64_t hd) {
#if defined(SHARDLM_CPU_BF16_DOT)
    return round16(bf16_gemm_x_words(rows, hd)) + round16(bf16_gemm_x_words(rows, kChunk)) +
           round16(kChunk * (hd / 2)) + round16(hd * (kChunk / 2));
#else
    (void)rows;
    (void)hd;
    return 0;
#endif
  }
};

// What every item reads.
struct Geo {
  const KernelTable& kt;
  const PagedKvView& kv;
  const StepLayoutView& lay;
  const float* q;
  float* out;
  int64_t n_head, group, hd, ld;  // ld: elements between consecutive slots' rows
  int64_t window;
  float scale;
  size_t esz;
  bool bf16_activations;  // round every item's queries and softmax numerators to bf16
  bool bf16_tiles;        // ... and run tiled items on the bf16 GEMM tile (run_tiled_bf16)
  bool bf16_dot_rows;     // ... and score row items' bf16 rows with VDPBF16PS
  bool touch_kv;          // row items on a bf16 pool read each chunk's lines first (touch_rows)

  int64_t lo(int64_t p) const { return window > 0 ? std::max<int64_t>(0, p - window + 1) : 0; }
  int64_t pos(int64_t t) const { return lay.pos[t]; }
  float* out_row(int64_t t, int64_t h) const { return out + (t * n_head + h) * hd; }
  const float* q_row(int64_t t, int64_t h) const { return q + (t * n_head + h) * hd; }

  // Widens positions [j0, j1) of sequence `seq`, kv heads [kvh0, kvh0 + n_kvh) of `pool` into
  // tile rows (row i = position j0 + i); rows outside [vlo, vhi] are zero (never read from
  // the pool: those blocks may be unmapped). With every kv head, a block's slots are one
  // contiguous run of the pool, widened by one call (a streaming read).
  //   tile [j1 - j0, n_kvh, hd]
  void load(const void* pool, int64_t seq, int64_t kvh0, int64_t n_kvh, int64_t j0, int64_t j1,
            int64_t vlo, int64_t vhi, float* tile) const {
    const int32_t* bt = lay.block_table + seq * lay.max_blocks;
    const uint8_t* base = static_cast<const uint8_t*>(pool);
    const int64_t bs = kv.block_size, width = n_kvh * hd;
    for (int64_t j = j0; j < j1;) {
      float* dst = tile + (j - j0) * width;
      if (j < vlo || j > vhi) {
        std::fill(dst, dst + width, 0.0f);
        ++j;
        continue;
      }
      const int64_t slot = static_cast<int64_t>(bt[j / bs]) * bs + j % bs;
      const uint8_t* src = base + static_cast<size_t>(slot * ld + kvh0 * hd) * esz;
      if (width == ld) {  // this block's slots up to vhi / j1 in one run
        const int64_t n = std::min({bs - j % bs, vhi + 1 - j, j1 - j});
        kt.widen(src, kv.dtype, n * width, dst);
        j += n;
      } else {
        kt.widen(src, kv.dtype, width, dst);
        ++j;
      }
    }
  }
};

// Row pointers of positions [j0, j1) of sequence `seq`, kv heads [kvh0, kvh0 + n_kvh) of a bf16
// `pool`: ptrs[h * kRowChunk + i] -> position j0 + i of head kvh0 + h, or `zero` outside
// [vlo, vhi] (never read from the pool, as Geo::load).
void gather_rows(const Geo& g, const void* pool, int64_t seq, int64_t kvh0, int64_t n_kvh,
                 int64_t j0, int64_t j1, int64_t vlo, int64_t vhi, const uint16_t* zero,
                 const uint16_t** ptrs) {
  const int32_t* bt = g.lay.block_table + seq * g.lay.max_blocks;
  const uint16_t* base = static_cast<const uint16_t*>(pool);
  const int64_t bs = g.kv.block_size;
  for (int64_t j = j0; j < j1; ++j) {
    const bool in = j >= vlo && j <= vhi;
    const uint16_t* row =
        in ? base + (static_cast<int64_t>(bt[j / bs]) * bs + j % bs) * g.ld + kvh0 * g.hd : zero;
    for (int64_t h = 0; h < n_kvh; ++h) ptrs[h * kRowChunk + (j - j0)] = in ? row + h * g.hd : zero;
  }
}

// Reads one byte of every 64-byte line of positions [j0, j1) of sequence `seq`, kv heads
// [kvh0, kvh0 + n_kvh) of `pool`, in address order (with every kv head a block's slots are one
// run), so they arrive through the hardware prefetchers' sequential streams instead of the
// per-head passes' reads a whole token apart (Context::touch_kv). Positions must be mapped.
void touch_rows(const Geo& g, const void* pool, int64_t seq, int64_t kvh0, int64_t n_kvh,
                int64_t j0, int64_t j1) {
  const int32_t* bt = g.lay.block_table + seq * g.lay.max_blocks;
  const uint8_t* base = static_cast<const uint8_t*>(pool);
  const int64_t bs = g.kv.block_size, width = n_kvh * g.hd;
  for (int64_t j = j0; j < j1;) {
    const int64_t slot = static_cast<int64_t>(bt[j / bs]) * bs + j % bs;
    const int64_t n = width == g.ld ? std::min(bs - j % bs, j1 - j) : 1;
    const uint8_t* p = base + static_cast<size_t>(slot * g.ld + kvh0 * g.hd) * g.esz;
    const uintptr_t end = reinterpret_cast<uintptr_t>(p) + static_cast<size_t>(n * width) * g.esz;
    for (uintptr_t a = reinterpret_cast<uintptr_t>(p); a < end; a = (a & ~uintptr_t{63}) + 64) {
      (void)*reinterpret_cast<const volatile uint8_t*>(a);
    }
    j += n;
  }
}

// gather_rows for an f8e4m3 `pool`: positions [j0, j1) of kv heads [kvh0, kvh0 + n_kvh) are
// converted to bf16 into `stage` (position j0 + i at row i, [j1 - j0, n_kvh, hd]) and the
// pointers point there; `zero` outside [vlo, vhi] (never read from the pool).
void stage_f8_rows(const Geo& g, const void* pool, int64_t seq, int64_t kvh0, int64_t n_kvh,
                   int64_t j0, int64_t j1, int64_t vlo, int64_t vhi, const uint16_t* zero,
                   uint16_t* stage, const uint16_t** ptrs) {
  const int32_t* bt = g.lay.block_table + seq * g.lay.max_blocks;
  const uint8_t* base = static_cast<const uint8_t*>(pool);
  const int64_t bs = g.kv.block_size, width = n_kvh * g.hd;
  for (int64_t j = j0; j < j1; ++j) {
    const bool in = j >= vlo && j <= vhi;
    uint16_t* row = stage + (j - j0) * width;
    if (in) {
      const int64_t slot = static_cast<int64_t>(bt[j / bs]) * bs + j % bs;
      g.kt.f8e4m3_to_bf16(base + slot * g.ld + kvh0 * g.hd, width, row);
    }
    for (int64_t h = 0; h < n_kvh; ++h) ptrs[h * kRowChunk + (j - j0)] = in ? row + h * g.hd : zero;
  }
}

// dst[d * ldd + j] = src[j * hd + d], 16 keys at a time (each store run fills a cache line).
void transpose(const float* src, int64_t n, int64_t hd, float* dst, int64_t ldd) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t nj = std::min<int64_t>(16, n - j0);
    for (int64_t d = 0; d < hd; ++d) {
      for (int64_t jj = 0; jj < nj; ++jj) dst[d * ldd + j0 + jj] = src[(j0 + jj) * hd + d];
    }
  }
}

// Folds one chunk's scores p[0, n) into a row's running softmax; p becomes exp(p - max).
// Returns the factor the row's previous output must be scaled by (0 for the first chunk).
inline float softmax_step(const KernelTable& kt, float* p, int64_t n, float& m, float& l) {
  const float mn = std::max(m, kt.max(p, n));
  const float sum = kt.exp_sub_sum(p, mn, n);
  const float alpha = std::exp(m - mn);  // exp(-inf) = 0 on the first chunk
  l = l * alpha + sum;
  m = mn;
  return alpha;
}

// out row = o / l (zero when the row saw no key, which a valid layout never produces).
inline void write_row(const float* o, float l, int64_t n, float* dst) {
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int64_t d = 0; d < n; ++d) dst[d] = o[d] * inv;
}

// x = bf16(x), round to nearest even, kept as f32.
void round_to_bf16_values(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

// Masks chunk row r's scores outside its visible keys [a, b] (chunk-relative; a > b: none) and
// folds the visible ones into the row's running softmax (sc.alpha[r] as softmax_step, -1 for a
// row that sees nothing here). pre_scale: the scores are raw dot products, times g.scale first.
void chunk_softmax_row(const Geo& g, const Scratch& sc, int64_t r, int64_t a, int64_t b, int64_t nc,
                       bool pre_scale) {
  float* sr = sc.s + r * kChunk;
  if (a > b) {  // no visible key here: the row weighs nothing in this chunk's P.V
    std::fill(sr, sr + nc, 0.0f);
    sc.alpha[r] = -1.0f;
    return;
  }
  std::fill(sr, sr + a, 0.0f);
  std::fill(sr + b + 1, sr + nc, 0.0f);
  if (pre_scale) g.kt.scale(sr + a, g.scale, b - a + 1);
  sc.alpha[r] = softmax_step(g.kt, sr + a, b - a + 1, sc.m[r], sc.l[r]);
  // The bf16 tile rounds P as it packs it.
  if (g.bf16_activations && !g.bf16_tiles) round_to_bf16_values(sr + a, b - a + 1);
}

// o = o * alpha + this chunk's P.V (sc.tmp) for every row of a tiled item.
void fold_chunk_output(const Geo& g, const Scratch& sc, int64_t n_rows) {
  const int64_t hd = g.hd;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float alpha = sc.alpha[r];
    float* o = sc.o + r * hd;
    if (alpha < 0.0f) continue;
    if (alpha == 0.0f) {  // first chunk of the row (or a vanished past)
      std::memcpy(o, sc.tmp + r * hd, static_cast<size_t>(hd) * sizeof(float));
      continue;
    }
    if (alpha != 1.0f) g.kt.scale(o, alpha, hd);
    g.kt.add(o, sc.tmp + r * hd, hd);
  }
}

// The visible keys [lo, hi] of a tiled item (the union over its tokens).
void tiled_key_range(const Geo& g, const Item& it, int64_t& lo, int64_t& hi) {
  lo = std::numeric_limits<int64_t>::max();
  hi = -1;
  for (int64_t t = it.t0; t < it.t1; ++t) {
    lo = std::min(lo, g.lo(g.pos(t)));
    hi = std::max(hi, g.pos(t));
  }
}

#if defined(SHARDLM_CPU_BF16_DOT)
// Copies positions [j0, j1) of sequence `seq`, kv head `kvh`, of a bf16 pool into rows of
// `tile` (row i = position j0 + i), or converts them from an f8e4m3 pool (exact: bf16 holds
// every f8e4m3 value); rows outside [vlo, vhi] are zero (never read from the pool, as
// Geo::load).   tile [j1 - j0, hd] bf16
void copy_bf16_rows(const Geo& g, const void* pool, int64_t seq, int64_t kvh, int64_t j0,
                    int64_t j1, int64_t vlo, int64_t vhi, uint16_t* tile) {
  const int32_t* bt = g.lay.block_table + seq * g.lay.max_blocks;
  const uint8_t* base = static_cast<const uint8_t*>(pool);
  const int64_t bs = g.kv.block_size, hd = g.hd;
  const bool f8 = g.kv.dtype == DType::kF8E4M3;
  for (int64_t j = j0; j < j1; ++j) {
    uint16_t* dst = tile + (j - j0) * hd;
    if (j < vlo || j > vhi) {
      std::fill(dst, dst + hd, uint16_t{0});
      continue;
    }
    const int64_t slot = static_cast<int64_t>(bt[j / bs]) * bs + j % bs;
    const uint8_t* src = base + static_cast<size_t>(slot * g.ld + kvh * hd) * g.esz;
    if (f8) {
      g.kt.f8e4m3_to_bf16(src, hd, dst);
    } else {
      std::memcpy(dst, src, static_cast<size_t>(hd) * sizeof(uint16_t));
    }
  }
}

// Tiled item (one kv head) on the bf16 GEMM tile: scores = bf16(Q) . K (keys as the tile's
// weight rows), P.V = bf16(P) . V (V's columns as its weight rows, pairs of positions).
void run_tiled_bf16(const Geo& g, const Item& it, const Scratch& sc) {
  const int64_t hd = g.hd, G = g.group, n_rows = it.rows(G);
  const int64_t mr = kBf16GemmMr, nr = kBf16GemmNr;
  const int64_t n_mp = (n_rows + mr - 1) / mr, hp = hd / 2;
  int64_t ulo, uhi;
  tiled_key_range(g, it, ulo, uhi);
  for (int64_t r = 0; r < n_rows; ++r) {
    std::memcpy(sc.qb + r * hd, g.q_row(it.t0 + r / G, it.kvh0 * G + r % G),
                static_cast<size_t>(hd) * sizeof(float));
    sc.m[r] = -INFINITY;
    sc.l[r] = 0.0f;
  }
  // One k block of hd / 2 pairs (<= kBf16GemmKcPairs), so panel mp starts at mp * hp * mr.
  bf16_gemm_pack_x(sc.qb, n_rows, hd, hd, 0, n_mp, sc.qp);
  uint16_t* rows16 = reinterpret_cast<uint16_t*>(sc.kbuf);  // [kChunk, hd] bf16
  for (int64_t j0 = ulo; j0 <= uhi; j0 += kChunk) {
    const int64_t nc = std::min(kChunk, uhi + 1 - j0);
    copy_bf16_rows(g, g.kv.k, it.seq, it.kvh0, j0, j0 + nc, ulo, uhi, rows16);
    for (int64_t jp = 0; jp * nr < nc; ++jp) {
      const int64_t nk = std::min(nr, nc - jp * nr);
      uint32_t* wp = sc.kp_packed + jp * hp * nr;
      bf16_gemm_pack_w(rows16, hd, jp * nr, nk, 0, hp, wp);
      for (int64_t mp = 0; mp < n_mp; ++mp) {
        bf16_gemm_tile(sc.qp + mp * hp * mr, wp, hp, nullptr, nullptr,
                       sc.s + mp * mr * kChunk + jp * nr, kChunk,
                       static_cast<int>(std::min(mr, n_rows - mp * mr)), static_cast<int>(nk));
      }
    }
    for (int64_t t = it.t0; t < it.t1; ++t) {
      const int64_t a = std::max(g.lo(g.pos(t)), j0) - j0;
      const int64_t b = std::min(g.pos(t), j0 + nc - 1) - j0;
      for (int64_t r = (t - it.t0) * G; r < (t - it.t0 + 1) * G; ++r) {
        chunk_softmax_row(g, sc, r, a, b, nc, true);
      }
    }
    // P.V: k = the chunk's positions (nc, odd padded by a zero pair half on both sides), one k
    // block of pc pairs.
    const int64_t pc = (nc + 1) / 2;
    bf16_gemm_pack_x(sc.s, n_rows, nc, kChunk, 0, n_mp, sc.pp);
    copy_bf16_rows(g, g.kv.v, it.seq, it.kvh0, j0, j0 + nc, ulo, uhi, rows16);
    for (int64_t dp = 0; dp * nr < hd; ++dp) {
      uint32_t* wp = sc.vp_packed + dp * pc * nr;
      bf16_gemm_pack_w_kmajor(rows16, nc, hd, dp * nr, nr, 0, pc, wp);
      for (int64_t mp = 0; mp < n_mp; ++mp) {
        bf16_gemm_tile(sc.pp + mp * pc * mr, wp, pc, nullptr, nullptr,
                       sc.tmp + mp * mr * hd + dp * nr, hd,
                       static_cast<int>(std::min(mr, n_rows - mp * mr)), static_cast<int>(nr));
      }
    }
    fold_chunk_output(g, sc, n_rows);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    write_row(sc.o + r * hd, sc.l[r], hd, g.out_row(it.t0 + r / G, it.kvh0 * G + r % G));
  }
}
#endif

// Tiled item (one kv head): register-blocked scores on transposed keys, P.V per tile.
void run_tiled(const Geo& g, const Item& it, const Scratch& sc) {
  const KernelTable& kt = g.kt;
  const int64_t hd = g.hd, G = g.group, n_rows = it.rows(G);
  int64_t ulo, uhi;
  tiled_key_range(g, it, ulo, uhi);
  for (int64_t r = 0; r < n_rows; ++r) {
    std::memcpy(sc.qb + r * hd, g.q_row(it.t0 + r / G, it.kvh0 * G + r % G),
                static_cast<size_t>(hd) * sizeof(float));
    if (g.bf16_activations) round_to_bf16_values(sc.qb + r * hd, hd);
    sc.m[r] = -INFINITY;
    sc.l[r] = 0.0f;
  }
  for (int64_t j0 = ulo; j0 <= uhi; j0 += kChunk) {
    const int64_t nc = std::min(kChunk, uhi + 1 - j0);
    g.load(g.kv.k, it.seq, it.kvh0, 1, j0, j0 + nc, ulo, uhi, sc.kbuf);
    transpose(sc.kbuf, nc, hd, sc.ktr, kChunk);
    kt.attn_scores(sc.qb, hd, n_rows, sc.ktr, kChunk, nc, hd, g.scale, sc.s, kChunk);
    for (int64_t t = it.t0; t < it.t1; ++t) {
      const int64_t a = std::max(g.lo(g.pos(t)), j0) - j0;
      const int64_t b = std::min(g.pos(t), j0 + nc - 1) - j0;
      for (int64_t r = (t - it.t0) * G; r < (t - it.t0 + 1) * G; ++r) {
        chunk_softmax_row(g, sc, r, a, b, nc, false);
      }
    }
    g.load(g.kv.v, it.seq, it.kvh0, 1, j0, j0 + nc, ulo, uhi, sc.vbuf);
    kt.attn_pv(sc.s, kChunk, n_rows, sc.vbuf, hd, nc, hd, sc.tmp, hd);
    fold_chunk_output(g, sc, n_rows);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    write_row(sc.o + r * hd, sc.l[r], hd, g.out_row(it.t0 + r / G, it.kvh0 * G + r % G));
  }
}

// Row item (decode; every sequence in deterministic mode): per chunk the K rows of the item's
// kv heads are widened once and scored row by row, the V rows widened once and accumulated row
// by row. Query row r reads keys [max(lo, k0), min(pos, k1 - 1)] of its kv head.
void run_rows(const Geo& g, const Item& it, const Scratch& sc, bool det, float* partials) {
  const KernelTable& kt = g.kt;
  const int64_t hd = g.hd, G = g.group, hg = it.n_kvh * G, n_rows = it.rows(G);
  const int64_t width = it.n_kvh * hd;  // floats per widened position
  auto row_lo = [&](int64_t t) { return std::max(g.lo(g.pos(t)), it.k0); };
  auto row_hi = [&](int64_t t) { return std::min<int64_t>(g.pos(t), it.k1 - 1); };
  int64_t ulo = std::numeric_limits<int64_t>::max(), uhi = -1;
  for (int64_t t = it.t0; t < it.t1; ++t) {
    if (row_lo(t) > row_hi(t)) continue;
    ulo = std::min(ulo, row_lo(t));
    uhi = std::max(uhi, row_hi(t));
  }
  // A bf16 pool is read in place, an f8e4m3 one staged as bf16, when the kernels cover this
  // head_dim (a call with no keys says whether they do).
  const bool bf16_rows = kt.attn_scores_row_bf16 && kt.attn_pv_rows_bf16 &&
                         kt.attn_scores_row_bf16(nullptr, nullptr, 0, hd, 1.0f, nullptr) &&
                         kt.attn_pv_rows_bf16(nullptr, 0, 0, nullptr, 0, hd, nullptr, 0, true);
  const bool staged = bf16_rows && g.kv.dtype == DType::kF8E4M3;
  const bool in_place = bf16_rows && (g.kv.dtype == DType::kBF16 || staged);
  // Each chunk's lines read first (Context::touch_kv): the kernels then skip their prefetches,
  // which cost time once the lines are in cache (Zen 4: 0.92-0.96x without them).
  const bool touched = in_place && !staged && g.touch_kv;
  uint16_t* kstage = reinterpret_cast<uint16_t*>(sc.kbuf);
  uint16_t* vstage = reinterpret_cast<uint16_t*>(sc.vbuf);
  // In the bf16 mode with VDPBF16PS the scores skip widening: the query is already bf16, and its
  // bits (each rounded float's upper half) are taken once per item into sc.tmp (unused by row
  // items): qbits [n_rows, hd].
  const bool dot_scores = in_place && g.bf16_dot_rows && hd <= kDotScoresMaxHd;
  // Touched chunks are in cache: a GQA group's rows are scored together there (each K row loaded
  // once for them; the same bits). Untouched, the per-row loop's reads keep more misses in flight.
  bool group_scores = false;
#if defined(SHARDLM_CPU_BF16_DOT)
  group_scores = dot_scores && touched &&
                 attn_scores_group_bf16_dot(nullptr, 0, G, nullptr, 0, hd, 1.0f, nullptr, 0);
#endif
  uint16_t* qbits = reinterpret_cast<uint16_t*>(sc.tmp);
  for (int64_t r = 0; r < n_rows; ++r) {
    sc.m[r] = -INFINITY;
    sc.l[r] = 0.0f;
    if (g.bf16_activations) {  // sc.qb row r: the row's query, rounded
      float* qb = sc.qb + r * hd;
      std::memcpy(qb, g.q_row(it.t0 + r / hg, it.kvh0 * G + r % hg),
                  static_cast<size_t>(hd) * sizeof(float));
      round_to_bf16_values(qb, hd);
      if (dot_scores) {
        for (int64_t i = 0; i < hd; ++i) {
          uint32_t u;
          std::memcpy(&u, qb + i, sizeof(u));
          qbits[r * hd + i] = static_cast<uint16_t>(u >> 16);
        }
      }
    }
  }
  const int64_t first = uhi < 0 ? 0 : det ? ulo / kRowChunk * kRowChunk : ulo;
  for (int64_t c0 = first; c0 <= uhi; c0 += kRowChunk) {
    // Deterministic: the whole aligned chunk is scored (keys outside [ulo, uhi] are zero rows).
    const int64_t c1 = det ? c0 + kRowChunk : std::min(c0 + kRowChunk, uhi + 1);
    const int64_t vlo = std::max(c0, ulo), vhi = std::min(c1 - 1, uhi);
    const int64_t kb = det ? c0 : vlo;  // position of kbuf's row 0
    if (touched) {
      touch_rows(g, g.kv.k, it.seq, it.kvh0, it.n_kvh, vlo, vhi + 1);
      touch_rows(g, g.kv.v, it.seq, it.kvh0, it.n_kvh, vlo, vhi + 1);
    }
    if (staged) {
      stage_f8_rows(g, g.kv.k, it.seq, it.kvh0, it.n_kvh, kb, det ? c1 : vhi + 1, vlo, vhi,
                    sc.zero_row, kstage, sc.kp);
    } else if (in_place) {
      gather_rows(g, g.kv.k, it.seq, it.kvh0, it.n_kvh, kb, det ? c1 : vhi + 1, vlo, vhi,
                  sc.zero_row, sc.kp);
    } else {
      g.load(g.kv.k, it.seq, it.kvh0, it.n_kvh, kb, det ? c1 : vhi + 1, vlo, vhi, sc.kbuf);
    }
    for (int64_t t = it.t0; t < it.t1; ++t) {
      const int64_t a = std::max(row_lo(t), c0), b = std::min(row_hi(t), c1 - 1);
#if defined(SHARDLM_CPU_BF16_DOT)
      if (group_scores && a <= b) {  // kv head h: the token's rows r0 + h G .. r0 + h G + G - 1
        const int64_t r0 = (t - it.t0) * hg, ks = det ? 0 : a - kb, ss = det ? 0 : a - c0;
        for (int64_t h = 0; h < it.n_kvh; ++h) {
          const int64_t r = r0 + h * G;
          attn_scores_group_bf16_dot(qbits + r * hd, hd, G, sc.kp + h * kRowChunk + ks,
                                     det ? kRowChunk : b - a + 1, hd, g.scale,
                                     sc.s + r * kChunk + ss, kChunk);
        }
      }
#endif
      for (int64_t r = (t - it.t0) * hg; r < (t - it.t0 + 1) * hg; ++r) {
        if (a > b) {
          sc.alpha[r] = -1.0f;
          continue;
        }
        const int64_t lh = r % hg;  // head within the item
        const float* qr = g.bf16_activations ? sc.qb + r * hd : g.q_row(t, it.kvh0 * G + lh);
        const float* kr = sc.kbuf + (lh / G) * hd;
        float* sr = sc.s + r * kChunk;  // sr[i] = key c0 + i
        const uint16_t* const* kpr = sc.kp + (lh / G) * kRowChunk;
        if (group_scores) {
          // scored above
        } else if (dot_scores) {
#if defined(SHARDLM_CPU_BF16_DOT)
          const uint16_t* qr_bits = qbits + r * hd;
          if (det) {
            attn_scores_row_bf16_dot(qr_bits, kpr, kRowChunk, hd, g.scale, sr, !touched);
          } else {
            attn_scores_row_bf16_dot(qr_bits, kpr + (a - kb), b - a + 1, hd, g.scale, sr + (a - c0),
                                     !touched);
          }
#endif
        } else if (in_place && det) {
          kt.attn_scores_row_bf16(qr, kpr, kRowChunk, hd, g.scale, sr);
        } else if (in_place) {
          kt.attn_scores_row_bf16(qr, kpr + (a - kb), b - a + 1, hd, g.scale, sr + (a - c0));
        } else if (det) {
          kt.attn_scores_row(qr, kr, width, kRowChunk, hd, g.scale, sr);
        } else {
          kt.attn_scores_row(qr, kr + (a - kb) * width, width, b - a + 1, hd, g.scale,
                             sr + (a - c0));
        }
        sc.alpha[r] = softmax_step(kt, sr + (a - c0), b - a + 1, sc.m[r], sc.l[r]);
        if (g.bf16_activations) round_to_bf16_values(sr + (a - c0), b - a + 1);
      }
    }
    if (staged) {
      stage_f8_rows(g, g.kv.v, it.seq, it.kvh0, it.n_kvh, vlo, vhi + 1, vlo, vhi, sc.zero_row,
                    vstage, sc.vp);
    } else if (in_place) {
      gather_rows(g, g.kv.v, it.seq, it.kvh0, it.n_kvh, vlo, vhi + 1, vlo, vhi, sc.zero_row, sc.vp);
    } else {
      g.load(g.kv.v, it.seq, it.kvh0, it.n_kvh, vlo, vhi + 1, vlo, vhi, sc.vbuf);
    }
    for (int64_t t = it.t0; t < it.t1; ++t) {
      const int64_t a = std::max(row_lo(t), c0), b = std::min(row_hi(t), c1 - 1);
      if (a > b) continue;                  // the token's rows have no key here (alpha < 0)
      const int64_t r0 = (t - it.t0) * hg;  // the token's rows: kv head h has r0 + h G ..
      for (int64_t r = r0; r < r0 + hg; ++r) {
        const float alpha = sc.alpha[r];
        float* o = sc.o + r * hd;
        if (alpha == 0.0f) {
          std::fill(o, o + hd, 0.0f);
        } else if (alpha != 1.0f) {
          kt.scale(o, alpha, hd);
        }
        if (!in_place) {
          kt.attn_pv_row(sc.s + r * kChunk + (a - c0),
                         sc.vbuf + (a - vlo) * width + ((r - r0) / G) * hd, width, b - a + 1, hd,
                         o);
        }
      }
      if (in_place) {  // a kv head's G query rows share its V rows: each is read once for all
        for (int64_t h = 0; h < it.n_kvh; ++h) {
          const int64_t r = r0 + h * G;
          kt.attn_pv_rows_bf16(sc.s + r * kChunk + (a - c0), kChunk, G,
                               sc.vp + h * kRowChunk + (a - vlo), b - a + 1, hd, sc.o + r * hd, hd,
                               !touched);
        }
      }
    }
  }
  if (it.n_split == 1) {
    for (int64_t r = 0; r < n_rows; ++r) {
      write_row(sc.o + r * hd, sc.l[r], hd, g.out_row(it.t0 + r / hg, it.kvh0 * G + r % hg));
    }
    return;
  }
  // Split-K: this range's partial softmax per row, [m, l, o[hd]] (o = 0 for an empty range).
  float* part = partials + it.partial + it.split * n_rows * (hd + 2);
  for (int64_t r = 0; r < n_rows; ++r) {
    float* p = part + r * (hd + 2);
    p[0] = sc.m[r];
    p[1] = sc.l[r];
    if (sc.m[r] == -INFINITY) {
      std::fill(p + 2, p + 2 + hd, 0.0f);
    } else {
      std::memcpy(p + 2, sc.o + r * hd, static_cast<size_t>(hd) * sizeof(float));
    }
  }
}

// Merges the split-K partials of the item group that `head` (split 0) opens:
// out = sum_i e^(m_i - M) o_i / sum_i e^(m_i - M) l_i.
void merge_splits(const Geo& g, const Item& head, const float* partials) {
  const int64_t hd = g.hd, hg = head.n_kvh * g.group, n_rows = head.rows(g.group);
  const float* part = partials + head.partial;
  for (int64_t r = 0; r < n_rows; ++r) {
    float* dst = g.out_row(head.t0 + r / hg, head.kvh0 * g.group + r % hg);
    float mx = -INFINITY;
    for (int32_t i = 0; i < head.n_split; ++i) mx = std::max(mx, part[(i * n_rows + r) * (hd + 2)]);
    std::fill(dst, dst + hd, 0.0f);
    if (mx == -INFINITY) continue;
    float total = 0.0f;
    for (int32_t i = 0; i < head.n_split; ++i) {
      const float* p = part + (i * n_rows + r) * (hd + 2);
      if (p[0] == -INFINITY) continue;
      const float w = std::exp(p[0] - mx);
      total += w * p[1];
      g.kt.axpy(dst, w, p + 2, hd);
    }
    g.kt.scale(dst, 1.0f / total, hd);
  }
}

// Calls emit(item) for every item of the step:
//  - fewer than kTiledMinTokens tokens: one row item over every kv head (the pool's rows of a
//    block are then read as one run), split into key ranges until each costs <= target_cost
//    (0: never split);
//  - else per kv head, tiles of kTileRows / group tokens: tiled items, or row items in
//    deterministic mode.
template <class Emit>
void plan_items(const Geo& g, bool det, int64_t target_cost, int64_t n_head_kv, Emit&& emit) {
  const StepLayoutView& lay = g.lay;
  const int64_t G = g.group, tile_tokens = std::max<int64_t>(1, kTileRows / G);
  auto i32 = [](int64_t x) { return static_cast<int32_t>(x); };
  int64_t partial = 0;
  for (int64_t s = 0; s < lay.n_seqs; ++s) {
    const int64_t b = lay.seq_starts[s], e = lay.seq_starts[s + 1];
    if (e <= b) continue;
    if (e - b >= kTiledMinTokens) {
      for (int64_t t0 = b; t0 < e; t0 += tile_tokens) {
        const int64_t t1 = std::min(e, t0 + tile_tokens);
        int64_t cost = 0;
        for (int64_t t = t0; t < t1; ++t) cost += (g.pos(t) - g.lo(g.pos(t)) + 1) * G;
        for (int64_t kvh = 0; kvh < n_head_kv; ++kvh) {
          emit(Item{cost, 0, std::numeric_limits<int64_t>::max(), 0, i32(s), i32(t0), i32(t1),
                    i32(kvh), 1, 0, 1, !det});
        }
      }
      continue;
    }
    int64_t ulo = std::numeric_limits<int64_t>::max(), uhi = -1, cost = 0;
    for (int64_t t = b; t < e; ++t) {
      ulo = std::min(ulo, g.lo(g.pos(t)));
      uhi = std::max(uhi, g.pos(t));
      cost += (g.pos(t) - g.lo(g.pos(t)) + 1) * g.n_head;
    }
    const int64_t n_keys = uhi - ulo + 1;
    int64_t n_split = 1;
    if (target_cost > 0) {
      n_split = std::clamp<int64_t>((cost + target_cost - 1) / target_cost, 1,
                                    std::max<int64_t>(1, n_keys / kMinSplitKeys));
    }
    for (int64_t i = 0; i < n_split; ++i) {
      const int64_t k0 = ulo + n_keys * i / n_split, k1 = ulo + n_keys * (i + 1) / n_split;
      emit(Item{cost / n_split, k0, k1, partial, i32(s), i32(b), i32(e), 0, i32(n_head_kv), i32(i),
                i32(n_split), false});
    }
    if (n_split > 1) partial += n_split * (e - b) * g.n_head * (g.hd + 2);
  }
}

void narrow_row(const KernelTable& kt, const float* src, int64_t n, DType dtype, void* dst) {
  switch (dtype) {
    case DType::kInt8:  // never here: the KV cache is a float type
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16: {
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::kBF16: {
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::kF8E4M3:
      kt.f32_to_f8e4m3(src, n, static_cast<uint8_t*>(dst));
      return;
  }
}

}  // namespace

bool kv_touch_pays() {
  static const bool amd = amd_cpu();
  return amd;
}

void store_kv(const Context& ctx, const float* k, const float* v, const int64_t* slots,
              int64_t n_tokens, int64_t n_head_kv, int64_t head_dim, DType kv_dtype, void* k_pool,
              void* v_pool) {
  if (n_tokens <= 0) return;
  const int64_t row = n_head_kv * head_dim;
  const size_t row_bytes = static_cast<size_t>(row) * dtype_size(kv_dtype);
  const KernelTable& kt = kernel_table(ctx.isa);
  ctx.pool.parallel_for(
      n_tokens,
      [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          if (slots[t] < 0) continue;
          const size_t off = static_cast<size_t>(slots[t]) * row_bytes;
          narrow_row(kt, k + t * row, row, kv_dtype, static_cast<uint8_t*>(k_pool) + off);
          narrow_row(kt, v + t * row, row, kv_dtype, static_cast<uint8_t*>(v_pool) + off);
        }
      },
      std::max<int64_t>(1, kStoreMinElems / std::max<int64_t>(1, row)));
}

void paged_attention(const Context& ctx, const float* q, int64_t n_head, const PagedKvView& kv,
                     const StepLayoutView& layout, int64_t sliding_window, float scale,
                     bool deterministic, float* out) {
  if (layout.n_tokens <= 0 || layout.n_seqs <= 0) return;
  const KernelTable& kt = kernel_table(ctx.isa);
  const int64_t hd = kv.head_dim, group = n_head / kv.n_head_kv;
  Geo g{kt,
        kv,
        layout,
        q,
        out,
        n_head,
        group,
        hd,
        kv.n_head_kv * hd,
        sliding_window,
        scale,
        dtype_size(kv.dtype),
        ctx.bf16_activations,
        false,
        false,
        ctx.touch_kv};
#if defined(SHARDLM_CPU_BF16_DOT)
  static const bool bf16_dot = bf16_dot_supported();
  const bool bf16_dot_hd = ctx.bf16_activations && bf16_dot && ctx.isa >= Isa::kAvx512 &&
                           hd % kBf16GemmNr == 0 && hd / 2 <= kBf16GemmKcPairs;
  g.bf16_tiles = bf16_dot_hd && (kv.dtype == DType::kBF16 || kv.dtype == DType::kF8E4M3);
  g.bf16_dot_rows = bf16_dot_hd && (kv.dtype == DType::kBF16 || kv.dtype == DType::kF8E4M3);
#endif
  const int n_pool = ctx.pool.size();

  // Split-K only in fast mode with a pool: until each range costs <= total / (4 x threads).
  int64_t target = 0;
  if (!deterministic && n_pool > 1) {
    int64_t total = 0;
    for (int64_t t = 0; t < layout.n_tokens; ++t) total += g.pos(t) - g.lo(g.pos(t)) + 1;
    total *= n_head;  // = group x n_head_kv
    target = std::max<int64_t>(1, total / (kItemsPerThread * n_pool));
  }
  int64_t n_items = 0, partial_floats = 0;
  plan_items(g, deterministic, target, kv.n_head_kv, [&](const Item& it) {
    ++n_items;
    if (it.n_split > 1 && it.split == 0) {
      partial_floats =
          std::max(partial_floats, it.partial + it.n_split * it.rows(group) * (hd + 2));
    }
  });
  if (n_items == 0) return;

  const int n_threads = static_cast<int>(std::min<int64_t>(n_pool, n_items));
  const int64_t rows = std::max({kTileRows, group, (kTiledMinTokens - 1) * n_head});
  const int64_t kv_floats = std::max(kChunk * hd, kRowChunk * kv.n_head_kv * hd);
  const int64_t per_thread = Scratch::floats(rows, hd, kv_floats, kv.n_head_kv,
                                             g.bf16_tiles ? Scratch::tiled_words(rows, hd) : 0);
  const size_t items_bytes = (static_cast<size_t>(n_items) * sizeof(Item) + 63) / 64 * 64;
  const size_t bytes = items_bytes + static_cast<size_t>(round16(partial_floats)) * sizeof(float) +
                       static_cast<size_t>(per_thread * n_threads) * sizeof(float);
  uint8_t* ws = static_cast<uint8_t*>(ctx.workspace.get(bytes));
  Item* items = reinterpret_cast<Item*>(ws);
  float* partials = reinterpret_cast<float*>(ws + items_bytes);
  float* scratch = partials + round16(partial_floats);
  int64_t n = 0;
  plan_items(g, deterministic, target, kv.n_head_kv, [&](const Item& it) { items[n++] = it; });
  std::sort(items, items + n_items, [](const Item& a, const Item& b) { return a.cost > b.cost; });

  std::atomic<int64_t> next{0};
  ctx.pool.run(n_threads, [&](int thread, int) {
    const Scratch sc = Scratch::carve(scratch + thread * per_thread, rows, hd, kv_floats,
                                      kv.n_head_kv, g.bf16_tiles);
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n_items;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      if (items[i].tiled) {
#if defined(SHARDLM_CPU_BF16_DOT)
        if (g.bf16_tiles) {
          run_tiled_bf16(g, items[i], sc);
          continue;
        }
#endif
        run_tiled(g, items[i], sc);
      } else {
        run_rows(g, items[i], sc, deterministic, partials);
      }
    }
  });
  if (partial_floats == 0) return;
  // A small merge (decode of a few sequences) costs less than waking the pool again.
  constexpr int64_t kInlineMergeFloats = 1 << 16;
  const int merge_threads = partial_floats <= kInlineMergeFloats ? 1 : n_threads;
  std::atomic<int64_t> next_merge{0};
  ctx.pool.run(merge_threads, [&](int, int) {
    for (int64_t i = next_merge.fetch_add(1, std::memory_order_relaxed); i < n_items;
         i = next_merge.fetch_add(1, std::memory_order_relaxed)) {
      if (items[i].n_split > 1 && items[i].split == 0) merge_splits(g, items[i], partials);
    }
  });
}

}  // namespace shardlm::cpu
