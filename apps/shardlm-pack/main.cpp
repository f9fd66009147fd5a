// shardlm-pack: Hugging Face checkpoint directory -> one pack file per tensor-parallel rank.
// Also prints memory plans (--plan-only) and inspects / verifies existing packs (--inspect).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>

#include "formats/memory_plan.h"
#include "inspect.h"
#include "packer/device_target.h"
#include "packer/packer.h"
#include "runtime/core/status.h"

namespace po = boost::program_options;
using namespace shardlm;

namespace {

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop.store(true); }  // lock-free: async-signal-safe

}  // namespace

namespace {

PlanOptions plan_options(const po::variables_map& vm) {
  PlanOptions plan;
  if (vm.count("gpu-mem")) {
    plan.device_total_bytes = parse_bytes(vm["gpu-mem"].as<std::string>(), "--gpu-mem");
    plan.target = "--gpu-mem " + vm["gpu-mem"].as<std::string>();
  } else if (vm.count("gpu")) {
    const std::string name = vm["gpu"].as<std::string>();
    auto prof = device_profile(name);
    if (!prof) {
      std::string names;
      for (auto& n : device_profile_names()) names += " " + n;
      fail(StatusCode::kInvalidArg, "--gpu: unknown device profile '" + name + "' (known:" + names + "; or give --gpu-mem SIZE)");
    }
    plan.device_total_bytes = prof->total_bytes;
    plan.target = prof->description;
  } else if (auto gpu = detect_gpu()) {
    plan.device_total_bytes = gpu->total_bytes;
    plan.target = gpu->description;
  } else {
    const DeviceTarget host = host_memory();
    plan.device_total_bytes = host.total_bytes;
    plan.target = host.description + " (no --gpu-mem given and no GPU detected)";
  }
  plan.mem_fraction = vm["mem-fraction"].as<double>();
  plan.n_ctx = vm.count("max-seq") ? vm["max-seq"].as<int64_t>() : vm["n-ctx"].as<int64_t>();
  plan.max_batch = vm["max-batch"].as<int64_t>();
  plan.max_batch_tokens = vm["max-batch-tokens"].as<int64_t>();
  plan.reserve_bytes = parse_bytes(vm["reserve"].as<std::string>(), "--reserve");
  auto kv = parse_dtype(vm["kv-dtype"].as<std::string>());
  if (!kv || !is_kv_dtype(*kv))
    fail(StatusCode::kInvalidArg, "--kv-dtype must be bf16, f16, f32 or f8e4m3");
  plan.kv_dtype = *kv;
  return plan;
}

int run(int argc, char** argv) {
  po::options_description opts("shardlm-pack options");
  opts.add_options()("help,h", "show this help")
      ("model", po::value<std::string>(), "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer)")
      ("out", po::value<std::string>(), "output pack directory (created if missing)")
      ("tp", po::value<int>()->default_value(1), "tensor-parallel size N: writes rank-<r>-of-<N>.shardlm for r < N")
      ("dtype", po::value<std::string>(), "weight dtype bf16|f16|f32 (default: the checkpoint's)")
      ("weights", po::value<std::string>(), "quantize the matrices ahead of time: int8 or int4 (one f16 scale per 32 inputs), int4g128 (one per 128 inputs: 8% smaller than int4, coarser); the embedding and lm_head keep --dtype. A GPTQ checkpoint (symmetric, 4 or 8 bits) packs as it is quantized without it (int8, int4, or int4g128 for groups of 128)")
      ("quantize-embeddings", "with --weights (or a GPTQ checkpoint): quantize the embedding and lm_head too")
      ("gpu-mem", po::value<std::string>(), "memory plan target size per rank, e.g. 80GiB (default: detected GPU, else host memory)")
      ("gpu", po::value<std::string>(), "memory plan target by device profile: h100, h200, a100-80g, a100-40g, l40s, l4, a10, rtx4090")
      ("mem-fraction", po::value<double>()->default_value(0.85), "fraction of the device memory shardlm may use")
      ("n-ctx", po::value<int64_t>()->default_value(0), "context length to plan for (0: the model's max positions)")
      ("max-seq", po::value<int64_t>(), "the same as --n-ctx (older name)")
      ("max-batch", po::value<int64_t>()->default_value(1), "concurrent sequences to plan for")
      ("max-batch-tokens", po::value<int64_t>()->default_value(2048), "tokens in one forward pass (prefill chunk)")
      ("kv-dtype", po::value<std::string>()->default_value("bf16"), "KV cache dtype of the memory plan bf16|f16|f32|f8e4m3")
      ("reserve", po::value<std::string>()->default_value("512MiB"), "memory kept aside for runtime context and library workspaces")
      ("plan-only", "print the memory plan and write nothing")
      ("json", "print the plan (or --inspect output) as JSON")
      ("inspect", po::value<std::string>(), "describe the pack in this directory instead of packing")
      ("verify", "with --inspect: re-hash every tensor")
      ("quiet,q", "no progress bar, only errors");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "shardlm-pack: %s\n(see shardlm-pack --help)\n", e.what());
    return 2;
  }
  if (vm.count("help") || argc == 1) {
    std::cout << "usage: shardlm-pack --model HF_DIR --out PACK_DIR --tp N [options]\n"
                 "       shardlm-pack --inspect PACK_DIR [--verify] [--json]\n\n"
              << opts << "\n";
    return vm.count("help") ? 0 : 2;
  }
  const bool json = vm.count("json") > 0;
  if (vm.count("inspect")) {
    inspect_pack(vm["inspect"].as<std::string>(), vm.count("verify") > 0, json, std::cout);
    return 0;
  }
  if (!vm.count("model")) fail(StatusCode::kInvalidArg, "--model HF_DIR is required");
  const bool plan_only = vm.count("plan-only") > 0;
  if (!vm.count("out") && !plan_only) fail(StatusCode::kInvalidArg, "--out PACK_DIR is required (or --plan-only)");

  PackOptions o;
  o.model_dir = vm["model"].as<std::string>();
  if (vm.count("out")) o.out_dir = vm["out"].as<std::string>();
  o.tp_size = vm["tp"].as<int>();
  if (vm.count("dtype")) {
    o.dtype = parse_dtype(vm["dtype"].as<std::string>());
    if (!o.dtype || *o.dtype == DType::kF8E4M3)
      fail(StatusCode::kInvalidArg,
           "--dtype must be bf16, f16 or f32, got '" + vm["dtype"].as<std::string>() + "'");
  }
  if (vm.count("weights")) {
    const std::string w = vm["weights"].as<std::string>();
    if (w != "int8" && w != "int4" && w != "int4g128")
      fail(StatusCode::kInvalidArg, "--weights must be int8, int4 or int4g128, got '" + w + "'");
    o.quantize = w == "int4" ? DType::kInt4 : w == "int4g128" ? DType::kInt4G128 : DType::kInt8;
  }
  o.quantize_embeddings = vm.count("quantize-embeddings") > 0;
  o.plan = plan_options(vm);
  o.plan_only = plan_only;
  o.progress = !vm.count("quiet") && !json;
  o.stop = &g_stop;

  const PackResult r = pack_checkpoint(o);
  if (json) {
    std::cout << plan_to_json(r.plans) << "\n";
  } else {
    std::cout << format_plan_table(r.plans);
    if (!plan_only) {
      std::printf("wrote %d rank file(s) to %s: %s in %.2f s (%.0f MB/s of source)\n", o.tp_size, o.out_dir.c_str(),
                  format_bytes(r.bytes_written).c_str(), r.seconds,
                  r.seconds > 0 ? static_cast<double>(r.source_bytes) / 1e6 / r.seconds : 0.0);
    }
  }
  bool all_fit = true;
  for (auto& p : r.plans) all_fit = all_fit && p.fits;
  if (!all_fit && !vm.count("quiet"))
    std::fprintf(stderr, "shardlm-pack: warning: the plan does not fit the target (see the table); the pack was %s\n",
                 plan_only ? "not written (--plan-only)" : "written anyway and will be refused on that device");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Ctrl-C / SIGTERM: stop at the next chunk, remove the staging folder, leave the output folder
  // as it was, exit 130. A second signal kills at once (the next run removes what is left).
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    if (e.code() == StatusCode::kCancelled) {
      std::fprintf(stderr, "shardlm-pack: interrupted: %s\n", e.what());
      return 130;
    }
    std::fprintf(stderr, "shardlm-pack: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardlm-pack: error: %s\n", e.what());
    return 1;
  }
}
