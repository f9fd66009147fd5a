// shardlm-cuda-bench: the GPU numbers issue 7 asks for, as a benchmark binary (never a test).
//   --probe            device-to-device copy bandwidth (cudaMemcpy, counted as read + write):
//                      the HBM roofline's denominator
//   --kernels          decode GEMV (bf16, the real Llama-3-8B and Qwen3-0.6B matrix shapes) and
//                      split-K decode attention, each timed with CUDA events: GB/s and the
//                      fraction of the copy bandwidth
//   --make-checkpoint SHAPE --out DIR
//                      writes a random bf16 checkpoint with the real shapes of qwen3-0.6b or
//                      llama3-8b (no Python needed; pack it with shardlm-pack), then exits
//   --pack DIR         the whole model through the engine on the cuda backend: load time (open
//                      to ready) with upload GB/s, time to first token for a --prompt-len prompt,
//                      greedy decode tokens/s (median of --reps), bytes per decoded token
//                      (weights incl. lm_head + one embedding row + KV at the mean position) and
//                      its fraction of the roofline, per GPU when ranks share one
// SHARDLM_CUDA_GRAPHS=1 in the environment turns decode graphs on (to compare; off by default).
// Complements apps/shardlm-bench (which measures host bandwidth for its roofline); no GPU, no run.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "formats/tensor_names.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_device.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "tests/cuda/random_checkpoint.h"

namespace shardlm {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Times `fn` (queued on stream 0) over `iters` runs after 3 warm-ups; seconds per run.
template <class Fn>
double time_gpu(int iters, Fn fn) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  cuda_check(cudaEventCreate(&a), "event");
  cuda_check(cudaEventCreate(&b), "event");
  cuda_check(cudaEventRecord(a, nullptr), "event");
  for (int i = 0; i < iters; ++i) fn();
  cuda_check(cudaEventRecord(b, nullptr), "event");
  cuda_check(cudaEventSynchronize(b), "event");
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / 1e3 / iters;
}

struct DeviceMem {
  explicit DeviceMem(size_t n) : bytes(n) { cuda_check(cudaMalloc(&p, n), "cudaMalloc"); }
  ~DeviceMem() { cudaFree(p); }
  void* p = nullptr;
  size_t bytes;
};

// Device-to-device copy bandwidth in GB/s, counting the bytes read and the bytes written.
double copy_bandwidth_gbs(size_t bytes) {
  DeviceMem a(bytes), b(bytes);
  cuda_check(cudaMemset(a.p, 1, bytes), "memset");
  const double s =
      time_gpu(20, [&] { cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice); });
  return 2.0 * static_cast<double>(bytes) / s / 1e9;
}

void fill_random_bf16(void* p, size_t n_elems) {
  // Moderate bf16 values (no NaN/Inf): random mantissas, exponents around 2^-4.
  std::vector<uint16_t> host(std::min<size_t>(n_elems, size_t{1} << 24));
  std::mt19937 rng(7);
  for (auto& h : host) h = static_cast<uint16_t>(0x3d00 | (rng() & 0x80ff));
  for (size_t off = 0; off < n_elems; off += host.size()) {
    const size_t n = std::min(host.size(), n_elems - off);
    cuda_check(
        cudaMemcpy(static_cast<uint16_t*>(p) + off, host.data(), n * 2, cudaMemcpyHostToDevice),
        "fill");
  }
}

