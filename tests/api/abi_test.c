/* The C ABI test, compiled as C (C11): the full flow on the fixture pack (model info, memory plan,
 * tokenize/detokenize, chat template, sessions over several turns with KV reuse, streaming,
 * stop strings, seeds, context full, truncate, reset), every error class (NULL handles, bad
 * paths, a wrong struct_size, a buffer too small, an invalid pack, bad params) with its
 * documented status and a message, cancel from another thread, two sessions on one model
 * generating on two threads at once, request-level calls batched in shared steps (ABI 2), the
 * step engine's params and an ABI 1 params struct, handles used after release or released twice.
 * Nothing may crash.
 *   usage: api_abi_test FIXTURE_DIR   (tp1/, tp2/, bad/, ids/ made by api_make_chat_pack) */
#include <pthread.h>
#include <shardlm.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    ++g_checks;                                                                                  \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: '%s')\n", __FILE__, __LINE__, #cond, \
              shardlm_last_error());                                                             \
      ++g_failures;                                                                              \
    }                                                                                            \
  } while (0)

/* The call returns `expected` and, for errors, leaves a message containing `needle`. */
#define CHECK_STATUS(call, expected, needle)                                                  \
  do {                                                                                        \
    shardlm_status st_ = (call);                                                              \
    ++g_checks;                                                                               \
    if (st_ != (expected)) {                                                                  \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: '%s')\n", __FILE__,    \
              __LINE__, #call, shardlm_status_name(st_), shardlm_status_name(expected),       \
              shardlm_last_error());                                                          \
      ++g_failures;                                                                           \
    } else if ((expected) != SHARDLM_OK && !strstr(shardlm_last_error(), (needle))) {         \
      fprintf(stderr, "%s:%d: %s: message '%s' does not mention '%s'\n", __FILE__, __LINE__,  \
              #call, shardlm_last_error(), (needle));                                         \
      ++g_failures;                                                                           \
    } else if ((expected) == SHARDLM_OK && shardlm_last_error()[0] != '\0') {                 \
      fprintf(stderr, "%s:%d: %s succeeded but left error '%s'\n", __FILE__, __LINE__, #call, \
              shardlm_last_error());                                                          \
      ++g_failures;                                                                           \
    }                                                                                         \
  } while (0)

static char g_dir[4096];

static const char* path(const char* sub) {
  static char buf[4200];
  snprintf(buf, sizeof buf, "%s/%s", g_dir, sub);
  return buf;
}

/* ---- streaming helpers ---- */

typedef struct {
  char text[8192];
  size_t len;
  int calls;
  int stop_after; /* > 0: return non-zero after this many token calls */
} Collector;

static int32_t collect(int32_t token, const char* text, size_t len, void* user) {
  Collector* c = (Collector*)user;
  if (text[len] != '\0') ++g_failures; /* must be NUL-terminated */
  if (c->len + len < sizeof c->text) {
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
  }
  if (token >= 0) ++c->calls;
  return c->stop_after > 0 && c->calls >= c->stop_after;
}

static shardlm_generate_params greedy(int32_t max_tokens) {
  shardlm_generate_params p = shardlm_generate_default_params();
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.ignore_eos = 1;
  return p;
}

static shardlm_generate_result new_result(void) {
  shardlm_generate_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  return r;
}

/* ---- tests ---- */

static void test_version_and_backends(void) {
  CHECK(shardlm_abi_version() == SHARDLM_ABI_VERSION);
  CHECK(strlen(shardlm_version()) > 0);
  CHECK(strcmp(shardlm_status_name(SHARDLM_ERR_KV_FULL), "kv_full") == 0);
  size_t len = 0;
  CHECK_STATUS(shardlm_backends(NULL, 0, &len), SHARDLM_OK, "");
  CHECK(len >= 3);
  char small[2];
  size_t len2 = 0;
  CHECK_STATUS(shardlm_backends(small, sizeof small, &len2), SHARDLM_ERR_BUFFER_TOO_SMALL,
               "too small");
  CHECK(len2 == len);
  char buf[256];
  CHECK_STATUS(shardlm_backends(buf, sizeof buf, &len2), SHARDLM_OK, "");
  CHECK(strstr(buf, "cpu") != NULL);
  CHECK_STATUS(shardlm_backends(NULL, 5, &len2), SHARDLM_ERR_INVALID_ARG, "NULL");
  CHECK_STATUS(shardlm_backends(buf, sizeof buf, NULL), SHARDLM_ERR_INVALID_ARG, "out_len");
}

static void test_open_errors(void) {
  shardlm_model* m = (shardlm_model*)0x1;
  shardlm_model_params p = shardlm_model_default_params();
  p.n_threads = 2;
  CHECK_STATUS(shardlm_model_open(NULL, &p, &m), SHARDLM_ERR_INVALID_ARG, "pack_dir");
  CHECK(m == NULL); /* cleared on failure */
  CHECK_STATUS(shardlm_model_open(path("tp1"), &p, NULL), SHARDLM_ERR_INVALID_ARG, "out_model");
  CHECK_STATUS(shardlm_model_open("/nonexistent/shardlm-pack", &p, &m), SHARDLM_ERR_IO,
               "/nonexistent/shardlm-pack");
  CHECK_STATUS(shardlm_model_open(path("bad"), &p, &m), SHARDLM_ERR_FORMAT, "rank-0-of-1.shardlm");
  CHECK(m == NULL);

  shardlm_model_params wrong = p;
  wrong.struct_size = sizeof wrong - 4;
  CHECK_STATUS(shardlm_model_open(path("tp1"), &wrong, &m), SHARDLM_ERR_INVALID_ARG, "struct_size");
  wrong = p;
  wrong.backend = "nope";
  CHECK_STATUS(shardlm_model_open(path("tp1"), &wrong, &m), SHARDLM_ERR_INVALID_ARG, "nope");
  wrong = p;
  wrong.tp = 4;
  CHECK_STATUS(shardlm_model_open(path("tp2"), &wrong, &m), SHARDLM_ERR_INVALID_ARG, "4");
  wrong = p;
  wrong.mem_fraction = 1.5f;
  CHECK_STATUS(shardlm_model_open(path("tp1"), &wrong, &m), SHARDLM_ERR_INVALID_ARG,
               "mem_fraction");
  wrong = p;
  wrong.mem_fraction = 0.00001f; /* the memory plan cannot fit: refused before loading */
  CHECK_STATUS(shardlm_model_open(path("tp1"), &wrong, &m), SHARDLM_ERR_OOM, "mem-fraction");
  int32_t devices[2] = {0, -1};
  wrong = p;
  wrong.devices = devices;
  wrong.n_devices = 2;
  CHECK_STATUS(shardlm_model_open(path("tp2"), &wrong, &m), SHARDLM_ERR_INVALID_ARG, "devices[1]");
  devices[1] = 1; /* one per rank: accepted (the cpu backend ignores them) */
  CHECK_STATUS(shardlm_model_open(path("tp2"), &wrong, &m), SHARDLM_OK, "");
  shardlm_model_close(m);
  m = NULL;
  wrong.devices = NULL;
  CHECK_STATUS(shardlm_model_open(path("tp2"), &wrong, &m), SHARDLM_ERR_INVALID_ARG, "devices");
}

static void test_null_handles(void) {
  shardlm_model_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  size_t n = 0;
  int32_t ids[4];
  char buf[16];
  shardlm_session* s = (shardlm_session*)0x1;
  shardlm_generate_result r = new_result();
  CHECK_STATUS(shardlm_model_get_info(NULL, &info), SHARDLM_ERR_INVALID_ARG, "model");
  CHECK_STATUS(shardlm_model_memory_plan(NULL, 0, NULL, 0, &n), SHARDLM_ERR_INVALID_ARG, "model");
  CHECK_STATUS(shardlm_tokenize(NULL, "a", 1, 0, ids, 4, &n), SHARDLM_ERR_INVALID_ARG, "model");
  CHECK_STATUS(shardlm_detokenize(NULL, ids, 0, 0, buf, sizeof buf, &n), SHARDLM_ERR_INVALID_ARG,
               "model");
  CHECK_STATUS(shardlm_apply_chat_template(NULL, NULL, 0, 1, NULL, buf, sizeof buf, &n),
               SHARDLM_ERR_INVALID_ARG, "model");
  CHECK_STATUS(shardlm_session_create(NULL, NULL, &s), SHARDLM_ERR_INVALID_ARG, "model");
  CHECK(s == NULL);
  CHECK_STATUS(shardlm_session_chat(NULL, "hi", NULL, NULL, NULL, &r), SHARDLM_ERR_INVALID_ARG,
               "session");
  CHECK_STATUS(shardlm_session_complete_tokens(NULL, ids, 1, NULL, NULL, NULL, NULL),
               SHARDLM_ERR_INVALID_ARG, "session");
  CHECK_STATUS(shardlm_session_reset(NULL), SHARDLM_ERR_INVALID_ARG, "session");
  CHECK_STATUS(shardlm_session_last_reply(NULL, buf, sizeof buf, &n), SHARDLM_ERR_INVALID_ARG,
               "session");
  /* Destroy/close/cancel accept NULL. */
  shardlm_session_cancel(NULL);
  shardlm_session_destroy(NULL);
  shardlm_model_close(NULL);
}

static void test_model_info_and_text(shardlm_model* m) {
  shardlm_model_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info - 8; /* a wrong struct_size */
  CHECK_STATUS(shardlm_model_get_info(m, &info), SHARDLM_ERR_INVALID_ARG, "shardlm_model_info");
  info.struct_size = sizeof info;
  CHECK_STATUS(shardlm_model_get_info(m, &info), SHARDLM_OK, "");
  CHECK(strcmp(info.family, "qwen3") == 0);
  CHECK(strcmp(info.architecture, "Qwen3ForCausalLM") == 0);
  CHECK(strcmp(info.backend, "cpu") == 0);
  CHECK(strcmp(info.weight_dtype, "bf16") == 0);
  CHECK(info.tp_size == 2);
  CHECK(info.n_vocab == 151936);
  CHECK(info.n_ctx == 256);
  CHECK(info.has_tokenizer == 1 && info.has_chat_template == 1 && info.has_thinking_switch == 1);
  CHECK(info.end_of_turn_token == 151645);
  CHECK(info.weight_bytes > 0 && info.kv_bytes_per_session > 0);

  size_t len = 0;
  CHECK_STATUS(shardlm_model_memory_plan(m, 0, NULL, 0, &len), SHARDLM_OK, "");
  char* plan = (char*)malloc(len + 1);
  CHECK_STATUS(shardlm_model_memory_plan(m, 0, plan, 8, &len), SHARDLM_ERR_BUFFER_TOO_SMALL,
               "too small");
  CHECK_STATUS(shardlm_model_memory_plan(m, 0, plan, len + 1, &len), SHARDLM_OK, "");
  CHECK(strstr(plan, "memory plan") != NULL && strstr(plan, "kv cache: a pool of") != NULL);
  free(plan);
  CHECK_STATUS(shardlm_model_memory_plan(m, 1, NULL, 0, &len), SHARDLM_OK, "");
  plan = (char*)malloc(len + 1);
  CHECK_STATUS(shardlm_model_memory_plan(m, 1, plan, len + 1, &len), SHARDLM_OK, "");
  CHECK(plan[0] == '{' && strstr(plan, "\"ranks\"") != NULL &&
        strstr(plan, "\"kv_bytes_per_session\"") != NULL);
  free(plan);

  int32_t stops[8];
  size_t n_stops = 0;
  CHECK_STATUS(shardlm_model_stop_ids(m, NULL, 0, &n_stops), SHARDLM_OK, "");
  CHECK(n_stops == 2);
  CHECK_STATUS(shardlm_model_stop_ids(m, stops, 8, &n_stops), SHARDLM_OK, "");
  CHECK(stops[0] == 151643 && stops[1] == 151645);

  shardlm_generate_params d;
  d.struct_size = sizeof d;
  CHECK_STATUS(shardlm_model_generation_defaults(m, &d), SHARDLM_OK, "");
  CHECK(d.temperature > 0.59f && d.temperature < 0.61f);
  CHECK(d.top_k == 20);
  CHECK(d.top_p > 0.94f && d.top_p < 0.96f);
  CHECK(d.repetition_penalty == 1.0f);

  /* Tokenize with two-call sizing; detokenize back. */
  const char* text = "Hello world, héllo 世界!";
  size_t n_ids = 0;
  CHECK_STATUS(shardlm_tokenize(m, text, strlen(text), 0, NULL, 0, &n_ids), SHARDLM_OK, "");
  CHECK(n_ids > 3);
  int32_t ids[64];
  size_t n2 = 0;
  CHECK_STATUS(shardlm_tokenize(m, text, strlen(text), 0, ids, 1, &n2),
               SHARDLM_ERR_BUFFER_TOO_SMALL, "needed");
  CHECK(n2 == n_ids);
  CHECK_STATUS(shardlm_tokenize(m, text, strlen(text), 0, ids, 64, &n2), SHARDLM_OK, "");
  CHECK(ids[0] == 9707); /* "Hello" in Qwen3's vocabulary */
  char back[128];
  size_t back_len = 0;
  CHECK_STATUS(shardlm_detokenize(m, ids, n2, 0, back, sizeof back, &back_len), SHARDLM_OK, "");
  CHECK(strcmp(back, text) == 0 && back_len == strlen(text));
  int32_t bad_id = 200000;
  CHECK_STATUS(shardlm_detokenize(m, &bad_id, 1, 0, back, sizeof back, &back_len),
               SHARDLM_ERR_INVALID_ARG, "200000");

  /* Chat template. */
  shardlm_chat_message msgs[2] = {{"system", "Be brief."}, {"user", "Hi"}};
  size_t tl = 0;
  CHECK_STATUS(shardlm_apply_chat_template(m, msgs, 2, 1, NULL, NULL, 0, &tl), SHARDLM_OK, "");
  char* rendered = (char*)malloc(tl + 1);
  CHECK_STATUS(shardlm_apply_chat_template(m, msgs, 2, 1, NULL, rendered, tl + 1, &tl), SHARDLM_OK,
               "");
  CHECK(strcmp(rendered,
               "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
               "<|im_start|>assistant\n") == 0);
  free(rendered);
  char big[512];
  CHECK_STATUS(shardlm_apply_chat_template(m, msgs, 2, 1, "{\"enable_thinking\": false}", big,
                                           sizeof big, &tl),
               SHARDLM_OK, "");
  CHECK(strstr(big, "<|im_start|>assistant\n<think>\n\n</think>\n\n") != NULL);
  CHECK_STATUS(shardlm_apply_chat_template(m, msgs, 2, 1, "{oops", big, sizeof big, &tl),
               SHARDLM_ERR_INVALID_ARG, "extra_json");
  shardlm_chat_message broken = {"user", NULL};
  CHECK_STATUS(shardlm_apply_chat_template(m, &broken, 1, 1, NULL, big, sizeof big, &tl),
               SHARDLM_ERR_INVALID_ARG, "content");
}

static void test_chat_flow(shardlm_model* m) {
  shardlm_session* s = NULL;
  shardlm_session_params sp = shardlm_session_default_params();
  sp.system_prompt = "You are terse.";
  sp.struct_size = 1;
  CHECK_STATUS(shardlm_session_create(m, &sp, &s), SHARDLM_ERR_INVALID_ARG, "struct_size");
  sp.struct_size = sizeof sp;
  CHECK_STATUS(shardlm_session_create(m, &sp, &s), SHARDLM_OK, "");

  shardlm_generate_params p = greedy(8);
  shardlm_generate_result r = new_result();
  Collector c;
  memset(&c, 0, sizeof c);
  CHECK_STATUS(shardlm_session_chat(s, "Hello, who are you?", &p, collect, &c, &r), SHARDLM_OK, "");
  CHECK(r.finish_reason == SHARDLM_FINISH_MAX_TOKENS);
  CHECK(r.n_generated == 8 && c.calls == 8);
  CHECK(r.n_reused == 0 && r.n_prefilled == r.n_prompt && r.n_prompt > 10);
  CHECK(r.ttft_seconds > 0 && r.prefill_seconds > 0);
  size_t reply_len = 0;
  CHECK_STATUS(shardlm_session_last_reply(s, NULL, 0, &reply_len), SHARDLM_OK, "");
  char reply[8192];
  CHECK_STATUS(shardlm_session_last_reply(s, reply, sizeof reply, &reply_len), SHARDLM_OK, "");
  CHECK(reply_len == c.len && strcmp(reply, c.text) == 0);

  shardlm_session_info info;
  info.struct_size = sizeof info;
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 1 && info.n_messages == 2 && info.has_system == 1);
  /* The prefix cache holds every full 16-token block of the computed context (the last sampled
   * token is pending). */
  CHECK(info.n_ctx == 256 && info.n_ctx_used == r.n_prompt + 8 &&
        info.n_kv == (info.n_ctx_used - 1) / 16 * 16 && info.n_kv > 0);
  const int64_t kv_after_first = info.n_kv;

  /* Second turn: the first turn's KV is reused; only the new message (and the rest of the last
   * partly filled block) is computed. */
  shardlm_generate_result r2 = new_result();
  memset(&c, 0, sizeof c);
  CHECK_STATUS(shardlm_session_chat(s, "And then?", &p, collect, &c, &r2), SHARDLM_OK, "");
  CHECK(r2.n_reused == kv_after_first);
  CHECK(r2.n_prefilled > 0 && r2.n_prefilled < 16 + 16);
  CHECK(r2.n_prompt == r2.n_reused + r2.n_prefilled);
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 2 && info.n_messages == 4);

  /* The token history, two-call sized. */
  size_t n_tok = 0;
  CHECK_STATUS(shardlm_session_tokens(s, NULL, 0, &n_tok), SHARDLM_OK, "");
  CHECK((int64_t)n_tok == info.n_ctx_used);
  int32_t one;
  CHECK_STATUS(shardlm_session_tokens(s, &one, 1, &n_tok), SHARDLM_ERR_BUFFER_TOO_SMALL, "ids");

  /* Wrong struct sizes on generation params and results. */
  shardlm_generate_params bad = p;
  bad.struct_size = 3;
  CHECK_STATUS(shardlm_session_chat(s, "x", &bad, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG,
               "shardlm_generate_params");
  shardlm_generate_result bad_r = new_result();
  bad_r.struct_size = 0;
  CHECK_STATUS(shardlm_session_chat(s, "x", &p, NULL, NULL, &bad_r), SHARDLM_ERR_INVALID_ARG,
               "shardlm_generate_result");
  bad = p;
  bad.top_p = 2.0f;
  CHECK_STATUS(shardlm_session_chat(s, "x", &bad, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG,
               "top_p");
  bad = p;
  const char* stops_with_null[1] = {NULL};
  bad.stop_strings = stops_with_null;
  bad.n_stop_strings = 1;
  CHECK_STATUS(shardlm_session_chat(s, "x", &bad, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG,
               "stop_strings[0]");
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 2); /* failed calls changed nothing */

  /* Callback stop. */
  memset(&c, 0, sizeof c);
  c.stop_after = 2;
  shardlm_generate_result r3 = new_result();
  CHECK_STATUS(shardlm_session_chat(s, "Stop early", &p, collect, &c, &r3), SHARDLM_OK, "");
  CHECK(r3.finish_reason == SHARDLM_FINISH_CALLBACK && r3.n_generated == 2);

  /* Truncate and reset. */
  int32_t dropped = -1;
  CHECK_STATUS(shardlm_session_truncate(s, 1, &dropped), SHARDLM_OK, "");
  CHECK(dropped == 1);
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 2);
  CHECK_STATUS(shardlm_session_add_message(s, "user", "restored"), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_add_message(s, NULL, "x"), SHARDLM_ERR_INVALID_ARG, "role");
  CHECK_STATUS(shardlm_session_set_thinking(s, 5), SHARDLM_ERR_INVALID_ARG, "enable");
  CHECK_STATUS(shardlm_session_set_thinking(s, 0), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_reset(s), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 0 && info.n_ctx_used == 0 && info.has_system == 1 &&
        info.enable_thinking == 0);
  CHECK_STATUS(shardlm_session_set_system(s, NULL), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.has_system == 0);
  shardlm_session_destroy(s);
}

