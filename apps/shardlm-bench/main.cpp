// shardlm-bench: loads a pack set, runs prompt + greedy generation `reps` times, and reports
// load time, time to first token, prefill and decode tokens/s (medians), peak memory, and how
// close decode comes to the memory-bandwidth roofline and prefill to the peak FLOP rate, both
// measured on this machine by the bench itself (machine_probe.h). Bytes and FLOPs are counted
// from the packs as traffic.h defines. With --baseline, a second pack of the same model runs
// beside it, their steps interleaved (A/B pairs, paired_runs.h), and the report adds their speed
// ratios. Not a correctness test and not a load generator.
#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/common/cli_main.h"
#include "apps/common/compute_flags.h"
#include "apps/common/process_group.h"
#include "apps/common/spec_flags.h"
#include "apps/shardlm-bench/comm_bench.h"
#include "apps/shardlm-bench/concurrency.h"
#include "apps/shardlm-bench/machine_probe.h"
#include "apps/shardlm-bench/paired_runs.h"
#include "apps/shardlm-bench/perplexity.h"
#include "apps/shardlm-bench/proc_mem.h"
#include "apps/shardlm-bench/speculation_bench.h"
#include "apps/shardlm-bench/traffic.h"
#include "kernels/cpu/isa.h"
#include "runtime/backend/backend.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"

namespace po = boost::program_options;
using namespace shardlm;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string pack_dir, baseline_dir, backend = "cpu";
  std::optional<std::string> baseline_settings;  // --baseline-backend-settings
  int64_t prompt_len = 512, gen = 128, ubatch = 0;
  int batch = 1, threads = 0, reps = 3, warmup = 1, tp = 0;
  uint64_t seed = 1;
  size_t bw_mib = 1024;
  bool json = false, probe = true;
  apps::ComputeFlags compute;
};

struct Rep {
  double ttft_s = 0, prefill_tok_s = 0, decode_tok_s = 0, decode_s = 0;
  int64_t decode_steps = 0;
  // Bandwidth probes right before and after this run (the better of the two): streaming the
  // pack's weights, and the anonymous-memory triad. Zero without probes.
  double read_gbs = 0, triad_gbs = 0;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "n/a" : a + " " + b + " " + c;
}

Rep rep_of(const bench::SideTimes& t, size_t prompt_len) {
  Rep rep;
  rep.ttft_s = t.prefill_s;
  rep.prefill_tok_s = static_cast<double>(prompt_len) / t.prefill_s;
  rep.decode_steps = t.decode_steps;
  rep.decode_s = t.decode_s;
  rep.decode_tok_s = t.decode_s > 0 ? static_cast<double>(t.decode_steps) / t.decode_s : 0;
  return rep;
}

Rep run_once(Engine& engine, const std::vector<int32_t>& prompt, int64_t gen) {
  GenerateOptions go;
  go.max_new_tokens = gen;
  go.ignore_eos = true;  // always generate exactly `gen` tokens
  go.temperature = 0;    // greedy: distributed argmax, no logits gathered
  const GenerateResult r = generate(engine, prompt, go);
  return rep_of({r.prefill_seconds, r.decode_seconds, r.n_decode_steps}, prompt.size());
}

// One measured run of every sequence. With --batch B > 1 the B independent engines run their
// sequences at the same time, released together; TTFT is the last sequence's, prefill tok/s
// counts all prompt tokens over that time, and decode tok/s counts every decode step of every
// sequence over the window from the first decode start to the last decode end.
Rep run_all(std::vector<std::unique_ptr<Engine>>& engines,
            const std::vector<std::vector<int32_t>>& prompts, int64_t gen) {
  if (engines.size() == 1) return run_once(*engines[0], prompts[0], gen);
  const size_t b = engines.size();
  std::vector<Rep> reps(b);
  std::vector<double> start(b);
  std::vector<std::exception_ptr> errors(b);
  const auto t0 = Clock::now();
  {
    std::vector<std::thread> seqs;
    for (size_t i = 0; i < b; ++i) {
      seqs.emplace_back([&, i] {
        try {
          start[i] = std::chrono::duration<double>(Clock::now() - t0).count();
          reps[i] = run_once(*engines[i], prompts[i], gen);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      });
    }
    for (auto& t : seqs) t.join();
  }
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  Rep all;
  double dec_begin = 1e300, dec_end = 0;
  for (size_t i = 0; i < b; ++i) {
    all.ttft_s = std::max(all.ttft_s, start[i] + reps[i].ttft_s);
    all.decode_steps += reps[i].decode_steps;
    dec_begin = std::min(dec_begin, start[i] + reps[i].ttft_s);
    dec_end = std::max(dec_end, start[i] + reps[i].ttft_s + reps[i].decode_s);
  }
  all.prefill_tok_s = static_cast<double>(b * prompts[0].size()) / all.ttft_s;
  all.decode_s = dec_end - dec_begin;
  all.decode_tok_s = static_cast<double>(all.decode_steps) / all.decode_s;
  return all;
}

std::string gb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f GB", bytes / 1e9);
  return b;
}
std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / (1 << 20));
  return b;
}

