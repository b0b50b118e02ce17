/* Consumer of the installed posattn: a call through the public API checked against a closed form.
 * With q = 0 every visible key gets the same logit, so (causal, self-attention) query i's output
 * is the mean of v[0..i] and its log-sum-exp is log(i + 1). Exit status 0 only if all holds. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <posattn.h>

#define N 5
#define D 4

static int failures = 0;

static void check(int ok, const char *what) {
  printf("%-52s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) failures++;
}

int main(void) {
  float q[N * D] = {0}, k[N * D], v[N * D], out[N * D], lse[N];
  posattn_context *ctx = NULL;
  posattn_attention_desc desc;
  posattn_tensor tq, tk, tv, to;
  posattn_status st;
  size_t ws_bytes = 0;
  void *ws = NULL;
  double max_err = 0.0, lse_err = 0.0;
  int i, j, c;

  printf("posattn %s (header %d.%d.%d)\n", posattn_version_string(), POSATTN_VERSION_MAJOR,
         POSATTN_VERSION_MINOR, POSATTN_VERSION_PATCH);
  check(posattn_version() == POSATTN_VERSION, "runtime version equals header version");

  for (i = 0; i < N * D; ++i) {
    k[i] = (float)((i * 7) % 11) - 5.0f;
    v[i] = (float)((i * 5) % 13) * 0.25f - 1.5f;
  }
  st = posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx);
  check(st == POSATTN_STATUS_SUCCESS, "posattn_context_create(REF)");
  if (st != POSATTN_STATUS_SUCCESS) {
    printf("  %s\n", posattn_status_string(st));
    return 1;
  }
  posattn_attention_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = desc.kv_heads = 1;
  desc.head_dim = D;
  desc.q_len = desc.kv_len = N;
  desc.causal = 1;
  posattn_tensor_init_contiguous(&tq, q, POSATTN_DTYPE_F32, N, 1, D);
  posattn_tensor_init_contiguous(&tk, k, POSATTN_DTYPE_F32, N, 1, D);
  posattn_tensor_init_contiguous(&tv, v, POSATTN_DTYPE_F32, N, 1, D);
  posattn_tensor_init_contiguous(&to, out, POSATTN_DTYPE_F32, N, 1, D);

  st = posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &ws_bytes);
  check(st == POSATTN_STATUS_SUCCESS, "posattn_workspace_size");
  if (ws_bytes > 0 && posix_memalign(&ws, 256, ws_bytes) != 0) ws = NULL;
  check(ws_bytes == 0 || ws != NULL, "workspace allocated (256-byte aligned)");
  st = posattn_forward(ctx, &desc, &tq, &tk, &tv, &to, lse, ws, ws_bytes);
  check(st == POSATTN_STATUS_SUCCESS, "posattn_forward(REF, causal, f32)");
  if (st != POSATTN_STATUS_SUCCESS) printf("  %s: %s\n", posattn_status_string(st),
                                           posattn_context_last_message(ctx));
  for (i = 0; i < N && st == POSATTN_STATUS_SUCCESS; ++i) {
    for (c = 0; c < D; ++c) {
      double mean = 0.0;
      for (j = 0; j <= i; ++j) mean += v[j * D + c];
      mean /= (double)(i + 1);
      max_err = fmax(max_err, fabs(out[i * D + c] - mean));
    }
    lse_err = fmax(lse_err, fabs(lse[i] - log((double)(i + 1))));
  }
  if (st == POSATTN_STATUS_SUCCESS)
    printf("max |out - mean(v)| = %.3g, max |lse - log(i+1)| = %.3g\n", max_err, lse_err);
  check(st == POSATTN_STATUS_SUCCESS && max_err < 1e-6 && lse_err < 1e-6,
        "outputs match the closed form within 1e-6");

  desc.q_heads = 3;
  desc.kv_heads = 2;
  st = posattn_forward(ctx, &desc, &tq, &tk, &tv, &to, lse, ws, ws_bytes);
  check(posattn_status_group(st) == 100 && posattn_context_last_message(ctx)[0] != '\0',
        "q_heads 3 with kv_heads 2 is rejected with a message");
  printf("  %s: %s\n", posattn_status_string(st), posattn_context_last_message(ctx));

  free(ws);
  posattn_context_destroy(ctx);
  return failures == 0 ? 0 : 1;
}
