/* Embedding libshardlm from C: open a pack, print what it is, and hold a two-turn chat with
 * streamed answers. Built against the INSTALLED package (see CMakeLists.txt here, or
 * `cc chat_example.c $(pkg-config --cflags --libs shardlm)`); uses nothing but shardlm.h.
 *   usage: chat_example PACK_DIR [MESSAGE...]  */
#include <shardlm.h>
#include <stdio.h>
#include <stdlib.h>

static int32_t print_piece(int32_t token, const char* text, size_t len, void* user) {
  (void)token;
  (void)user;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 0; /* non-zero would stop the answer */
}

static int fail(const char* what, shardlm_status st) {
  fprintf(stderr, "chat_example: %s: %s (%s)\n", what, shardlm_last_error(),
          shardlm_status_name(st));
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: chat_example PACK_DIR [MESSAGE...]\n");
    return 2;
  }
  if (shardlm_abi_version() < SHARDLM_ABI_VERSION) {
    fprintf(stderr, "chat_example: built for ABI %d, library has %u\n", SHARDLM_ABI_VERSION,
            shardlm_abi_version());
    return 1;
  }

  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 2;
  shardlm_model* model = NULL;
  shardlm_status st = shardlm_model_open(argv[1], &mp, &model);
  if (st != SHARDLM_OK) return fail("open", st);

  shardlm_model_info info;
  info.struct_size = sizeof info;
  if ((st = shardlm_model_get_info(model, &info)) != SHARDLM_OK) return fail("info", st);
  printf("libshardlm %s: %s (%s), tp %d, vocab %d, context %lld, chat template: %s\n",
         shardlm_version(), info.family, info.architecture, info.tp_size, info.n_vocab,
         (long long)info.n_ctx, info.has_chat_template ? "yes" : "no");

  /* Two-call sizing: ask for the length, then fetch. */
  size_t len = 0;
  if ((st = shardlm_model_memory_plan(model, 0, NULL, 0, &len)) != SHARDLM_OK)
    return fail("plan", st);
  char* plan = (char*)malloc(len + 1);
  if ((st = shardlm_model_memory_plan(model, 0, plan, len + 1, &len)) != SHARDLM_OK)
    return fail("plan", st);
  fputs(plan, stdout);
  free(plan);

  shardlm_session_params sp = shardlm_session_default_params();
  sp.system_prompt = "You are a helpful assistant.";
  shardlm_session* session = NULL;
  if ((st = shardlm_session_create(model, &sp, &session)) != SHARDLM_OK) return fail("session", st);

  shardlm_generate_params gp = shardlm_generate_default_params(); /* the pack's sampling */
  gp.max_tokens = 16;
  gp.seed = 1;
  const char* defaults[2] = {"Hello! Who are you?", "Tell me one more thing."};
  const int n_turns = argc > 2 ? argc - 2 : 2;
  for (int t = 0; t < n_turns; ++t) {
    const char* message = argc > 2 ? argv[t + 2] : defaults[t];
    printf("user> %s\nassistant> ", message);
    shardlm_generate_result r;
    r.struct_size = sizeof r;
    st = shardlm_session_chat(session, message, &gp, print_piece, NULL, &r);
    if (st != SHARDLM_OK) return fail("chat", st);
    printf("\n[%d tokens; prompt %lld tokens, %lld reused from the KV cache; TTFT %.3f s]\n",
           r.n_generated, (long long)r.n_prompt, (long long)r.n_reused, r.ttft_seconds);
  }
  shardlm_session_destroy(session);
  shardlm_model_close(model);
  return 0;
}
