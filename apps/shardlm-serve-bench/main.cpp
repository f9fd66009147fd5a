// shardlm-serve-bench: a bounded load generator for an OpenAI-compatible server. Sends --requests
// M streaming requests, --concurrency N at a time (each of N threads takes the next request as
// soon as its last one ends), then prints requests/s, output tokens/s, TTFT, inter-token latency
// and errors (report.h). Exit status: 0 all requests succeeded, 1 any failed (or the server has
// no model to offer), 2 bad flags or no server at --host:--port. Speaks HTTP only; not a
// correctness test of the answers and not an open-loop (arrival-rate) load generator.
#include <boost/program_options.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "apps/shardlm-serve-bench/event_loop_client.h"
#include "apps/shardlm-serve-bench/prompt_words.h"
#include "apps/shardlm-serve-bench/report.h"
#include "apps/shardlm-serve-bench/stream_client.h"

namespace po = boost::program_options;
using namespace shardlm::serve_bench;

namespace {

constexpr const char* kProg = "shardlm-serve-bench";

struct Options {
  ServerConfig server;
  RunConfig run;
  bool json = false;
  bool client_threads = false;  // a thread per stream over cpp-httplib instead of the event loop
};

// nullopt after --help.
std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  std::string endpoint = "chat";
  int requests = 0;
  po::options_description desc(
      "shardlm-serve-bench: N concurrent streaming clients against an OpenAI-compatible server,\n"
      "M requests in all; reports requests/s, output tokens/s, TTFT, ITL and errors.\n"
      "Exit status: 0 all requests ok, 1 any failed, 2 bad flags or server unreachable.\n\n"
      "Options");
  desc.add_options()("help,h", "this help")(
      "host", po::value(&o.server.host)->default_value("127.0.0.1"), "server address")(
      "port", po::value(&o.server.port)->default_value(8080), "server port")(
      "api-key", po::value(&o.server.api_key), "sent as 'Authorization: Bearer KEY'")(
      "endpoint", po::value(&endpoint)->default_value("chat"),
      "chat (POST /v1/chat/completions) or completions (POST /v1/completions)")(
      "model", po::value(&o.run.model), "model name (default: the first id of GET /v1/models)")(
      "concurrency", po::value(&o.run.concurrency)->default_value(16), "clients at once")(
      "requests", po::value(&requests), "requests in all (default: 4 x concurrency)")(
      "max-tokens", po::value(&o.run.max_tokens)->default_value(64), "max_tokens of each request")(
      "prompt-words", po::value(&o.run.prompt_words)->default_value(32),
      "words per prompt, drawn from a built-in list; a different prompt per request")(
      "seed", po::value(&o.run.seed)->default_value(1), "seed of the prompt words")(
      "temperature", po::value(&o.run.temperature)->default_value(0.0), "sampling temperature")(
      "ignore-eos", po::bool_switch(&o.run.ignore_eos),
      "send \"ignore_eos\": true, so every request generates exactly max_tokens")(
      "client-threads", po::bool_switch(&o.client_threads),
      "one thread per stream over cpp-httplib instead of one epoll loop (costs the measured "
      "machine a context switch per token)")("timeout",
                                             po::value(&o.server.timeout_s)->default_value(300.0),
                                             "seconds per request, connect to [DONE]")(
      "json", po::bool_switch(&o.json), "print the result as one JSON object");
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return std::nullopt;
  }
  po::notify(vm);

  if (endpoint == "chat") {
    o.run.endpoint = Endpoint::kChat;
  } else if (endpoint == "completions") {
    o.run.endpoint = Endpoint::kCompletions;
  } else {
    throw std::invalid_argument("--endpoint must be chat or completions, not '" + endpoint + "'");
  }
  if (o.server.port < 1 || o.server.port > 65535) {
    throw std::invalid_argument("--port must be in 1..65535");
  }
  if (o.run.concurrency < 1) throw std::invalid_argument("--concurrency must be at least 1");
  if (vm.count("requests") && requests < 1) {
    throw std::invalid_argument("--requests must be at least 1");
  }
  o.run.requests = vm.count("requests") ? requests : 4 * o.run.concurrency;
  if (o.run.max_tokens < 1) throw std::invalid_argument("--max-tokens must be at least 1");
  if (o.run.temperature < 0) throw std::invalid_argument("--temperature must not be negative");
  if (!(o.server.timeout_s > 0)) throw std::invalid_argument("--timeout must be positive");
  o.run.host = o.server.host;
  o.run.port = o.server.port;
  o.run.timeout_s = o.server.timeout_s;
  return o;
}

// Every prompt as a request of the run's settings.
std::vector<StreamRequest> make_requests(const Options& o,
                                         const std::vector<std::string>& prompts) {
  std::vector<StreamRequest> requests(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    StreamRequest& r = requests[i];
    r.endpoint = o.run.endpoint;
    r.model = o.run.model;
    r.prompt = prompts[i];
    r.max_tokens = o.run.max_tokens;
    r.temperature = o.run.temperature;
    r.ignore_eos = o.run.ignore_eos;
  }
  return requests;
}

// Runs every request; `results[i]` is request i's.
std::vector<StreamResult> run_load(const Options& o, const std::vector<std::string>& prompts) {
  const std::vector<StreamRequest> requests = make_requests(o, prompts);
  if (!o.client_threads) return run_streams_event_loop(o.server, requests, o.run.concurrency);
  std::vector<StreamResult> results(prompts.size());
  std::atomic<size_t> next{0};
  const auto worker = [&] {
    for (size_t i = next++; i < prompts.size(); i = next++) {
      results[i] = run_stream_request(o.server, requests[i]);
    }
  };
  const size_t n_threads = std::min<size_t>(static_cast<size_t>(o.run.concurrency), prompts.size());
  std::vector<std::thread> threads;
  threads.reserve(n_threads);
  for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return results;
}

int run(int argc, char** argv) {
  std::optional<Options> parsed;
  std::vector<std::string> prompts;
  try {
    parsed = parse_args(argc, argv);
    if (!parsed) return 0;
    prompts = make_prompts(static_cast<size_t>(parsed->run.requests), parsed->run.prompt_words,
                           parsed->run.seed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", kProg, e.what());
    return 2;
  }
  Options& o = *parsed;
  const std::string where = o.server.host + ":" + std::to_string(o.server.port);

  // GET /v1/models: is anybody there, and (without --model) which model to ask for.
  const ModelLookup lookup = first_model(o.server);
  if (!lookup.reached) {
    std::fprintf(stderr, "%s: cannot reach the server at %s (%s)\n", kProg, where.c_str(),
                 lookup.error.c_str());
    return 2;
  }
  if (o.run.model.empty()) {
    if (lookup.model.empty()) {
      std::fprintf(stderr, "%s: no model from GET /v1/models at %s: %s\n", kProg, where.c_str(),
                   lookup.error.c_str());
      return 1;
    }
    o.run.model = lookup.model;
  }

  const auto start = std::chrono::steady_clock::now();
  const std::vector<StreamResult> results = run_load(o, prompts);
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const RunSummary summary = summarize_run(results, wall_s);
  if (o.json) {
    std::cout << json_report(o.run, summary).dump(2) << "\n";
  } else {
    std::cout << text_report(o.run, summary);
  }
  return summary.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a server that hangs up mid-request is an error, not a kill
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", kProg, e.what());
    return 2;
  }
}
