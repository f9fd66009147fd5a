/*
 * shardlm.h — the C ABI of libshardlm, the only public header.
 *
 * Load a pack (the per-rank files shardlm-pack wrote), tokenize, apply the chat template, and
 * generate in sessions (conversations with their own KV cache, reused across turns), streaming
 * text through a callback. All tensor-parallel ranks of a pack run inside this process.
 *
 * Conventions
 *  - Opaque handles (shardlm_model, shardlm_session, shardlm_request) with open/close,
 *    create/destroy and submit/free pairs. Close/destroy/free accept NULL, and ignore a handle
 *    already released (releasing twice is safe) or a pointer that never was a handle. Every other
 *    call given such a handle returns SHARDLM_ERR_INVALID_ARG ("... is not a live ... handle")
 *    instead of touching freed memory; only shardlm_session_cancel, being async-signal-safe, does
 *    not check. (A released handle whose address a newer handle of the same kind reuses cannot be
 *    told apart; release must still not race other calls on the same handle.)
 *  - Parameter structs start with `size_t struct_size`; get them from *_default_params() (which
 *    sets struct_size) and change fields. Output structs: set struct_size = sizeof(the struct)
 *    before the call. A struct_size this library does not know gives SHARDLM_ERR_INVALID_ARG.
 *  - Every call that can fail returns a shardlm_status; on failure shardlm_last_error() holds a
 *    message naming the file / tensor / field / argument. Each fallible call clears it first.
 *  - Buffers use two-call sizing: pass buf = NULL, buf_size = 0 to get the needed size in
 *    *out_len (SHARDLM_OK); a non-NULL buffer that is too small gives
 *    SHARDLM_ERR_BUFFER_TOO_SMALL with *out_len set and nothing written. Strings are written
 *    NUL-terminated; *out_len counts bytes without the NUL, so the buffer needs *out_len + 1.
 *  - No C++ exception, abort() or exit() crosses this boundary. Callbacks given to the library
 *    must return normally too (no exceptions, no longjmp).
 *  - Thread safety is stated at each function. In short: a model may be shared by any number of
 *    threads; a session is used by one thread at a time (shardlm_session_cancel excepted).
 *    Sessions and requests on one model generate on any number of threads at once: the model's
 *    step engine runs them together, several sequences per forward step (continuous batching),
 *    with the KV cache in blocks shared through a prefix cache (docs/engine.md).
 */
#ifndef SHARDLM_H
#define SHARDLM_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(SHARDLM_BUILDING_LIBRARY)
#define SHARDLM_API __declspec(dllexport)
#else
#define SHARDLM_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define SHARDLM_API __attribute__((visibility("default")))
#else
#define SHARDLM_API
#endif

/* The ABI this header describes. Compare with shardlm_abi_version() at run time: a library of
 * a higher ABI version serves programs built for a lower one (versions only add calls and append
 * struct fields; the SONAME libshardlm.so.1 changes only on an incompatible change).
 *   1  models, text, sessions
 *   2  the step engine: shardlm_engine_params + shardlm_model_open_with_engine, request-level
 *      calls (shardlm_request_*), shardlm_model_get_stats; sessions on many threads share steps;
 *      ranks as MPI processes (process_ranks, shardlm_model_rank, shardlm_model_serve)
 *   3  speculative decoding: draft_pack / spec_ngram / spec_k in shardlm_engine_params, the
 *      spec_* counters in shardlm_engine_stats (ABI-2 sizes of both structs are still accepted)
 *   4  activations "auto", the new default (bf16 where the CPU multiplies bf16 natively; set
 *      "f32" for the exact arithmetic that was the default before) */
#define SHARDLM_ABI_VERSION 4

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Status codes, errors, version
 * ------------------------------------------------------------------------------------------- */