int run_kernels(double bw) {
  struct Shape {
    const char* name;
    int64_t n_in, n_out;
  };
  const std::vector<Shape> shapes = {
      {"llama3-8b qkv", 4096, 6144},       {"llama3-8b o_proj", 4096, 4096},
      {"llama3-8b gate_up", 4096, 28672},  {"llama3-8b down", 14336, 4096},
      {"llama3-8b lm_head", 4096, 128256}, {"qwen3-0.6b qkv", 1024, 4096},
      {"qwen3-0.6b gate_up", 1024, 6144},  {"qwen3-0.6b down", 3072, 1024},
      {"qwen3-0.6b lm_head", 1024, 151936}};
  std::printf("%-22s %10s %10s %9s %8s\n", "gemv (bf16, 1 token)", "MiB", "us", "GB/s", "of copy");
  for (const Shape& s : shapes) {
    const size_t w_bytes = static_cast<size_t>(s.n_in * s.n_out) * 2;
    DeviceMem w(w_bytes), x(static_cast<size_t>(s.n_in) * 4), y(static_cast<size_t>(s.n_out) * 4);
    fill_random_bf16(w.p, w_bytes / 2);
    cuda_check(cudaMemset(x.p, 0, x.bytes), "memset");
    const double t = time_gpu(50, [&] {
      cuda::gemv(static_cast<const float*>(x.p), 1, s.n_in, w.p, DType::kBF16, s.n_out, nullptr,
                 static_cast<float*>(y.p), nullptr);
    });
    const double gbs = static_cast<double>(w_bytes) / t / 1e9;
    std::printf("%-22s %10.1f %10.1f %9.1f %7.1f%%\n", s.name, w_bytes / 1048576.0, t * 1e6, gbs,
                100 * gbs / bw);
  }
  // Decode attention over an f32 cache, Llama-3-8B heads (32 q / 8 kv, head_dim 128).
  const int n_sms = cuda_device_info(0).sm_count;
  std::printf("\n%-22s %10s %10s %9s %8s %7s\n", "attention decode", "KV MiB", "us", "GB/s",
              "of copy", "splits");
  for (int64_t n_kv : {512, 4096, 32768}) {
    const int64_t n_head = 32, n_head_kv = 8, d = 128;
    const size_t kv_bytes = static_cast<size_t>(n_kv * n_head_kv * d) * 4;
    DeviceMem k(kv_bytes), v(kv_bytes), q(static_cast<size_t>(n_head * d) * 4),
        out(static_cast<size_t>(n_head * d) * 4);
    cuda_check(cudaMemset(k.p, 0, kv_bytes), "memset");
    cuda_check(cudaMemset(v.p, 0, kv_bytes), "memset");
    cuda_check(cudaMemset(q.p, 0, q.bytes), "memset");
    const cuda::AttentionPlan plan = cuda::plan_attention(1, n_head, n_head_kv, n_kv, n_sms);
    DeviceMem ws(cuda::attention_decode_workspace_bytes(1, n_head, d, plan.n_splits));
    cuda::I32Arg pos;
    pos.v[0] = static_cast<int32_t>(n_kv - 1);
    const double t = time_gpu(50, [&] {
      cuda::attention_decode(static_cast<const float*>(q.p), static_cast<const float*>(k.p),
                             static_cast<const float*>(v.p), pos, 1, n_kv, n_head, n_head_kv, d, 0,
                             0.088f, plan.n_splits, ws.p, static_cast<float*>(out.p), nullptr);
    });
    const double gbs = 2.0 * static_cast<double>(kv_bytes) / t / 1e9;
    std::printf("%-22s %10.1f %10.1f %9.1f %7.1f%% %7d\n", ("n_kv " + std::to_string(n_kv)).c_str(),
                2 * kv_bytes / 1048576.0, t * 1e6, gbs, 100 * gbs / bw, plan.n_splits);
  }
  return 0;
}

// Bytes one decode step reads on each device: weights (all but the embedding table, which is
// read one row at a time, unless tied, when it is the lm_head too) + one embedding row + the
// KV cache (f32) at `mean_kv` positions. Ranks are placed as the cuda backend places them.
std::map<int, double> bytes_per_token_by_device(const Engine& engine, double mean_kv) {
  std::map<int, double> out;
  const int n_devices = cuda_device_count();
  const ModelConfig& c = engine.config();
  for (int r = 0; r < engine.tp_size(); ++r) {
    const PackReader& pack = engine.pack(r);
    const ParallelLayout& p = pack.parallel();
    double bytes = 0;
    for (const PackTensor& t : pack.tensors()) {
      if (t.name == tensor_names::kTokEmbd && !c.tie_word_embeddings) {
        bytes += static_cast<double>(t.nbytes) / static_cast<double>(t.shape[0]);  // one row
      } else {
        bytes += static_cast<double>(t.nbytes);
      }
    }
    bytes += 2.0 * c.n_layer * p.n_head_kv_local * c.head_dim * 4.0 * mean_kv;
    out[r % std::max(1, n_devices)] += bytes;
  }
  return out;
}