static void test_stop_strings_and_seeds(shardlm_model* m) {
  shardlm_session* s = NULL;
  CHECK_STATUS(shardlm_session_create(m, NULL, &s), SHARDLM_OK, "");
  shardlm_generate_params p = greedy(10);
  Collector full;
  memset(&full, 0, sizeof full);
  CHECK_STATUS(shardlm_session_chat(s, "Tell a story", &p, collect, &full, NULL), SHARDLM_OK, "");
  CHECK(full.len >= 6);
  /* A stop string taken from the middle of the reply: the reply ends right before it. */
  char stop[8];
  size_t at = full.len / 2;
  while (at > 0 && ((unsigned char)full.text[at] & 0xC0) == 0x80) --at; /* UTF-8 boundary */
  memcpy(stop, full.text + at, 3);
  stop[3] = '\0';
  while (strlen(stop) > 0 && ((unsigned char)stop[strlen(stop) - 1] & 0x80)) {
    stop[strlen(stop) - 1] = '\0'; /* keep it to whole (ASCII-ended) characters */
  }
  if (strlen(stop) > 0) {
    const char* first = strstr(full.text, stop);
    const size_t expect_len = (size_t)(first - full.text);
    const char* stops[1] = {stop};
    p.stop_strings = stops;
    p.n_stop_strings = 1;
    CHECK_STATUS(shardlm_session_reset(s), SHARDLM_OK, "");
    Collector cut;
    memset(&cut, 0, sizeof cut);
    shardlm_generate_result r = new_result();
    CHECK_STATUS(shardlm_session_chat(s, "Tell a story", &p, collect, &cut, &r), SHARDLM_OK, "");
    CHECK(r.finish_reason == SHARDLM_FINISH_STOP_STRING);
    CHECK(cut.len == expect_len && strncmp(cut.text, full.text, expect_len) == 0);
  }
  shardlm_session_destroy(s);

  /* Same seed, same tokens: two sessions sampling at temperature 0.9. */
  int32_t a[64], b[64];
  size_t na = 0, nb = 0;
  for (int k = 0; k < 2; ++k) {
    shardlm_session* t = NULL;
    CHECK_STATUS(shardlm_session_create(m, NULL, &t), SHARDLM_OK, "");
    shardlm_generate_params q = shardlm_generate_default_params();
    q.temperature = 0.9f;
    q.top_k = 0;
    q.top_p = 1.0f;
    q.seed = 1234;
    q.max_tokens = 10;
    q.ignore_eos = 1;
    CHECK_STATUS(shardlm_session_chat(t, "Random please", &q, NULL, NULL, NULL), SHARDLM_OK, "");
    CHECK_STATUS(shardlm_session_tokens(t, k ? b : a, 64, k ? &nb : &na), SHARDLM_OK, "");
    shardlm_session_destroy(t);
  }
  CHECK(na == nb && na > 10 && memcmp(a, b, na * sizeof(int32_t)) == 0);
}

