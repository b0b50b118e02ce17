/* internal.h -- what the host modules share. Not installed; never included by tests except through
 * the test shim (tests/shim/). C11, also valid C++ (the emulator backend includes it). */
#ifndef POSATTN_INTERNAL_H
#define POSATTN_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "posattn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PA_MSG_SIZE 512

struct posattn_context {
  posattn_backend backend; /* never AUTO */
  int device;
  void *stream;
  char msg[PA_MSG_SIZE]; /* last failure message, "" after success */
  int device_error;      /* cudaError_t behind msg (0: none); reset by pa_ctx_enter */
};

/* Every public entry point that takes a context calls this first (after its NULL check): the
 * call's failure, if any, is the one posattn_context_last_device_error() describes. */
static inline void pa_ctx_enter(posattn_context *ctx) { ctx->device_error = 0; }

/* ---- errors --------------------------------------------------------------------------------
 * pa_fail writes a formatted message into buf (if not NULL) and returns `st`. Messages name the
 * argument and the rule, e.g. "desc->q_heads (12) must be a multiple of desc->kv_heads (5)". */
posattn_status pa_fail(char *buf, size_t size, posattn_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
posattn_status pa_vfail(char *buf, size_t size, posattn_status st, const char *fmt, va_list ap);
#define PA_CTX_FAIL(ctx, st, ...) pa_fail((ctx)->msg, PA_MSG_SIZE, (st), __VA_ARGS__)

/* Internal invariant check: returns INTERNAL with file:line and the expression. */
#define PA_CHECK_INTERNAL(ctx, cond)                                                            \
  do {                                                                                         \
    if (!(cond))                                                                               \
      return PA_CTX_FAIL((ctx), POSATTN_STATUS_INTERNAL, "internal check failed at %s:%d: %s", \
                         __FILE__, __LINE__, #cond);                                          \
  } while (0)
#define PA_TRY(expr)                          \
  do {                                        \
    posattn_status pa_try_st_ = (expr);       \
    if (pa_try_st_ != POSATTN_STATUS_SUCCESS) \
      return pa_try_st_;                      \
  } while (0)

/* ---- CUDA errors as statuses (host/cuda_error.c) -------------------------------------------
 * The one classifier of CUDA errors, a pure function of the cudaError_t value so that it builds
 * and is tested without CUDA; the CUDA backend (kernels/cuda_util.h) sends every failed CUDA call
 * through pa_cuda_error_report. STICKY errors leave the CUDA context unusable for the rest of the
 * process (cuda_runtime_api.h / driver_types.h: "any further CUDA work will return the same
 * error"); kernels/cuda_util.h checks each number below against the CUDA headers at compile time. */
#define PA_CUDA_STICKY_ERRORS(X)                                                               \
  X(cudaErrorCudartUnloading, 4)           /* the runtime is shutting down with the process */ \
  X(cudaErrorECCUncorrectable, 214)                                                            \
  X(cudaErrorNvlinkUncorrectable, 220)                                                         \
  X(cudaErrorContained, 226)                                                                   \
  X(cudaErrorIllegalAddress, 700)                                                              \
  X(cudaErrorLaunchTimeout, 702)                                                               \
  X(cudaErrorContextIsDestroyed, 709)                                                          \
  X(cudaErrorAssert, 710)                                                                      \
  X(cudaErrorHardwareStackError, 714)                                                          \
  X(cudaErrorIllegalInstruction, 715)                                                          \
  X(cudaErrorMisalignedAddress, 716)                                                           \
  X(cudaErrorInvalidAddressSpace, 717)                                                         \
  X(cudaErrorInvalidPc, 718)                                                                   \
  X(cudaErrorLaunchFailure, 719)                                                               \
  X(cudaErrorTensorMemoryLeak, 721)                                                            \
  X(cudaErrorMpsClientTerminated, 810)                                                         \
  X(cudaErrorExternalDevice, 911)
#define PA_CUDA_ERROR_MEMORY_ALLOCATION 2 /* cudaErrorMemoryAllocation: ALLOC_FAILED */

/* 1 when `code` (a cudaError_t value) is sticky, else 0 (0 itself is cudaSuccess: 0). */
int pa_cuda_error_is_sticky(int code);
/* The status of a failed CUDA call: DEVICE_LOST (sticky), ALLOC_FAILED (memory allocation) or
 * `fallback` (DEVICE_ERROR, or NO_DEVICE for the device probe). code must not be 0. */
posattn_status pa_cuda_error_status(int code, posattn_status fallback);
/* Writes the message of a failed CUDA call into msg and returns its status (above). `what` names
 * the call ("cudaMemcpyAsync of the decode tables"); `detail` is the CUDA error text, usually
 * "<cudaGetErrorString> (<cudaGetErrorName>)". pending = 1: the error was found pending before
 * the entry point's own CUDA work, so the message says it was not caused by this call. */
posattn_status pa_cuda_error_report(char *msg, size_t msg_size, int code, posattn_status fallback,
                                    int pending, const char *what, const char *detail);

/* ---- element conversions (host/dtype.c) ----------------------------------------------------
 * Round-to-nearest-even everywhere; NaN stays NaN, overflow goes to inf (FP8: saturates to the
 * largest finite value, posattn.h). Conversions from double
 * round once (no double rounding through float). */
uint16_t pa_f32_to_bf16(float x);
float pa_bf16_to_f32(uint16_t h);
uint16_t pa_f32_to_f16(float x);
float pa_f16_to_f32(uint16_t h);
uint16_t pa_f64_to_bf16(double x);
uint16_t pa_f64_to_f16(double x);
/* FP8 (e5m2 = 0: E4M3, 1: E5M2): rounded once from double, saturating (host/fp8.h semantics). */
uint8_t pa_f64_to_fp8(int e5m2, double x);
/* Round a double to the nearest value representable in dtype, returned as double. */
double pa_round_to(posattn_dtype dt, double x);
/* Element `idx` of an array of dtype, widened exactly to double. */
double pa_load(const void *base, posattn_dtype dt, int64_t idx);
/* Store x rounded once to dtype. */
void pa_store(void *base, posattn_dtype dt, int64_t idx, double x);

/* ---- the validated problem (host/validate.c fills it) -------------------------------------- */
typedef struct pa_problem {
  const posattn_attention_desc *desc; /* the caller's descriptor (host arrays read through it) */
  int32_t batch, hq, hkv, d;          /* heads and head dim */
  int32_t q_len, kv_len;              /* dense lengths, or max lengths for varlen */
  int varlen;                         /* cu_seqlens given */
  int64_t total_q, total_kv;          /* tokens over the batch */
  int32_t group;                      /* hq / hkv */
  double scale;                       /* effective softmax scale */
  int32_t rotary_dim;                 /* effective rotary dim (RoPE/xPos), else 0 */
  int32_t max_q_pos, max_kv_pos;      /* largest position id in the call (-1 if no tokens) */
  posattn_dtype in_dtype, out_dtype;
  /* tensors: NULL when only the descriptor was validated (supported/workspace queries) */
  const posattn_tensor *q, *k, *v, *out;
  float *lse;
} pa_problem;

/* sequence b: first token (in packed/token units of the batch) and its length */
static inline int64_t pa_q_start(const pa_problem *p, int32_t b) {
  return p->varlen ? (int64_t)p->desc->cu_seqlens_q[b] : (int64_t)b * p->q_len;
}
static inline int32_t pa_q_seqlen(const pa_problem *p, int32_t b) {
  return p->varlen ? p->desc->cu_seqlens_q[b + 1] - p->desc->cu_seqlens_q[b] : p->q_len;
}
static inline int64_t pa_kv_start(const pa_problem *p, int32_t b) {
  return p->varlen ? (int64_t)p->desc->cu_seqlens_kv[b] : (int64_t)b * p->kv_len;
}
static inline int32_t pa_kv_seqlen(const pa_problem *p, int32_t b) {
  return p->varlen ? p->desc->cu_seqlens_kv[b + 1] - p->desc->cu_seqlens_kv[b] : p->kv_len;
}
/* element offset of (sequence b, token i of that sequence, head h, feature 0) in tensor t; the
 * q variant for q/out, the kv variant for k/v (they differ only for varlen packing). */
static inline int64_t pa_q_offset(const pa_problem *p, const posattn_tensor *t, int32_t b,
                                  int64_t i, int32_t h) {
  if (p->varlen) return (pa_q_start(p, b) + i) * t->stride_seq + (int64_t)h * t->stride_head;
  return (int64_t)b * t->stride_batch + i * t->stride_seq + (int64_t)h * t->stride_head;
}
static inline int64_t pa_kv_offset(const pa_problem *p, const posattn_tensor *t, int32_t b,
                                   int64_t j, int32_t h) {
  if (p->varlen) return (pa_kv_start(p, b) + j) * t->stride_seq + (int64_t)h * t->stride_head;
  return (int64_t)b * t->stride_batch + j * t->stride_seq + (int64_t)h * t->stride_head;
}
/* lse index of (b, i, h): dense [batch][hq][q_len], varlen [hq][total_q] */
static inline int64_t pa_lse_index(const pa_problem *p, int32_t b, int64_t i, int32_t h) {
  if (p->varlen) return (int64_t)h * p->total_q + pa_q_start(p, b) + i;
  return ((int64_t)b * p->hq + h) * p->q_len + i;
}
/* position ids (defaults per the header: pq = i + Lk - Lq, pk = j); i, j inside sequence b */
static inline int64_t pa_q_pos(const pa_problem *p, int32_t b, int32_t i) {
  const int32_t *pos = p->desc->q_positions;
  if (pos) return pos[pa_q_start(p, b) + i];
  return (int64_t)i + pa_kv_seqlen(p, b) - pa_q_seqlen(p, b);
}
static inline int64_t pa_kv_pos(const pa_problem *p, int32_t b, int32_t j) {
  const int32_t *pos = p->desc->kv_positions;
  return pos ? (int64_t)pos[pa_kv_start(p, b) + j] : (int64_t)j;
}
/* Mask rule of the header (token indices inside sequence b). 1 = key j visible to query i. */
int pa_visible(const pa_problem *p, int32_t b, int32_t i, int32_t j);

/* Validates everything (descriptor, dtypes, and when q != NULL the tensors, lse) and fills
 * *prob. The one place where caller input is checked. msg receives the failure message. */
posattn_status pa_validate(char *msg, size_t msg_size, const posattn_attention_desc *desc,
                           posattn_dtype in_dtype, posattn_dtype out_dtype,
                           const posattn_tensor *q, const posattn_tensor *k,
                           const posattn_tensor *v, const posattn_tensor *out, float *lse,
                           pa_problem *prob);
/* PE parameter checks (called by pa_validate and by the posattn_pe_* helpers). */
posattn_status pa_validate_rope(char *msg, size_t msg_size, const posattn_rope_params *rope,
                                int32_t head_dim, const char *prefix);
posattn_status pa_validate_pe(char *msg, size_t msg_size, const posattn_pe *pe, int32_t q_heads,
                              int32_t head_dim);
/* xPos parameters in the kernels' range (posattn.h RANGES: finite scale_base >= 1, finite
 * gamma > 0), for validation and posattn_pe_xpos_scale. */
posattn_status pa_validate_xpos(char *msg, size_t msg_size, const posattn_xpos_params *xpos);
/* The scaled RoPE table inv_freq[rotary_dim/2] and attention factor (may be NULL) of rope at
 * seq_len: validates rope (messages name `prefix`) and seq_len, and refuses (BAD_PE_PARAMS) a
 * table outside the kernels' fp32 range (posattn.h RANGES: attention factor <= 16, every inverse
 * frequency <= 2^20, never NaN). The one range check of the posattn_pe_rope_* helpers and of
 * forward / decode validation (host/pe_rope.c). */
posattn_status pa_rope_table_checked(const posattn_rope_params *rope, int32_t head_dim,
                                     int32_t seq_len, double *inv_freq, double *attention_factor,
                                     const char *prefix, char *why, size_t why_size);

/* ---- host PE precomputation (host/pe.c), fp64 ------------------------------------------------
 * Everything a kernel or the REF backend needs, computed once per call. */
typedef struct pa_fire_segments {
  int32_t nseg;   /* number of segments (<= width + 1) covering x in [0, inf) */
  double *start;  /* [nseg] segment start x (start[0] = 0), increasing; the last is unbounded */
  double *slope;  /* [hq][nseg] */
  double *icpt;   /* [hq][nseg]: f_h(x) = slope*x + icpt on the segment */
} pa_fire_segments;

/* Compile the FIRE MLP into exact piecewise-linear segments over x >= 0 (every kink > 0 starts
 * one, so x > 1 -- keys far after their query -- is covered too). Allocates with
 * malloc; free with pa_fire_segments_free. ALLOC_FAILED / BAD_PE_PARAMS. */
posattn_status pa_fire_segments_build(const posattn_fire_params *fire, int32_t q_heads,
                                      pa_fire_segments *out, char *msg, size_t msg_size);
void pa_fire_segments_free(pa_fire_segments *s);
double pa_fire_segments_eval(const pa_fire_segments *s, int32_t head, double x);
/* FIRE MLP evaluated directly (fp64) */
double pa_fire_mlp_eval(const posattn_fire_params *fire, int32_t q_heads, int32_t head, double x);

/* ---- backends ---------------------------------------------------------------------------- */
/* REF (host/ref.c): workspace bytes and the forward. */
/* Saturating size arithmetic for workspace sizes of huge shapes: SIZE_MAX stands for "does not
 * fit in size_t", which the size queries answer with BAD_SIZE (pa_workspace_too_big). */
static inline size_t pa_size_mul(size_t a, size_t b) {
  return a != 0 && b > SIZE_MAX / a ? SIZE_MAX : a * b;
}
static inline size_t pa_size_add(size_t a, size_t b) { return b > SIZE_MAX - a ? SIZE_MAX : a + b; }
/* a rounded up to a multiple of 256 (SIZE_MAX when that does not fit) */
static inline size_t pa_size_align256(size_t a) {
  return a > SIZE_MAX - 255 ? SIZE_MAX : (a + 255) & ~(size_t)255;
}
/* BAD_SIZE with the message naming the problem's sizes when bytes is SIZE_MAX, else SUCCESS. */
posattn_status pa_workspace_too_big(size_t bytes, char *msg, size_t msg_size);

size_t pa_ref_workspace_size(const pa_problem *p);
/* The logit of REF (prefill and decode) from dot = q'.k': softmax_scale * dot, softcap, + bias, in
 * fp64 but with fp32's overflow (posattn.h RANGES): dot, scale * dot, the bias and the biased
 * logit beyond FLT_MAX become +-inf, as in the kernels. A non-finite result poisons the row (NaN RULE). */
double pa_ref_logit(double dot, double scale, float softcap, double bias);
/* Writes the NaN RULE's answer for a poisoned row: NaN in out[off .. off + d) and *lse (if any). */
void pa_ref_poisoned_row(void *out, posattn_dtype dtype, int64_t off, int32_t d, float *lse);
posattn_status pa_ref_forward(posattn_context *ctx, const pa_problem *p, void *ws, size_t ws_bytes);

/* EMU backend (kernels/emu_backend.cpp): the kernel source run by the SIMT emulator. Always
 * built (it needs only the host C++ compiler). pa_emu_supported(NULL, ...) answers whether the
 * backend exists at all (SUCCESS or BACKEND_UNAVAILABLE with the reason). */
posattn_status pa_emu_supported(const pa_problem *p, char *msg, size_t msg_size);
size_t pa_emu_workspace_size(const pa_problem *p);
posattn_status pa_emu_forward(posattn_context *ctx, const pa_problem *p, void *ws, size_t ws_bytes);

/* ---- CUDA backend (engineer I1: kernels/cuda_backend.cu), defined only in builds with
 * POSATTN_WITH_CUDA. pa_cuda_probe: whether `device` is usable (NO_DEVICE / DEVICE_ERROR /
 * DEVICE_LOST with the CUDA error text); pa_cuda_choose: the prefill chooser for this build's nvcc kernels on `device`, with the
 * workspace they need; pa_cuda_forward: asynchronous on ctx->stream. */
posattn_status pa_cuda_probe(int device, char *why, size_t why_size);
posattn_status pa_cuda_choose(int device, const pa_problem *p, size_t *workspace_bytes,
                              char *msg, size_t msg_size);
posattn_status pa_cuda_forward(posattn_context *ctx, const pa_problem *p, void *ws, size_t ws_bytes);

/* Chooser (host/choose.c): the one function behind dispatch and posattn_supported(). */
typedef enum pa_kernel_id {
  PA_KERNEL_NONE = 0,
  PA_KERNEL_REF = 1,
  PA_KERNEL_EMU_SIMPLE = 2, /* the straightforward device-layer kernel (emulator issue) */
  PA_KERNEL_CUDA_PREFILL = 3 /* the prefill kernels on a GPU (kernels/cuda_backend.cu) */
} pa_kernel_id;
typedef struct pa_choice {
  pa_kernel_id kernel;
  size_t workspace_bytes;
} pa_choice;
posattn_status pa_choose(posattn_context *ctx, const pa_problem *p, pa_choice *choice);

/* ---- added by REF/PE work (host/pe_rope.c, pe_bias.c, pe_fire.c) ------------------------------
 * Shared by the posattn_pe_* helpers and the REF backend so both compute the same thing. These take
 * parameters that were already validated. */
/* Rotates the first rotary_dim features of x in place (callers pass head + rotary_offset) by the
 * angles pos*inv_freq[i] (fp64; the product is split exactly into hi + lo so no precision is lost
 * at long context), cos and sin multiplied by attention_factor. NEOX pairs (i, i + rotary_dim/2),
 * GPTJ pairs (2i, 2i+1). */
void pa_rope_rotate(posattn_rope_layout layout, int32_t rotary_dim, const double *inv_freq,
                    double attention_factor, int64_t pos, double *x);
/* Effective rotary dim of rope on a head of head_dim features: rotary_dim, or the features from
 * rotary_offset on when that is 0. The rotated features are x[rotary_offset .. + this). */
int32_t pa_rope_dim(const posattn_rope_params *rope, int32_t head_dim);
/* xPos: log(zeta_i) / scale_base, so that pair i decays by exp(delta * this) over delta = pq - pk. */
double pa_xpos_log_decay(const posattn_xpos_params *xpos, int32_t rotary_dim, int32_t pair);
/* Standard ALiBi slope of head `head` of n_heads (Press et al. rule, closed form). */
double pa_alibi_slope(int32_t n_heads, int32_t head);
/* The additive bias of posattn_pe_bias() (0 for NONE/ROPE/XPOS), on validated parameters. */
double pa_pe_bias_eval(const posattn_pe *pe, int32_t q_heads, int32_t head, int64_t pq, int64_t pk);

/* ---- API layer (engineer C: host/context.c, host/validate.c) --------------------------------
 * Whether the CUDA backend can serve `device`: the single place that decides it. */
posattn_status pa_cuda_available(int device, char *why, size_t why_size);
/* forward's tensors q, k, v, out must all be given (NULL_POINTER names the missing one). */
posattn_status pa_require_tensors(char *msg, size_t msg_size, const posattn_tensor *q,
                                  const posattn_tensor *k, const posattn_tensor *v,
                                  const posattn_tensor *out);
/* The caller's workspace for a validated problem: at least `required` bytes, 256-byte aligned,
 * non-NULL when required > 0, and not overlapping q, k, v, out or lse. */
posattn_status pa_validate_workspace(char *msg, size_t msg_size, const pa_problem *p,
                                     const void *workspace, size_t workspace_bytes,
                                     size_t required);

#ifdef __cplusplus
}
#endif
#endif /* POSATTN_INTERNAL_H */
