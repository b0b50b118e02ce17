/* pa_test_shim.h -- helpers for the posattn tests (C, usable from C++).
 *
 * Tests include only posattn.h, this header, gtest and std headers. The shim is compiled against
 * the static posattn_internal library so that it can reach internal functions (element
 * conversions, FIRE segment tables) on the tests' behalf; everything it exposes is plain C with
 * the `pat_` prefix. */
#ifndef PA_TEST_SHIM_H
#define PA_TEST_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "posattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- seeded random numbers (splitmix64): the same seed gives the same data everywhere ---- */
typedef struct pat_rng {
  uint64_t state;
} pat_rng;

void pat_rng_seed(pat_rng *r, uint64_t seed);
uint64_t pat_rng_u64(pat_rng *r);
/* uniform in [lo, hi) */
double pat_rng_uniform(pat_rng *r, double lo, double hi);
/* uniform integer in [lo, hi] */
int32_t pat_rng_int(pat_rng *r, int32_t lo, int32_t hi);
/* standard normal (Box-Muller) */
double pat_rng_normal(pat_rng *r);

/* ---- element conversions (the library's round-to-nearest-even ones) ---------------------- */
/* value representable in dt nearest to x (F32/F16/BF16), as a double */
double pat_round_to(posattn_dtype dt, double x);
/* element idx of an array of dtype dt, widened exactly */
double pat_load(const void *base, posattn_dtype dt, int64_t idx);
/* store x rounded once to dt */
void pat_store(void *base, posattn_dtype dt, int64_t idx, double x);
/* distance from |x| to the next larger value representable in dt (an "ulp" of dt at x;
 * subnormal spacing near 0) */
double pat_ulp(posattn_dtype dt, double x);
/* The library's FP8 conversions (host/fp8.h; e5m2 = 0: E4M3, 1: E5M2): float -> code, code ->
 * float, double -> code (rounded once from double). */
uint8_t pat_fp8_encode(int e5m2, float x);
float pat_fp8_decode(int e5m2, uint8_t code);
uint8_t pat_fp8_from_f64(int e5m2, double x);

/* Fills n elements of `buf` (dtype dt) with uniform random values in [-amp, amp], never exactly
 * zero, rounded to dt. When `widened` is not NULL it receives the stored values as doubles. */
void pat_fill_random(pat_rng *r, posattn_dtype dt, void *buf, double *widened, int64_t n,
                     double amp);

/* ---- guarded buffers ----------------------------------------------------------------------
 * `bytes` of data between two guard bands filled with a known byte pattern. The data start is
 * 256-byte aligned (what posattn_forward wants of a workspace). */
typedef struct pat_buf {
  void *data;
  size_t bytes;
  unsigned char *block; /* the whole allocation: guard | data | guard */
} pat_buf;

/* Allocates; returns 0 on success. Data is zero-filled. */
int pat_buf_alloc(pat_buf *b, size_t bytes);
void pat_buf_free(pat_buf *b);
/* 1 when both guard bands still hold their pattern */
int pat_buf_guards_ok(const pat_buf *b);
/* Fills the first n elements of dtype dt with NaN (poison before an output is written). */
void pat_buf_poison_nan(pat_buf *b, posattn_dtype dt, int64_t n);
/* number of NaN among the first n elements of dtype dt */
int64_t pat_count_nan(const void *data, posattn_dtype dt, int64_t n);

/* ---- the DESIGN.md section 5 rule ----------------------------------------------------------
 * out passes when max|out - ref64| <= 2*max|baseline - ref64| + 2*ulp_out(max|ref64|) and
 * NMSE(out, ref64) <= 5e-4. Non-finite ref64 entries (inf) must be matched exactly by out and
 * baseline; any NaN in out fails. */
typedef struct pat_rule_result {
  double max_err;      /* max |out - ref64| over finite entries */
  double max_base_err; /* max |baseline - ref64| */
  double max_ref;      /* max |ref64| */
  double bound;        /* 2*max_base_err + 2*ulp(out_dtype, max_ref) */
  double nmse;         /* sum (out-ref)^2 / sum ref^2 (0 if ref is all zero and out too) */
  int64_t bad_nonfinite; /* NaNs in out, or infinities not matched */
  int pass;
} pat_rule_result;

pat_rule_result pat_rule_check(const double *out, const double *baseline, const double *ref64,
                               int64_t n, posattn_dtype out_dtype);