static void test_context_full(void) {
  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 2;
  mp.max_seq = 40;
  shardlm_model* m = NULL;
  CHECK_STATUS(shardlm_model_open(path("tp1"), &mp, &m), SHARDLM_OK, "");
  if (!m) return;
  shardlm_session* s = NULL;
  CHECK_STATUS(shardlm_session_create(m, NULL, &s), SHARDLM_OK, "");
  char long_msg[400] = "";
  for (int i = 0; i < 40; ++i) strcat(long_msg, "word ");
  shardlm_generate_params p = greedy(4);
  CHECK_STATUS(shardlm_session_chat(s, long_msg, &p, NULL, NULL, NULL), SHARDLM_ERR_KV_FULL,
               "context");
  shardlm_session_info info;
  info.struct_size = sizeof info;
  CHECK_STATUS(shardlm_session_get_info(s, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 0 && info.n_ctx_used == 0);
  p.max_tokens = -1;
  shardlm_generate_result r = new_result();
  CHECK_STATUS(shardlm_session_chat(s, "hi", &p, NULL, NULL, &r), SHARDLM_OK, "");
  CHECK(r.finish_reason == SHARDLM_FINISH_CONTEXT_FULL && r.n_ctx_used == 40);
  shardlm_session_destroy(s);
  shardlm_model_close(m);
}

static void test_ids_only_pack(void) {
  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 2;
  shardlm_model* m = NULL;
  CHECK_STATUS(shardlm_model_open(path("ids"), &mp, &m), SHARDLM_OK, "");
  if (!m) return;
  shardlm_model_info info;
  info.struct_size = sizeof info;
  CHECK_STATUS(shardlm_model_get_info(m, &info), SHARDLM_OK, "");
  CHECK(info.has_tokenizer == 0 && info.has_chat_template == 0 && info.end_of_turn_token == -1);
  size_t n = 0;
  CHECK_STATUS(shardlm_tokenize(m, "hi", 2, 0, NULL, 0, &n), SHARDLM_ERR_UNSUPPORTED,
               "tokenizer.json");
  shardlm_session* s = NULL;
  CHECK_STATUS(shardlm_session_create(m, NULL, &s), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_chat(s, "hi", NULL, NULL, NULL, NULL), SHARDLM_ERR_UNSUPPORTED,
               "tokenizer");
  const int32_t prompt[4] = {1, 5, 17, 42};
  shardlm_generate_params p = greedy(5);
  Collector c;
  memset(&c, 0, sizeof c);
  shardlm_generate_result r = new_result();
  CHECK_STATUS(shardlm_session_complete_tokens(s, prompt, 4, &p, collect, &c, &r), SHARDLM_OK, "");
  CHECK(r.n_generated == 5 && c.calls == 5 && c.len == 0);
  const int32_t bad[1] = {96};
  CHECK_STATUS(shardlm_session_complete_tokens(s, bad, 1, &p, NULL, NULL, NULL),
               SHARDLM_ERR_INVALID_ARG, "96");
  /* Closing the model while a session lives: the session keeps working. */
  shardlm_model_close(m);
  CHECK_STATUS(shardlm_session_complete_tokens(s, prompt, 4, &p, NULL, NULL, &r), SHARDLM_OK, "");
  /* The same 4-token prompt: shorter than a KV block, so nothing is cached to reuse. */
  CHECK(r.n_reused == 0 && r.n_prefilled == 4);
  shardlm_session_destroy(s);
}

/* ---- threads ---- */

typedef struct {
  shardlm_session* session;
  volatile int first_token_seen;
  volatile int cancel_sent;
  shardlm_status status;
  shardlm_generate_result result;
} CancelJob;

static int32_t hold_first_token(int32_t token, const char* text, size_t len, void* user) {
  (void)token;
  (void)text;
  (void)len;
  CancelJob* j = (CancelJob*)user;
  if (!__atomic_load_n(&j->first_token_seen, __ATOMIC_SEQ_CST)) {
    __atomic_store_n(&j->first_token_seen, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&j->cancel_sent, __ATOMIC_SEQ_CST)) {
    }
  }
  return 0;
}