typedef enum shardlm_status {
  SHARDLM_OK = 0,
  SHARDLM_ERR_INVALID_ARG = 1,      /* NULL handle, bad option, wrong struct_size, bad id */
  SHARDLM_ERR_IO = 2,               /* a file or directory could not be read */
  SHARDLM_ERR_FORMAT = 3,           /* a pack (or a file it carries) is malformed */
  SHARDLM_ERR_OOM = 4,              /* out of memory, or the memory plan does not fit */
  SHARDLM_ERR_BACKEND = 5,          /* the compute backend failed */
  SHARDLM_ERR_COMM = 6,             /* communication between ranks failed */
  SHARDLM_ERR_KV_FULL = 7,          /* the session's context cannot hold the input */
  SHARDLM_ERR_CANCELLED = 8,        /* shardlm_session_cancel() stopped the generation */
  SHARDLM_ERR_UNSUPPORTED = 9,      /* valid request the pack/build cannot serve (no tokenizer) */
  SHARDLM_ERR_INTERNAL = 10,        /* a bug in shardlm, or the model is unusable after one */
  SHARDLM_ERR_BUFFER_TOO_SMALL = 11 /* see two-call sizing above */
} shardlm_status;

/* The ABI version of the loaded library (SHARDLM_ABI_VERSION it was built with). Thread-safe. */
SHARDLM_API uint32_t shardlm_abi_version(void);
/* Library version, e.g. "0.1.0". Static string. Thread-safe. */
SHARDLM_API const char* shardlm_version(void);
/* Short stable name of a status ("ok", "invalid_arg", ...). Static string. Thread-safe. */
SHARDLM_API const char* shardlm_status_name(shardlm_status status);
/* The message of the last failed call on the calling thread ("" when the last fallible call on
 * this thread succeeded). Valid until the next shardlm call on this thread. Thread-local. */
SHARDLM_API const char* shardlm_last_error(void);

/* Compute backends in this build, comma separated ("cpu"). Two-call sizing. Thread-safe. */
SHARDLM_API shardlm_status shardlm_backends(char* buf, size_t buf_size, size_t* out_len);

/* ---------------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------------- */

typedef struct shardlm_model shardlm_model;

typedef struct shardlm_model_params {
  size_t struct_size;
  const char* backend;    /* "cpu" (default; NULL = default) */
  const int32_t* devices; /* rank r runs on devices[r % n_devices]; NULL = every visible
                             device in order; the cpu backend ignores it */
  size_t n_devices;
  int32_t n_threads;        /* compute threads over all ranks; 0 = all cores */
  int32_t tp;               /* expected tensor-parallel size; 0 = whatever the pack has */
  int64_t max_seq;          /* context (KV tokens) per session; 0 = min(model's, 4096) */
  int64_t max_batch_tokens; /* tokens per forward step (prefill chunks + decodes); 0 = 256 */
  float mem_fraction;       /* memory-plan fraction of the device; 0 = the pack's (0.85) */
} shardlm_model_params;

/* Defaults as documented per field. Thread-safe. */
SHARDLM_API shardlm_model_params shardlm_model_default_params(void);

/* ABI 2: the step engine's limits (a struct of its own, so shardlm_model_params, returned by
 * value, never changes size). */
