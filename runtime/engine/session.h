// A conversation on one model: the token history of its context and the chat messages. Every
// generation call treats its input as the *whole* context and submits it as one request to the
// model's step engine (serving_loop.h), which batches it with the requests of other sessions and
// threads, and reuses the KV of every leading block of it the prefix cache still holds: the
// session's own earlier turns, or another session's identical prefix (a shared system prompt).
// chat() renders the template over all messages and compares the rendered text with the text the
// history tokens stand for, so the tokens of the unchanged part stay the same ids (and hit the
// cache) and only what changed is tokenized anew (the new message, plus anything the template
// re-renders differently, e.g. Qwen3 dropping an earlier answer's <think> block);
// complete()/complete_tokens() compare token ids. A sampled stop token is kept as a pending
// history token and computed with the next turn. Reuse is per KV block (block_size tokens): up to
// a block of the context before the change is recomputed. A context that cannot hold the input
// fails with Error(kKvFull) before anything changes; one that fills while generating ends the
// reply with FinishReason::kContextFull.
// Thread-safety: one thread at a time per Session, except cancel(), which any thread (or a
// signal handler: it is one lock-free atomic store) may call. Sessions on one model run on any
// number of threads at once and share steps.
// Not here: the sampler (sampler.h), stop strings (stop_strings.h), the C ABI (runtime/api).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/engine/engine.h"
#include "runtime/engine/serving_loop.h"
#include "runtime/engine/generation.h"
#include "runtime/engine/model_text.h"

namespace shardlm {

class Session {
 public:
  // `text` may lack a tokenizer/template: then only complete_tokens() works.
  Session(std::shared_ptr<ServingLoop> loop, std::shared_ptr<const ModelText> text);
  ~Session();

  // ---- Conversation state (takes effect at the next chat()) ----
  void set_system(const std::string& text);  // "" removes the system message
  const std::string& system() const { return system_; }
  // Qwen3-style enable_thinking template variable; nullopt = the template's default.
  void set_thinking(std::optional<bool> enable) { thinking_ = enable; }
  std::optional<bool> thinking() const { return thinking_; }
  // Appends a message without generating (restoring a conversation, few-shot examples).
  void add_message(const std::string& role, const std::string& content);
  // Forgets messages and the token history (the system message stays).
  void reset();
  // Drops the `n` oldest turns (a user message and what follows it up to the next user
  // message); the system message stays. Returns the number dropped.
  int truncate_turns(int n);
  const nlohmann::ordered_json& messages() const { return messages_; }  // without the system
  int n_turns() const;

  // ---- Generation ----
  // Adds a user message, renders the template (add_generation_prompt) and generates the reply,
  // which is appended as the assistant message (also when stopped early; not when cancelled
  // before the first token).
  GenerationResult chat(const std::string& user_message, const GenerationRequest& request,
                        const StreamFn& on_text = {});
  // Raw completion: `prompt` (tokenized with the tokenizer's special tokens, e.g. BOS) is the
  // whole context. Clears the chat messages (not the system message).
  GenerationResult complete(const std::string& prompt, const GenerationRequest& request,
                            const StreamFn& on_text = {});
  GenerationResult complete_tokens(std::span<const int32_t> prompt,
                                   const GenerationRequest& request, const StreamFn& on_text = {});
  // Makes the running generation stop at the next token or prefill chunk (kCancelled). The flag
  // is cleared when a generation starts: a cancel with nothing running has no effect.
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }

  // ---- Inspection ----
  int64_t n_ctx() const;  // capacity in tokens
  int64_t n_ctx_used() const { return static_cast<int64_t>(tokens_.size()); }
  // Leading context tokens whose KV the prefix cache holds now (whole blocks; what the next
  // call would reuse if it keeps them).
  int64_t n_in_kv() const;
  const std::vector<int32_t>& tokens() const { return tokens_; }  // the context's ids
  const std::string& last_reply() const { return last_reply_; }
  const ModelText& text() const { return *model_text_; }
  Engine& engine() const { return loop_->engine(); }
  ServingLoop& serving_loop() const { return *loop_; }

 private:
  struct Cut {
    size_t n_tokens;  // cutting the history after this many tokens ...
    size_t n_bytes;   // ... leaves this much of history_text_
  };
  // Replaces the context after its first `keep` tokens (and `keep_bytes` of text) by `add`.
  void commit(size_t keep, size_t keep_bytes, const std::vector<int32_t>& add,
              const std::string& add_text, bool text_known);
  // kKvFull unless keep + n_new input tokens and one generated token fit; at_least: n_new is a
  // lower bound (Tokenizer::min_tokens), said so in the message.
  void check_room(size_t keep, size_t n_new, bool at_least = false) const;
  GenerationResult run(const GenerationRequest& request, const StreamFn& on_text,
                       double setup_seconds);
  std::vector<int32_t> stop_ids(const GenerationRequest& request) const;
  nlohmann::ordered_json conversation() const;  // system + messages

  std::shared_ptr<ServingLoop> loop_;
  std::shared_ptr<const ModelText> model_text_;
  std::atomic<bool> cancel_{false};

  std::string system_;
  std::optional<bool> thinking_;
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();

  std::vector<int32_t> tokens_;  // the context; the KV cache holds a prefix of it
  bool text_known_ = true;       // history_text_ is the exact text of tokens_
  std::string history_text_;
  std::vector<Cut> cuts_{{0, 0}};  // safe cut points, ascending
  std::string last_reply_;
};

}  // namespace shardlm