static void* cancel_job(void* arg) {
  CancelJob* j = (CancelJob*)arg;
  shardlm_generate_params p = greedy(-1); /* would run until the context is full */
  j->result = new_result();
  j->status = shardlm_session_chat(j->session, "Talk forever", &p, hold_first_token, j, &j->result);
  return NULL;
}

static void test_cancel_from_another_thread(shardlm_model* m) {
  CancelJob j;
  memset(&j, 0, sizeof j);
  CHECK_STATUS(shardlm_session_create(m, NULL, &j.session), SHARDLM_OK, "");
  pthread_t t;
  pthread_create(&t, NULL, cancel_job, &j);
  while (!__atomic_load_n(&j.first_token_seen, __ATOMIC_SEQ_CST)) {
  }
  shardlm_session_cancel(j.session);
  __atomic_store_n(&j.cancel_sent, 1, __ATOMIC_SEQ_CST);
  pthread_join(t, NULL);
  CHECK(j.status == SHARDLM_ERR_CANCELLED);
  CHECK(j.result.finish_reason == SHARDLM_FINISH_CANCELLED);
  CHECK(j.result.n_generated >= 1 && j.result.n_generated < 5);
  shardlm_session_info info;
  info.struct_size = sizeof info;
  CHECK_STATUS(shardlm_session_get_info(j.session, &info), SHARDLM_OK, "");
  CHECK(info.n_turns == 1); /* the partial reply stays in the conversation */
  shardlm_session_destroy(j.session);
}