int run_model(const std::string& pack_dir, int64_t prompt_len, int64_t gen, int reps, double bw) {
  EngineOptions eo;
  eo.pack_dir = pack_dir;
  eo.backend = "cuda";
  eo.n_ctx = prompt_len + gen + 1;
  eo.max_batch_tokens = prompt_len;
  const auto t0 = Clock::now();
  Engine engine(eo);
  const double load_s = seconds_since(t0);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(engine.config().n_vocab - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
  for (auto& id : prompt) id = tok(rng);

  std::vector<double> ttft, decode;
  for (int rep = -1; rep < reps; ++rep) {  // rep -1: warm-up
    engine.seq_rm(0);
    auto t = Clock::now();
    int32_t next = engine.eval_argmax(prompt);
    const double first = seconds_since(t);
    t = Clock::now();
    for (int64_t i = 1; i < gen; ++i) next = engine.eval_argmax(std::vector<int32_t>{next});
    const double d = seconds_since(t);
    if (rep < 0) continue;
    ttft.push_back(first);
    decode.push_back(static_cast<double>(gen - 1) / d);
  }
  const double tok_s = median(decode);
  const double mean_kv = static_cast<double>(prompt_len) + static_cast<double>(gen) / 2.0;
  const auto per_device = bytes_per_token_by_device(engine, mean_kv);
  double worst = 0;
  for (const auto& [dev, bytes] : per_device) worst = std::max(worst, bytes);
  const char* graphs = std::getenv("SHARDLM_CUDA_GRAPHS");
  std::printf("model                  %s, %s weights, tp %d on %zu GPU(s), graphs %s\n",
              engine.config().architecture.c_str(), dtype_name(engine.pack(0).weight_dtype()),
              engine.tp_size(), per_device.size(),
              graphs && std::strcmp(graphs, "1") == 0 ? "on (tp 1 only)" : "off");
  std::printf("load (open to ready)   %.3f s, %.2f GB of weights uploaded (%.2f GB/s end to end)\n",
              load_s, engine.weight_bytes_copied() / 1e9,
              engine.weight_bytes_copied() / 1e9 / load_s);
  std::printf("TTFT (%lld tokens)     %.4f s (median of %d)\n", static_cast<long long>(prompt_len),
              median(ttft), reps);
  std::printf("decode                 %.2f tok/s (median of %d:", tok_s, reps);
  for (double d : decode) std::printf(" %.2f", d);
  std::printf(")\n");
  std::printf("bytes per token        %.3f GB on the busiest GPU (KV at mean position %.0f)\n",
              worst / 1e9, mean_kv);
  std::printf("roofline               %.1f%% (%.1f GB/s of %.1f GB/s device copy bandwidth)\n",
              100 * worst * tok_s / 1e9 / bw, worst * tok_s / 1e9, bw);
  return 0;
}

int run(int argc, char** argv) {
  bool probe = false, kernels = false;
  std::string pack, make_shape, out_dir;
  int64_t prompt_len = 512, gen = 128;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(StatusCode::kInvalidArg, a + " needs a value");
      return argv[++i];
    };
    if (a == "--probe")
      probe = true;
    else if (a == "--kernels")
      kernels = true;
    else if (a == "--pack")
      pack = value();
    else if (a == "--make-checkpoint")
      make_shape = value();
    else if (a == "--out")
      out_dir = value();
    else if (a == "--prompt-len")
      prompt_len = std::stoll(value());
    else if (a == "--gen")
      gen = std::stoll(value());
    else if (a == "--reps")
      reps = std::stoi(value());
    else {
      std::printf(
          "usage: shardlm-cuda-bench [--probe] [--kernels] [--pack DIR [--prompt-len 512] "
          "[--gen 128] [--reps 3]]\n"
          "       shardlm-cuda-bench --make-checkpoint qwen3-0.6b|llama3-8b --out DIR\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (!make_shape.empty()) {
    if (out_dir.empty()) fail(StatusCode::kInvalidArg, "--make-checkpoint needs --out DIR");
    const auto t = Clock::now();
    bench::write_random_checkpoint(make_shape, out_dir);
    std::printf("wrote a random %s checkpoint to %s in %.1f s\n", make_shape.c_str(),
                out_dir.c_str(), seconds_since(t));
    return 0;
  }
  std::string why;
  if (cuda_device_count(&why) == 0) {
    std::fprintf(stderr, "shardlm-cuda-bench: no CUDA device: %s\n", why.c_str());
    return 1;
  }
  if (prompt_len < 1 || gen < 2 || reps < 1) {
    fail(StatusCode::kInvalidArg, "--prompt-len >= 1, --gen >= 2, --reps >= 1");
  }
  std::printf("device                 %s\n", cuda_device_info(0).describe().c_str());
  const double bw = copy_bandwidth_gbs(size_t{1} << 30);
  std::printf("device copy bandwidth  %.1f GB/s (1 GiB cudaMemcpy D2D, read + write)\n", bw);
  if (kernels) run_kernels(bw);
  if (!pack.empty()) return run_model(pack, prompt_len, gen, reps, bw);
  (void)probe;
  return 0;
}

}  // namespace
}  // namespace shardlm

int main(int argc, char** argv) {
  try {
    return shardlm::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardlm-cuda-bench: %s\n", e.what());
    return 1;
  }
}