typedef struct shardlm_engine_params {
  size_t struct_size;
  int32_t max_seqs;        /* sequences per step; 0 = 16 */
  int32_t block_size;      /* tokens per KV block; 0 = 16 */
  const char* kv_dtype;    /* KV cache element type: "bf16" (default; NULL = default), "f16", "f32",
                                "f8e4m3" (alias "fp8"; CPU and CUDA backends) */
  int64_t kv_cache_tokens; /* KV pool over all sequences, in tokens; 0 = what the memory plan
                              leaves, at most 2 x max_seq on the cpu backend, 16 x on devices.
                              A pool smaller than max_seq: OOM when max_seq was set, else max_seq
                              is clamped to the pool */
  int32_t prefix_cache;    /* 1 (default): sequences reuse the KV of identical prompt prefixes */
  int32_t admission;       /* 0 (default): admit while blocks are free, preempt (and later
                              recompute) the newest when they run out; 1: admit only what is sure
                              to finish, never preempt */
  int32_t deterministic;   /* cpu: 1 = a sequence's logits are bit-identical whatever it is
                              batched with (slower prefill); default 0 */
  const char* activations; /* matmuls with bf16 weights: "auto" (default; NULL = default) is
                              "bf16" where the CPU multiplies bf16 natively (AVX-512 BF16 or
                              AMX), else "f32"; "f32" keeps activations exact (f32 products of
                              the widened weights); "bf16" rounds them to bf16 once per matmul
                              and sums bf16 products in f32, as PyTorch does for a bf16 model
                              (cpu: ~1.7x prefill, ~1.5x batched decode on AVX-512 BF16).
                              Before ABI 4 the default was "f32" */
  const char* backend_settings; /* backend-specific "key=value,key=value" (NULL or "" = none):
                              cpu isa=scalar|avx2|avx512|amx, amx_splits=1|2|3,
                              kv_touch=on|off, pin_threads=on|off; cuda graphs=0|1,
                              verbose=0|1; vulkan pipeline_cache=PATH. An unknown key is
                              INVALID_ARG naming it. Each overrides its SHARDLM_* variable */
  int32_t process_ranks;   /* 1: one rank per MPI process, for a program started by
                              `mpirun -n <tp>` on every process (MPI is initialized here if the
                              program has not; UNSUPPORTED in a build without MPI). Rank 0
                              drives (sessions, requests); the others call
                              shardlm_model_serve(). Default 0: every rank a thread here */
  int32_t comm_timeout_s;  /* process_ranks: seconds a collective waits for the other processes
                              before failing with COMM (a dead or hung rank); 0 = 60 */
  /* ABI 3: speculative decoding. Greedy output is unchanged; sampled output follows the same
   * distribution (exact rejection sampling). */
  const char* draft_pack;  /* a draft model's pack directory (the target's tokenizer, else
                              INVALID_ARG; any TP: its ranks run as threads of the driving
                              process, with the target's backend, threads and KV settings); the
                              draft proposes, the target verifies in one step. NULL = none */
  int32_t spec_ngram;      /* 1: n-gram (prompt lookup) proposals, no draft model (not with
                              draft_pack) */
  int32_t spec_k;          /* most tokens proposed per sequence per step, 1..32; 0 = 4 with a
                              draft, 8 with n-gram. Adaptive: a draft proposes fewer while its
                              proposals are rejected; both pause while almost none pass, and
                              (unless deterministic) none in steps where speculating measured
                              slower than not */
} shardlm_engine_params;

/* Defaults as documented per field. Thread-safe. */
SHARDLM_API shardlm_engine_params shardlm_engine_default_params(void);

/* Opens the pack in directory `pack_dir` (rank-<r>-of-<N>.shardlm files), validates every rank,
 * recomputes the memory plan for this device and refuses (SHARDLM_ERR_OOM, with both numbers)
 * when it does not fit, then binds the weights. params NULL = defaults.
 * Errors: INVALID_ARG (NULL pointers, bad params, unknown backend, tp mismatch), IO (missing
 * directory/rank file), FORMAT (corrupt or mismatched pack, bad tokenizer/template/generation
 * config), OOM. Thread-safe (each call opens an independent model). */
SHARDLM_API shardlm_status shardlm_model_open(const char* pack_dir,
                                              const shardlm_model_params* params,
                                              shardlm_model** out_model);
/* ABI 2: shardlm_model_open with the step engine's limits (engine NULL = defaults; errors as
 * above, INVALID_ARG naming a bad engine field). Thread-safe. */
SHARDLM_API shardlm_status shardlm_model_open_with_engine(const char* pack_dir,
                                                          const shardlm_model_params* params,
                                                          const shardlm_engine_params* engine,
                                                          shardlm_model** out_model);

/* Releases the caller's handle. Sessions still alive keep the model's memory until the last one
 * is destroyed; they stay usable. Must not race with other calls on the same handle. With
 * process_ranks, rank 0's last release also releases the other ranks from shardlm_model_serve.
 * Must not race with other calls on the same handle. */
SHARDLM_API void shardlm_model_close(shardlm_model* model);

/* ABI 2, ranks as processes (engine params process_ranks = 1): this process's tensor-parallel
 * rank; 0 for an in-process model (which drives). Only rank 0 creates sessions and requests.
 * Thread-safe. NULL gives -1. */
SHARDLM_API int32_t shardlm_model_rank(const shardlm_model* model);
/* ABI 2: on a rank other than 0, runs the steps rank 0 sends until rank 0 closes its model
 * (returns OK; then close this handle) or fails (COMM with the reason). INVALID_ARG on rank 0
 * or for an in-process model. Blocks the calling thread. */
SHARDLM_API shardlm_status shardlm_model_serve(shardlm_model* model);