typedef struct {
  shardlm_model* model;
  const char* message;
  int32_t tokens[512];
  size_t n_tokens;
  shardlm_status status;
} TwoJob;

static void* two_job(void* arg) {
  TwoJob* j = (TwoJob*)arg;
  shardlm_session* s = NULL;
  j->status = shardlm_session_create(j->model, NULL, &s);
  if (j->status != SHARDLM_OK) return NULL;
  shardlm_generate_params p = greedy(24);
  for (int turn = 0; turn < 2 && j->status == SHARDLM_OK; ++turn) {
    j->status = shardlm_session_chat(s, j->message, &p, NULL, NULL, NULL);
  }
  if (j->status == SHARDLM_OK) {
    j->status = shardlm_session_tokens(s, j->tokens, 512, &j->n_tokens);
  }
  shardlm_session_destroy(s);
  return NULL;
}

static void test_two_sessions_two_threads(shardlm_model* m) {
  /* References, one after the other. */
  TwoJob ref[2], par[2];
  const char* msgs[2] = {"First conversation here", "A different second one"};
  for (int k = 0; k < 2; ++k) {
    memset(&ref[k], 0, sizeof ref[k]);
    ref[k].model = m;
    ref[k].message = msgs[k];
    two_job(&ref[k]);
    CHECK(ref[k].status == SHARDLM_OK);
    par[k] = ref[k];
    par[k].n_tokens = 0;
    memset(par[k].tokens, 0, sizeof par[k].tokens);
  }
  /* The same two conversations at once on two threads. */
  pthread_t t[2];
  for (int k = 0; k < 2; ++k) pthread_create(&t[k], NULL, two_job, &par[k]);
  for (int k = 0; k < 2; ++k) pthread_join(t[k], NULL);
  for (int k = 0; k < 2; ++k) {
    CHECK(par[k].status == SHARDLM_OK);
    CHECK(par[k].n_tokens == ref[k].n_tokens && par[k].n_tokens > 48);
    CHECK(memcmp(par[k].tokens, ref[k].tokens, ref[k].n_tokens * sizeof(int32_t)) == 0);
  }
}

/* ---- requests (ABI 2) ---- */

