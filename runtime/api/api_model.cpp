// extern "C": model open/close, info, memory plan, stop ids, generation defaults.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "runtime/api/api_internal.h"
#include "runtime/api/api_params.h"
#include "runtime/comm/communicator.h"
#include "runtime/engine/draft_proposer.h"
#if defined(SHARDLM_HAVE_MPI)
#include "runtime/comm/mpi_communicator.h"
#endif

using namespace shardlm;
using namespace shardlm::api;

namespace {

// The MPI communicator of this process, initializing MPI once (and finalizing it at exit) when
// the program has not.
std::shared_ptr<Communicator> process_communicator(bool rank_ordered) {
#if defined(SHARDLM_HAVE_MPI)
  static std::once_flag once;
  std::call_once(once, [] {
    static std::unique_ptr<MpiRuntime> runtime;
    runtime = std::make_unique<MpiRuntime>(nullptr, nullptr);
    std::atexit([] { runtime.reset(); });
  });
  return make_mpi_communicator(rank_ordered ? MpiReduction::kRankOrdered : MpiReduction::kFast);
#else
  (void)rank_ordered;
  fail(StatusCode::kUnsupported,
       "engine process_ranks needs MPI, and this libshardlm was built without it (install "
       "libopenmpi-dev and rebuild)");
#endif
}

}  // namespace