int run(int argc, char** argv) {
  Options o;
  po::options_description desc("shardlm-bench options");
  desc.add_options()("help,h", "show this help")("pack", po::value(&o.pack_dir)->required(),
                                                 "pack directory (all ranks run in-process)")(
      "backend", po::value(&o.backend)->default_value("cpu"),
      "compute backend: cpu | cuda | vulkan (as built)")(
      "prompt-len", po::value(&o.prompt_len)->default_value(512), "prompt tokens (random ids)")(
      "gen", po::value(&o.gen)->default_value(128), "tokens generated per run (greedy)")(
      "batch", po::value(&o.batch)->default_value(1),
      "sequences run side by side: B independent engines (no batched GEMM yet)")(
      "threads", po::value(&o.threads)->default_value(0), "compute threads in all (0 = all cores)")(
      "reps", po::value(&o.reps)->default_value(3), "measured runs (medians are reported)")(
      "warmup", po::value(&o.warmup)->default_value(1), "unmeasured runs first (page-in, caches)")(
      "tp", po::value(&o.tp)->default_value(0), "expected tensor-parallel size (0 = the pack's)")(
      "ubatch", po::value(&o.ubatch)->default_value(0), "prefill chunk in tokens (0 = prompt-len)")(
      "seed", po::value(&o.seed)->default_value(1), "seed of the random prompt")(
      "bw-mib", po::value(&o.bw_mib)->default_value(1024), "bandwidth probe footprint (MiB)")(
      "no-probe", "skip the bandwidth and peak-FLOP probes (no roofline fractions)")(
      "json", "print one JSON object instead of the table")(
      "baseline", po::value(&o.baseline_dir),
      "a second pack of the same model (e.g. bf16 against a quantized --pack): every run "
      "becomes a pair, the two packs' prefills and then their decode steps taking turns, and "
      "the report adds the pairs' speed ratios --pack / --baseline")(
      "baseline-backend-settings", po::value<std::string>(),
      "--baseline's backend settings instead of --backend-settings; with the same pack as "
      "--baseline, one setting measured against another (e.g. kv_touch=off)")(
      "concurrency", po::value<int64_t>(),
      "N sequences through the step engine's scheduler at once vs one alone (concurrency.h)")(
      "shared-prefix", po::value<int64_t>()->default_value(0),
      "--concurrency: leading prompt tokens common to every sequence")(
      "kv-dtype", po::value<std::string>()->default_value("bf16"),
      "paged KV element type bf16 | f16 | f32 | f8e4m3 (every mode)")(
      "block-size", po::value<int64_t>()->default_value(16), "--concurrency: tokens per KV block")(
      "deterministic", "--concurrency, --spec-prompts: batch-invariant CPU kernels")(
      "activations", po::value(&o.compute.activations)->default_value("auto"),
      "matmuls with bf16 weights: auto (bf16 where the CPU multiplies bf16 natively, else f32) | "
      "f32 (exact) | bf16 (activations rounded to bf16, VDPBF16PS)")(
      "backend-settings", po::value(&o.compute.backend_settings)->default_value(""),
      "backend-specific key=value,... (cpu: isa=avx2, amx_splits=1, kv_touch=off, "
      "pin_threads=off; cuda: graphs=1)")(
      "perplexity", po::value<std::string>(),
      "perplexity of this text file through the runtime (perplexity.h), then exit")(
      "ppl-ctx", po::value<int64_t>()->default_value(512),
      "--perplexity: tokens per window (each window scored on its own)")(
      "spec-prompts", po::value<std::string>(),
      "plain vs speculative decode on these prompts (JSON Lines), with --draft or --spec-ngram")(
      "temperature", po::value<float>()->default_value(0.0f), "--spec-prompts: 0 = greedy");
  apps::SpecFlags spec_flags;
  apps::add_spec_flags(desc, spec_flags);
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << "usage: shardlm-bench --pack DIR [options]\n" << desc;
    return 0;
  }
  po::notify(vm);
  o.json = vm.count("json") > 0;
  o.probe = vm.count("no-probe") == 0;
  // Started by mpirun: one rank per process (docs/distributed.md); rank 0 measures and prints.
  apps::ProcessGroup procs(&argc, &argv, false);
  if (procs.active()) {
    if (o.batch != 1) {
      fail(StatusCode::kUnsupported,
           "under mpirun --batch (independent engines) does not apply; use --concurrency");
    }
    o.probe = false;  // per-process bandwidth probes would compete with the other ranks
  }
  const std::string kv_name = vm["kv-dtype"].as<std::string>();
  const std::optional<DType> kv_dtype = parse_dtype(kv_name);
  if (!kv_dtype) {
    fail(StatusCode::kInvalidArg, "--kv-dtype " + kv_name + ": expected bf16, f16, f32 or f8e4m3");
  }
  if (vm.count("baseline-backend-settings")) {
    if (o.baseline_dir.empty()) {
      fail(StatusCode::kInvalidArg, "--baseline-backend-settings needs --baseline");
    }
    o.baseline_settings = vm["baseline-backend-settings"].as<std::string>();
  }
  if (!o.baseline_dir.empty() &&
      (vm.count("perplexity") || vm.count("spec-prompts") || vm.count("concurrency"))) {
    fail(StatusCode::kInvalidArg,
         "--baseline pairs the plain prompt + generation runs; --perplexity, --spec-prompts and "
         "--concurrency take one pack");
  }
  if (vm.count("perplexity") || vm.count("spec-prompts")) {
    EngineOptions eo;
    eo.kv_dtype = *kv_dtype;
    eo.pack_dir = o.pack_dir;
    eo.backend = o.backend;
    eo.tp = o.tp;
    eo.n_threads = o.threads;
    eo.default_sequence = false;
    eo.deterministic = vm.count("deterministic") > 0;
    if (vm.count("perplexity")) eo.n_ctx = vm["ppl-ctx"].as<int64_t>() + 1;  // + the one generated
    apps::apply_compute_flags(o.compute, eo);
    eo.process_comm = procs.comm();
    if (procs.active() && procs.local_rank() >= 0) {
      eo.devices.assign(static_cast<size_t>(procs.size()), procs.local_rank());
    }
    Engine engine(eo);
    if (!engine.drives()) {
      engine.serve_steps();
      return 0;
    }
    if (vm.count("perplexity")) {
      const std::string path = vm["perplexity"].as<std::string>();
      const bench::PerplexityResult r =
          bench::perplexity(engine, path, vm["ppl-ctx"].as<int64_t>());
      if (o.json) {
        nlohmann::json j = {{"file", path},
                            {"perplexity", r.perplexity},
                            {"mean_nll", r.mean_nll},
                            {"tokens", r.n_tokens},
                            {"scored", r.n_scored},
                            {"windows", r.n_windows},
                            {"ctx", vm["ppl-ctx"].as<int64_t>()},
                            {"tp", engine.tp_size()},
                            {"seconds", r.seconds}};
        std::cout << j.dump(1) << "\n";
      } else {
        std::printf("perplexity %.4f\n", r.perplexity);
        std::printf("  %s: %lld tokens, %lld scored in %lld windows of %lld, tp %d, %.1f s\n",
                    path.c_str(), static_cast<long long>(r.n_tokens),
                    static_cast<long long>(r.n_scored), static_cast<long long>(r.n_windows),
                    static_cast<long long>(vm["ppl-ctx"].as<int64_t>()), engine.tp_size(),
                    r.seconds);
      }
      return 0;
    }
    bench::SpeculationBenchOptions so;
    so.prompts_path = vm["spec-prompts"].as<std::string>();
    so.spec = spec_flags;
    so.gen = o.gen;
    so.reps = o.reps;
    so.temperature = vm["temperature"].as<float>();
    so.json = o.json;
    const std::unique_ptr<Engine> draft = apps::open_draft(spec_flags, eo, engine);
    bench::run_speculation_bench(engine, draft.get(), so);
    return 0;
  }
  if (vm.count("concurrency")) {
    bench::ConcurrencyOptions c;
    c.pack_dir = o.pack_dir;
    c.backend = o.backend;
    c.tp = o.tp;
    c.threads = o.threads;
    c.reps = o.reps;
    c.warmup = o.warmup;
    c.concurrency = vm["concurrency"].as<int64_t>();
    c.prompt_len = o.prompt_len;
    c.gen = o.gen;
    c.shared_prefix = vm["shared-prefix"].as<int64_t>();
    c.ubatch = o.ubatch;
    c.kv_dtype = vm["kv-dtype"].as<std::string>();
    c.block_size = vm["block-size"].as<int64_t>();
    c.seed = o.seed;
    c.json = o.json;
    c.deterministic = vm.count("deterministic") > 0;
    c.compute = o.compute;
    c.process_comm = procs.comm();
    if (procs.active() && procs.local_rank() >= 0) {  // one GPU per process: the local rank's
      c.devices.assign(static_cast<size_t>(procs.size()), procs.local_rank());
    }
    bench::run_concurrency(c);
    return 0;
  }
  if (o.prompt_len < 1 || o.gen < 2) {
    fail(StatusCode::kInvalidArg, "--prompt-len must be >= 1 and --gen >= 2 (decode needs a step)");
  }
  if (o.reps < 1 || o.warmup < 0)
    fail(StatusCode::kInvalidArg, "--reps must be >= 1, --warmup >= 0");
  if (o.batch < 1) fail(StatusCode::kInvalidArg, "--batch must be >= 1");
  if (!o.baseline_dir.empty() && (o.batch != 1 || procs.active())) {
    fail(StatusCode::kInvalidArg,
         "--baseline runs one sequence per pack in this process: drop --batch and the process "
         "launcher");
  }
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());

  // ---- Load: open every rank file, bind weights (zero copy on CPU), allocate KV and scratch.
  // The engine holds one sequence, so --batch B runs B independent engines (each with
  // threads / B compute threads) side by side: no batched GEMM, every sequence streams the
  // weights itself. Load time is the first engine's (the others reuse the page cache).
  EngineOptions eo;
  eo.pack_dir = o.pack_dir;
  eo.tp = o.tp;
  eo.backend = o.backend;
  eo.n_threads = std::max(1, threads / o.batch);
  eo.n_ctx = o.prompt_len + o.gen + 1;
  eo.max_batch_tokens = o.ubatch > 0 ? o.ubatch : o.prompt_len;
  eo.kv_dtype = *kv_dtype;
  apps::apply_compute_flags(o.compute, eo);
  eo.process_comm = procs.comm();
  if (procs.active() && procs.local_rank() >= 0) {  // one GPU per process: the node-local rank's
    eo.devices.assign(static_cast<size_t>(procs.size()), procs.local_rank());
  }
  std::vector<std::unique_ptr<Engine>> engines;
  const auto t_load = Clock::now();
  engines.push_back(std::make_unique<Engine>(eo));
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  for (int b = 1; b < o.batch; ++b) engines.push_back(std::make_unique<Engine>(eo));
  const bench::ProcMem mem_loaded = bench::read_proc_mem();
  Engine& engine = *engines[0];
  // --baseline: its engine, built with the same options. Loaded after the memory reading above,
  // so the memory figures stay --pack's own (peak RSS, read at the end, holds both).
  std::vector<std::unique_ptr<Engine>> baseline;
  if (!o.baseline_dir.empty()) {
    EngineOptions bo = eo;
    bo.pack_dir = o.baseline_dir;
    if (o.baseline_settings) bo.backend_settings = parse_backend_settings(*o.baseline_settings);
    baseline.push_back(std::make_unique<Engine>(bo));
    const int64_t nv = engine.config().n_vocab, bv = baseline[0]->config().n_vocab;
    if (nv != bv) {
      fail(StatusCode::kInvalidArg, "--baseline " + o.baseline_dir + " has a vocabulary of " +
                                        std::to_string(bv) + " tokens, --pack " + o.pack_dir +
                                        " of " + std::to_string(nv) +
                                        ": the baseline must be the same model (another dtype)");
    }
  }

  // ---- The communicator: all-reduce of one token's row (decode) and of a prefill chunk.
  const int64_t n_embd = engine.config().n_embd;
  const int64_t chunk = std::min<int64_t>(o.prompt_len, engine.max_batch_tokens());
  std::string comm_kind = "none (tp 1)";
  bench::AllReduceTime ar_token, ar_chunk;
  if (procs.active()) {
    comm_kind = "mpi (fast), one process per rank";
    ar_token = bench::time_all_reduce(*procs.comm(), n_embd, 200);
    ar_chunk = bench::time_all_reduce(*procs.comm(), n_embd * chunk, 20);
  } else if (engine.tp_size() > 1) {
    comm_kind = "threads of one process";
    ar_token = bench::time_threads_all_reduce(engine.tp_size(), n_embd, 200);
    ar_chunk = bench::time_threads_all_reduce(engine.tp_size(), n_embd * chunk, 20);
  }
  if (!engine.drives()) {  // a worker process: run rank 0's steps until it is done
    engine.serve_steps();
    return 0;
  }

  const ModelConfig& cfg = engine.config();
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(cfg.n_vocab - 1));
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(o.batch));
  for (auto& prompt : prompts) {
    prompt.resize(static_cast<size_t>(o.prompt_len));
    for (auto& id : prompt) id = tok(rng);
  }

  // ---- Roofline numerators from the packs.
  std::vector<const PackReader*> packs;
  // Ranks as processes: this process maps rank 0's file only, so the counts are its share.
  const int n_counted = procs.active() ? 1 : engine.tp_size();
  for (int r = 0; r < n_counted; ++r) packs.push_back(&engine.pack(r));
  const bench::Traffic traffic = bench::count_traffic(packs, engine.kv_pool_shape().dtype);

  // ---- Runs: the first warm-up run also pages the mapped weights in (its TTFT is reported).
  double first_ttft = 0;
  for (int w = 0; w < o.warmup; ++w) {
    const Rep r =
        baseline.empty()
            ? run_all(engines, prompts, o.gen)
            : rep_of(bench::run_interleaved(engine, *baseline[0], prompts[0], o.gen, false).a,
                     prompts[0].size());
    if (w == 0) first_ttft = r.ttft_s;
  }
  const bench::ProcMem mem = bench::read_proc_mem();  // before any probe buffer exists

  // Bandwidth drifts on a shared machine, so it is probed around every measured run.
  std::unique_ptr<bench::TriadProbe> triad;
  if (o.probe) triad = std::make_unique<bench::TriadProbe>(traffic.weight_bytes, threads);
  auto probe = [&](Rep& r) {
    if (!o.probe) return;
    r.read_gbs = std::max(r.read_gbs, bench::read_regions_gbs(traffic.weight_regions, threads, 2));
    r.triad_gbs = std::max(r.triad_gbs, triad->run_gbs(2));
  };
  std::vector<Rep> reps, base_reps;
  for (int i = 0; i < o.reps; ++i) {
    Rep before;
    probe(before);
    Rep r;
    if (baseline.empty()) {
      r = run_all(engines, prompts, o.gen);
    } else {  // a pair, steps taking turns; the baseline goes first in odd reps
      const bench::PairTimes pair =
          bench::run_interleaved(engine, *baseline[0], prompts[0], o.gen, i % 2 == 1);
      r = rep_of(pair.a, prompts[0].size());
      base_reps.push_back(rep_of(pair.b, prompts[0].size()));
    }
    r.read_gbs = before.read_gbs;
    r.triad_gbs = before.triad_gbs;
    probe(r);
    reps.push_back(r);
  }
  triad.reset();

  // Decode step j (1..gen-1) feeds one token at position prompt_len + j - 1: it attends
  // prompt_len + j cached positions. Bytes are linear in that, so the mean step is exact.
  const double mean_kv = static_cast<double>(o.prompt_len) + static_cast<double>(o.gen) / 2.0;
  const double kv_bytes = static_cast<double>(traffic.kv_bytes_per_pos) * mean_kv;
  const double token_bytes =
      static_cast<double>(traffic.weight_bytes + traffic.embed_row_bytes) + kv_bytes;
  std::vector<double> ttft, pre, dec, frac, frac_read, read_bw, triad_bw;
  for (const Rep& r : reps) {
    ttft.push_back(r.ttft_s);
    pre.push_back(r.prefill_tok_s);
    dec.push_back(r.decode_tok_s);
    if (o.probe) {
      const double gbs = token_bytes * r.decode_tok_s / 1e9;
      frac.push_back(gbs / std::max(r.read_gbs, r.triad_gbs));
      frac_read.push_back(gbs / r.read_gbs);
      read_bw.push_back(r.read_gbs);
      triad_bw.push_back(r.triad_gbs);
    }
  }
  const double ttft_med = median(ttft), pre_med = median(pre), dec_med = median(dec);
  // --baseline: its figures, and --pack / --baseline pair by pair.
  std::vector<double> base_pre, base_dec, pre_ratio, dec_ratio;
  for (size_t i = 0; i < base_reps.size(); ++i) {
    base_pre.push_back(base_reps[i].prefill_tok_s);
    base_dec.push_back(base_reps[i].decode_tok_s);
    pre_ratio.push_back(reps[i].prefill_tok_s / base_reps[i].prefill_tok_s);
    dec_ratio.push_back(reps[i].decode_tok_s / base_reps[i].decode_tok_s);
  }
  const double achieved_gbs = token_bytes * dec_med / 1e9;
  const double prefill_flops = traffic.prefill_flops(o.prompt_len, cfg);
  const double prefill_gflops = o.batch * prefill_flops / ttft_med / 1e9;

  // Reference probes after the runs: anonymous read/copy/triad and peak FLOP rates.
  bench::Bandwidth bw;
  bench::PeakFlops peak;
  if (o.probe) {
    bw = bench::measure_bandwidth(threads, o.bw_mib, 5);
    peak = bench::measure_peak_flops(threads, 3);
  }
  const std::string isa = apps::describe_compute(eo);
  uint64_t device_peak = 0;  // device backends: the most device memory held, all engines
  for (const auto& e : engines) device_peak += e->device_bytes_peak();

  if (o.json) {
    nlohmann::json j;
    j["pack"] = o.pack_dir;
    j["model"] = {{"architecture", cfg.architecture},
                  {"weight_dtype", dtype_name(engine.pack(0).weight_dtype())},
                  {"tp", engine.tp_size()}};
    j["backend"] = o.backend;
    j["compute"] = isa;
    j["threads"] = threads;
    j["threads_per_rank"] = engine.threads_per_rank();
    j["prompt_len"] = o.prompt_len;
    j["gen"] = o.gen;
    j["batch"] = o.batch;
    j["reps"] = o.reps;
    j["load_average"] = load_average();
    j["load_s"] = load_s;
    j["first_ttft_s"] = first_ttft;
    j["ttft_s"] = ttft_med;
    j["prefill_tok_s"] = pre_med;
    j["decode_tok_s"] = dec_med;
    j["communicator"] = {{"kind", comm_kind},
                         {"all_reduce_token_bytes", ar_token.bytes},
                         {"all_reduce_token_us", ar_token.median_us},
                         {"all_reduce_chunk_bytes", ar_chunk.bytes},
                         {"all_reduce_chunk_us", ar_chunk.median_us},
                         {"all_reduce_chunk_gbs", ar_chunk.gbs}};
    j["ttft_s_reps"] = ttft;
    j["prefill_tok_s_reps"] = pre;
    j["decode_tok_s_reps"] = dec;
    j["bytes_per_token"] = token_bytes;
    j["weight_bytes"] = traffic.weight_bytes;
    j["lm_head_bytes"] = traffic.lm_head_bytes;
    j["embed_row_bytes"] = traffic.embed_row_bytes;
    j["kv_bytes_mean"] = kv_bytes;
    j["kv_dtype"] = dtype_name(engine.kv_pool_shape().dtype);
    j["decode_gbs"] = achieved_gbs;
    j["prefill_flops"] = prefill_flops;
    j["prefill_gflops"] = prefill_gflops;
    j["peak_rss_bytes"] = mem.peak_rss;
    j["rss_file_bytes"] = mem.rss_file;
    j["rss_anon_bytes"] = mem.rss_anon;
    j["file_pmd_mapped_bytes"] = mem.file_pmd_mapped;
    j["rss_after_load_bytes"] = mem_loaded.rss;
    if (!baseline.empty()) {
      j["baseline"] = {
          {"pack", o.baseline_dir},
          {"backend_settings", o.baseline_settings.value_or(o.compute.backend_settings)},
          {"weight_dtype", dtype_name(baseline[0]->pack(0).weight_dtype())},
          {"prefill_tok_s", median(base_pre)},
          {"decode_tok_s", median(base_dec)},
          {"prefill_tok_s_reps", base_pre},
          {"decode_tok_s_reps", base_dec}};
      j["decode_ratio"] = median(dec_ratio);
      j["decode_ratio_reps"] = dec_ratio;
      j["prefill_ratio"] = median(pre_ratio);
      j["prefill_ratio_reps"] = pre_ratio;
    }
    if (device_peak > 0) {
      j["device_memory_bytes"] = device_peak;
    } else {
      j["device_memory_bytes"] = nullptr;  // host backend: its memory is the RSS above
    }
    if (o.probe) {
      j["roofline_fraction"] = median(frac);
      j["roofline_fraction_reps"] = frac;
      j["roofline_fraction_vs_weight_read"] = median(frac_read);
      j["weight_read_gbs_reps"] = read_bw;
      j["triad_gbs_reps"] = triad_bw;
      j["reference_bandwidth_gbs"] = {{"read", bw.read_gbs},
                                      {"read_one_thread", bw.read_one_thread_gbs},
                                      {"copy", bw.copy_gbs},
                                      {"triad", bw.triad_gbs},
                                      {"mib", o.bw_mib}};
      j["roofline_fraction_vs_reference_copy"] = achieved_gbs / bw.copy_gbs;
      j["peak_gflops"] = {{"f32", peak.f32_gflops},
                          {"f32_method", peak.f32_method},
                          {"bf16", peak.bf16_gflops},
                          {"bf16_method", peak.bf16_method}};
      j["prefill_fraction_f32_peak"] = prefill_gflops / peak.f32_gflops;
      if (peak.bf16_gflops > 0) {
        j["prefill_fraction_bf16_peak"] = prefill_gflops / peak.bf16_gflops;
      }
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  auto list = [](const std::vector<double>& v, double scale, const char* fmt) {
    std::string out;
    char b[32];
    for (double d : v) {
      std::snprintf(b, sizeof b, fmt, d * scale);
      out += (out.empty() ? "" : " ") + std::string(b);
    }
    return out;
  };
  std::printf("shardlm-bench: %s, %s weights, tp %d x %d threads, backend %s (%s)\n",
              cfg.architecture.c_str(), dtype_name(engine.pack(0).weight_dtype()), engine.tp_size(),
              engine.threads_per_rank(), o.backend.c_str(), isa.c_str());
  if (o.batch > 1) {
    std::printf(
        "  batch %d = %d independent engines side by side (one sequence each, no batched "
        "GEMM: every sequence streams the weights; rates below are totals)\n",
        o.batch, o.batch);
  }
  std::printf("  cpu features: %s; load average %s\n", cpu::cpu_feature_summary().c_str(),
              load_average().c_str());
  if (ar_token.bytes > 0) {
    std::printf("communicator             %s: all-reduce of one token %s, of %lld tokens %s\n",
                comm_kind.c_str(), bench::describe(ar_token).c_str(), static_cast<long long>(chunk),
                bench::describe(ar_chunk).c_str());
  }
  std::printf("load (open to ready)     %.3f s\n", load_s);
  std::printf("first run TTFT           %.3f s (includes paging the mapped weights in)\n",
              first_ttft);
  std::printf("TTFT                     %.3f s (median of %d: %s)\n", ttft_med, o.reps,
              list(ttft, 1, "%.3f").c_str());
  std::printf("prefill                  %.1f tok/s (%d x %lld tokens), %.1f GFLOP/s", pre_med,
              o.batch, static_cast<long long>(o.prompt_len), prefill_gflops);
  if (o.probe) {
    std::printf(" = %.1f%% of f32 peak", 100 * prefill_gflops / peak.f32_gflops);
    if (peak.bf16_gflops > 0) {
      std::printf(", %.1f%% of bf16 peak", 100 * prefill_gflops / peak.bf16_gflops);
    }
  }
  std::printf("\ndecode                   %.2f tok/s (median of %d: %s)\n", dec_med, o.reps,
              list(dec, 1, "%.2f").c_str());
  std::printf(
      "bytes per decoded token  %s (weights %s incl. lm_head %s, KV %s at mean %.0f "
      "positions)%s\n",
      gb(token_bytes).c_str(), gb(static_cast<double>(traffic.weight_bytes)).c_str(),
      gb(static_cast<double>(traffic.lm_head_bytes)).c_str(), gb(kv_bytes).c_str(), mean_kv,
      procs.active() ? " -- rank 0's share" : "");
  std::printf("decode bandwidth         %.2f GB/s\n", achieved_gbs);
  if (!baseline.empty()) {
    std::printf(
        "baseline                 %s (%s weights%s%s): prefill %.1f tok/s, decode %.2f tok/s "
        "(medians)\n",
        o.baseline_dir.c_str(), dtype_name(baseline[0]->pack(0).weight_dtype()),
        o.baseline_settings ? ", backend settings " : "",
        o.baseline_settings ? o.baseline_settings->c_str() : "", median(base_pre),
        median(base_dec));
    std::printf(
        "  pack / baseline        decode %.3fx (median of %d pairs, steps taking turns: %s), "
        "prefill %.3fx (%s)\n",
        median(dec_ratio), o.reps, list(dec_ratio, 1, "%.3f").c_str(), median(pre_ratio),
        list(pre_ratio, 1, "%.3f").c_str());
  }
  if (o.probe) {
    std::printf(
        "roofline                 %.1f%% of the larger of weight stream and triad (median of %d: "
        "%s)\n",
        100 * median(frac), o.reps, list(frac, 100, "%.1f%%").c_str());
    std::printf("  vs read bandwidth      %.1f%% of the weight stream alone (median of %d: %s)\n",
                100 * median(frac_read), o.reps, list(frac_read, 100, "%.1f%%").c_str());
    std::printf("  bandwidth around runs  weight stream %s GB/s, triad %s GB/s\n",
                list(read_bw, 1, "%.2f").c_str(), list(triad_bw, 1, "%.2f").c_str());
    std::printf(
        "  reference (%zu MiB)    read %.2f GB/s (one thread %.2f), copy %.2f GB/s, triad %.2f "
        "GB/s\n",
        o.bw_mib, bw.read_gbs, bw.read_one_thread_gbs, bw.copy_gbs, bw.triad_gbs);
    std::printf("  peak                   f32 %.0f GFLOP/s (%s); bf16 %.0f GFLOP/s (%s)\n",
                peak.f32_gflops, peak.f32_method.c_str(), peak.bf16_gflops,
                peak.bf16_method.c_str());
  }
  std::printf(
      "memory                   peak RSS %s (file-backed %s, %s of it in 2 MiB "
      "mappings; anonymous %s); after load %s\n",
      mib(static_cast<double>(mem.peak_rss)).c_str(),
      mib(static_cast<double>(mem.rss_file)).c_str(),
      mib(static_cast<double>(mem.file_pmd_mapped)).c_str(),
      mib(static_cast<double>(mem.rss_anon)).c_str(),
      mib(static_cast<double>(mem_loaded.rss)).c_str());
  if (device_peak > 0) {
    std::printf("device memory            peak %s (weights, KV cache and scratch, all ranks)\n",
                mib(static_cast<double>(device_peak)).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return shardlm::apps::cli_main("shardlm-bench", run, argc, argv);
}