static void test_step_engine_params(void) {
  shardlm_model* m = NULL;
  shardlm_model_params p = shardlm_model_default_params();
  p.n_threads = 2;
  const shardlm_engine_params d = shardlm_engine_default_params();
  CHECK(d.struct_size == sizeof d && d.prefix_cache == 1 && strcmp(d.kv_dtype, "bf16") == 0);
  CHECK(strcmp(d.activations, "auto") == 0 && d.backend_settings == NULL);
  CHECK(d.process_ranks == 0 && d.comm_timeout_s == 0);
  shardlm_engine_params wrong = d;
  wrong.process_ranks = 2;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "process_ranks");
  wrong = d;
  wrong.activations = "int8";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "activations 'int8'");
  wrong = d;
  wrong.backend_settings = "isa=avx2,colour=blue";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "unknown setting 'colour'");
  wrong.backend_settings = "isa";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "expected key=value");
  wrong.backend_settings = "isa=sse9";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "isa=sse9");
  /* Valid settings and bf16 activations open and generate. */
  shardlm_engine_params fast = d;
  fast.activations = "bf16";
  fast.backend_settings = " isa=avx2 , amx_splits=3 ";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &fast, &m), SHARDLM_OK, "");
  if (m) {
    int32_t ids[6] = {1, 2, 3, 4, 5, 6};
    shardlm_request* r = NULL;
    shardlm_generate_params gp = greedy(4);
    CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 6, &gp, &r), SHARDLM_OK, "");
    CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, NULL), SHARDLM_OK, "");
    int32_t out[8];
    size_t n_out = 0;
    CHECK_STATUS(shardlm_request_tokens(r, out, 8, &n_out), SHARDLM_OK, "");
    CHECK(n_out == 4);
    shardlm_request_free(r);
    /* In-process: rank 0, which drives; serving steps is for the other ranks of MPI runs. */
    CHECK(shardlm_model_rank(m) == 0);
    CHECK(shardlm_model_rank(NULL) == -1);
    CHECK_STATUS(shardlm_model_serve(m), SHARDLM_ERR_INVALID_ARG, "this one drives");
    shardlm_model_close(m);
    m = NULL;
  }
  wrong = d;
  wrong.kv_dtype = "f8";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "kv_dtype");
  wrong = d;
  wrong.admission = 2;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "admission");
  wrong = d;
  wrong.max_seqs = -1;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "max_seqs");
  wrong = d;
  wrong.struct_size = 8;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "shardlm_engine_params");
  /* A KV pool of 64 tokens (4 blocks of 16) cannot hold a 256-token context: refused at open
   * with both numbers. Without an explicit max_seq the context is clamped to the pool. */
  shardlm_engine_params small = d;
  small.kv_cache_tokens = 64;
  small.kv_dtype = "f32";
  small.admission = 1;
  p.max_seq = 256;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &small, &m), SHARDLM_ERR_OOM,
               "64 tokens");
  p.max_seq = 0;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &small, &m), SHARDLM_OK, "");
  if (m) {
    shardlm_model_info info;
    info.struct_size = sizeof info;
    CHECK_STATUS(shardlm_model_get_info(m, &info), SHARDLM_OK, "");
    CHECK(info.n_ctx == 64);
    int32_t ids[100];
    for (int i = 0; i < 100; ++i) ids[i] = 1 + i % 50;
    shardlm_request* r = NULL;
    shardlm_generate_params gp = greedy(4);
    CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 100, &gp, &r), SHARDLM_ERR_KV_FULL,
                 "context of 64");
    CHECK(r == NULL);
    CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 20, &gp, &r), SHARDLM_OK, "");
    shardlm_generate_result res = new_result();
    CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, &res), SHARDLM_OK, "");
    CHECK(res.n_generated == 4);
    shardlm_request_free(r);
    shardlm_engine_stats st;
    st.struct_size = sizeof st;
    CHECK_STATUS(shardlm_model_get_stats(m, &st), SHARDLM_OK, "");
    CHECK(st.n_blocks == 4 && st.n_blocks_used == 0);
    shardlm_model_close(m);
  }
}

static void test_requests(shardlm_model* m) {
  int32_t prompts[4][40];
  const size_t lens[4] = {9, 40, 23, 31};
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 40; ++i) prompts[k][i] = 1 + (7 * k + 13 * i) % 90;
  shardlm_generate_params gp = greedy(12);
  /* One at a time. */
  int32_t alone[4][12];
  for (int k = 0; k < 4; ++k) {
    shardlm_request* r = NULL;
    CHECK_STATUS(shardlm_request_submit_tokens(m, prompts[k], lens[k], &gp, &r), SHARDLM_OK, "");
    shardlm_generate_result res = new_result();
    CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, &res), SHARDLM_OK, "");
    CHECK(res.n_generated == 12 && res.finish_reason == SHARDLM_FINISH_MAX_TOKENS);
    CHECK(res.n_prompt == (int64_t)lens[k]);
    size_t n = 0;
    CHECK_STATUS(shardlm_request_tokens(r, alone[k], 12, &n), SHARDLM_OK, "");
    CHECK(n == 12);
    CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG, "already");
    shardlm_request_free(r);
  }
  /* All four queued before any is waited on: they run in the same steps, same tokens. */
  shardlm_engine_stats st;
  st.struct_size = sizeof st;
  CHECK_STATUS(shardlm_model_get_stats(m, &st), SHARDLM_OK, "");
  const int64_t steps_before = st.n_steps;
  shardlm_request* rs[4];
  for (int k = 0; k < 4; ++k) {
    CHECK_STATUS(shardlm_request_submit_tokens(m, prompts[k], lens[k], &gp, &rs[k]), SHARDLM_OK,
                 "");
  }
  for (int k = 0; k < 4; ++k) {
    Collector c;
    memset(&c, 0, sizeof c);
    shardlm_generate_result res = new_result();
    CHECK_STATUS(shardlm_request_wait(rs[k], collect, &c, &res), SHARDLM_OK, "");
    CHECK(res.n_generated == 12 && c.calls == 12);
    int32_t got[12];
    size_t n = 0;
    CHECK_STATUS(shardlm_request_tokens(rs[k], got, 12, &n), SHARDLM_OK, "");
    CHECK(n == 12 && memcmp(got, alone[k], sizeof got) == 0);
    shardlm_request_free(rs[k]);
  }
  CHECK_STATUS(shardlm_model_get_stats(m, &st), SHARDLM_OK, "");
  CHECK(st.max_seqs_in_a_step >= 2);
  CHECK(st.n_steps - steps_before < 4 * 12); /* fewer steps than one request at a time */
  CHECK(st.n_blocks > 0 && st.block_size == 16 && st.n_running == 0 && st.n_waiting == 0);

  /* Text prompt; cancel; free without waiting. */
  shardlm_request* r = NULL;
  shardlm_generate_params forever = greedy(-1);
  CHECK_STATUS(shardlm_request_submit(m, "Tell me a story", &forever, &r), SHARDLM_OK, "");
  shardlm_request_cancel(r);
  shardlm_generate_result res = new_result();
  CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, &res), SHARDLM_ERR_CANCELLED, "cancel");
  CHECK(res.finish_reason == SHARDLM_FINISH_CANCELLED);
  shardlm_request_free(r);
  CHECK_STATUS(shardlm_request_submit(m, "Another one", &gp, &r), SHARDLM_OK, "");
  shardlm_request_free(r); /* still running: cancelled and freed */
  const int32_t bad[1] = {-3};
  CHECK_STATUS(shardlm_request_submit_tokens(m, bad, 1, &gp, &r), SHARDLM_ERR_INVALID_ARG, "-3");
  CHECK_STATUS(shardlm_request_wait(NULL, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG, "request");
  shardlm_request_cancel(NULL);
  shardlm_request_free(NULL);
}

