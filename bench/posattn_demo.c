/* posattn-demo: the main job of the README. For every positional method it runs one small
 * attention problem through the public API and checks the result three ways, printing measured
 * numbers (never a canned verdict); the exit status is 1 when any check fails.
 *
 * Problem: batch 1, 4 query heads sharing 2 KV heads (GQA), 64 tokens, head dim 64, causal,
 * bf16 inputs, f32 output and natural-log LSE.
 *
 * Checks, per method:
 *   direct  The REF backend against this file's own fp64 loop (masking, GQA, softmax, LSE written
 *           here; the positional terms from the posattn_pe_* helpers). REF rounds its fp64 result
 *           to f32 once, so every output and LSE must be within 1 f32 ulp.
 *   sum     With V = 1 every output equals the row's softmax sum: must be 1 within 1 f32 ulp.
 *   shift   Methods that depend only on pq - pk must give the same outputs when every position
 *           id moves by +1000: the two fp64 results round to f32 at most 1 ulp apart (FIRE is
 *           exempt: its normaliser psi(max(L, pq)) depends on pq itself).
 *   emu     When the EMU backend is built: the same call on EMU (the CUDA kernel source run on
 *           the CPU) against REF: NMSE <= 5e-4 (DESIGN.md section 5) and max error <= 1% of
 *           max|ref|. The full section-5 rule, with a low-precision baseline, is in the tests.
 *   cuda    When the CUDA backend is built and a GPU is usable (scripts/demo.sh builds it where
 *           nvidia-smi sees a GPU): the same call on the GPU, the same check as emu.
 */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "posattn.h"

enum { HQ = 4, HKV = 2, N = 64, D = 64, SHIFT = 1000, NDOC_ANCHOR = 1 };

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double rng_uniform(double lo, double hi) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return lo + (hi - lo) * (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1p-53;
}

