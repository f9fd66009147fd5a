// The --concurrency mode of shardlm-bench: one Engine with a paged KV pool, a StepEngine, and
// timed rounds of 1 and N concurrent greedy requests.
#include "apps/shardlm-bench/concurrency.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/step_engine.h"

namespace shardlm::bench {

namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double idx = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(idx), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}

double median(const std::vector<double>& v) {
  return percentile(v, 0.5);
}

struct Round {
  double aggregate_tok_s = 0;     // decode tokens of all sequences / decode window
  double per_sequence_tok_s = 0;  // median over sequences of their own decode rate
  double end_to_end_tok_s = 0;    // every generated token / submission to the last token
  std::vector<double> ttft;       // per sequence, seconds
  int64_t peak_blocks = 0;
  double prefix_hit_rate = 0;
};

// Submits every prompt at once and steps to completion. The decode window starts when the last
// sequence has its first token: from then on every step decodes all of them.
Round run_round(StepEngine& se, const std::vector<std::vector<int32_t>>& prompts, int64_t gen) {
  const size_t n = prompts.size();
  std::vector<std::vector<double>> stamps(n);
  const auto t0 = Clock::now();
  auto now_s = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::vector<RequestId> ids;
  for (size_t i = 0; i < n; ++i) {
    TokenRequest r;
    r.prompt = prompts[i];
    r.sampling.temperature = 0;
    r.max_new_tokens = gen;
    r.on_token = [&stamps, &now_s, i](int32_t) {
      stamps[i].push_back(now_s());
      return true;
    };
    ids.push_back(se.submit(std::move(r)));
  }
  const StepEngineStats before = se.stats();
  Round out;
  while (se.has_work()) {
    se.step();
    out.peak_blocks = std::max(out.peak_blocks, se.stats().n_blocks_used);
  }
  const StepEngineStats after = se.stats();
  for (RequestId id : ids) se.take_result(id);
  double window_start = 0, window_end = 0;
  for (const auto& s : stamps) {
    if (s.empty()) fail(StatusCode::kInternal, "a benchmark sequence generated nothing");
    out.ttft.push_back(s.front());
    window_start = std::max(window_start, s.front());
    window_end = std::max(window_end, s.back());
  }
  int64_t in_window = 0, generated = 0;
  std::vector<double> own;
  for (const auto& s : stamps) {
    generated += static_cast<int64_t>(s.size());
    in_window += std::count_if(s.begin(), s.end(), [&](double t) { return t > window_start; });
    if (s.size() > 1) own.push_back(static_cast<double>(s.size() - 1) / (s.back() - s.front()));
  }
  out.aggregate_tok_s =
      window_end > window_start ? static_cast<double>(in_window) / (window_end - window_start) : 0;
  out.per_sequence_tok_s = median(own);
  out.end_to_end_tok_s = window_end > 0 ? static_cast<double>(generated) / window_end : 0;
  const int64_t q = after.prefix_queried_tokens - before.prefix_queried_tokens;
  out.prefix_hit_rate =
      q > 0 ? static_cast<double>(after.prefix_hit_tokens - before.prefix_hit_tokens) / q : 0;
  return out;
}

}  // namespace