/* ABI 3: speculative decoding through the C ABI (a draft identical to the target: every
 * proposal is accepted and greedy output equals plain decoding), n-gram lookup, bad values, and
 * ABI-2 sized structs still accepted. */
static void test_speculation(void) {
  shardlm_model_params p = shardlm_model_default_params();
  p.n_threads = 2;
  const shardlm_engine_params d = shardlm_engine_default_params();
  CHECK(d.draft_pack == NULL && d.spec_ngram == 0 && d.spec_k == 0);
  shardlm_model* m = NULL;
  shardlm_engine_params wrong = d;
  wrong.spec_k = 33;
  wrong.spec_ngram = 1;
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "k must be in [1, 32]");
  wrong = d;
  wrong.spec_ngram = 1;
  wrong.draft_pack = path("tp1");
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp2"), &p, &wrong, &m),
               SHARDLM_ERR_INVALID_ARG, "exclude each other");
  wrong = d;
  wrong.draft_pack = "/nonexistent/draft";
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp2"), &p, &wrong, &m), SHARDLM_ERR_IO,
               "/nonexistent/draft");
  /* An ABI-2 caller: the struct ends before draft_pack. */
  shardlm_engine_params old = d;
  old.struct_size = offsetof(shardlm_engine_params, draft_pack);
  CHECK_STATUS(shardlm_model_open_with_engine(path("tp1"), &p, &old, &m), SHARDLM_OK, "");
  int32_t ids[12] = {5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8};
  shardlm_generate_params gp = greedy(16);
  int32_t plain[16];
  size_t n_plain = 0;
  if (m) {
    shardlm_request* r = NULL;
    CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 12, &gp, &r), SHARDLM_OK, "");
    CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, NULL), SHARDLM_OK, "");
    CHECK_STATUS(shardlm_request_tokens(r, plain, 16, &n_plain), SHARDLM_OK, "");
    shardlm_request_free(r);
    /* ABI-2 sized stats: filled up to their end, the bytes after untouched. */
    struct {
      shardlm_engine_stats st;
      char guard;
    } s2;
    memset(&s2, 0x5a, sizeof s2);
    s2.st.struct_size = offsetof(shardlm_engine_stats, spec_verifications);
    CHECK_STATUS(shardlm_model_get_stats(m, &s2.st), SHARDLM_OK, "");
    CHECK(s2.st.n_steps > 0 && s2.st.struct_size == offsetof(shardlm_engine_stats, spec_verifications));
    const unsigned char* tail = (const unsigned char*)&s2.st.spec_verifications;
    CHECK(tail[0] == 0x5a && s2.guard == 0x5a);
    shardlm_model_close(m);
    m = NULL;
  }
  CHECK(n_plain == 16);
  for (int mode = 0; mode < 2; ++mode) {
    shardlm_engine_params e = d;
    if (mode == 0) {
      e.draft_pack = path("tp1"); /* the target itself as its draft */
    } else {
      e.spec_ngram = 1;
    }
    e.spec_k = 3;
    CHECK_STATUS(shardlm_model_open_with_engine(path("tp2"), &p, &e, &m), SHARDLM_OK, "");
    if (!m) continue;
    shardlm_request* r = NULL;
    CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 12, &gp, &r), SHARDLM_OK, "");
    CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, NULL), SHARDLM_OK, "");
    int32_t out[16];
    size_t n = 0;
    CHECK_STATUS(shardlm_request_tokens(r, out, 16, &n), SHARDLM_OK, "");
    CHECK(n == 16 && memcmp(out, plain, sizeof out) == 0);
    shardlm_request_free(r);
    shardlm_engine_stats st;
    st.struct_size = sizeof st;
    CHECK_STATUS(shardlm_model_get_stats(m, &st), SHARDLM_OK, "");
    if (mode == 0) {
      CHECK(st.spec_verifications > 0 && st.spec_proposed > 0 && st.draft_steps > 0);
      /* the same model at tp 1 and tp 2: (almost) every proposal passes */
      CHECK(st.spec_accepted * 10 >= st.spec_proposed * 9);
    }
    CHECK(st.spec_emitted == st.spec_accepted + st.spec_verifications);
    shardlm_model_close(m);
    m = NULL;
  }
}

/* Handles used after release, released twice, of the wrong kind, or never handed out: every call
 * returns INVALID_ARG naming the handle, releases are ignored, and nothing touches freed memory
 * (the sanitizer run of this test would report it). The model stays usable for its other
 * handles throughout. */