/* ---- an independent naive attention (written from the header's math) -----------------------
 * Computes what posattn_forward must compute for `desc` with inputs q, k, v (tensor
 * descriptors in host memory, strides honoured). Outputs go to contiguous double arrays:
 *   out64: [rows][q_heads][head_dim], rows = batch*q_len (dense) or total_q (varlen)
 *   lse64: laid out like posattn's lse (dense [batch][q_heads][q_len], varlen
 *          [q_heads][total_q]); may be NULL.
 * lowp = 0: everything in fp64 (the gold answer).
 * lowp = a dtype: the low-precision baseline of DESIGN.md section 5: logits and softmax in fp32,
 *   P rounded to `lowp` before PV, the output rounded to `out_dtype`.
 * RoPE/xPos are applied from posattn_pe_rope_inv_freq's table (rotation done here, not through
 * posattn_pe_rope_apply); bias methods through posattn_pe_bias; masks from the header's rule.
 * Returns the status of a PE helper that failed, else SUCCESS. The descriptor is assumed valid. */
posattn_status pat_naive_forward(const posattn_attention_desc *desc, const posattn_tensor *q,
                                 const posattn_tensor *k, const posattn_tensor *v,
                                 posattn_dtype lowp, posattn_dtype out_dtype, double *out64,
                                 double *lse64);

/* Number of query rows (batch*q_len dense, total_q varlen) and kv rows. */
int64_t pat_q_rows(const posattn_attention_desc *desc);
int64_t pat_kv_rows(const posattn_attention_desc *desc);

/* Reads tensor t (q-shaped: rows as in pat_naive_forward, heads, head_dim) into a contiguous
 * double array [rows][heads][head_dim]. */
void pat_gather(const posattn_attention_desc *desc, const posattn_tensor *t, int64_t rows,
                int32_t heads, int32_t head_dim, double *dst);

/* ---- running posattn_forward under guard ------------------------------------------------- */
/* Random contiguous q, k, v for desc (dense [batch, len, heads, d] or varlen packed), in guarded
 * buffers, values uniform in [-amp, amp] and never zero. */
typedef struct pat_inputs {
  pat_buf q, k, v;
  posattn_tensor tq, tk, tv;
} pat_inputs;
int pat_inputs_random(pat_inputs *in, const posattn_attention_desc *desc, posattn_dtype dt,
                      pat_rng *r, double amp);
void pat_inputs_free(pat_inputs *in);

typedef struct pat_run {
  posattn_status status;
  int guards_ok;       /* out, lse and workspace guard bands intact (and inputs untouched) */
  int64_t out_nan;     /* NaN left in out (poison not overwritten) */
  int64_t lse_nan;     /* NaN in lse */
  int untouched;       /* on failure: out and lse still hold their poison */
  char message[512];   /* the context's last message */
} pat_run;

/* Runs posattn_forward on ctx with a contiguous out of out_dtype and an lse, both in guarded
 * buffers poisoned with NaN, and a guarded workspace of the queried size. On success out64
 * ([rows][q_heads][head_dim]) and lse64 (posattn's lse layout) receive the results; either may
 * be NULL. */
pat_run pat_forward_checked(posattn_context *ctx, const posattn_attention_desc *desc,
                            const posattn_tensor *q, const posattn_tensor *k,
                            const posattn_tensor *v, posattn_dtype out_dtype, double *out64,
                            double *lse64);

/* ---- FIRE internals (segments compiled from the MLP, and the MLP itself) ------------------- */
typedef struct pat_fire_segs pat_fire_segs;
posattn_status pat_fire_segments_build(const posattn_fire_params *fire, int32_t q_heads,
                                       pat_fire_segs **out, char *msg, size_t msg_size);
void pat_fire_segments_free(pat_fire_segs *s);
int32_t pat_fire_segments_count(const pat_fire_segs *s);
double pat_fire_segments_start(const pat_fire_segs *s, int32_t seg);
double pat_fire_segments_eval(const pat_fire_segs *s, int32_t head, double x);
double pat_fire_mlp_eval(const posattn_fire_params *fire, int32_t q_heads, int32_t head,
                         double x);

/* ---- the CUDA error classifier (host/cuda_error.c: a pure function of the cudaError_t value) -- */
int pat_cuda_error_is_sticky(int code);
/* The status and message the CUDA backend gives a failed call (fallback DEVICE_ERROR). */
posattn_status pat_cuda_error_report(char *msg, size_t msg_size, int code, int pending,
                                     const char *what, const char *detail);
/* Sets the context's recorded CUDA error and message as the CUDA backend does on a failure, so
 * that posattn_context_last_device_error() can be tested without a GPU. */
void pat_context_fake_device_error(posattn_context *ctx, int code, const char *detail);

#ifdef __cplusplus
}
#endif
#endif /* PA_TEST_SHIM_H */
