// vulkan-decode-bench: one rank's transformer on the Vulkan backend, timed per decode step with
// GPU timestamps, with the per-shader GPU time of a decode step and the command-buffer replay
// counts; `--backend cpu` runs the same harness on the CPU backend for comparison. A benchmark,
// not a test. TP = 1 packs (or rank 0 of a TP = 1 set) only.
//   vulkan-decode-bench PACK_DIR [--backend vulkan|cpu] [--prompt N] [--gen N] [--device N]
//                       [--threads N] [--profile]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "formats/pack_reader.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/vulkan/vulkan_backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/core/status.h"
#include "runtime/model/transformer.h"

using namespace shardlm;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr,
                   "usage: vulkan-decode-bench PACK_DIR [--backend vulkan|cpu] [--prompt N] "
                   "[--gen N] [--device N] [--threads N] [--profile]\n");
      return 2;
    }
    std::string backend_name = "vulkan";
    int prompt_len = 8, gen = 16, device = 0, threads = 2;
    bool profile = false;
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&] { return i + 1 < argc ? argv[++i] : ""; };
      if (a == "--backend")
        backend_name = next();
      else if (a == "--prompt")
        prompt_len = std::atoi(next());
      else if (a == "--gen")
        gen = std::atoi(next());
      else if (a == "--device")
        device = std::atoi(next());
      else if (a == "--threads")
        threads = std::atoi(next());
      else if (a == "--profile")
        profile = true;
      else
        fail(StatusCode::kInvalidArg, "unknown option " + a);
    }
    const PackSet set = find_pack_set(argv[1], 1);
    auto pack = PackReader::open(set.rank_paths[0]);
    std::unique_ptr<Backend> backend;
    VulkanBackend* vk = nullptr;
    if (backend_name == "vulkan") {
      VulkanOptions o;
      o.device = device;
      auto b = make_vulkan_backend(o);
      vk = b.get();
      backend = std::move(b);
      std::printf("device %d: %s\n", device, vk->device_info().name.c_str());
    } else {
      BackendOptions bo;
      bo.n_threads = threads;
      backend = make_cpu_backend(bo);
    }
    auto comm = make_single_communicator();
    const auto t_load = Clock::now();
    Transformer model(*pack, *backend, *comm, prompt_len);
    auto cache = model.make_cache(prompt_len + gen + 1);
    backend->synchronize();
    const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
    std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
    for (int i = 0; i < prompt_len; ++i) prompt[static_cast<size_t>(i)] = 100 + 37 * i;

    const auto t0 = Clock::now();
    Tensor logits = model.forward(prompt, *cache, false);
    int32_t next = static_cast<int32_t>(backend->max_element(logits).index);
    const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (vk) {
      vk->reset_stream_stats();
      vk->set_profiling(profile);
    }
    const auto t1 = Clock::now();
    for (int s = 0; s < gen; ++s) {
      logits = model.forward(std::span<const int32_t>(&next, 1), *cache, false);
      next = static_cast<int32_t>(backend->max_element(logits).index);
    }
    const double decode_s = std::chrono::duration<double>(Clock::now() - t1).count();
    std::printf(
        "%s: load %.2f s, prefill %d tokens %.3f s (%.2f tok/s), decode %d tokens %.3f s "
        "(%.3f tok/s, %.1f ms/token)\n",
        backend_name.c_str(), load_s, prompt_len, prefill_s, prompt_len / prefill_s, gen, decode_s,
        gen / decode_s, decode_s / gen * 1e3);
    if (vk) {
      const vk::StreamStats& st = vk->stream_stats();
      std::printf(
          "vulkan: %.1f ms GPU/token (timestamps), %.1f ms host wait/token; %llu "
          "submissions: %llu recorded, %llu replayed\n",
          static_cast<double>(st.gpu_ns) / gen * 1e-6, st.host_wait_s / gen * 1e3,
          static_cast<unsigned long long>(st.submits), static_cast<unsigned long long>(st.recorded),
          static_cast<unsigned long long>(st.replayed));
      for (const auto& [name, ns] : vk->op_gpu_ns()) {
        std::printf("  %-20s %9.3f ms/token\n", name.c_str(), static_cast<double>(ns) / gen * 1e-6);
      }
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "vulkan-decode-bench: error (%s): %s\n", status_name(e.code()), e.what());
    return 2;
  }
}
