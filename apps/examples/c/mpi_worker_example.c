/* Ranks as processes through the C ABI: every process of `mpirun -n <tp>` opens the model with
 * process_ranks = 1 and maps only its own rank file; rank 0 runs a greedy completion of the
 * given token ids and prints the generated ids, the other ranks serve its steps until it closes
 * the model. Uses nothing but shardlm.h (libshardlm initializes MPI when the program has not).
 *   usage: mpirun -n TP mpi_worker_example PACK_DIR ID,ID,... [MAX_TOKENS]  */
#include <shardlm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(int rank, const char* what, shardlm_status st) {
  fprintf(stderr, "mpi_worker_example: rank %d: %s: %s (%s)\n", rank, what, shardlm_last_error(),
          shardlm_status_name(st));
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mpirun -n TP mpi_worker_example PACK_DIR ID,ID,... [MAX_TOKENS]\n");
    return 2;
  }
  shardlm_model_params mp = shardlm_model_default_params();
  mp.n_threads = 1; /* per process */
  shardlm_engine_params ep = shardlm_engine_default_params();
  ep.process_ranks = 1;
  shardlm_model* model = NULL;
  shardlm_status st = shardlm_model_open_with_engine(argv[1], &mp, &ep, &model);
  if (st != SHARDLM_OK) return fail(-1, "open", st);
  const int rank = shardlm_model_rank(model);

  if (rank != 0) { /* a worker: run rank 0's steps until it closes the model */
    st = shardlm_model_serve(model);
    shardlm_model_close(model);
    return st == SHARDLM_OK ? 0 : fail(rank, "serve", st);
  }

  int32_t ids[1024];
  size_t n_ids = 0;
  for (char* tok = strtok(argv[2], ","); tok != NULL && n_ids < 1024; tok = strtok(NULL, ",")) {
    ids[n_ids++] = (int32_t)atoi(tok);
  }
  shardlm_generate_params gp = shardlm_generate_default_params();
  gp.temperature = 0.0f;
  gp.max_tokens = argc > 3 ? atoi(argv[3]) : 8;
  gp.ignore_eos = 1;
  shardlm_request* request = NULL;
  st = shardlm_request_submit_tokens(model, ids, n_ids, &gp, &request);
  if (st != SHARDLM_OK) return fail(rank, "submit", st);
  st = shardlm_request_wait(request, NULL, NULL, NULL);
  if (st != SHARDLM_OK) return fail(rank, "wait", st);
  int32_t out[1024];
  size_t n_out = 0;
  st = shardlm_request_tokens(request, out, 1024, &n_out);
  if (st != SHARDLM_OK) return fail(rank, "tokens", st);
  for (size_t i = 0; i < n_out; ++i) printf("%s%d", i ? "," : "", out[i]);
  printf("\n");
  shardlm_request_free(request);
  shardlm_model_close(model); /* releases the other ranks */
  return 0;
}