typedef struct shardlm_model_info {
  size_t struct_size;       /* set by the caller */
  const char* family;       /* "llama", "mistral", "qwen2", "qwen3" (owned by the model) */
  const char* architecture; /* config.json's, e.g. "Qwen3ForCausalLM" (owned by the model) */
  const char* backend;      /* "cpu", "vulkan", "cuda" (owned by the model) */
  /* The matrices' type: "bf16", "f16", "f32", or quantized "int8", "int4", "int4g128"
     (docs/quantization.md). Owned by the model. */
  const char* weight_dtype;
  int32_t tp_size;
  int32_t n_threads_per_rank;
  int32_t n_vocab;
  int32_t n_layer;
  int32_t n_embd;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t head_dim;
  int64_t n_ctx;       /* context (KV tokens) of each session */
  int64_t n_ctx_train; /* max_position_embeddings */
  int32_t has_tokenizer;
  int32_t has_chat_template;
  int32_t has_thinking_switch; /* the template reads enable_thinking (Qwen3) */
  int32_t end_of_turn_token;   /* e.g. <|im_end|>, or -1 */
  uint64_t weight_bytes;       /* over all ranks */
  uint64_t kv_bytes_per_session;
} shardlm_model_info;

/* Fills *out (out->struct_size must be sizeof(shardlm_model_info)). Thread-safe. */
SHARDLM_API shardlm_status shardlm_model_get_info(const shardlm_model* model,
                                                  shardlm_model_info* out);

/* The memory plan of every rank as computed for this device at open: a table (as_json = 0) or
 * JSON (as_json != 0). Two-call sizing. Thread-safe. */
SHARDLM_API shardlm_status shardlm_model_memory_plan(const shardlm_model* model, int32_t as_json,
                                                     char* buf, size_t buf_size, size_t* out_len);

/* The ids that end a reply by default, ascending: config/generation_config eos ids, the
 * tokenizer's eos token and the template's end-of-turn token. Two-call sizing in ids
 * (*out_count). Thread-safe. */
SHARDLM_API shardlm_status shardlm_model_stop_ids(const shardlm_model* model, int32_t* ids,
                                                  size_t capacity, size_t* out_count);

/* ---------------------------------------------------------------------------------------------
 * Text: tokenizer and chat template (need a pack with tokenizer.json; else UNSUPPORTED)
 * ------------------------------------------------------------------------------------------- */

/* Text (UTF-8, `text_len` bytes) to ids. add_special: the tokenizer's BOS/EOS decoration.
 * Two-call sizing in ids (*out_count). Thread-safe. */
SHARDLM_API shardlm_status shardlm_tokenize(const shardlm_model* model, const char* text,
                                            size_t text_len, int32_t add_special, int32_t* ids,
                                            size_t capacity, size_t* out_count);

/* Ids to text (UTF-8). skip_special: drop special tokens. Ids outside the tokenizer are skipped;
 * ids outside the model's vocabulary give INVALID_ARG. Two-call sizing. Thread-safe. */
SHARDLM_API shardlm_status shardlm_detokenize(const shardlm_model* model, const int32_t* ids,
                                              size_t n_ids, int32_t skip_special, char* buf,
                                              size_t buf_size, size_t* out_len);

typedef struct shardlm_chat_message {
  const char* role;    /* "system", "user", "assistant", "tool" */
  const char* content; /* UTF-8 */
} shardlm_chat_message;

/* Renders the pack's chat template over `messages` like transformers' apply_chat_template
 * (tokenize=False). extra_json: NULL or a JSON object of more template variables, e.g.
 * "{\"enable_thinking\": false}". Two-call sizing. Errors: UNSUPPORTED (no template),
 * INVALID_ARG (bad message, bad extra_json, template raise_exception). Thread-safe. */
SHARDLM_API shardlm_status shardlm_apply_chat_template(const shardlm_model* model,
                                                       const shardlm_chat_message* messages,
                                                       size_t n_messages,
                                                       int32_t add_generation_prompt,
                                                       const char* extra_json, char* buf,
                                                       size_t buf_size, size_t* out_len);

/* ---------------------------------------------------------------------------------------------
 * Sessions and generation
 * ------------------------------------------------------------------------------------------- */

typedef struct shardlm_session shardlm_session;

/* Negative sampling fields mean "the pack's default" (generation_config.json, read as
 * transformers does: do_sample false or absent = greedy; top_k 50 when sampling and unset). */
