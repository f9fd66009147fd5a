// shardlm-run: loads a pack set (every rank in this process, one thread per rank; or, started by
// `mpirun -n N`, one rank per process with rank 0 driving), feeds a prompt and generates. Prints generated ids (--print-ids) and timing on stderr; can dump the
// prompt's logits as JSON. Not a chat REPL (shardlm-chat) and not a benchmark (shardlm-bench).
#include <boost/program_options.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "apps/common/cli_main.h"
#include "apps/common/compute_flags.h"
#include "apps/common/spec_flags.h"
#include "apps/common/process_group.h"
#include "apps/common/prompt_input.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"

namespace po = boost::program_options;
using namespace shardlm;

namespace {

// [n_prompt][n_vocab] as JSON, the layout of reference.json's prefill_logits.
void dump_logits(const std::string& path, const std::vector<float>& logits, int64_t n_vocab) {
  std::ofstream f(path);
  if (!f) fail(StatusCode::kIo, "cannot write " + path);
  f << "{\"n_vocab\": " << n_vocab << ", \"prefill_logits\": [";
  const int64_t rows = n_vocab ? static_cast<int64_t>(logits.size()) / n_vocab : 0;
  char buf[32];
  for (int64_t r = 0; r < rows; ++r) {
    f << (r ? ",\n[" : "\n[");
    for (int64_t i = 0; i < n_vocab; ++i) {
      std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", logits[r * n_vocab + i]);
      f << buf;
    }
    f << "]";
  }
  f << "]}\n";
  if (!f) fail(StatusCode::kIo, "error writing " + path);
}

int run(int argc, char** argv) {
  std::string pack_dir, prompt, prompt_ids, dump_path, backend, devices, mpi_reduction;
  int64_t max_tokens = 0, n_ctx = 0, batch_tokens = 0;
  float temperature = 0;
  double comm_timeout = 60;
  uint64_t seed = 0;
  int threads = 0, tp = 0;
  apps::ComputeFlags compute;
  po::options_description opts("shardlm-run options");
  opts.add_options()("help,h", "show this help")("pack", po::value(&pack_dir)->required(),
                                                 "pack directory (all ranks run in-process)")(
      "prompt", po::value(&prompt), "prompt text (needs the tokenizer)")(
      "prompt-ids", po::value(&prompt_ids), "prompt token ids, comma separated: 1,2,3")(
      "max-tokens", po::value(&max_tokens)->default_value(32), "tokens to generate")(
      "temperature", po::value(&temperature)->default_value(0.0f), "0 = greedy")(
      "seed", po::value(&seed)->default_value(0), "sampling seed")(
      "print-ids", "print the generated ids on stdout")(
      "dump-logits", po::value(&dump_path), "write the prompt positions' logits as JSON")(
      "ignore-eos", "keep generating past end-of-sequence ids")(
      "backend", po::value(&backend)->default_value("cpu"),
      "compute backend: cpu, cuda or vulkan (as built; see shardlm-run --help)")(
      "threads", po::value(&threads)->default_value(0), "compute threads in all (0 = all cores)")(
      "tp", po::value(&tp)->default_value(0), "expected tensor-parallel size (0 = the pack's)")(
      "n-ctx", po::value(&n_ctx)->default_value(0),
      "context length in tokens (0 = prompt + max-tokens)")(
      "max-seq", po::value<int64_t>(), "the same as --n-ctx (older name)")(
      "batch-tokens", po::value(&batch_tokens)->default_value(256), "prefill chunk in tokens")(
      "activations", po::value(&compute.activations)->default_value("auto"),
      "matmuls with bf16 weights: auto (bf16 where the CPU multiplies bf16 natively, else f32) | "
      "f32 (exact) | bf16 (activations rounded to bf16)")(
      "backend-settings", po::value(&compute.backend_settings)->default_value(""),
      "backend-specific key=value,... (cpu: isa=avx2, amx_splits=1, kv_touch=off, "
      "pin_threads=off; cuda: graphs=1)")(
      "device", po::value(&devices),
      "device indices for the ranks of a GPU backend, comma separated: rank r uses the "
      "(r mod count)-th (default: every device)")(
      "mpi-reduction", po::value(&mpi_reduction)->default_value("fast"),
      "under mpirun: all-reduce fast (MPI_Allreduce) or rank-ordered (bit-identical to the "
      "in-process run)")(
      "comm-timeout", po::value(&comm_timeout)->default_value(60),
      "under mpirun: seconds a collective waits for the other ranks before giving up (0: for "
      "ever)")(
      "tokenize", "print the ids of --prompt and exit (no BOS unless --add-special)")(
      "add-special", "with --tokenize: apply the tokenizer's post-processor (BOS, ...)");
  apps::SpecFlags spec;
  apps::add_spec_flags(opts, spec);
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, opts), vm);
  if (vm.count("help")) {
    std::cout << "usage: shardlm-run --pack DIR (--prompt-ids 1,2,3 | --prompt TEXT) [options]\n"
              << opts;
    return 0;
  }
  po::notify(vm);
  if (mpi_reduction != "fast" && mpi_reduction != "rank-ordered") {
    fail(StatusCode::kInvalidArg, "--mpi-reduction " + mpi_reduction + ": fast or rank-ordered");
  }
  // Started by mpirun: this process runs one rank; rank 0 prints, the others serve steps.
  apps::ProcessGroup procs(&argc, &argv, mpi_reduction == "rank-ordered");
  if (vm.count("tokenize")) {
    if (procs.rank() != 0) return 0;  // reads only rank 0's manifest; no weights are touched
    if (!vm.count("prompt")) fail(StatusCode::kInvalidArg, "--tokenize needs --prompt TEXT");
    const PackSet set = find_pack_set(pack_dir, tp);
    std::vector<int32_t> ids;  // an empty text is zero tokens, not an error, here
    if (!prompt.empty() || vm.count("add-special"))
      ids =
          encode_prompt(*PackReader::open(set.rank_paths[0]), prompt, vm.count("add-special") > 0);
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? "," : "", ids[i]);
    std::printf("\n");
    return 0;
  }
  if (vm.count("prompt") == vm.count("prompt-ids")) {
    fail(StatusCode::kInvalidArg, "give exactly one of --prompt and --prompt-ids");
  }
  if (max_tokens < 0) fail(StatusCode::kInvalidArg, "--max-tokens must be >= 0");

  std::vector<int32_t> ids;
  if (vm.count("prompt-ids")) {
    ids = parse_id_list(prompt_ids);
  } else {  // the tokenizer travels in every rank file; rank 0's header + manifest suffice
    const PackSet set = find_pack_set(pack_dir, tp);
    ids = encode_prompt(*PackReader::open(set.rank_paths[0]), prompt);
  }

  EngineOptions eo;
  eo.pack_dir = pack_dir;
  eo.tp = tp;
  eo.backend = backend;
  eo.n_threads = threads;
  if (!devices.empty())
    for (int32_t d : parse_id_list(devices)) eo.devices.push_back(static_cast<int>(d));
  eo.max_batch_tokens = batch_tokens;
  apps::apply_compute_flags(compute, eo);
  eo.process_comm = procs.comm();
  // One GPU per process: the node-local rank's, unless --device chose.
  if (procs.active() && eo.devices.empty() && procs.local_rank() >= 0) {
    eo.devices = std::vector<int>(static_cast<size_t>(procs.size()), procs.local_rank());
  }
  eo.comm_timeout_seconds = comm_timeout;
  // KV capacity: exactly what this run needs unless told otherwise.
  if (vm.count("max-seq")) n_ctx = vm["max-seq"].as<int64_t>();
  eo.n_ctx = n_ctx;
  if (n_ctx == 0) eo.n_ctx = static_cast<int64_t>(ids.size()) + max_tokens + 1;
  const SpeculationOptions spec_options = apps::speculation_options(spec);
  Engine engine(eo);
  if (!engine.drives()) {
    engine.serve_steps();
    return 0;
  }
  const std::unique_ptr<Engine> draft = apps::open_draft(spec, eo, engine);

  std::fprintf(stderr,
               "shardlm-run: %s, tp %d x %d threads%s, %s weights, %.1f MiB used in place, %s\n",
               engine.config().architecture.c_str(), engine.tp_size(), engine.threads_per_rank(),
               procs.active() ? " (one process per rank)" : "",
               dtype_name(engine.pack(0).weight_dtype()),
               static_cast<double>(engine.weight_bytes_in_place()) / (1 << 20),
               apps::describe_compute(eo).c_str());

  GenerateOptions go;
  go.max_new_tokens = max_tokens;
  go.ignore_eos = vm.count("ignore-eos") > 0;
  go.temperature = temperature;
  go.seed = seed;
  go.prompt_logits = !dump_path.empty();
  go.speculation = spec_options;
  go.draft = draft.get();
  const GenerateResult res = generate(engine, ids, go);
  if (!dump_path.empty()) dump_logits(dump_path, res.prompt_logits, engine.config().n_vocab);

  if (vm.count("print-ids")) {
    for (size_t i = 0; i < res.tokens.size(); ++i) std::printf("%s%d", i ? "," : "", res.tokens[i]);
    std::printf("\n");
  } else if (text_supported()) {
    std::printf("%s\n", decode_tokens(engine.pack(0), res.tokens).c_str());
  } else {
    for (size_t i = 0; i < res.tokens.size(); ++i) std::printf("%s%d", i ? " " : "", res.tokens[i]);
    std::printf("\n");
  }
  const double decode_tps =
      res.decode_seconds > 0 ? static_cast<double>(res.n_decode_steps) / res.decode_seconds : 0;
  std::fprintf(stderr,
               "shardlm-run: prompt %zu tokens in %.3f s (%.1f tok/s), decode %lld tokens in "
               "%.3f s (%.2f tok/s)%s\n",
               ids.size(), res.prefill_seconds,
               res.prefill_seconds > 0 ? static_cast<double>(ids.size()) / res.prefill_seconds : 0,
               static_cast<long long>(res.n_decode_steps), res.decode_seconds, decode_tps,
               res.stopped ? ", stopped at eos" : "");
  if (spec_options.mode != SpeculationMode::kOff) {
    std::fprintf(stderr,
                 "shardlm-run: speculation %s: %lld of %lld proposed tokens accepted (%.1f%%), "
                 "%.2f tokens per verification, %lld target steps, %lld draft steps\n",
                 apps::describe_speculation(spec, draft.get()).c_str(),
                 static_cast<long long>(res.spec_accepted),
                 static_cast<long long>(res.spec_proposed),
                 res.spec_proposed ? 100.0 * res.spec_accepted / res.spec_proposed : 0.0,
                 res.spec_verifications
                     ? double(res.spec_accepted + res.spec_verifications) / res.spec_verifications
                     : 0.0,
                 static_cast<long long>(res.n_steps), static_cast<long long>(res.draft_steps));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return shardlm::apps::cli_main("shardlm-run", run, argc, argv);
}
