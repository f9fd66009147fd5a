// shardlm-serve: an OpenAI-compatible HTTP server for one pack (server.h). The socket is bound
// first, so /health answers 503 while the model loads and 200 once it is ready; SIGINT/SIGTERM
// drain and stop it. Under mpirun, rank 0 serves HTTP and drives the steps; the other ranks
// only execute steps. Not the HTTP handling (server.cpp) or the generation (completion_runner).
#include <boost/program_options.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "apps/common/cli_main.h"
#include "apps/common/compute_flags.h"
#include "apps/common/process_group.h"
#include "apps/common/spec_flags.h"
#include "apps/shardlm-serve/server.h"
#include "runtime/core/dtype.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/serving_loop.h"

namespace po = boost::program_options;
using namespace shardlm;

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) {
  g_signal.store(sig);
}

std::string default_model_name(const std::string& pack_dir) {
  std::filesystem::path p(pack_dir);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string().empty() ? "shardlm" : p.filename().string();
}

int run(int argc, char** argv) {
  std::string pack_dir, backend, kv_dtype, mpi_reduction, name, api_key;
  serve::ServerOptions so;
  int threads = 0, tp = 0;
  int64_t n_ctx = 0, max_seqs = 16, batch_tokens = 256, block_size = 16, kv_blocks = -1;
  int64_t max_body_mb = 4;
  double comm_timeout = 60;
  apps::ComputeFlags compute;
  apps::SpecFlags spec;
  po::options_description opts("shardlm-serve options");
  opts.add_options()("help,h", "show this help")("pack", po::value(&pack_dir)->required(),
                                                 "pack directory (rank-r-of-N.shardlm files)")(
      "host", po::value(&so.host)->default_value("127.0.0.1"),
      "address to listen on (loopback by default; 0.0.0.0 for every interface)")(
      "port", po::value(&so.port)->default_value(8080), "TCP port (0: any free port)")(
      "api-key", po::value(&api_key),
      "require 'Authorization: Bearer KEY' on /v1/* (default: $SHARDLM_API_KEY, else none)")(
      "served-model-name", po::value(&name),
      "the model id clients use (default: the pack's "
      "directory name)")("backend", po::value(&backend)->default_value("cpu"),
                         "compute backend: cpu, cuda, vulkan")(
      "threads", po::value(&threads)->default_value(0), "compute threads in all (0 = all cores)")(
      "tp", po::value(&tp)->default_value(0), "expected tensor-parallel size (0 = the pack's)")(
      "n-ctx", po::value(&n_ctx)->default_value(0),
      "context length per sequence (0 = the model's, at most 4096)")(
      "max-seqs", po::value(&max_seqs)->default_value(16), "sequences per step")(
      "max-batch-tokens", po::value(&batch_tokens)->default_value(256),
      "tokens per step (prefill chunk)")("kv-dtype", po::value(&kv_dtype)->default_value("bf16"),
                                         "KV cache type: bf16, f16, f32")(
      "block-size", po::value(&block_size)->default_value(16), "tokens per KV block")(
      "kv-blocks", po::value(&kv_blocks)->default_value(-1),
      "KV blocks per rank (-1: what the memory plan leaves)")(
      "activations", po::value(&compute.activations)->default_value("auto"),
      "matmuls with bf16 weights: auto (bf16 where the CPU multiplies bf16 natively) | f32 "
      "(exact) | bf16")(
      "backend-settings", po::value(&compute.backend_settings)->default_value(""),
      "backend-specific key=value,... (cpu: isa=avx2; cuda: graphs=1)")(
      "max-body-mb", po::value(&max_body_mb)->default_value(4),
      "largest request body in MiB (larger: 413)")(
      "max-in-flight", po::value(&so.max_in_flight)->default_value(128),
      "completion requests answered at once (more: 429)")(
      "stream-interval", po::value(&so.stream_interval)->default_value(1),
      "fewest tokens per streamed chunk (1: every token as soon as it is ready; larger values "
      "send fewer, bigger chunks, which costs less CPU per token)")(
      "shutdown-timeout", po::value(&so.shutdown_seconds)->default_value(30),
      "seconds running requests get to finish on SIGINT/SIGTERM")(
      "no-access-log", "do not print one line per request")(
      "mpi-reduction", po::value(&mpi_reduction)->default_value("fast"),
      "under mpirun: all-reduce fast or rank-ordered")(
      "comm-timeout", po::value(&comm_timeout)->default_value(60),
      "under mpirun: seconds a collective waits for the other ranks");
  apps::add_spec_flags(opts, spec);
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, opts), vm);
  if (vm.count("help")) {
    std::cout << "usage: shardlm-serve --pack DIR [--host H] [--port P] [--api-key KEY] "
                 "[engine limits]\n"
              << opts;
    return 0;
  }
  po::notify(vm);
  if (api_key.empty()) {
    if (const char* k = std::getenv("SHARDLM_API_KEY")) api_key = k;
  }
  so.api_key = api_key;
  so.access_log = vm.count("no-access-log") == 0;
  if (max_body_mb < 1) fail(StatusCode::kInvalidArg, "--max-body-mb must be at least 1");
  so.max_body_bytes = static_cast<size_t>(max_body_mb) << 20;
  if (so.max_in_flight < 1) fail(StatusCode::kInvalidArg, "--max-in-flight must be at least 1");
  if (so.stream_interval < 1) {
    fail(StatusCode::kInvalidArg, "--stream-interval must be at least 1 (tokens per chunk)");
  }
  const std::optional<DType> kv = parse_dtype(kv_dtype);
  if (!kv)
    fail(StatusCode::kInvalidArg, "--kv-dtype " + kv_dtype + ": expected bf16, f16, f32 or f8e4m3");
  if (name.empty()) name = default_model_name(pack_dir);

  apps::ProcessGroup procs(&argc, &argv, mpi_reduction == "rank-ordered");
  EngineOptions eo;
  eo.pack_dir = pack_dir;
  eo.tp = tp;
  eo.backend = backend;
  eo.n_threads = threads;
  eo.n_ctx = n_ctx;
  eo.max_batch_tokens = batch_tokens;
  eo.default_sequence = false;  // every request goes through the step engine
  eo.block_size = block_size;
  eo.kv_blocks = kv_blocks;
  eo.kv_dtype = *kv;
  eo.process_comm = procs.comm();
  eo.comm_timeout_seconds = comm_timeout;
  if (procs.active() && procs.local_rank() >= 0) {
    eo.devices = std::vector<int>(static_cast<size_t>(procs.size()), procs.local_rank());
  }
  apps::apply_compute_flags(compute, eo);
  StepEngineOptions seo;
  seo.max_seqs = max_seqs;
  seo.speculation = apps::speculation_options(spec);

  if (procs.active() && procs.rank() != 0) {  // a worker rank: execute rank 0's steps
    Engine engine(eo);
    engine.serve_steps();
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is a failed write, not a signal
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  serve::Server server(so);
  const int port = server.bind();
  std::fprintf(stderr, "shardlm-serve: listening on http://%s:%d (loading %s)\n", so.host.c_str(),
               port, pack_dir.c_str());
  std::thread http([&] { server.serve(); });

  std::shared_ptr<Engine> engine, draft;
  std::shared_ptr<ServingLoop> loop;
  int status = 0;
  try {
    engine = std::make_shared<Engine>(eo);
    draft = std::shared_ptr<Engine>(apps::open_draft(spec, eo, *engine).release());
    auto text = ModelText::load(engine->pack(0));
    loop = std::make_shared<ServingLoop>(engine, seo, draft);
    std::fprintf(stderr,
                 "shardlm-serve: %s ready as '%s': %s, tp %d, context %lld tokens, %lld KV "
                 "blocks of %lld, up to %lld sequences per step\n",
                 pack_dir.c_str(), name.c_str(), engine->config().architecture.c_str(),
                 engine->tp_size(), static_cast<long long>(loop->n_ctx()),
                 static_cast<long long>(engine->kv_pool_shape().n_blocks),
                 static_cast<long long>(block_size), static_cast<long long>(max_seqs));
    server.set_model(loop, std::move(text), name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardlm-serve: cannot load %s: %s\n", pack_dir.c_str(), e.what());
    server.set_load_error(e.what());
    g_signal.store(SIGTERM);
    status = 1;
  }

  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (status == 0) {
    std::fprintf(stderr, "shardlm-serve: signal %d: draining (up to %.0f s), then stopping\n",
                 g_signal.load(), so.shutdown_seconds);
  }
  server.stop();
  http.join();
  loop.reset();  // before the engines it steps
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  return apps::cli_main("shardlm-serve", run, argc, argv);
}