#define SHARDLM_DEFAULT (-1)
/* seed value: draw a seed from the system's random device. */
#define SHARDLM_SEED_RANDOM UINT64_MAX

typedef struct shardlm_generate_params {
  size_t struct_size;
  int32_t max_tokens;       /* default 256; < 0 = until a stop or a full context */
  float temperature;        /* < 0 = pack default; 0 = greedy */
  int32_t top_k;            /* < 0 = pack default; 0 = off */
  float top_p;              /* < 0 = pack default; 1 = off */
  float min_p;              /* < 0 = pack default; 0 = off */
  float repetition_penalty; /* < 0 = pack default; 1 = off */
  float presence_penalty;   /* default 0 = off */
  float frequency_penalty;  /* default 0 = off */
  int32_t penalty_last_n;   /* tokens the penalties look at; default -1 = the whole context */
  uint64_t seed;            /* default SHARDLM_SEED_RANDOM; same seed + input = same tokens */
  int32_t ignore_eos;       /* 1: do not stop on the model's stop ids (stop_ids still apply) */
  const int32_t* stop_ids;  /* extra ids that end the reply */
  size_t n_stop_ids;
  const char* const* stop_strings; /* strings that end the reply (matched across tokens) */
  size_t n_stop_strings;
} shardlm_generate_params;

/* Defaults as documented per field. Thread-safe. */
SHARDLM_API shardlm_generate_params shardlm_generate_default_params(void);

/* The pack's generation defaults, resolved (no negative "default" fields left): out->
 * struct_size must be set. Thread-safe. */
SHARDLM_API shardlm_status shardlm_model_generation_defaults(const shardlm_model* model,
                                                             shardlm_generate_params* out);

typedef enum shardlm_finish_reason {
  SHARDLM_FINISH_NONE = 0,
  SHARDLM_FINISH_STOP_TOKEN = 1,  /* eos / end-of-turn / a stop id */
  SHARDLM_FINISH_STOP_STRING = 2, /* a stop string (not part of the reply) */
  SHARDLM_FINISH_MAX_TOKENS = 3,
  SHARDLM_FINISH_CONTEXT_FULL = 4, /* the context filled up: reset or truncate the session */
  SHARDLM_FINISH_CALLBACK = 5,     /* the stream callback returned non-zero */
  SHARDLM_FINISH_CANCELLED = 6     /* shardlm_session_cancel (status SHARDLM_ERR_CANCELLED) */
} shardlm_finish_reason;

typedef struct shardlm_generate_result {
  size_t struct_size;     /* set by the caller */
  int32_t finish_reason;  /* shardlm_finish_reason */
  int32_t n_generated;    /* tokens of the reply (the stop token not counted) */
  int64_t n_prompt;       /* context tokens before generation */
  int64_t n_reused;       /* of those, already in the KV cache: not recomputed */
  int64_t n_prefilled;    /* of those, computed by this call (n_prompt - n_reused) */
  int64_t n_decode_steps; /* one-token forwards after the first token */
  int64_t n_ctx_used;     /* context tokens after the call */
  double prefill_seconds; /* prefill forwards + first sample */
  double ttft_seconds;    /* call start to first token (template and tokenizer included) */
  double decode_seconds;  /* first token to the end */
} shardlm_generate_result;

/* Streaming: called on the generating thread once per generated token (the stop token excluded)
 * with the UTF-8 text that token completes — possibly empty while a character or a possible stop
 * string is incomplete; never part of a character, never a stop string — and once more with
 * token -1 when held-back text remains at the end. `text` is NUL-terminated, valid during the
 * call. Return 0 to continue, non-zero to stop (SHARDLM_FINISH_CALLBACK, status OK). Must not
 * call functions on the same session except shardlm_session_cancel. */
typedef int32_t (*shardlm_stream_callback)(int32_t token, const char* text, size_t text_len,
                                           void* user_data);

typedef struct shardlm_session_params {
  size_t struct_size;
  const char* system_prompt; /* NULL or "" = none */
  int32_t enable_thinking;   /* -1 = the template's default; 0 / 1 = Qwen3 enable_thinking */
} shardlm_session_params;

/* Defaults as documented per field. Thread-safe. */
SHARDLM_API shardlm_session_params shardlm_session_default_params(void);