void run_concurrency(const ConcurrencyOptions& o) {
  if (o.concurrency < 1 || o.prompt_len < 1 || o.gen < 2 || o.reps < 1 || o.warmup < 0 ||
      o.shared_prefix < 0 || o.shared_prefix >= o.prompt_len) {
    fail(StatusCode::kInvalidArg,
         "--concurrency >= 1, --prompt-len >= 1, --gen >= 2, --reps >= 1 and "
         "0 <= --shared-prefix < --prompt-len are required");
  }
  const std::optional<DType> kv = parse_dtype(o.kv_dtype);
  if (!kv)
    fail(StatusCode::kInvalidArg,
         "--kv-dtype " + o.kv_dtype + ": expected bf16, f16, f32 or f8e4m3");
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  const int64_t per_seq = o.prompt_len + o.gen + 1;
  EngineOptions eo;
  eo.pack_dir = o.pack_dir;
  eo.tp = o.tp;
  eo.backend = o.backend;
  eo.n_threads = threads;
  eo.n_ctx = per_seq;
  eo.max_batch_tokens = o.ubatch > 0 ? o.ubatch : std::max<int64_t>(o.prompt_len, 256);
  const bool processes = o.process_comm != nullptr;
  eo.default_sequence = !processes;  // the one-sequence path, measured beside the step engine
  eo.process_comm = o.process_comm;
  eo.devices = o.devices;
  eo.block_size = o.block_size;
  eo.kv_blocks = o.concurrency * ((per_seq + o.block_size - 1) / o.block_size + 1) + 1;
  eo.kv_dtype = *kv;
  eo.deterministic = o.deterministic;
  apps::apply_compute_flags(o.compute, eo);
  Engine engine(eo);
  if (!engine.drives()) {  // a worker process: serve rank 0's steps until it is done
    engine.serve_steps();
    return;
  }

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(engine.config().n_vocab - 1));
  std::vector<int32_t> prefix(static_cast<size_t>(o.shared_prefix));
  for (auto& t : prefix) t = tok(rng);
  auto make_prompts = [&](int64_t n) {
    std::vector<std::vector<int32_t>> ps(static_cast<size_t>(n));
    for (auto& p : ps) {
      p = prefix;
      while (static_cast<int64_t>(p.size()) < o.prompt_len) p.push_back(tok(rng));
    }
    return ps;
  };

  // Fresh prompts every round (so the prefix cache serves only the shared prefix), no prefix
  // cache between the single and the concurrent rounds beyond that.
  StepEngineOptions so;
  so.max_seqs = std::max<int64_t>(o.concurrency, 1);
  auto se_ptr = std::make_unique<StepEngine>(engine, so);  // one step engine per pool at a time
  StepEngine& se = *se_ptr;
  for (int w = 0; w < o.warmup; ++w) run_round(se, make_prompts(o.concurrency), o.gen);
  std::vector<double> single, legacy, step_over_legacy, aggregate, per_seq_rate, ratio, ttft_p50,
      ttft_p99, hit, end_to_end;
  int64_t peak_blocks = 0;
  // The one-sequence engine path (Engine::eval_argmax per token, contiguous f32 KV).
  auto legacy_rate = [&] {
    engine.seq_rm(0);
    int32_t next = engine.eval_argmax(make_prompts(1)[0]);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 1; i < o.gen; ++i)
      next = engine.eval_argmax(std::span<const int32_t>(&next, 1));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(o.gen - 1) / s;
  };
  for (int r = 0; r < o.reps; ++r) {  // A/B: the old path, one sequence, then N, back to back
    legacy.push_back(processes ? NAN : legacy_rate());
    const Round one = run_round(se, make_prompts(1), o.gen);
    const Round many = run_round(se, make_prompts(o.concurrency), o.gen);
    single.push_back(one.aggregate_tok_s);
    step_over_legacy.push_back(one.aggregate_tok_s / legacy.back());
    aggregate.push_back(many.aggregate_tok_s);
    per_seq_rate.push_back(many.per_sequence_tok_s);
    end_to_end.push_back(many.end_to_end_tok_s);
    ratio.push_back(many.aggregate_tok_s / one.aggregate_tok_s);
    ttft_p50.push_back(percentile(many.ttft, 0.5));
    ttft_p99.push_back(percentile(many.ttft, 0.99));
    hit.push_back(many.prefix_hit_rate);
    peak_blocks = std::max(peak_blocks, many.peak_blocks);
  }

  se_ptr.reset();

  // Shared prefix: one request cold (the prefix cache emptied), then one warm.
  double cold_ttft = 0, warm_ttft = 0;
  if (o.shared_prefix > 0) {
    std::vector<double> cold, warm;
    for (int r = 0; r < o.reps; ++r) {
      StepEngine fresh(engine, so);         // an empty prefix cache
      for (auto& t : prefix) t = tok(rng);  // and a new prefix every rep
      cold.push_back(run_round(fresh, make_prompts(1), 2).ttft[0]);
      warm.push_back(run_round(fresh, make_prompts(1), 2).ttft[0]);
    }
    cold_ttft = median(cold);
    warm_ttft = median(warm);
  }

  const KvPoolShape& pool = engine.kv_pool_shape();
  if (o.json) {
    nlohmann::json j;
    j["pack"] = o.pack_dir;
    j["backend"] = o.backend;
    j["tp"] = engine.tp_size();
    j["threads"] = threads;
    j["concurrency"] = o.concurrency;
    j["prompt_len"] = o.prompt_len;
    j["shared_prefix"] = o.shared_prefix;
    j["gen"] = o.gen;
    j["kv_dtype"] = dtype_name(pool.dtype);
    j["block_size"] = pool.block_size;
    j["deterministic"] = o.deterministic;
    j["compute"] = apps::describe_compute(eo);
    j["single_decode_tok_s"] = median(single);
    j["one_sequence_engine_decode_tok_s"] = median(legacy);
    j["single_over_one_sequence_engine"] = median(step_over_legacy);
    j["single_over_one_sequence_engine_reps"] = step_over_legacy;
    j["aggregate_decode_tok_s"] = median(aggregate);
    j["per_sequence_decode_tok_s"] = median(per_seq_rate);
    j["end_to_end_output_tok_s"] = median(end_to_end);
    j["aggregate_over_single"] = median(ratio);
    j["aggregate_over_single_reps"] = ratio;
    j["ttft_p50_s"] = median(ttft_p50);
    j["ttft_p99_s"] = median(ttft_p99);
    j["kv_blocks_peak"] = peak_blocks;
    j["kv_blocks_total"] = pool.n_blocks;
    j["prefix_hit_rate"] = median(hit);
    if (o.shared_prefix > 0) {
      j["prefix_ttft_cold_s"] = cold_ttft;
      j["prefix_ttft_warm_s"] = warm_ttft;
    }
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("shardlm-bench --concurrency %lld: %s, tp %d, %d threads, backend %s, KV %s x %lld\n",
              static_cast<long long>(o.concurrency), engine.config().architecture.c_str(),
              engine.tp_size(), threads, o.backend.c_str(), dtype_name(pool.dtype),
              static_cast<long long>(pool.block_size));
  std::printf("  compute: %s\n", apps::describe_compute(eo).c_str());
  std::printf(
      "  prompts %lld tokens (shared prefix %lld), %lld generated each, %d reps (A/B pairs)\n",
      static_cast<long long>(o.prompt_len), static_cast<long long>(o.shared_prefix),
      static_cast<long long>(o.gen), o.reps);
  if (processes) {
    std::printf("single sequence decode   %.2f tok/s (ranks as processes: %d)\n", median(single),
                engine.tp_size());
  } else {
    std::printf(
        "single sequence decode   %.2f tok/s (one-sequence engine path: %.2f tok/s; step engine "
        "/ that, per A/B pair: %.3fx median)\n",
        median(single), median(legacy), median(step_over_legacy));
  }
  std::printf("aggregate decode         %.2f tok/s = %.2fx the single sequence (per rep:",
              median(aggregate), median(ratio));
  for (double r : ratio) std::printf(" %.2fx", r);
  std::printf(")\nper-sequence decode      %.2f tok/s\n", median(per_seq_rate));
  std::printf(
      "end-to-end output        %.2f tok/s (all %lld sequences' tokens / submission to the "
      "last token, prefill included)\n",
      median(end_to_end), static_cast<long long>(o.concurrency));
  std::printf("TTFT                     p50 %.3f s, p99 %.3f s\n", median(ttft_p50),
              median(ttft_p99));
  std::printf("KV blocks                peak %lld of %lld held\n",
              static_cast<long long>(peak_blocks), static_cast<long long>(pool.n_blocks));
  std::printf("prefix cache hit rate    %.1f%% of prompt tokens\n", 100 * median(hit));
  if (o.shared_prefix > 0) {
    std::printf("shared-prefix TTFT       cold %.3f s, warm %.3f s (%.1f%% of cold)\n", cold_ttft,
                warm_ttft, 100 * warm_ttft / cold_ttft);
  }
}

}  // namespace shardlm::bench