/* f32 -> bf16 with round-to-nearest-even (inputs here are finite). */
static uint16_t to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* One unit in the last place of the f32 nearest to x. */
static double ulp_f32(double x) {
  float f = fabsf((float)x);
  return (double)nextafterf(f, INFINITY) - (double)f;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- the problem ------------------------------------------------------------------------ */

typedef struct inputs {
  uint16_t q[N * HQ * D], k[N * HKV * D], v[N * HKV * D], ones[N * HKV * D];
  int32_t pos[N], pos_shifted[N], doc[N];
  /* parameter arrays of the bias methods */
  float fire_w1[32], fire_b1[32], fire_w2[HQ * 32], fire_b2[HQ];
  float t5_table[32 * HQ];
  float kerple_a[HQ], kerple_p[HQ];
} inputs;

typedef struct method {
  const char *name;
  posattn_pe_kind kind;
  int shift_invariant;
  int documents; /* packed documents with one anchor token */
  void (*setup)(posattn_pe *pe, const inputs *in);
} method;

static void setup_none(posattn_pe *pe, const inputs *in) { (void)pe, (void)in; }
static void setup_rope(posattn_pe *pe, const inputs *in) { (void)pe, (void)in; }
static void setup_rope_gptj_partial(posattn_pe *pe, const inputs *in) {
  (void)in;
  pe->rope.layout = POSATTN_ROPE_GPTJ;
  pe->rope.rotary_dim = D / 2;
}
static void setup_yarn(posattn_pe *pe, const inputs *in) {
  (void)in;
  pe->rope.scaling = POSATTN_ROPE_SCALING_YARN;
  pe->rope.factor = 4.0;
  pe->rope.original_max_position = 4096;
}
static void setup_llama3(posattn_pe *pe, const inputs *in) {
  (void)in;
  pe->rope.base = 500000.0;
  pe->rope.scaling = POSATTN_ROPE_SCALING_LLAMA3;
  pe->rope.factor = 8.0;
  pe->rope.original_max_position = 8192;
}
static void setup_alibi(posattn_pe *pe, const inputs *in) { (void)pe, (void)in; }
static void setup_fire(posattn_pe *pe, const inputs *in) {
  pe->fire.mlp_width = 32;
  pe->fire.w1 = in->fire_w1;
  pe->fire.b1 = in->fire_b1;
  pe->fire.w2 = in->fire_w2;
  pe->fire.b2 = in->fire_b2;
}
static void setup_xpos(posattn_pe *pe, const inputs *in) {
  (void)in;
  pe->rope.layout = POSATTN_ROPE_GPTJ; /* as in torchscale */
}
static void setup_t5(posattn_pe *pe, const inputs *in) {
  pe->t5.num_buckets = 32;
  pe->t5.max_distance = 128;
  pe->t5.bidirectional = 0;
  pe->t5.table = in->t5_table;
}
static void setup_kerple(posattn_pe *pe, const inputs *in) {
  pe->kerple.a = in->kerple_a;
  pe->kerple.p = in->kerple_p;
}

static const method METHODS[] = {
    {"none", POSATTN_PE_NONE, 1, 0, setup_none},
    {"rope", POSATTN_PE_ROPE, 1, 0, setup_rope},
    {"rope-gptj-half", POSATTN_PE_ROPE, 1, 0, setup_rope_gptj_partial},
    {"rope-yarn", POSATTN_PE_ROPE, 1, 0, setup_yarn},
    {"rope-llama3", POSATTN_PE_ROPE, 1, 0, setup_llama3},
    {"alibi", POSATTN_PE_ALIBI, 1, 0, setup_alibi},
    {"fire", POSATTN_PE_FIRE, 0, 0, setup_fire},
    {"xpos", POSATTN_PE_XPOS, 1, 0, setup_xpos},
    {"t5", POSATTN_PE_T5, 1, 0, setup_t5},
    {"kerple-log", POSATTN_PE_KERPLE_LOG, 1, 0, setup_kerple},
    {"kerple-power", POSATTN_PE_KERPLE_POWER, 1, 0, setup_kerple},
    {"anchor-docs+rope", POSATTN_PE_ROPE, 1, 1, setup_rope},
};
enum { NUM_METHODS = sizeof METHODS / sizeof METHODS[0] };

static void make_inputs(inputs *in) {
  int i;
  for (i = 0; i < N * HQ * D; ++i) in->q[i] = to_bf16((float)rng_uniform(-1, 1));
  for (i = 0; i < N * HKV * D; ++i) {
    in->k[i] = to_bf16((float)rng_uniform(-1, 1));
    in->v[i] = to_bf16((float)rng_uniform(-1, 1));
    in->ones[i] = to_bf16(1.0f);
  }
  /* three documents after one anchor token: [anchor][21 tokens][21][21] */
  for (i = 0; i < N; ++i) {
    in->pos[i] = i;
    in->pos_shifted[i] = i + SHIFT;
    in->doc[i] = i < 1 + 21 ? 0 : i < 1 + 42 ? 1 : 2;
  }
  for (i = 0; i < 32; ++i) {
    in->fire_w1[i] = (float)rng_uniform(-2, 2);
    in->fire_b1[i] = (float)rng_uniform(-1, 1);
  }
  for (i = 0; i < HQ * 32; ++i) in->fire_w2[i] = (float)rng_uniform(-0.5, 0.5);
  for (i = 0; i < HQ; ++i) {
    in->fire_b2[i] = (float)rng_uniform(-0.5, 0.5);
    in->kerple_a[i] = (float)rng_uniform(0.1, 1.0);
    in->kerple_p[i] = (float)rng_uniform(0.5, 1.5);
  }
  for (i = 0; i < 32 * HQ; ++i) in->t5_table[i] = (float)rng_uniform(-1, 1);
}

static void make_desc(posattn_attention_desc *desc, const method *m, const inputs *in,
                      const int32_t *pos) {
  posattn_attention_desc_init(desc);
  desc->batch = 1;
  desc->q_heads = HQ;
  desc->kv_heads = HKV;
  desc->head_dim = D;
  desc->q_len = desc->kv_len = N;
  desc->causal = 1;
  desc->q_positions = desc->kv_positions = pos;
  if (m->documents) {
    desc->doc_ids = in->doc;
    desc->num_anchor_tokens = NDOC_ANCHOR;
  }
  desc->pe.kind = m->kind;
  m->setup(&desc->pe, in);
}

/* One forward call with bf16 inputs and f32 outputs; prints the library's message on failure. */
static posattn_status run(posattn_context *ctx, const posattn_attention_desc *desc, const inputs *in,
                          const uint16_t *v, float *out, float *lse) {
  posattn_tensor tq, tk, tv, to;
  size_t ws_bytes = 0;
  void *ws = NULL;
  posattn_status st;
  posattn_tensor_init_contiguous(&tq, (void *)in->q, POSATTN_DTYPE_BF16, N, HQ, D);
  posattn_tensor_init_contiguous(&tk, (void *)in->k, POSATTN_DTYPE_BF16, N, HKV, D);
  posattn_tensor_init_contiguous(&tv, (void *)v, POSATTN_DTYPE_BF16, N, HKV, D);
  posattn_tensor_init_contiguous(&to, out, POSATTN_DTYPE_F32, N, HQ, D);
  st = posattn_workspace_size(ctx, desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, &ws_bytes);
  if (st == POSATTN_STATUS_SUCCESS && ws_bytes > 0) {
    /* 256-byte alignment, as posattn_forward() asks */
    if (posix_memalign(&ws, 256, ws_bytes) != 0) st = POSATTN_STATUS_ALLOC_FAILED;
  }
  if (st == POSATTN_STATUS_SUCCESS)
    st = posattn_forward(ctx, desc, &tq, &tk, &tv, &to, lse, ws, ws_bytes);
  if (st != POSATTN_STATUS_SUCCESS)
    printf("  %s: %s: %s\n", posattn_backend_string(posattn_context_backend(ctx)),
           posattn_status_string(st), posattn_context_last_message(ctx));
  free(ws);
  return st;
}

#ifdef POSATTN_DEMO_CUDA
#include <cuda_runtime_api.h>
/* The same call on the CUDA backend: q, k, v, out, LSE and the workspace in device memory (the
 * descriptor's arrays stay in host memory, as posattn.h asks), results copied back. */
static posattn_status run_cuda(posattn_context *ctx, const posattn_attention_desc *desc,
                               const inputs *in, const uint16_t *v, float *out, float *lse) {
  const size_t nq = sizeof in->q, nkv = sizeof in->k, no = (size_t)N * HQ * D * sizeof(float),
               nl = (size_t)HQ * N * sizeof(float);
  void *dq = NULL, *dk = NULL, *dv = NULL, *dout = NULL, *dlse = NULL, *ws = NULL;
  size_t ws_bytes = 0;
  posattn_tensor tq, tk, tv, to;
  posattn_status st = posattn_workspace_size(ctx, desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32,
                                             &ws_bytes);
  if (st == POSATTN_STATUS_SUCCESS &&
      (cudaMalloc(&dq, nq) || cudaMalloc(&dk, nkv) || cudaMalloc(&dv, nkv) ||
       cudaMalloc(&dout, no) || cudaMalloc(&dlse, nl) || (ws_bytes && cudaMalloc(&ws, ws_bytes)) ||
       cudaMemcpy(dq, in->q, nq, cudaMemcpyHostToDevice) ||
       cudaMemcpy(dk, in->k, nkv, cudaMemcpyHostToDevice) ||
       cudaMemcpy(dv, v, nkv, cudaMemcpyHostToDevice)))
    st = POSATTN_STATUS_DEVICE_ERROR;
  if (st == POSATTN_STATUS_SUCCESS) {
    posattn_tensor_init_contiguous(&tq, dq, POSATTN_DTYPE_BF16, N, HQ, D);
    posattn_tensor_init_contiguous(&tk, dk, POSATTN_DTYPE_BF16, N, HKV, D);
    posattn_tensor_init_contiguous(&tv, dv, POSATTN_DTYPE_BF16, N, HKV, D);
    posattn_tensor_init_contiguous(&to, dout, POSATTN_DTYPE_F32, N, HQ, D);
    st = posattn_forward(ctx, desc, &tq, &tk, &tv, &to, lse ? (float *)dlse : NULL, ws, ws_bytes);
    if (st == POSATTN_STATUS_SUCCESS &&
        (cudaDeviceSynchronize() || cudaMemcpy(out, dout, no, cudaMemcpyDeviceToHost) ||
         (lse && cudaMemcpy(lse, dlse, nl, cudaMemcpyDeviceToHost))))
      st = POSATTN_STATUS_DEVICE_ERROR;
  }
  if (st != POSATTN_STATUS_SUCCESS)
    printf("  CUDA: %s: %s\n", posattn_status_string(st), posattn_context_last_message(ctx));
  cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(dout); cudaFree(dlse); cudaFree(ws);
  return st;
}
#endif

/* ---- the demo's own fp64 attention (the "direct" check) -------------------------------- */

/* Query i sees key j: causal (q_len == kv_len, so no alignment offset) and, with documents,
 * the same document or an anchor token. */
static int visible(const posattn_attention_desc *desc, int i, int j) {
  if (j > i) return 0;
  if (desc->doc_ids && j >= desc->num_anchor_tokens && desc->doc_ids[i] != desc->doc_ids[j])
    return 0;
  return 1;
}

/* Transformed (RoPE / xPos rotary part) q and k in fp64; identity for the other methods. */
static int transform(const posattn_attention_desc *desc, const inputs *in, double *qt,
                     double *kt) {
  const posattn_pe *pe = &desc->pe;
  int rot = pe->kind == POSATTN_PE_ROPE || pe->kind == POSATTN_PE_XPOS;
  int t, h, c;
  double x[D];
  for (t = 0; t < N; ++t) {
    for (h = 0; h < HQ + HKV; ++h) {
      const uint16_t *src = h < HQ ? in->q + ((size_t)t * HQ + h) * D
                                   : in->k + ((size_t)t * HKV + (h - HQ)) * D;
      double *dst = h < HQ ? qt + ((size_t)t * HQ + h) * D : kt + ((size_t)t * HKV + (h - HQ)) * D;
      int32_t p = h < HQ ? desc->q_positions[t] : desc->kv_positions[t];
      for (c = 0; c < D; ++c) x[c] = from_bf16(src[c]);
      if (!rot) {
        memcpy(dst, x, sizeof x);
      } else if (posattn_pe_rope_apply(&pe->rope, D, N, p, x, dst) != POSATTN_STATUS_SUCCESS) {
        return 0;
      }
    }
  }
  return 1;
}

/* q'.k' of query head h, including xPos's per-pair decay zeta^((pq - pk)/scale_base). */
static double dot_qk(const posattn_pe *pe, const double *q, const double *k, int64_t delta) {
  double s = 0.0;
  int c;
  if (pe->kind != POSATTN_PE_XPOS) {
    for (c = 0; c < D; ++c) s += q[c] * k[c];
    return s;
  }
  {
    int rd = pe->rope.rotary_dim ? pe->rope.rotary_dim : D, half = rd / 2, i;
    for (i = 0; i < half; ++i) {
      int a = pe->rope.layout == POSATTN_ROPE_GPTJ ? 2 * i : i;
      int b = pe->rope.layout == POSATTN_ROPE_GPTJ ? 2 * i + 1 : i + half;
      s += posattn_pe_xpos_scale(&pe->xpos, rd, i, delta) * (q[a] * k[a] + q[b] * k[b]);
    }
    for (c = rd; c < D; ++c) s += q[c] * k[c];
  }
  return s;
}

/* out64[N][HQ][D], lse64[HQ][N]; returns 0 when a posattn_pe_* helper fails. */
static int direct(const posattn_attention_desc *desc, const inputs *in, double *out64,
                  double *lse64) {
  static double qt[N * HQ * D], kt[N * HKV * D], s[N];
  const double scale = 1.0 / sqrt((double)D);
  int i, j, h, c;
  if (!transform(desc, in, qt, kt)) return 0;
  for (h = 0; h < HQ; ++h) {
    int hk = h / (HQ / HKV);
    for (i = 0; i < N; ++i) {
      double m = -INFINITY, sum = 0.0, *o = out64 + ((size_t)i * HQ + h) * D;
      int32_t pq = desc->q_positions[i];
      for (j = 0; j < N; ++j) {
        int32_t pk = desc->kv_positions[j];
        double bias = 0.0;
        if (!visible(desc, i, j)) continue;
        if (posattn_pe_bias(&desc->pe, HQ, h, pq, pk, &bias) != POSATTN_STATUS_SUCCESS) return 0;
        s[j] = scale * dot_qk(&desc->pe, qt + ((size_t)i * HQ + h) * D,
                              kt + ((size_t)j * HKV + hk) * D, (int64_t)pq - pk) + bias;
        if (s[j] > m) m = s[j];
      }
      for (c = 0; c < D; ++c) o[c] = 0.0;
      for (j = 0; j < N; ++j) {
        double p;
        if (!visible(desc, i, j)) continue;
        p = exp(s[j] - m);
        sum += p;
        for (c = 0; c < D; ++c) o[c] += p * from_bf16(in->v[((size_t)j * HKV + hk) * D + c]);
      }
      for (c = 0; c < D; ++c) o[c] /= sum;
      lse64[(size_t)h * N + i] = m + log(sum);
    }
  }
  return 1;
}

/* ---- checks ------------------------------------------------------------------------------ */

/* Largest |a - b| in units of ulp_f32(b), with a 1e-12 absolute floor on the unit. */
static double max_ulps(const float *a, const double *b, size_t n) {
  double worst = 0.0;
  size_t i;
  for (i = 0; i < n; ++i) {
    double e = fabs((double)a[i] - b[i]) / fmax(ulp_f32(b[i]), 1e-12);
    if (!(e <= worst)) worst = e; /* NaN propagates */
  }
  return worst;
}

static int failures = 0;
static const char *verdict(int ok) {
  if (!ok) failures++;
  return ok ? "ok" : "FAIL";
}

typedef posattn_status (*runner)(posattn_context *, const posattn_attention_desc *, const inputs *,
                                 const uint16_t *, float *, float *);
#ifdef POSATTN_DEMO_CUDA
#define RUN_CUDA run_cuda
#else
#define RUN_CUDA run
#endif

/* desc on ctx (EMU or CUDA) through `fn`, against REF's outputs ref_out: NMSE and max error into
 * s, or why ctx does not support the call into note. */
static void against_ref(posattn_context *ctx, runner fn, const posattn_attention_desc *desc,
                        const inputs *in, const float *ref_out, float *out2, float *lse2, char *s,
                        size_t s_size, char *note, size_t note_size) {
  const size_t NOUT = (size_t)N * HQ * D;
  double t0;
  size_t i;
  if (!ctx) {
    snprintf(s, s_size, "not built");
  } else if (posattn_supported(ctx, desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32) !=
             POSATTN_STATUS_SUCCESS) {
    snprintf(s, s_size, "not supported (1)");
    snprintf(note, note_size, "%s", posattn_context_last_message(ctx));
  } else if ((t0 = now_ms(), fn(ctx, desc, in, in->v, out2, lse2)) == POSATTN_STATUS_SUCCESS) {
    double num = 0.0, den = 0.0, emax = 0.0, rmax = 0.0, ms = now_ms() - t0;
    for (i = 0; i < NOUT; ++i) {
      double d = (double)out2[i] - ref_out[i];
      num += d * d;
      den += (double)ref_out[i] * ref_out[i];
      if (!(fabs(d) <= emax)) emax = fabs(d);
      rmax = fmax(rmax, fabs(ref_out[i]));
    }
    snprintf(s, s_size, "max %.1e nmse %.1e %s (%.0f ms)", emax, num / den,
             verdict(num / den <= 5e-4 && emax <= 0.01 * rmax), ms);
  } else {
    snprintf(s, s_size, "call %s", verdict(0));
  }
}

int main(int argc, char **argv) {
  static inputs in;
  static float out[N * HQ * D], lse[HQ * N], out2[N * HQ * D], lse2[HQ * N];
  static double out64[N * HQ * D], lse64[HQ * N], as_double[N * HQ * D];
  static char emu_notes[NUM_METHODS][256], cuda_notes[NUM_METHODS][256]; /* why not supported */
  posattn_context *ref = NULL, *emu = NULL, *cuda = NULL, *autoctx = NULL;
  const posattn_backend backends[] = {POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU,
                                      POSATTN_BACKEND_CUDA};
  char why[256];
  int b, mi;
  posattn_status st;
  const size_t NOUT = (size_t)N * HQ * D;

  if (argc > 1) {
    printf("usage: %s\n  runs every positional method on a small problem and checks it (see the "
           "top of bench/posattn_demo.c)\n", argv[0]);
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  printf("posattn %s -- attention with the positional encoding fused in\n\n",
         posattn_version_string());
  printf("backends:\n");
  for (b = 0; b < 3; ++b) {
    why[0] = '\0';
    st = posattn_backend_available(backends[b], why, sizeof why);
    printf("  %-5s %s%s%s\n", posattn_backend_string(backends[b]),
           st == POSATTN_STATUS_SUCCESS ? "available" : posattn_status_string(st),
           why[0] ? ": " : "", why);
  }
  st = posattn_context_create(POSATTN_BACKEND_AUTO, 0, &autoctx);
  if (st != POSATTN_STATUS_SUCCESS) {
    printf("posattn_context_create(AUTO) failed: %s\n", posattn_status_string(st));
    return 1;
  }
  printf("  AUTO picks %s\n", posattn_backend_string(posattn_context_backend(autoctx)));
  posattn_context_destroy(autoctx);
  if (posattn_context_create(POSATTN_BACKEND_REF, 0, &ref) != POSATTN_STATUS_SUCCESS) {
    printf("the REF backend is not available: nothing to run\n");
    return 1;
  }
  if (posattn_backend_available(POSATTN_BACKEND_EMU, NULL, 0) == POSATTN_STATUS_SUCCESS &&
      posattn_context_create(POSATTN_BACKEND_EMU, 0, &emu) != POSATTN_STATUS_SUCCESS)
    emu = NULL;
#ifdef POSATTN_DEMO_CUDA
  if (posattn_backend_available(POSATTN_BACKEND_CUDA, NULL, 0) == POSATTN_STATUS_SUCCESS &&
      posattn_context_create(POSATTN_BACKEND_CUDA, 0, &cuda) != POSATTN_STATUS_SUCCESS)
    cuda = NULL;
#endif
  printf("  runs below: REF (the values shown; fp64 inside)%s%s\n",
         emu ? ", and EMU checked against REF where it supports the call" : "",
         cuda ? "; the CUDA backend RUNS on this GPU and is checked against REF (column CUDA)"
              : "; CUDA needs a GPU and a build with the CUDA backend (scripts/demo.sh does "
                "both when nvidia-smi sees a GPU)");

  printf("\nproblem: batch 1, %d q heads / %d kv heads, %d tokens, head_dim %d, causal, bf16 in, "
         "f32 out + LSE\n", HQ, HKV, N, D);
  printf("anchor-docs: %d anchor token + documents of 21, 21, 21 tokens\n\n", NDOC_ANCHOR);
  printf("%-17s %7s  %-26s %-15s %-12s %-12s %-12s %-*s%s\n", "method", "REF ms",
         "out[63][h1][0..2]", "LSE min..max", "direct ulps", "sum(P)-1 ulp", "shift ulps",
         cuda ? 38 : 0, "EMU vs REF", cuda ? " CUDA vs REF" : "");
  make_inputs(&in);
  for (mi = 0; mi < NUM_METHODS; ++mi) {
    const method *m = &METHODS[mi];
    posattn_attention_desc desc;
    double t0, ms, lmin = INFINITY, lmax = -INFINITY, e_direct, e_lse, e_sum, e_shift;
    char direct_s[32], sum_s[32], shift_s[32], emu_s[64], cuda_s[64] = "";
    size_t i;

    make_desc(&desc, m, &in, in.pos);
    t0 = now_ms();
    st = run(ref, &desc, &in, in.v, out, lse);
    ms = now_ms() - t0;
    if (st != POSATTN_STATUS_SUCCESS) {
      printf("%-17s REF call failed\n", m->name);
      failures++;
      continue;
    }
    for (i = 0; i < (size_t)HQ * N; ++i) {
      lmin = fmin(lmin, lse[i]);
      lmax = fmax(lmax, lse[i]);
    }

    /* direct: REF against this file's fp64 loop */
    if (direct(&desc, &in, out64, lse64)) {
      e_direct = max_ulps(out, out64, NOUT);
      e_lse = max_ulps(lse, lse64, (size_t)HQ * N);
      snprintf(direct_s, sizeof direct_s, "%.2f/%.2f %s", e_direct, e_lse,
               verdict(e_direct <= 1.0 && e_lse <= 1.0));
    } else {
      snprintf(direct_s, sizeof direct_s, "helper %s", verdict(0));
    }

    /* sum: V = 1 gives the softmax row sums */
    if (run(ref, &desc, &in, in.ones, out2, NULL) == POSATTN_STATUS_SUCCESS) {
      for (i = 0; i < NOUT; ++i) as_double[i] = 1.0;
      e_sum = max_ulps(out2, as_double, NOUT);
      snprintf(sum_s, sizeof sum_s, "%.2f %s", e_sum, verdict(e_sum <= 1.0));
    } else {
      snprintf(sum_s, sizeof sum_s, "call %s", verdict(0));
    }

    /* shift: all position ids + SHIFT */
    if (!m->shift_invariant) {
      snprintf(shift_s, sizeof shift_s, "n/a");
    } else {
      posattn_attention_desc shifted;
      make_desc(&shifted, m, &in, in.pos_shifted);
      if (run(ref, &shifted, &in, in.v, out2, lse2) == POSATTN_STATUS_SUCCESS) {
        for (i = 0; i < NOUT; ++i) as_double[i] = out[i];
        e_shift = max_ulps(out2, as_double, NOUT);
        snprintf(shift_s, sizeof shift_s, "%.2f %s", e_shift, verdict(e_shift <= 1.0));
      } else {
        snprintf(shift_s, sizeof shift_s, "call %s", verdict(0));
      }
    }

    /* EMU (and CUDA, when its backend runs here) against REF */
    against_ref(emu, run, &desc, &in, out, out2, lse2, emu_s, sizeof emu_s, emu_notes[mi],
                sizeof emu_notes[mi]);
    if (cuda)
      against_ref(cuda, RUN_CUDA, &desc, &in, out, out2, lse2, cuda_s, sizeof cuda_s,
                  cuda_notes[mi], sizeof cuda_notes[mi]);

    {
      const float *o = out + ((size_t)63 * HQ + 1) * D;
      char vals[64], lrange[32];
      snprintf(vals, sizeof vals, "%+.5f %+.5f %+.5f", o[0], o[1], o[2]);
      snprintf(lrange, sizeof lrange, "%.3f..%.3f", lmin, lmax);
      printf("%-17s %7.2f  %-26s %-15s %-12s %-12s %-12s %-*s%s%s\n", m->name, ms, vals, lrange,
             direct_s, sum_s, shift_s, cuda ? 38 : 0, emu_s, cuda ? " " : "", cuda_s);
    }
  }

  for (mi = 0; mi < NUM_METHODS; ++mi) {
    if (emu_notes[mi][0]) printf("(1) EMU, %s: %s\n", METHODS[mi].name, emu_notes[mi]);
    if (cuda_notes[mi][0]) printf("(1) CUDA, %s: %s\n", METHODS[mi].name, cuda_notes[mi]);
  }
  printf("\nhow each number was checked:\n"
         "  direct ulps  max error of REF's outputs / LSE against this program's own fp64 loop,\n"
         "               in f32 ulps (REF rounds once to f32, so <= 1 is required); the loop\n"
         "               takes the positional terms from the posattn_pe_* helpers\n"
         "  sum(P)-1     outputs with V = 1 are the softmax row sums: max |out - 1| in f32 ulps\n"
         "  shift ulps   max change of the outputs when every position id moves by +%d, in f32\n"
         "               ulps (n/a: FIRE's normaliser depends on the absolute query position)\n"
         "  EMU vs REF   max |EMU - REF| and NMSE; required: NMSE <= 5e-4, max <= 1%% of max|REF|\n"
         "  CUDA         the same check for the CUDA backend on this machine's GPU (only then)\n",
         SHIFT);
  printf("\n%s: %d check(s) failed\n", failures ? "FAILED" : "done", failures);
  posattn_context_destroy(cuda);
  posattn_context_destroy(emu);
  posattn_context_destroy(ref);
  return failures ? 1 : 0;
}