extern "C" {

SHARDLM_API shardlm_model_params shardlm_model_default_params(void) {
  shardlm_model_params p;
  std::memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.backend = "cpu";
  return p;
}

SHARDLM_API shardlm_engine_params shardlm_engine_default_params(void) {
  shardlm_engine_params p;
  std::memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.kv_dtype = "bf16";
  p.prefix_cache = 1;
  p.activations = "auto";
  return p;
}

SHARDLM_API shardlm_status shardlm_model_open(const char* pack_dir,
                                              const shardlm_model_params* params,
                                              shardlm_model** out_model) {
  return shardlm_model_open_with_engine(pack_dir, params, nullptr, out_model);
}

SHARDLM_API shardlm_status shardlm_model_open_with_engine(const char* pack_dir,
                                                          const shardlm_model_params* params,
                                                          const shardlm_engine_params* engine,
                                                          shardlm_model** out_model) {
  return guard([&] {
    require(out_model, "out_model");
    *out_model = nullptr;
    require(pack_dir, "pack_dir");
    const shardlm_model_params p = params ? *params : shardlm_model_default_params();
    check_struct_size(p.struct_size, sizeof(shardlm_model_params), "shardlm_model_params");
    shardlm_engine_params ep = shardlm_engine_default_params();
    if (engine) {  // an ABI-2 caller's struct ends before draft_pack: the rest stays default
      check_struct_size_range(engine->struct_size, offsetof(shardlm_engine_params, draft_pack),
                              sizeof(shardlm_engine_params), "shardlm_engine_params");
      std::memcpy(&ep, engine, engine->struct_size);
    }
    if (ep.spec_ngram != 0 && ep.spec_ngram != 1)
      fail(StatusCode::kInvalidArg, "engine spec_ngram must be 0 or 1");
    if (ep.spec_ngram == 1 && ep.draft_pack != nullptr)
      fail(StatusCode::kInvalidArg, "engine draft_pack and spec_ngram exclude each other");
    SpeculationOptions spec;
    spec.mode = ep.draft_pack ? SpeculationMode::kDraft
                : ep.spec_ngram ? SpeculationMode::kNgram
                                : SpeculationMode::kOff;
    spec.k = ep.spec_k == 0 ? default_speculation_k(spec.mode) : ep.spec_k;
    validate_speculation_options(spec);
    if (ep.max_seqs < 0) fail(StatusCode::kInvalidArg, "engine max_seqs must be >= 0");
    if (ep.block_size < 0 || ep.block_size > 4096)
      fail(StatusCode::kInvalidArg, "engine block_size must be in 0..4096 (0 = 16)");
    if (ep.kv_cache_tokens < 0)
      fail(StatusCode::kInvalidArg, "engine kv_cache_tokens must be >= 0");
    if (ep.admission != 0 && ep.admission != 1)
      fail(StatusCode::kInvalidArg, "engine admission must be 0 (preempt) or 1 (guaranteed)");
    const std::optional<DType> kv_dtype = parse_dtype(ep.kv_dtype ? ep.kv_dtype : "bf16");
    if (!kv_dtype) {
      fail(StatusCode::kInvalidArg,
           std::string("engine kv_dtype '") + ep.kv_dtype + "': expected bf16, f16, f32 or f8e4m3");
    }
    if (p.n_threads < 0) fail(StatusCode::kInvalidArg, "n_threads must be >= 0");
    if (p.tp < 0) fail(StatusCode::kInvalidArg, "tp must be >= 0");
    if (p.max_seq < 0) fail(StatusCode::kInvalidArg, "max_seq must be >= 0");
    if (p.max_batch_tokens < 0) fail(StatusCode::kInvalidArg, "max_batch_tokens must be >= 0");
    if (!(p.mem_fraction >= 0 && p.mem_fraction <= 1)) {
      fail(StatusCode::kInvalidArg, "mem_fraction must be in (0, 1] (0 = the pack's), got " +
                                        std::to_string(p.mem_fraction));
    }
    if (p.n_devices > 0 && p.devices == nullptr) {
      fail(StatusCode::kInvalidArg,
           "devices is NULL but n_devices is " + std::to_string(p.n_devices));
    }

    EngineOptions eo;
    eo.pack_dir = pack_dir;
    eo.tp = p.tp;
    eo.backend = p.backend ? p.backend : "cpu";
    eo.n_threads = p.n_threads;
    eo.n_ctx = p.max_seq;
    if (p.max_batch_tokens > 0) eo.max_batch_tokens = p.max_batch_tokens;
    eo.mem_fraction = p.mem_fraction;
    eo.check_memory_plan = true;
    eo.default_sequence = false;
    // The paged KV pool every session and request shares.
    eo.block_size = ep.block_size > 0 ? ep.block_size : 16;
    eo.kv_blocks = ep.kv_cache_tokens > 0 ? (ep.kv_cache_tokens + eo.block_size - 1) / eo.block_size
                                          : -1;  // auto: from the memory plan
    eo.kv_dtype = *kv_dtype;
    eo.deterministic = ep.deterministic != 0;
    const std::string activations = ep.activations ? ep.activations : "auto";
    const auto a = parse_matmul_activations(activations);
    if (!a) {
      fail(StatusCode::kInvalidArg,
           "engine activations '" + activations + "': expected auto, f32 or bf16");
    }
    eo.activations = *a;
    if (ep.backend_settings) eo.backend_settings = parse_backend_settings(ep.backend_settings);
    if (ep.process_ranks != 0 && ep.process_ranks != 1) {
      fail(StatusCode::kInvalidArg,
           "engine process_ranks must be 0 (threads) or 1 (MPI processes)");
    }
    if (ep.comm_timeout_s < 0) fail(StatusCode::kInvalidArg, "engine comm_timeout_s must be >= 0");
    if (ep.process_ranks == 1) {
      eo.process_comm = process_communicator(eo.deterministic);
      eo.comm_timeout_seconds = ep.comm_timeout_s > 0 ? ep.comm_timeout_s : 60;
    }
    for (size_t i = 0; i < p.n_devices; ++i) {
      if (p.devices[i] < 0) {
        fail(StatusCode::kInvalidArg, "devices[" + std::to_string(i) + "] is " +
                                          std::to_string(p.devices[i]) +
                                          "; device indices are >= 0");
      }
      eo.devices.push_back(p.devices[i]);
    }
    // Ranks as processes: one GPU per process, the node-local rank's, unless devices were given.
    if (ep.process_ranks == 1 && eo.devices.empty()) {
      for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"}) {
        if (const char* s = std::getenv(v)) {
          eo.devices.assign(static_cast<size_t>(eo.process_comm->size()), std::atoi(s));
          break;
        }
      }
    }

    auto state = std::make_shared<ModelState>();
    state->engine = std::make_shared<Engine>(eo);
    state->text = ModelText::load(state->engine->pack(0));
    StepEngineOptions so;
    so.max_seqs = ep.max_seqs > 0 ? ep.max_seqs : 16;
    so.prefix_cache = ep.prefix_cache != 0;
    so.admission = ep.admission == 1 ? AdmissionMode::kGuaranteed : AdmissionMode::kPreempt;
    so.speculation = spec;
    // Only the driving rank schedules (and runs the draft); the others serve steps
    // (shardlm_model_serve).
    if (state->engine->drives()) {
      std::shared_ptr<Engine> draft;
      if (ep.draft_pack) {
        draft = std::make_shared<Engine>(draft_engine_options(eo, *state->engine, ep.draft_pack));
      }
      state->loop = std::make_shared<ServingLoop>(state->engine, so, draft);
    }
    const ModelConfig& c = state->engine->config();
    state->family = family_name(c.family);
    state->architecture = c.architecture;
    state->backend = eo.backend;
    state->weight_dtype = dtype_name(state->engine->pack(0).weight_dtype());
    *out_model = new shardlm_model{std::move(state)};
    track_handle(HandleKind::kModel, *out_model);
    return SHARDLM_OK;
  });
}

SHARDLM_API void shardlm_model_close(shardlm_model* model) {
  // A second close, or a pointer that is not a live model, is ignored (api_handles.h).
  if (!untrack_handle(HandleKind::kModel, model)) return;
  delete model;  // sessions hold their own reference to the state
}

SHARDLM_API int32_t shardlm_model_rank(const shardlm_model* model) {
  return is_live(HandleKind::kModel, model) ? model->state->engine->process_rank() : -1;
}