/* A new conversation on `model` with its own KV cache of n_ctx tokens (allocated now: OOM when
 * it does not fit). params NULL = defaults. Thread-safe on one model. */
SHARDLM_API shardlm_status shardlm_session_create(shardlm_model* model,
                                                  const shardlm_session_params* params,
                                                  shardlm_session** out_session);
/* Frees the session and its KV cache. Not while another thread uses the session. */
SHARDLM_API void shardlm_session_destroy(shardlm_session* session);

/* Sets (or with NULL / "" removes) the system message; takes effect at the next chat turn,
 * which then recomputes from the first changed token. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_set_system(shardlm_session* session, const char* text);
/* enable: -1 template default, 0 off, 1 on (Qwen3 enable_thinking). Session thread only. */
SHARDLM_API shardlm_status shardlm_session_set_thinking(shardlm_session* session, int32_t enable);
/* Appends a message without generating (restore a conversation; few-shot turns); role and
 * content must not be NULL. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_add_message(shardlm_session* session, const char* role,
                                                       const char* content);
/* Forgets all messages and the KV cache; the system message stays. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_reset(shardlm_session* session);
/* Drops the n oldest turns (a user message and the replies after it); the system message
 * stays. *out_dropped (may be NULL) gets how many were dropped. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_truncate(shardlm_session* session, int32_t n_turns,
                                                    int32_t* out_dropped);

/* One chat turn: appends the user message, renders the chat template over the whole
 * conversation and generates the assistant reply (appended to the conversation). Reuses the
 * KV cache for the longest unchanged prefix, so a turn normally computes only its new tokens.
 * params NULL = defaults; callback may be NULL; out_result may be NULL.
 * Returns OK (finish reason in out_result), KV_FULL when the conversation does not fit (nothing
 * changed: reset or truncate, then retry), CANCELLED when shardlm_session_cancel stopped it
 * (the partial reply is kept and out_result is filled), UNSUPPORTED without a tokenizer or
 * template, INVALID_ARG for bad params. Session thread only; other sessions may run at once. */
SHARDLM_API shardlm_status shardlm_session_chat(shardlm_session* session, const char* user_message,
                                                const shardlm_generate_params* params,
                                                shardlm_stream_callback callback, void* user_data,
                                                shardlm_generate_result* out_result);

/* Raw completion: `prompt` (with the tokenizer's BOS decoration) is the whole context; reuses
 * the longest common token prefix with the session's history. Clears the chat messages (not the
 * system message). Statuses as shardlm_session_chat. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_complete(shardlm_session* session, const char* prompt,
                                                    const shardlm_generate_params* params,
                                                    shardlm_stream_callback callback,
                                                    void* user_data,
                                                    shardlm_generate_result* out_result);
/* As shardlm_session_complete with token ids (works without a tokenizer; the callback then gets
 * empty text). Session thread only. */
SHARDLM_API shardlm_status shardlm_session_complete_tokens(shardlm_session* session,
                                                           const int32_t* prompt, size_t n_prompt,
                                                           const shardlm_generate_params* params,
                                                           shardlm_stream_callback callback,
                                                           void* user_data,
                                                           shardlm_generate_result* out_result);

/* Stops the generation running on `session` at the next token (or prefill chunk); it returns
 * SHARDLM_ERR_CANCELLED. No effect when nothing is running (a generation clears the flag when it
 * starts). Any thread; async-signal-safe (one lock-free atomic store). NULL is ignored; the
 * handle is not checked for liveness (that takes a lock), so it must not be destroyed. */
SHARDLM_API void shardlm_session_cancel(shardlm_session* session);

typedef struct shardlm_session_info {
  size_t struct_size; /* set by the caller */
  int64_t n_ctx;      /* capacity in tokens */
  int64_t n_ctx_used; /* tokens in the context (history) */
  int64_t n_kv;       /* of those, in the KV cache (the rest is computed next turn) */
  int32_t n_messages; /* chat messages, system excluded */
  int32_t n_turns;    /* user messages */
  int32_t has_system;
  int32_t enable_thinking; /* -1, 0, 1 */
} shardlm_session_info;

/* Fills *out (out->struct_size must be set). Session thread only. */
SHARDLM_API shardlm_status shardlm_session_get_info(const shardlm_session* session,
                                                    shardlm_session_info* out);
