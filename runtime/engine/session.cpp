// Session: prefix reuse against the token/text history, and the generation loop.
#include "runtime/engine/session.h"

#include <algorithm>
#include <chrono>

#include "runtime/core/status.h"
#include "runtime/engine/stream_reader.h"

namespace shardlm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

size_t common_prefix(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStopToken:
      return "stop token";
    case FinishReason::kStopString:
      return "stop string";
    case FinishReason::kMaxTokens:
      return "max tokens";
    case FinishReason::kContextFull:
      return "context full";
    case FinishReason::kCallback:
      return "stopped by callback";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Session::Session(std::shared_ptr<ServingLoop> loop, std::shared_ptr<const ModelText> text)
    : loop_(std::move(loop)), model_text_(std::move(text)) {
  if (!loop_ || !model_text_)
    fail(StatusCode::kInvalidArg, "session needs a serving loop and model text");
}

Session::~Session() = default;

int64_t Session::n_ctx() const {
  return loop_->n_ctx();
}

int64_t Session::n_in_kv() const {
  return loop_->cached_prefix_tokens(tokens_);
}

void Session::set_system(const std::string& text) {
  system_ = text;
}

void Session::add_message(const std::string& role, const std::string& content) {
  if (role.empty()) fail(StatusCode::kInvalidArg, "message role is empty");
  messages_.push_back({{"role", role}, {"content", content}});
}

void Session::reset() {
  messages_ = nlohmann::ordered_json::array();
  tokens_.clear();
  history_text_.clear();
  text_known_ = true;
  cuts_.assign(1, Cut{0, 0});
  last_reply_.clear();
}

int Session::n_turns() const {
  int n = 0;
  for (const auto& m : messages_) n += m.value("role", "") == "user";
  return n;
}

int Session::truncate_turns(int n) {
  if (n < 0) fail(StatusCode::kInvalidArg, "number of turns to drop must be >= 0");
  int dropped = 0;
  size_t erase_end = 0;
  for (size_t i = 0; i < messages_.size() && dropped < n; ++i) {
    if (messages_[i].value("role", "") != "user") continue;
    // The turn starting here ends at the next user message (or the end).
    size_t j = i + 1;
    while (j < messages_.size() && messages_[j].value("role", "") != "user") ++j;
    erase_end = j;
    ++dropped;
    i = j - 1;
  }
  // Leading non-user messages before the first dropped turn (e.g. added assistant notes) go too.
  if (erase_end > 0) {
    messages_.erase(messages_.begin(), messages_.begin() + static_cast<std::ptrdiff_t>(erase_end));
  }
  return dropped;
}

nlohmann::ordered_json Session::conversation() const {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  if (!system_.empty()) all.push_back({{"role", "system"}, {"content", system_}});
  for (const auto& m : messages_) all.push_back(m);
  return all;
}

void Session::check_room(size_t keep, size_t n_new, bool at_least) const {
  // The input plus room for one generated token.
  const int64_t need = static_cast<int64_t>(keep + n_new) + 1;
  if (need > n_ctx()) {
    fail(StatusCode::kKvFull,
         "context full: the input needs " + std::string(at_least ? "at least " : "") +
             std::to_string(need - 1) + " tokens (" +
             std::to_string(keep) + " reused + " + std::to_string(n_new) +
             " new) + 1 to generate, but the context holds " + std::to_string(n_ctx()) +
             "; reset the session, drop old turns, or open the model with a larger n_ctx (C ABI max_seq)");
  }
}

void Session::commit(size_t keep, size_t keep_bytes, const std::vector<int32_t>& add,
                     const std::string& add_text, bool text_known) {
  tokens_.resize(keep);
  while (!cuts_.empty() && cuts_.back().n_tokens > keep) cuts_.pop_back();
  text_known_ = text_known;
  if (!text_known_) {
    history_text_.clear();
    cuts_.assign(1, Cut{0, 0});
  } else {
    history_text_.resize(keep_bytes);
  }
  tokens_.insert(tokens_.end(), add.begin(), add.end());
  if (!text_known_) return;
  // Per-token cut points when the pieces spell the text exactly (byte-level BPE); otherwise the
  // added block can only be cut at its end.
  const text::Tokenizer& tok = model_text_->tokenizer();
  std::string spelled;
  std::vector<size_t> ends;
  for (int32_t id : add) {
    spelled += tok.token_to_piece(id);
    ends.push_back(spelled.size());
  }
  const size_t base_tokens = keep, base_bytes = history_text_.size();
  history_text_ += add_text;
  if (spelled == add_text) {
    for (size_t i = 0; i < add.size(); ++i)
      cuts_.push_back({base_tokens + i + 1, base_bytes + ends[i]});
  } else if (!add.empty()) {
    cuts_.push_back({base_tokens + add.size(), base_bytes + add_text.size()});
  }
}

std::vector<int32_t> Session::stop_ids(const GenerationRequest& request) const {
  std::vector<int32_t> ids = request.stop_ids;
  if (!request.ignore_eos)
    ids.insert(ids.end(), model_text_->stop_ids().begin(), model_text_->stop_ids().end());
  return ids;
}

GenerationResult Session::chat(const std::string& user_message, const GenerationRequest& request,
                               const StreamFn& on_text) {
  const auto t0 = Clock::now();
  validate_sampler_params(request.sampling);
  const text::Tokenizer& tok = model_text_->tokenizer();
  // A message far beyond the context is refused from its length before it is rendered (the
  // rendering holds it whole, so it gives at least as many tokens).
  check_room(0, static_cast<size_t>(tok.min_tokens(user_message)), /*at_least=*/true);
  nlohmann::ordered_json msgs = conversation();
  msgs.push_back({{"role", "user"}, {"content", user_message}});
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (thinking_) extra["enable_thinking"] = *thinking_;
  const std::string full = model_text_->render(msgs, true, extra);

  // The longest prefix of the history whose text is a prefix of the new rendering, cut at the
  // earliest token boundary that leaves that text.
  Cut cut{0, 0};
  if (text_known_) {
    const size_t common = common_prefix(history_text_, full);
    for (const Cut& c : cuts_) {
      if (c.n_bytes > common) break;
      if (c.n_bytes > cut.n_bytes) cut = c;
    }
  }
  const std::string add_text = full.substr(cut.n_bytes);
  // A text far beyond the context is refused from its length, before tokenizing all of it.
  check_room(cut.n_tokens, static_cast<size_t>(tok.min_tokens(add_text)), /*at_least=*/true);
  const std::vector<int32_t> add = tok.encode(add_text, /*add_special_tokens=*/false);
  check_room(cut.n_tokens, add.size());
  commit(cut.n_tokens, cut.n_bytes, add, add_text, true);

  GenerationResult res = run(request, on_text, seconds_since(t0));
  if (!(res.finish == FinishReason::kCancelled && res.tokens.empty())) {
    messages_.push_back({{"role", "user"}, {"content", user_message}});
    messages_.push_back({{"role", "assistant"}, {"content", res.text}});
  }
  return res;
}

GenerationResult Session::complete(const std::string& prompt, const GenerationRequest& request,
                                   const StreamFn& on_text) {
  const auto t0 = Clock::now();
  validate_sampler_params(request.sampling);
  check_room(0, static_cast<size_t>(model_text_->tokenizer().min_tokens(prompt)), /*at_least=*/true);
  const std::vector<int32_t> ids =
      model_text_->tokenizer().encode(prompt, /*add_special_tokens=*/true);
  if (ids.empty()) fail(StatusCode::kInvalidArg, "the prompt encodes to no tokens");
  const size_t keep = common_prefix(tokens_, ids);
  const std::vector<int32_t> add(ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end());
  check_room(keep, add.size());
  commit(keep, 0, add, {}, false);
  messages_ = nlohmann::ordered_json::array();
  return run(request, on_text, seconds_since(t0));
}

GenerationResult Session::complete_tokens(std::span<const int32_t> prompt,
                                          const GenerationRequest& request,
                                          const StreamFn& on_text) {
  const auto t0 = Clock::now();
  validate_sampler_params(request.sampling);
  if (prompt.empty()) fail(StatusCode::kInvalidArg, "no prompt tokens");
  const int64_t n_vocab = engine().config().n_vocab;
  for (int32_t id : prompt) {
    if (id < 0 || id >= n_vocab) {
      fail(StatusCode::kInvalidArg, "prompt token id " + std::to_string(id) +
                                        " outside the vocabulary of " + std::to_string(n_vocab));
    }
  }
  const size_t keep = common_prefix(tokens_, prompt);
  const std::vector<int32_t> add(prompt.begin() + static_cast<std::ptrdiff_t>(keep), prompt.end());
  check_room(keep, add.size());
  commit(keep, 0, add, {}, false);
  messages_ = nlohmann::ordered_json::array();
  return run(request, on_text, seconds_since(t0));
}

GenerationResult Session::run(const GenerationRequest& request, const StreamFn& on_text,
                              double setup_seconds) {
  const auto t0 = Clock::now();
  cancel_.store(false, std::memory_order_relaxed);
  last_reply_.clear();
  if (tokens_.empty()) fail(StatusCode::kInvalidArg, "nothing to generate from: empty context");
  const int64_t n_prompt = static_cast<int64_t>(tokens_.size());

  TokenRequest tr;
  tr.prompt = tokens_;
  tr.sampling = request.sampling;
  tr.max_new_tokens = request.max_new_tokens;
  tr.stop_ids = stop_ids(request);
  const std::shared_ptr<RequestStream> stream = loop_->submit(std::move(tr));
  // Every token joins the context as it comes (a final stop token too: pending, computed with
  // the next turn).
  auto add_to_history = [&](int32_t token) {
    tokens_.push_back(token);
    if (text_known_) {
      history_text_ += model_text_->tokenizer().token_to_piece(token);
      cuts_.push_back({tokens_.size(), history_text_.size()});
    }
  };
  GenerationResult res =
      read_stream(*stream, request, *model_text_, on_text, &cancel_, add_to_history, t0, n_prompt);
  if (!res.tokens.empty() || res.finish == FinishReason::kStopToken) {
    res.ttft_seconds = setup_seconds + res.prefill_seconds;
  }
  last_reply_ = res.text;
  return res;
}

}  // namespace shardlm