static void test_released_handles(void) {
  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 2;
  shardlm_model* m = NULL;
  CHECK_STATUS(shardlm_model_open(path("tp1"), &mp, &m), SHARDLM_OK, "");
  if (!m) return;
  shardlm_session* s = NULL;
  shardlm_session* other = NULL;
  CHECK_STATUS(shardlm_session_create(m, NULL, &s), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_create(m, NULL, &other), SHARDLM_OK, "");
  int32_t ids[3] = {5, 6, 7};
  shardlm_generate_params gp = greedy(2);
  shardlm_request* r = NULL;
  CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 3, &gp, &r), SHARDLM_OK, "");

  /* Wrong kinds and pointers that never were handles. */
  int not_a_handle = 42;
  shardlm_model_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK_STATUS(shardlm_model_get_info((shardlm_model*)&not_a_handle, &info),
               SHARDLM_ERR_INVALID_ARG, "not a live shardlm_model");
  CHECK_STATUS(shardlm_model_get_info((shardlm_model*)s, &info), SHARDLM_ERR_INVALID_ARG,
               "is a shardlm_session handle, not a shardlm_model");
  CHECK_STATUS(shardlm_session_reset((shardlm_session*)m), SHARDLM_ERR_INVALID_ARG,
               "is a shardlm_model handle, not a shardlm_session");
  CHECK_STATUS(shardlm_request_wait((shardlm_request*)&not_a_handle, NULL, NULL, NULL),
               SHARDLM_ERR_INVALID_ARG, "not a live shardlm_request");
  CHECK(shardlm_model_rank((shardlm_model*)&not_a_handle) == -1);
  shardlm_model_close((shardlm_model*)s); /* not a model: ignored, the session lives on */
  shardlm_session_destroy((shardlm_session*)&not_a_handle);
  shardlm_request_free((shardlm_request*)&not_a_handle);
  shardlm_request_cancel((shardlm_request*)&not_a_handle);

  /* A session used after destroy, and destroyed twice. */
  shardlm_session_destroy(s);
  shardlm_session_destroy(s);
  CHECK_STATUS(shardlm_session_chat(s, "hi", &gp, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG,
               "not a live shardlm_session handle");
  CHECK_STATUS(shardlm_session_reset(s), SHARDLM_ERR_INVALID_ARG, "shardlm_session_destroy");

  /* A request freed before it was waited on (it is cancelled), then used and freed again. */
  shardlm_request_free(r);
  shardlm_request_free(r);
  shardlm_request_cancel(r);
  size_t n = 0;
  int32_t out[4];
  CHECK_STATUS(shardlm_request_wait(r, NULL, NULL, NULL), SHARDLM_ERR_INVALID_ARG,
               "not a live shardlm_request handle");
  CHECK_STATUS(shardlm_request_tokens(r, out, 4, &n), SHARDLM_ERR_INVALID_ARG, "shardlm_request_free");

  /* The other session still works. */
  shardlm_generate_result res = new_result();
  CHECK_STATUS(shardlm_session_chat(other, "hi", &gp, NULL, NULL, &res), SHARDLM_OK, "");
  CHECK(res.n_generated == 2);

  /* The model closed (twice): its handle is dead, the session it left keeps working. */
  shardlm_model_close(m);
  shardlm_model_close(m);
  CHECK_STATUS(shardlm_model_get_info(m, &info), SHARDLM_ERR_INVALID_ARG,
               "not a live shardlm_model handle");
  shardlm_session* s2 = NULL;
  CHECK_STATUS(shardlm_session_create(m, NULL, &s2), SHARDLM_ERR_INVALID_ARG, "shardlm_model_close");
  CHECK(s2 == NULL);
  CHECK_STATUS(shardlm_tokenize(m, "a", 1, 0, out, 4, &n), SHARDLM_ERR_INVALID_ARG, "not a live");
  CHECK_STATUS(shardlm_request_submit_tokens(m, ids, 3, &gp, &r), SHARDLM_ERR_INVALID_ARG,
               "not a live");
  res = new_result();
  CHECK_STATUS(shardlm_session_chat(other, "more", &gp, NULL, NULL, &res), SHARDLM_OK, "");
  CHECK(res.n_generated == 2);
  shardlm_session_destroy(other);
}

/* Resource exhaustion through the C ABI: a 100 MB prompt (to a session and as a request) is
 * refused with KV_FULL from its length, before tokenizing it all; a chat of 100,000 messages
 * renders (or fails) with a status; another session on the model keeps working throughout. */
static void test_resource_exhaustion(void) {
  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 2;
  shardlm_model* m = NULL;
  CHECK_STATUS(shardlm_model_open(path("tp1"), &mp, &m), SHARDLM_OK, "");
  if (!m) return;
  shardlm_session* s = NULL;
  shardlm_session* other = NULL;
  CHECK_STATUS(shardlm_session_create(m, NULL, &s), SHARDLM_OK, "");
  CHECK_STATUS(shardlm_session_create(m, NULL, &other), SHARDLM_OK, "");
  const size_t huge_len = (size_t)100 << 20;
  char* huge = (char*)malloc(huge_len + 1);
  CHECK(huge != NULL);
  if (huge) {
    for (size_t i = 0; i < huge_len; ++i) huge[i] = "word "[i % 5];
    huge[huge_len] = '\0';
    shardlm_generate_params gp = greedy(2);
    CHECK_STATUS(shardlm_session_chat(s, huge, &gp, NULL, NULL, NULL), SHARDLM_ERR_KV_FULL,
                 "needs at least");
    CHECK_STATUS(shardlm_session_complete(s, huge, &gp, NULL, NULL, NULL), SHARDLM_ERR_KV_FULL,
                 "needs at least");
    shardlm_request* r = NULL;
    CHECK_STATUS(shardlm_request_submit(m, huge, &gp, &r), SHARDLM_ERR_KV_FULL, "at least");
    CHECK(r == NULL);
    free(huge);
  }
  /* 100,000 messages: rendered in full (two-call sizing), then far beyond the context. */
  const size_t n_msgs = 100000;
  shardlm_chat_message* msgs = (shardlm_chat_message*)malloc(n_msgs * sizeof *msgs);
  CHECK(msgs != NULL);
  if (msgs) {
    for (size_t i = 0; i < n_msgs; ++i) {
      msgs[i].role = i % 2 == 0 ? "user" : "assistant";
      msgs[i].content = "hi";
    }
    size_t len = 0;
    CHECK_STATUS(shardlm_apply_chat_template(m, msgs, n_msgs, 1, NULL, NULL, 0, &len), SHARDLM_OK,
                 "");
    CHECK(len > n_msgs * 2);
    char* rendered = (char*)malloc(len + 1);
    if (rendered) {
      CHECK_STATUS(shardlm_apply_chat_template(m, msgs, n_msgs, 1, NULL, rendered, len + 1, &len),
                   SHARDLM_OK, "");
      shardlm_generate_params gp = greedy(2);
      shardlm_request* r = NULL;
      CHECK_STATUS(shardlm_request_submit(m, rendered, &gp, &r), SHARDLM_ERR_KV_FULL, "n_ctx");
      free(rendered);
    }
    free(msgs);
  }
  shardlm_generate_params gp = greedy(2);
  shardlm_generate_result res = new_result();
  CHECK_STATUS(shardlm_session_chat(other, "hi", &gp, NULL, NULL, &res), SHARDLM_OK, "");
  CHECK(res.n_generated == 2);
  CHECK_STATUS(shardlm_session_chat(s, "hi", &gp, NULL, NULL, &res), SHARDLM_OK, "");
  shardlm_session_destroy(s);
  shardlm_session_destroy(other);
  shardlm_model_close(m);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: api_abi_test FIXTURE_DIR\n");
    return 2;
  }
  snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  test_version_and_backends();
  test_open_errors();
  test_null_handles();

  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 2;
  shardlm_model* m = NULL;
  CHECK_STATUS(shardlm_model_open(path("tp2"), &mp, &m), SHARDLM_OK, "");
  if (m) {
    test_model_info_and_text(m);
    test_chat_flow(m);
    test_stop_strings_and_seeds(m);
    test_cancel_from_another_thread(m);
    test_two_sessions_two_threads(m);
    test_requests(m);
    shardlm_model_close(m);
  }
  test_context_full();
  test_released_handles();
  test_resource_exhaustion();
  test_ids_only_pack();
  test_step_engine_params();
  test_speculation();
  printf("api_abi_test: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