/* The text of the last reply. Two-call sizing. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_last_reply(const shardlm_session* session, char* buf,
                                                      size_t buf_size, size_t* out_len);
/* The context's token ids (prompt and generated). Two-call sizing in ids. Session thread only. */
SHARDLM_API shardlm_status shardlm_session_tokens(const shardlm_session* session, int32_t* ids,
                                                  size_t capacity, size_t* out_count);

/* ---------------------------------------------------------------------------------------------
 * Requests (ABI 2): generation without a conversation, for embedders that are not chatting
 * ------------------------------------------------------------------------------------------- */

typedef struct shardlm_request shardlm_request;

/* Queues a completion of `ids` (the whole context) and returns at once; the model's step engine
 * runs it with every other request and session. params NULL = defaults (as for sessions; stop
 * strings apply when the request is waited on). Errors: INVALID_ARG (bad ids or params),
 * KV_FULL (the prompt cannot fit the context or the whole KV pool: nothing is queued).
 * Thread-safe. */
SHARDLM_API shardlm_status shardlm_request_submit_tokens(shardlm_model* model,
                                                         const int32_t* ids, size_t n_ids,
                                                         const shardlm_generate_params* params,
                                                         shardlm_request** out_request);
/* The same for a text prompt, tokenized with the tokenizer's special tokens (e.g. BOS).
 * UNSUPPORTED without a tokenizer. Thread-safe. */
SHARDLM_API shardlm_status shardlm_request_submit(shardlm_model* model, const char* prompt,
                                                  const shardlm_generate_params* params,
                                                  shardlm_request** out_request);
/* Blocks until the request ends, calling `callback` (may be NULL) on this thread for each token
 * as the engine generates it, exactly as for sessions. out_result may be NULL (n_ctx_used is the
 * prompt plus the tokens). A request is waited on once (then INVALID_ARG). Returns CANCELLED
 * when shardlm_request_cancel stopped it. One thread per request. */
SHARDLM_API shardlm_status shardlm_request_wait(shardlm_request* request,
                                                shardlm_stream_callback callback, void* user_data,
                                                shardlm_generate_result* out_result);
/* Stops the request at the next step. Any thread; NULL is ignored. */
SHARDLM_API void shardlm_request_cancel(shardlm_request* request);
/* The generated ids (stop token excluded) once waited on. Two-call sizing in ids. */
SHARDLM_API shardlm_status shardlm_request_tokens(const shardlm_request* request, int32_t* ids,
                                                  size_t capacity, size_t* out_count);
/* Frees the request (cancelling it if it still runs). Not while another thread waits on it. */
SHARDLM_API void shardlm_request_free(shardlm_request* request);

typedef struct shardlm_engine_stats {
  size_t struct_size;            /* set by the caller */
  int64_t n_steps;               /* forward steps run so far */
  int64_t n_running, n_waiting;  /* sequences now */
  int64_t n_blocks;              /* KV blocks in the pool */
  int64_t n_blocks_used;         /* held by sequences now */
  int64_t n_blocks_cached;       /* in the prefix cache (held or evictable) */
  int32_t block_size;
  int64_t n_preemptions;         /* sequences preempted (and recomputed) so far */
  int64_t prefix_queried_tokens; /* prompt tokens looked up in the prefix cache so far */
  int64_t prefix_hit_tokens;     /* of those, served from it */
  int64_t tokens_computed;       /* K/V rows computed by all steps */
  int64_t max_seqs_in_a_step;    /* the most sequences one step has run */
  /* ABI 3: speculative decoding (zero without it) */
  int64_t spec_verifications;    /* decode steps of a sequence that verified proposals */
  int64_t spec_proposed;         /* tokens proposed */
  int64_t spec_accepted;         /* of those, accepted (acceptance rate = accepted / proposed) */
  int64_t spec_emitted;          /* tokens the verifications produced (accepted + one each) */
  int64_t draft_steps;           /* forward steps of the draft model */
} shardlm_engine_stats;

/* The model's step engine counters (out->struct_size must be set). Thread-safe. */
SHARDLM_API shardlm_status shardlm_model_get_stats(const shardlm_model* model,
                                                   shardlm_engine_stats* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHARDLM_H */
