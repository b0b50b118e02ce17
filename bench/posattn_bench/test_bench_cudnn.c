/* test_bench_cudnn.c -- the cuDNN SDPA baseline's graph without a GPU: for each supported
 * configuration every tensor and operation descriptor must finalize in cuDNN, with the number of
 * operations counted here from the graph's recipe (10 for attention itself, +5 ALiBi, +4 causal,
 * +2 bottom-right shift, +5 left window); unsupported configurations must be refused with a
 * reason, not built. Engine choice and numbers need a GPU (posattn-bench on a GPU machine). */
#include <stdio.h>
#include <string.h>

#include "bench_cudnn.h"

static int failures = 0;

static pb_problem problem(posattn_dtype dt, int lq, int lk, int hq, int hkv, int causal,
                          int window, posattn_pe_kind pe) {
  pb_problem p;
  memset(&p, 0, sizeof p);
  posattn_attention_desc_init(&p.desc);
  p.desc.batch = 2;
  p.desc.q_heads = hq;
  p.desc.kv_heads = hkv;
  p.desc.head_dim = 64;
  p.desc.q_len = lq;
  p.desc.kv_len = lk;
  p.desc.causal = causal;
  if (window >= 0) {
    p.desc.window_left = window;
    p.desc.window_right = 0;
  }
  p.desc.pe.kind = pe;
  p.dtype = dt;
  p.total_q = 2 * lq;
  p.total_kv = 2 * lk;
  return p;
}

static void expect_ops(const char *name, pb_problem p, int want) {
  char msg[512] = "";
  int n = -1;
  const int rc = pb_cudnn_check_ops(&p, &n, msg, sizeof msg);
  if (rc != PB_RUN_OK || n != want) {
    printf("FAIL %s: rc %d, %d operations (want OK, %d): %s\n", name, rc, n, want, msg);
    ++failures;
  } else {
    printf("ok   %s: %d operations\n", name, n);
  }
}

static void expect_refused(const char *name, pb_problem p, const char *reason_part) {
  char msg[512] = "";
  int n = -1;
  const int rc = pb_cudnn_check_ops(&p, &n, msg, sizeof msg);
  if (rc != PB_RUN_SKIP || n != 0 || !strstr(msg, reason_part)) {
    printf("FAIL %s: rc %d, %d operations, message '%s' (want SKIP naming '%s')\n", name, rc, n,
           msg, reason_part);
    ++failures;
  } else {
    printf("ok   %s: refused: %s\n", name, msg);
  }
}

int main(void) {
  printf("cuDNN %zu\n", pb_cudnn_version());
  const posattn_dtype bf = POSATTN_DTYPE_BF16, hf = POSATTN_DTYPE_F16;
  const posattn_pe_kind none = POSATTN_PE_NONE, alibi = POSATTN_PE_ALIBI;
  expect_ops("no mask", problem(bf, 128, 128, 4, 4, 0, -1, none), 10);
  expect_ops("no mask q < kv, GQA 8/2", problem(hf, 64, 192, 8, 2, 0, -1, none), 10);
  expect_ops("causal square", problem(bf, 128, 128, 4, 4, 1, -1, none), 14);
  expect_ops("causal bottom-right q < kv", problem(bf, 64, 200, 4, 1, 1, -1, none), 16);
  expect_ops("causal + window", problem(hf, 128, 128, 4, 4, 1, 32, none), 19);
  expect_ops("causal bottom-right + window", problem(bf, 96, 128, 4, 2, 1, 16, none), 21);
  expect_ops("alibi causal, GQA 8/2", problem(hf, 128, 128, 8, 2, 1, -1, alibi), 19);
  expect_ops("alibi causal + window", problem(bf, 128, 128, 4, 4, 1, 8, alibi), 24);

  expect_refused("f32", problem(POSATTN_DTYPE_F32, 64, 64, 2, 2, 1, -1, none), "bf16 and f16");
  expect_refused("causal q > kv", problem(bf, 128, 64, 2, 2, 1, -1, none), "q_len <= kv_len");
  expect_refused("alibi without causal", problem(bf, 64, 64, 2, 2, 0, -1, alibi), "ALiBi");
  expect_refused("alibi bottom-right", problem(bf, 64, 128, 2, 2, 1, -1, alibi), "ALiBi");
  expect_refused("rope", problem(bf, 64, 64, 2, 2, 1, -1, POSATTN_PE_ROPE), "pe none and alibi");
  pb_problem sc = problem(bf, 64, 64, 2, 2, 1, -1, none);
  sc.desc.softcap = 30.0f;
  expect_refused("softcap", sc, "softcap");
  pb_problem docs = problem(bf, 64, 64, 2, 2, 1, -1, none);
  static const int32_t doc[128] = {0};
  docs.desc.doc_ids = doc;
  expect_refused("documents", docs, "document");
  pb_problem win = problem(bf, 64, 64, 2, 2, 0, 8, none);
  expect_refused("window without causal", win, "windows only together with causal");

  printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures != 0;
}