SHARDLM_API shardlm_status shardlm_model_serve(shardlm_model* model) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    Engine& e = *model->state->engine;
    if (e.drives()) {
      fail(StatusCode::kInvalidArg,
           "shardlm_model_serve runs on ranks other than 0 of a model opened with process_ranks; "
           "this one drives (create sessions or requests instead)");
    }
    e.serve_steps();
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_model_get_info(const shardlm_model* model,
                                                  shardlm_model_info* out) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    require(out, "out (shardlm_model_info)");
    check_struct_size(out->struct_size, sizeof(shardlm_model_info), "shardlm_model_info");
    const ModelState& s = *model->state;
    const Engine& e = *s.engine;
    const ModelConfig& c = e.config();
    shardlm_model_info i;
    std::memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    i.family = s.family.c_str();
    i.architecture = s.architecture.c_str();
    i.backend = s.backend.c_str();
    i.weight_dtype = s.weight_dtype.c_str();
    i.tp_size = e.tp_size();
    i.n_threads_per_rank = e.threads_per_rank();
    i.n_vocab = static_cast<int32_t>(c.n_vocab);
    i.n_layer = static_cast<int32_t>(c.n_layer);
    i.n_embd = static_cast<int32_t>(c.n_embd);
    i.n_head = static_cast<int32_t>(c.n_head);
    i.n_head_kv = static_cast<int32_t>(c.n_head_kv);
    i.head_dim = static_cast<int32_t>(c.head_dim);
    i.n_ctx = e.n_ctx();
    i.n_ctx_train = c.max_position_embeddings;
    i.has_tokenizer = s.text->has_tokenizer();
    i.has_chat_template = s.text->has_chat_template();
    i.has_thinking_switch = s.text->template_has_thinking_switch();
    i.end_of_turn_token = s.text->end_of_turn_id();
    i.weight_bytes = e.weight_bytes_in_place() + e.weight_bytes_copied();
    i.kv_bytes_per_session = e.kv_bytes_per_sequence();
    *out = i;
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_model_memory_plan(const shardlm_model* model, int32_t as_json,
                                                     char* buf, size_t buf_size, size_t* out_len) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    const Engine& e = *model->state->engine;
    std::string text;
    if (as_json) {
      nlohmann::json j = nlohmann::json::parse(plan_to_json(e.memory_plan()));
      j["n_ctx"] = e.n_ctx();
      j["kv_bytes_per_session"] = e.kv_bytes_per_sequence();
      j["kv_pool"] = {{"blocks", e.kv_blocks()},
                      {"block_size", e.kv_pool_shape().block_size},
                      {"dtype", dtype_name(e.kv_pool_shape().dtype)},
                      {"bytes", e.kv_pool_bytes()}};
      j["weight_bytes_in_place"] = e.weight_bytes_in_place();
      j["weight_bytes_copied"] = e.weight_bytes_copied();
      text = j.dump(2);
    } else {
      std::ostringstream o;
      o << format_plan_table(e.memory_plan());
      o << "kv cache: a pool of " << e.kv_blocks() << " blocks x " << e.kv_pool_shape().block_size
        << " tokens, " << dtype_name(e.kv_pool_shape().dtype) << ", "
        << format_bytes(e.kv_pool_bytes()) << " over all ranks, shared by every session; one full "
        << "context (" << e.n_ctx() << " tokens) takes " << format_bytes(e.kv_bytes_per_sequence())
        << "; weights used in place: " << format_bytes(e.weight_bytes_in_place())
        << ", copied: " << format_bytes(e.weight_bytes_copied()) << "\n";
      text = o.str();
    }
    return copy_out(text, buf, buf_size, out_len, "shardlm_model_memory_plan");
  });
}

SHARDLM_API shardlm_status shardlm_model_stop_ids(const shardlm_model* model, int32_t* ids,
                                                  size_t capacity, size_t* out_count) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    const std::vector<int32_t>& s = model->state->text->stop_ids();
    return copy_out(s.data(), s.size(), ids, capacity, out_count, "shardlm_model_stop_ids");
  });
}

SHARDLM_API shardlm_generate_params shardlm_generate_default_params(void) {
  return default_generate_params();
}

SHARDLM_API shardlm_status shardlm_model_generation_defaults(const shardlm_model* model,
                                                             shardlm_generate_params* out) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    require(out, "out (shardlm_generate_params)");
    check_struct_size(out->struct_size, sizeof(shardlm_generate_params), "shardlm_generate_params");
    shardlm_generate_params p = default_generate_params();
    const SamplerParams& d = model->state->text->defaults();
    p.temperature = d.temperature;
    p.top_k = d.top_k;
    p.top_p = d.top_p;
    p.min_p = d.min_p;
    p.repetition_penalty = d.repetition_penalty;
    *out = p;
    return SHARDLM_OK;
  });
}

}  // extern "C"
