/*
 * posattn.h -- the whole public API of posattn: fused attention with the positional encoding
 * inside the kernel.
 *
 * Language: C99 and C++ (any standard >= C++11). No CUDA header is included; a CUDA stream is
 * passed as `void *`.
 *
 * THREAD SAFETY. A posattn_context is not thread-safe: use one context from one thread at a time
 * (or lock it). Different contexts are independent and may be used concurrently from different
 * threads. Functions that take no context (version, status strings, posattn_pe_* helpers,
 * descriptor initialisers) are pure and thread-safe.
 *
 * ABI POLICY. Until version 1.0 the ABI is not stable: a minor version may add fields to the
 * public structs and values to the enums. Always initialise structs with the matching
 * posattn_*_init() function before setting fields, and rebuild against a new minor version.
 * Enum values and status codes that exist keep their numbers forever (they are stable across all
 * versions), and new ones are only appended. Only symbols starting with `posattn_` are exported.
 *
 * ERRORS. Every function that can fail returns a posattn_status. Nothing in the library aborts,
 * exits, prints or throws. On failure the context keeps a one-line message that names the
 * argument and the rule it broke (posattn_context_last_message()).
 *
 * MEMORY SPACES. Tensor data (q, k, v, out, lse, workspace) lives where the backend computes:
 * host memory for POSATTN_BACKEND_REF and POSATTN_BACKEND_EMU, device memory for
 * POSATTN_BACKEND_CUDA. Index and parameter arrays given through the descriptors (cu_seqlens,
 * position ids, document ids, slopes, FIRE weights, T5 tables, KERPLE parameters, inv_freq
 * tables, sink logits) are always HOST memory, on every backend: the library validates them
 * before any work and stages what the device needs into the workspace.
 *
 * UNITS. Sizes, strides and offsets are in elements, never bytes, unless a name says `bytes`.
 *
 * STRIDES. Strides are >= 1 on every axis with more than one element, and no tensor may map two
 * of its elements to one address (the check sorts the axes by stride and requires each stride to
 * cover the span of the axes below it, which also rules out int64 overflow). Inputs may share
 * memory with each other (a packed qkv buffer is fine); out, lse and the workspace must not
 * overlap any other tensor. Data pointers are aligned to their element size.
 *
 * DEFAULT POSITIONS. With q_positions NULL the query position is i + Lk - Lq, which is negative
 * for the first queries when Lq > Lk; the relative methods handle that (only differences, or
 * max(L, pq) for FIRE, are used).
 */
#ifndef POSATTN_H
#define POSATTN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && !defined(POSATTN_STATIC)
#  if defined(POSATTN_BUILDING)
#    define POSATTN_API __declspec(dllexport)
#  else
#    define POSATTN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define POSATTN_API __attribute__((visibility("default")))
#else
#  define POSATTN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================
 * Version
 * ========================================================================================== */

#define POSATTN_VERSION_MAJOR 0
#define POSATTN_VERSION_MINOR 2
#define POSATTN_VERSION_PATCH 0
/** MAJOR*10000 + MINOR*100 + PATCH. */
#define POSATTN_VERSION \
  (POSATTN_VERSION_MAJOR * 10000 + POSATTN_VERSION_MINOR * 100 + POSATTN_VERSION_PATCH)

/** Version of the linked library, encoded as POSATTN_VERSION. Compare with the macro to detect a
 *  header/library mismatch. Never fails. */
POSATTN_API int posattn_version(void);
/** Version of the linked library as "MAJOR.MINOR.PATCH". Static storage; never NULL. */
POSATTN_API const char *posattn_version_string(void);

/* ============================================================================================
 * Status codes: stable numbered groups.
 *   0        success
 *   1xx      invalid argument (the caller broke a documented rule; the message names it)
 *   2xx      not supported (valid request this build/backend/device cannot serve)
 *   3xx      device / driver error (CUDA failures: DEVICE_LOST when the CUDA context is gone,
 *            ALLOC_FAILED for cudaErrorMemoryAllocation, DEVICE_ERROR for the rest;
 *            posattn_context_last_device_error() gives the CUDA error code)
 *   4xx      allocation
 *   5xx      internal error (a bug in posattn: please report the message)
 * ========================================================================================== */
typedef enum posattn_status {
  POSATTN_STATUS_SUCCESS = 0,

  POSATTN_STATUS_INVALID_ARGUMENT = 100, /**< generic invalid argument */
  POSATTN_STATUS_NULL_POINTER = 101,     /**< a required pointer is NULL */
  POSATTN_STATUS_BAD_SIZE = 102,         /**< a size is non-positive, too large, or inconsistent */
  POSATTN_STATUS_BAD_STRIDE = 103,       /**< strides overlap, are negative, or overflow int64 */
  POSATTN_STATUS_BAD_SEQLENS = 104,      /**< cu_seqlens not monotone / not matching totals */
  POSATTN_STATUS_BAD_POSITIONS = 105,    /**< negative or otherwise invalid position ids */
  POSATTN_STATUS_BAD_MASK = 106,         /**< window / documents / causal settings invalid */
  POSATTN_STATUS_BAD_ENUM = 107,         /**< an enum field holds an unknown value */
  POSATTN_STATUS_BAD_PE_PARAMS = 108,    /**< positional-encoding parameters out of range */
  POSATTN_STATUS_BAD_DTYPE = 109,        /**< dtype combination not allowed */
  POSATTN_STATUS_WORKSPACE_TOO_SMALL = 110, /**< workspace_bytes < posattn_workspace_size() */
  POSATTN_STATUS_BAD_ALIGNMENT = 111,    /**< a pointer is not aligned to its element size */

  POSATTN_STATUS_NOT_SUPPORTED = 200,    /**< no kernel for this configuration; message says why */
  POSATTN_STATUS_BACKEND_UNAVAILABLE = 201, /**< backend not built in, or not implemented yet */

  POSATTN_STATUS_DEVICE_ERROR = 300,     /**< a CUDA call failed; message has the CUDA error */
  POSATTN_STATUS_NO_DEVICE = 301,        /**< no usable GPU / driver */
  POSATTN_STATUS_KERNEL_FAULT = 302,     /**< a kernel faulted (EMU: bounds/race/barrier check) */
  /** A STICKY CUDA error: the CUDA context of the device is unusable (an illegal address,
   *  illegal instruction, misaligned address, device-side assert, launch failure or timeout,
   *  uncorrectable ECC/NVLink error, destroyed context...). Every later CUDA call of this process
   *  on that device fails the same way: the only recovery is a new process. The fault may come
   *  from any earlier kernel on the device, posattn's or the application's (the message says so).
   *  DEVICE_ERROR, in contrast, leaves the context usable: the call may be retried. */
  POSATTN_STATUS_DEVICE_LOST = 303,

  POSATTN_STATUS_ALLOC_FAILED = 400,     /**< host or device allocation failed */

  POSATTN_STATUS_INTERNAL = 500          /**< internal error: a bug in posattn */
} posattn_status;

/** Short name of a status ("POSATTN_STATUS_BAD_STRIDE"); "unknown status" for unknown codes.
 *  Static storage; never NULL. */
POSATTN_API const char *posattn_status_string(posattn_status status);
/** The group of a status: 0, 100, 200, 300, 400 or 500 (status rounded down to hundreds). */
POSATTN_API int posattn_status_group(posattn_status status);

/* ============================================================================================
 * Enums. Every enum value is stable; 0 is never a silently-accepted garbage value except where
 * documented as the default.
 * ========================================================================================== */

typedef enum posattn_backend {
  POSATTN_BACKEND_AUTO = 0, /**< CUDA when a GPU is usable, else EMU when built, else REF */
  POSATTN_BACKEND_REF = 1,  /**< CPU reference: plain loops, fp64 accumulation; defines correct */
  POSATTN_BACKEND_EMU = 2,  /**< the CUDA kernel source run on the CPU by the SIMT emulator */
  POSATTN_BACKEND_CUDA = 3  /**< the kernels on an NVIDIA GPU (sm_80 or later) */
} posattn_backend;

typedef enum posattn_dtype {
  POSATTN_DTYPE_F32 = 1,
  POSATTN_DTYPE_F16 = 2, /**< IEEE binary16 */
  POSATTN_DTYPE_BF16 = 3, /**< bfloat16; conversions round to nearest even */
  /** OCP FP8 E4M3 ("e4m3fn": bias 7, largest 448, S.1111.111 is NaN, no infinity) and E5M2
   *  (bias 15, largest 57344, IEEE-like inf/NaN). KV CACHE ONLY (posattn_kv_cache.dtype, with
   *  k_scale / v_scale); anywhere else they are BAD_DTYPE. Writes round to nearest even once and
   *  SATURATE: finite values beyond the largest and +-inf become +-largest, NaN stays NaN. */
  POSATTN_DTYPE_FP8_E4M3 = 4,
  POSATTN_DTYPE_FP8_E5M2 = 5
} posattn_dtype;

/** Size in bytes of one element of `dtype` (1 for the FP8 formats), or 0 for an unknown dtype. */
POSATTN_API size_t posattn_dtype_size(posattn_dtype dtype);
/** "f32", "f16", "bf16", "fp8_e4m3", "fp8_e5m2", or "unknown". */
POSATTN_API const char *posattn_dtype_string(posattn_dtype dtype);

typedef enum posattn_pe_kind {
  POSATTN_PE_NONE = 0,
  POSATTN_PE_ROPE = 1,         /**< rotary, transform of q and k (pe-spec §1-2) */
  POSATTN_PE_ALIBI = 2,        /**< logit += -slope_h * |pq - pk| (pe-spec §3) */
  POSATTN_PE_FIRE = 3,         /**< logit += MLP(psi(|pq-pk|)/psi(max(L,pq)))_h (pe-spec §4) */
  POSATTN_PE_XPOS = 4,         /**< rotary with per-pair decay zeta^((pq-pk)/scale_base) (§6) */
  POSATTN_PE_T5 = 5,           /**< logit += table[bucket(pk - pq)][h] (pe-spec §7) */
  POSATTN_PE_KERPLE_LOG = 6,   /**< logit += -p_h * log(1 + a_h*|pq-pk|) (pe-spec §8.1) */
  POSATTN_PE_KERPLE_POWER = 7  /**< logit += -a_h * |pq-pk|^p_h (pe-spec §8.1) */
} posattn_pe_kind;

typedef enum posattn_rope_layout {
  POSATTN_ROPE_NEOX = 0, /**< pairs (i, i + rotary_dim/2): "rotate_half", HF Llama/Mistral/Qwen */
  POSATTN_ROPE_GPTJ = 1  /**< pairs (2i, 2i+1): "interleaved", GPT-J, Meta Llama, xPos */
} posattn_rope_layout;

typedef enum posattn_rope_scaling {
  POSATTN_ROPE_SCALING_NONE = 0,        /**< inv_freq_i = base^(-2i/rotary_dim) */
  POSATTN_ROPE_SCALING_LINEAR = 1,      /**< position interpolation: inv_freq /= factor */
  POSATTN_ROPE_SCALING_NTK = 2,         /**< base' = base * factor^(d/(d-2)) */
  POSATTN_ROPE_SCALING_DYNAMIC_NTK = 3, /**< NTK from the current length (HF dynamic) */
  POSATTN_ROPE_SCALING_YARN = 4,        /**< YaRN, the reference code's ramp (pe-spec §2.4) */
  POSATTN_ROPE_SCALING_LLAMA3 = 5,      /**< Llama 3.1 smoothing (pe-spec §2.5) */
  POSATTN_ROPE_SCALING_LONGROPE = 6,    /**< per-pair ext_factors (Phi-3; pe-spec §2.6) */
  POSATTN_ROPE_SCALING_INV_FREQ = 7     /**< caller gives the inv_freq table directly */
} posattn_rope_scaling;

/* Angle error through the kernel (EMU, hd128, theta 1e4, worst pair; tests/emu/
 * test_prefill_angles.cpp; re-measured with the libm-free FAST cos/sin of issue 12, unchanged):
 * position 1e3 / 1e4 / 1e5 / 1e6 / 1e7 / 1e8 / 2^30-1:
 *   FAST   3.2e-5  3.2e-4  5.2e-3  5.2e-2  0.77  3.1  3.1 rad
 *   EXACT  < 1e-7 rad at every one of them.
 * FAST keeps its accuracy (< 1e-3 rad, below bf16 operand noise) up to positions ~1e4, drifts
 * beyond and is meaningless (errors of a radian) from ~1e7 on; EXACT holds to 2^30. FAST stays
 * the default: EXACT is not free (two table loads and one more complex multiply per pair, and
 * tables of ~2 sqrt(max position) rows per call), so long-context callers opt in. */
typedef enum posattn_angle_mode {
  /** angle = float(p) * inv_freq in fp32, cos/sin in fp32 (what most libraries do; the kernels
   *  evaluate them without libm, error < 1e-7 against the fp32 angle): accurate to ~1e4, see
   *  above. The default. */
  POSATTN_ANGLE_FAST = 0,
  /** p = hi*B + lo; rotation R(hi*B*w) * R(lo*w) from two fp32 tables computed in fp64 on the
   *  host: angle error < 1e-6 rad up to p = 2^30. One extra complex multiply per pair. */
  POSATTN_ANGLE_EXACT = 1
} posattn_angle_mode;

/* ============================================================================================
 * Context
 * ========================================================================================== */

typedef struct posattn_context posattn_context;

/** Creates a context for `backend`.
 *  - `device`: CUDA device ordinal for POSATTN_BACKEND_CUDA (and AUTO when it picks CUDA). Must
 *    be >= 0 on every backend (INVALID_ARGUMENT otherwise); REF and EMU ignore its value.
 *  - `*out` receives the context, or NULL on failure.
 *  Errors: NULL_POINTER (out), BAD_ENUM (backend), INVALID_ARGUMENT (device < 0),
 *  BACKEND_UNAVAILABLE (backend not built in or
 *  not implemented yet; posattn_backend_available() gives the reason), NO_DEVICE, ALLOC_FAILED.
 *  Synchronous. Thread-safe. */
POSATTN_API posattn_status posattn_context_create(posattn_backend backend, int device,
                                                  posattn_context **out);
/** Destroys a context. NULL is a no-op. The context must not be in use by another thread. */
POSATTN_API void posattn_context_destroy(posattn_context *ctx);
/** The backend the context runs on (never AUTO). ctx must not be NULL. */
POSATTN_API posattn_backend posattn_context_backend(const posattn_context *ctx);
/** The detail message of the last failed call on this context ("" after success or if none).
 *  Valid until the next call on this context. NULL ctx gives "context is NULL". */
POSATTN_API const char *posattn_context_last_message(const posattn_context *ctx);
/** The CUDA error code (the raw cudaError_t value, e.g. 700 for cudaErrorIllegalAddress) behind
 *  the last failed call on this context, or 0 when that call did not fail on a CUDA error, after
 *  a successful call, on REF and EMU, and for a NULL ctx. posattn_status_string() of the call's
 *  status says what to do: DEVICE_LOST (sticky: restart the process) or DEVICE_ERROR.
 *
 *  PENDING ERRORS. Before its own CUDA work (copies, launches) a call on the CUDA backend takes
 *  the CUDA runtime's pending error (cudaGetLastError() semantics: a recoverable error is
 *  cleared by reading it, a sticky one stays). If there is one, the call does nothing, fails
 *  with its class (DEVICE_ERROR or DEVICE_LOST), reports its code here, and the message starts
 *  "an earlier CUDA error is pending, not caused by this call". A retry then proceeds (unless the
 *  error was sticky). posattn links the CUDA runtime statically, so the runtime whose pending
 *  error it sees is its own: recoverable errors of the application's CUDA calls stay with the
 *  application, while a sticky error (the context itself is broken) is seen by everyone; when one
 *  of posattn's own CUDA calls returns a sticky error, the message says that an earlier kernel may
 *  have caused it. */
POSATTN_API int posattn_context_last_device_error(const posattn_context *ctx);
/** Sets the CUDA stream (a cudaStream_t, NULL = default stream) for later calls. For REF/EMU the
 *  stream must be NULL. Errors: NULL_POINTER (ctx), INVALID_ARGUMENT (non-NULL stream on a CPU
 *  backend). */
POSATTN_API posattn_status posattn_context_set_stream(posattn_context *ctx, void *stream);

/** Whether `backend` can be used in this build on this machine. Returns SUCCESS or
 *  BACKEND_UNAVAILABLE / NO_DEVICE / BAD_ENUM; if `why` is not NULL, writes a NUL-terminated
 *  reason (truncated to why_size bytes). Thread-safe. */
POSATTN_API posattn_status posattn_backend_available(posattn_backend backend, char *why,
                                                     size_t why_size);
/** "ref", "emu", "cuda", "auto" or "unknown". */
POSATTN_API const char *posattn_backend_string(posattn_backend backend);

/* ============================================================================================
 * Tensors
 *
 * A tensor descriptor points at data laid out as [batch, seq, heads, head_dim] with explicit
 * element strides for the first three axes; head_dim is contiguous (stride 1). For varlen
 * problems (cu_seqlens given) the tensor is packed [total_tokens, heads, head_dim] and
 * stride_batch is ignored.
 * ========================================================================================== */
typedef struct posattn_tensor {
  void *data;           /**< first element; backend memory space (see MEMORY SPACES) */
  posattn_dtype dtype;  /**< element type */
  int64_t stride_batch; /**< elements between consecutive batch items (ignored for varlen) */
  int64_t stride_seq;   /**< elements between consecutive tokens */
  int64_t stride_head;  /**< elements between consecutive heads */
} posattn_tensor;

/** Fills `t` for a dense contiguous [batch, seq, heads, head_dim] tensor (or packed
 *  [tokens, heads, head_dim] when batch is irrelevant): stride_head = head_dim,
 *  stride_seq = heads*head_dim, stride_batch = seq*heads*head_dim. NULL t is a no-op. */
POSATTN_API void posattn_tensor_init_contiguous(posattn_tensor *t, void *data, posattn_dtype dtype,
                                                int32_t seq, int32_t heads, int32_t head_dim);

/* ============================================================================================
 * Positional-encoding parameters. One struct per method; posattn_pe selects one.
 * Parameter arrays are HOST memory and are read during the call only (not retained).
 * ========================================================================================== */

/** RoPE (also the rotary part of xPos). Defaults from posattn_pe_init(). */
typedef struct posattn_rope_params {
  posattn_rope_layout layout;   /**< pairing; default NEOX */
  int32_t rotary_dim;           /**< rotated features: [rotary_offset, rotary_offset + rotary_dim)
                                     of each head; 0 = head_dim - rotary_offset. Must be even and
                                     rotary_offset + rotary_dim <= head_dim. */
  double base;                  /**< theta; default 10000. Must be > 1. */
  posattn_rope_scaling scaling; /**< default NONE */
  double factor;                /**< scaling factor s (LINEAR, NTK, DYNAMIC_NTK, YARN, LLAMA3);
                                     default 1. Must be >= 1 for NTK/DYNAMIC_NTK/LLAMA3, > 0
                                     otherwise; <= 2^20 for DYNAMIC_NTK. NTK and DYNAMIC_NTK need rotary_dim >= 4;
                                     LONGROPE needs original_max_position >= 2. */
  int32_t original_max_position; /**< pretraining context: YARN L_orig, LLAMA3 old_ctx,
                                      DYNAMIC_NTK max_position_embeddings, LONGROPE original;
                                      default 4096 (LLAMA3 callers usually pass 8192). */
  int32_t max_position;         /**< LONGROPE: max_position_embeddings (gives factor =
                                     max/original for the attention factor); 0 = original. */
  int32_t dynamic_seq_len;      /**< DYNAMIC_NTK: current sequence length; 0 = (largest position
                                     id in the call) + 1. */
  double beta_fast;             /**< YARN; default 32 */
  double beta_slow;             /**< YARN; default 1 */
  int32_t yarn_truncate;        /**< YARN: 1 = floor/ceil the correction dims (HF default); 0 not */
  double low_freq_factor;       /**< LLAMA3; default 1 */
  double high_freq_factor;      /**< LLAMA3; default 4; must be > low_freq_factor */
  double attention_factor;      /**< multiplies cos and sin (logits scale by its square).
                                     0 = the method's default: YARN get_mscale(s, mscale) /
                                     get_mscale(s, mscale_all_dim) when both are non-zero, else
                                     get_mscale(s, 1), with get_mscale(s, m) = 0.1*m*ln(s)+1
                                     (1 if s<=1); LONGROPE sqrt(1+ln(f)/ln(orig)) (1 if f<=1),
                                     f = longrope_factor or else max/original; others 1. */
  const double *ext_factors;    /**< LONGROPE: [rotary_dim/2] per-pair factors, each finite, > 0.
                                     fp64 (formerly float): pass the config's values unrounded */
  const double *inv_freq;       /**< INV_FREQ: [rotary_dim/2] table, each finite and >= 0 (0 =
                                     the pair is not rotated, only scaled by attention_factor).
                                     fp64 (formerly float) */
  posattn_angle_mode angle_mode; /**< default FAST; the REF backend always computes exactly */
  /* ---- appended fields: zero (as posattn_pe_init sets them) keeps the earlier behaviour ---- */
  double mscale;                /**< YARN: HF `mscale`; 0 = not set. Used (with mscale_all_dim)
                                     only when both are non-zero, as in transformers. */
  double mscale_all_dim;        /**< YARN: HF `mscale_all_dim`; 0 = not set. DeepSeek-V2/V3 also
                                     multiply softmax_scale by get_mscale(s, mscale_all_dim)^2:
                                     posattn_pe_rope_softmax_multiplier() gives that factor. */
  double longrope_factor;       /**< LONGROPE: HF `factor` for the attention factor; 0 = not set
                                     (then f = max_position / original_max_position). */
  int32_t rotary_offset;        /**< first rotated feature of each head (DeepSeek MLA: the rotated
                                     64 features follow the 128 unrotated ones); default 0.
                                     Must be >= 0; XPOS needs 0. */
  int32_t active_pairs;         /**< pairs with a non-zero frequency: pairs i >= active_pairs get
                                     inv_freq 0 after scaling (not rotated, but still multiplied
                                     by attention_factor). 0 = all. Gemma "proportional" RoPE:
                                     rotary_dim = head_dim, NEOX, active_pairs =
                                     int(partial_rotary_factor * head_dim / 2), so the exponent
                                     runs over head_dim and pairs are (i, i + head_dim/2). */
} posattn_rope_params;

/** ALiBi: logit += -slope_h * |pq - pk| (relative form, not scaled by softmax_scale). */
typedef struct posattn_alibi_params {
  const float *slopes; /**< [q_heads] slopes, finite and >= 0; NULL = the standard geometric
                            slopes for q_heads (Press et al.; posattn_pe_alibi_slopes()) */
} posattn_alibi_params;

/** FIRE: logit += f(x)_h, x = psi(|pq - pk|) / (psi(max(L, pq)) + eps), psi(t) = log(|c|*t + 1),
 *  f = Linear(1, width) -> ReLU -> Linear(width, q_heads). */
typedef struct posattn_fire_params {
  int32_t mlp_width; /**< hidden width (default 32); 1..1024 */
  const float *w1;   /**< [mlp_width] first-layer weights */
  const float *b1;   /**< [mlp_width] first-layer biases */
  const float *w2;   /**< [q_heads][mlp_width] second-layer weights (row per head) */
  const float *b2;   /**< [q_heads] second-layer biases */
  double c;          /**< default 0.1; |c| is used, must be > 0 */
  double L;          /**< threshold of the normaliser, default 512; must be > 0 (RANGES:
                          |c| * L >= 2^-64) */
  double eps;        /**< default 1e-6; must be >= 0 */
} posattn_fire_params;

/** xPos: RoPE (the rope params above) plus a per-pair decay: the logit's pair i is multiplied by
 *  zeta_i^((pq - pk)/scale_base), zeta_i = (2i/rotary_dim + gamma)/(1 + gamma). torchscale uses
 *  the GPTJ layout. */
typedef struct posattn_xpos_params {
  double scale_base; /**< default 512; > 0 */
  double gamma;      /**< default 0.4; > 0 */
} posattn_xpos_params;

/** T5 relative bias: logit += table[bucket(pk - pq)][h] (T5 applies no softmax scale: pass
 *  softmax_scale = 1 to match it). */
typedef struct posattn_t5_params {
  int32_t num_buckets;   /**< default 32; 2..1024; even and >= 4 when bidirectional */
  int32_t max_distance;  /**< default 128; must be > max_exact (num_buckets/2 causal, /4 bidir) */
  int32_t bidirectional; /**< 1 = encoder form (keys after the query use the upper half) */
  const float *table;    /**< [num_buckets][q_heads] learned biases (Embedding(num_buckets, H)) */
} posattn_t5_params;

/** KERPLE: LOG: logit += -p_h * log(1 + a_h*|pq-pk|); POWER: logit += -a_h * |pq-pk|^p_h. */
typedef struct posattn_kerple_params {
  const float *a; /**< [q_heads]; finite, > 0 */
  const float *p; /**< [q_heads]; finite, > 0 (POWER: 0 < p <= 2) */
} posattn_kerple_params;

/** The positional encoding of an attention call. Only the member(s) of `kind` are read:
 *  ROPE reads rope; XPOS reads rope and xpos; the bias kinds read their own struct. */
typedef struct posattn_pe {
  posattn_pe_kind kind;
  posattn_rope_params rope;
  posattn_alibi_params alibi;
  posattn_fire_params fire;
  posattn_xpos_params xpos;
  posattn_t5_params t5;
  posattn_kerple_params kerple;
} posattn_pe;

/** Sets every field of `pe` to its documented default, kind = NONE. NULL is a no-op. */
POSATTN_API void posattn_pe_init(posattn_pe *pe);

/* ============================================================================================
 * Attention descriptor
 *
 * Shapes (dense):  q   [batch, q_len,  q_heads,  head_dim]
 *                  k,v [batch, kv_len, kv_heads, head_dim]
 *                  out [batch, q_len,  q_heads,  head_dim]
 *                  lse [batch, q_heads, q_len] fp32, natural log (optional)
 * Shapes (varlen, cu_seqlens_q and cu_seqlens_kv given):
 *                  q, out [total_q, q_heads, head_dim], k,v [total_kv, kv_heads, head_dim],
 *                  lse [q_heads, total_q]; sequence b is tokens cu[b] .. cu[b+1]-1;
 *                  q_len / kv_len are then the MAXIMUM sequence lengths (used for sizing).
 *
 * Visibility of key j to query i (token indices inside the sequence, lengths Lq, Lk):
 *   i' = i + Lk - Lq (bottom-right alignment)
 *   causal:          j <= i'
 *   sliding window:  i' - window_left <= j <= i' + window_right (negative = unbounded side)
 *   documents:       doc(i) == doc(j), or j < num_anchor_tokens (anchor visible to everyone)
 * A query that sees no key gets output 0 and lse -inf; non-finite inputs follow the NaN RULE
 * below, parameter and data ranges the RANGES below.
 *
 * Logit: s = softmax_scale * (q'.k')   (q', k' = RoPE/xPos-transformed when kind says so)
 *        if softcap > 0: s = softcap * tanh(s / softcap)
 *        s += bias(h, pq, pk)          (ALiBi, FIRE, T5, KERPLE)
 * Positional encodings use position ids pq, pk (not token indices).
 *
 * Sink (sink_logits, gpt-oss style; the same rule as decode): head h's softmax gets one more term
 * exp(sink_logits[h]) that has no value vector:
 *   out = sum_j e^{s_j} v_j / (sum_j e^{s_j} + e^{sink}),  lse = log(sum_j e^{s_j} + e^{sink}).
 * A query that sees no key then gets out 0 and lse = sink_logits[h] (not -inf); a poisoned row
 * (NaN RULE) stays NaN. With sinks, out/lse are NOT a state for posattn_merge_states (the sink
 * would count once per merged part): merge sink-free states, then add the sink to the merged
 * result (out *= e^lse / (e^lse + e^sink), lse = logaddexp(lse, sink)).
 * ========================================================================================== */
typedef struct posattn_attention_desc {
  int32_t batch;    /**< >= 1 */
  int32_t q_heads;  /**< >= 1; multiple of kv_heads (GQA/MQA) */
  int32_t kv_heads; /**< >= 1 */
  int32_t head_dim; /**< >= 1 and even; kernels support a subset (posattn_supported()) */
  int32_t q_len;    /**< >= 1 (dense) or max q sequence length (varlen) */
  int32_t kv_len;   /**< >= 1 (dense) or max kv sequence length (varlen) */

  const int32_t *cu_seqlens_q;  /**< varlen: [batch+1], cu[0] = 0, non-decreasing; NULL = dense.
                                     Must be given together with cu_seqlens_kv. */
  const int32_t *cu_seqlens_kv; /**< varlen: [batch+1] */

  /** Position ids, int32 in [0, 2^30), one per token: dense [batch][q_len] / [batch][kv_len], varlen
   *  [total_q] / [total_kv]. NULL q_positions means pq = i + (Lk - Lq) (bottom-right aligned,
   *  = 0..n-1 for self-attention); NULL kv_positions means pk = j. */
  const int32_t *q_positions;
  const int32_t *kv_positions;

  int32_t causal;        /**< 0 or 1 (bottom-right aligned) */
  int32_t window_left;   /**< sliding window: keys at most window_left before i'; -1 = unbounded;
                              any value up to INT32_MAX (a window wider than the sequence is
                              unbounded in effect) */
  int32_t window_right;  /**< keys at most window_right after i'; -1 = unbounded; as window_left */
  float softcap;         /**< 0 = off; > 0: s = softcap*tanh(s/softcap). Negative or non-finite:
                              INVALID_ARGUMENT */
  float softmax_scale;   /**< 0 = default 1/sqrt(head_dim); else finite, > 0 and <= 1e30 */

  /** Packed documents with shared anchor tokens (AnchorAttention). Requires self-attention
   *  (q_len == kv_len, identical cu_seqlens). doc_ids: NULL = off, else one int32 per token
   *  (dense [batch][q_len], varlen [total_q]), non-decreasing inside each sequence (documents
   *  are contiguous). The first num_anchor_tokens tokens of each sequence are anchors: every
   *  query of the sequence sees them (subject to causal/window), whatever their doc id. */
  const int32_t *doc_ids;
  int32_t num_anchor_tokens; /**< >= 0; <= every non-empty sequence's length; used only with
                                  doc_ids */

  posattn_pe pe; /**< positional encoding; default NONE */

  /* ---- appended fields: NULL (as posattn_attention_desc_init sets them) keeps the earlier
   *      behaviour ---- */
  const float *sink_logits; /**< [q_heads] per-head sink logits (see "Sink" above), HOST memory,
                                 each finite (BAD_PE_PARAMS naming the element otherwise);
                                 NULL = no sink */
} posattn_attention_desc;

/* NaN RULE (every backend: REF, EMU, CUDA; prefill and decode). A row is one (query token, q
 * head); its logits are those of the keys it sees by the visibility rules above. The row is
 * POISONED when one of its logits is not finite (a NaN or infinite element of q, or of a visible
 * key's k, normally makes it so -- softcap bounds +-inf to +-softcap; so does an fp32 overflow,
 * see RANGES) or when an element of a visible key's v is not finite. A poisoned row gets NaN in
 * every output feature and a NaN lse. Every other row is computed as if the non-finite values
 * did not exist: a NaN or inf in the k or v of a key a row cannot see (a future key under causal
 * masking, a key outside the window, another document, another sequence or batch item) never
 * reaches it. Output 0 with lse -inf means "sees no key" and nothing else (a row that sees no key
 * is never poisoned, whatever its q; with a sink it gets output 0 and lse = the sink). Decode:
 * the same per (sequence, query token, head). Sinks (prefill and decode) are validated finite
 * (BAD_PE_PARAMS otherwise), so a sink never poisons a row.
 * How the kernels keep it (cost measured in docs/kernels.md): masked logits are exact
 * -inf, so their weights are exactly 0; a weight of 0 times a NaN/inf value is still NaN, so a
 * non-finite v element of a key that some row of a tile cannot see is replaced by 0 where the
 * tile is staged and, in the same place, that key's k is made NaN, which poisons exactly the
 * rows that see the key.
 *
 * RANGES. The kernels compute in fp32 (REF in fp64). Validation rejects parameters whose fp32
 * form would overflow, with a message giving the supported range: softmax_scale <= 1e30
 * (INVALID_ARGUMENT); RoPE/xPos attention_factor, given or the method's default, <= 16; every
 * scaled RoPE inverse frequency <= 2^20 rad per position (e.g. a LINEAR or YaRN factor >=
 * 2^-20, INV_FREQ entries); xpos.scale_base >= 1, and the largest xPos weight
 * zeta_i^((pq - pk)/scale_base) the call can reach <= 2^64 (only keys after their query make
 * it > 1: causal masking with default positions never does); FIRE 2^-64 <= |c| <= 2^64,
 * L <= 2^64 and |c| * L >= 2^-64 (the fp32 normaliser log1p(|c| max(L, pq)) + eps of a query at
 * position 0 stays > 0); DYNAMIC_NTK factor <= 2^20 (all BAD_PE_PARAMS). The posattn_pe_rope_*
 * helpers refuse tables outside these ranges as forward does (same check). Data: the kernels
 * form q'.k', softmax_scale * (q'.k'), the bias and the biased logit in fp32; a value beyond
 * FLT_MAX becomes +-inf (e.g. q and k elements of 3e19 in bf16, or learned bias weights so large
 * that the bias exceeds FLT_MAX), and REF applies the same fp32 overflow to its fp64 values, so
 * such a row is poisoned on every backend unless softcap bounds it (softcap does not bound the
 * bias). Logits of magnitude in [2^127, FLT_MAX], and value sums
 * sum_j p_j v_j beyond FLT_MAX (v elements near the fp32 limit), are outside the supported
 * range: backends may disagree there. */

/** Sets every field to its default: sizes 0 (must be set), dense, no positions, non-causal,
 *  windows -1, softcap 0, softmax_scale 0 (= 1/sqrt(head_dim)), no documents, pe NONE with
 *  defaults, no sinks. NULL is a no-op. */
POSATTN_API void posattn_attention_desc_init(posattn_attention_desc *desc);

/* ============================================================================================
 * Calls
 * ========================================================================================== */

/** Whether the context's backend has a kernel for `desc` with inputs q/k/v of `in_dtype` and
 *  output `out_dtype`. Uses the same chooser as posattn_forward(): SUCCESS means forward will
 *  not answer NOT_SUPPORTED for this descriptor and dtypes. Validates the descriptor first
 *  (same errors as forward); NOT_SUPPORTED with a message saying what is missing. Synchronous;
 *  reads only host memory. */
POSATTN_API posattn_status posattn_supported(posattn_context *ctx,
                                             const posattn_attention_desc *desc,
                                             posattn_dtype in_dtype, posattn_dtype out_dtype);

/** Bytes of workspace posattn_forward() needs for `desc` (0 is possible; then workspace may be
 *  NULL). Same validation as forward on the descriptor; BAD_SIZE when the size does not fit in
 *  size_t. Synchronous. */
POSATTN_API posattn_status posattn_workspace_size(posattn_context *ctx,
                                                  const posattn_attention_desc *desc,
                                                  posattn_dtype in_dtype, posattn_dtype out_dtype,
                                                  size_t *bytes);

/** Attention forward: out = softmax(logits) v per query row, see the descriptor for the math.
 *  - q, k, v: inputs of one dtype (f32, f16 or bf16); out: any dtype; shapes in the descriptor
 *    comment. out must not overlap q, k, v or lse.
 *  - lse: NULL or fp32 log-sum-exp (natural log) per query row and head; -inf for a row with
 *    no visible key (sink_logits[h] with sinks).
 *  - workspace: at least posattn_workspace_size() bytes of backend memory, 256-byte aligned
 *    (or NULL when that size is 0).
 *  REF and EMU are synchronous. CUDA is asynchronous on the context's stream: outputs are
 *  ready when the stream is synchronised; host arrays in the descriptor may be reused as soon
 *  as the call returns. On any error nothing is written to out or lse.
 *  Errors: every 1xx (validation, message names the argument and rule), NOT_SUPPORTED,
 *  DEVICE_ERROR, DEVICE_LOST, KERNEL_FAULT (EMU checks), ALLOC_FAILED. */
POSATTN_API posattn_status posattn_forward(posattn_context *ctx, const posattn_attention_desc *desc,
                                           const posattn_tensor *q, const posattn_tensor *k,
                                           const posattn_tensor *v, const posattn_tensor *out,
                                           float *lse, void *workspace, size_t workspace_bytes);

/* ============================================================================================
 * Positional-encoding helpers (host, fp64, pure, thread-safe). They are the host precomputation
 * the kernels use, exposed so callers and tests can see the exact tables.
 * ========================================================================================== */

/** Standard ALiBi slopes for n_heads heads (Press et al., non-power-of-two rule) into
 *  out[n_heads]. Errors: NULL_POINTER, BAD_SIZE (n_heads < 1). */
POSATTN_API posattn_status posattn_pe_alibi_slopes(int32_t n_heads, double *out);

/** RoPE inverse frequencies after scaling, inv_freq[rotary_dim/2], and the attention factor
 *  (multiplies cos and sin). rotary_dim is rope->rotary_dim, or head_dim - rope->rotary_offset
 *  when that is 0. Pairs from rope->active_pairs on are 0.
 *  `seq_len` is the current sequence length, used by DYNAMIC_NTK when rope->dynamic_seq_len is 0
 *  (ignored by the other scalings). attention_factor may be NULL.
 *  Errors: NULL_POINTER, BAD_SIZE, BAD_ENUM, BAD_PE_PARAMS (message in `why` when not NULL),
 *  the last also for a table outside the kernels' RANGES (an inverse frequency above 2^20 or NaN,
 *  an attention factor above 16), which forward refuses too. */
POSATTN_API posattn_status posattn_pe_rope_inv_freq(const posattn_rope_params *rope,
                                                    int32_t head_dim, int32_t seq_len,
                                                    double *inv_freq, double *attention_factor,
                                                    char *why, size_t why_size);

/** The factor a caller multiplies its softmax scale by for DeepSeek-style YaRN
 *  (transformers' DeepseekV3Attention): get_mscale(factor, mscale_all_dim)^2 when scaling is YARN
 *  and mscale_all_dim is non-zero, else 1. get_mscale(s, m) = 0.1*m*ln(s)+1 (1 if s <= 1).
 *  Example: s = 40, mscale_all_dim = 1 gives 1.873854... Errors: NULL_POINTER, BAD_PE_PARAMS
 *  (message in `why`). */
POSATTN_API posattn_status posattn_pe_rope_softmax_multiplier(const posattn_rope_params *rope,
                                                              int32_t head_dim, double *multiplier,
                                                              char *why, size_t why_size);

/** Applies RoPE at position `pos` to one head vector x[head_dim] in fp64 (exact angles), into
 *  y[head_dim] (may equal x). Features outside [rotary_offset, rotary_offset + rotary_dim) are
 *  unchanged. Errors as above. */
POSATTN_API posattn_status posattn_pe_rope_apply(const posattn_rope_params *rope, int32_t head_dim,
                                                 int32_t seq_len, int64_t pos, const double *x,
                                                 double *y);

/** T5 bucket of relative position rel = pk - pq (HF _relative_position_bucket, exact integer
 *  thresholds). Returns the bucket in [0, num_buckets), or -1 if the parameters are invalid. */
POSATTN_API int32_t posattn_pe_t5_bucket(int64_t rel, int32_t bidirectional, int32_t num_buckets,
                                         int32_t max_distance);

/** FIRE input x = psi(|pq - pk|) / (psi(max(L, pq)) + eps), psi(t) = log(|c| t + 1), in fp64. */
POSATTN_API double posattn_pe_fire_x(double c, double L, double eps, int64_t pq, int64_t pk);

/** xPos per-pair decay zeta_i^(delta/scale_base) for pair i of rotary_dim/2, delta = pq - pk.
 *  NaN for invalid arguments and for parameters forward refuses (scale_base < 1, RANGES). */
POSATTN_API double posattn_pe_xpos_scale(const posattn_xpos_params *xpos, int32_t rotary_dim,
                                         int32_t pair, int64_t delta);

/** The additive bias (ALiBi, FIRE, T5, KERPLE) of head `head` (of q_heads) for positions
 *  (pq, pk), in fp64, exactly as the REF backend adds it; 0 for NONE, ROPE and XPOS.
 *  FIRE is evaluated through its MLP. Errors: NULL_POINTER, BAD_SIZE, BAD_ENUM, BAD_PE_PARAMS. */
POSATTN_API posattn_status posattn_pe_bias(const posattn_pe *pe, int32_t q_heads, int32_t head,
                                           int64_t pq, int64_t pk, double *out);

/* ============================================================================================
 * Decode and paged KV cache (added by the decode work, issue 5)
 *
 * An inference server keeps each sequence's keys and values in fixed-size PAGES of a shared pool
 * and describes a sequence by a BLOCK TABLE: the page indices that hold its tokens 0, 1, 2, ...
 * in order (token j of sequence b lives in page block_table[b][j / page_size], slot
 * j % page_size). Pages may appear in several block tables (prefix sharing).
 *
 * Decode attends 1..8 new query tokens per sequence to that sequence's cached tokens. The new
 * tokens' own K/V are APPENDED FIRST (posattn_cache_append), so cache_lens counts them: with
 * n = num_q_tokens and L = cache_lens[b], query t (0 <= t < n) is aligned with cache token
 * L - n + t and, when causal, sees cache tokens j <= L - n + t (posattn_forward's bottom-right
 * rule with q_len = n, kv_len = L). Decode of a sequence equals posattn_forward on the dense
 * problem obtained by gathering its pages (tests check exactly this).
 *
 * Positions. Cache token j of sequence b has position kv_positions[b][j] (NULL: j); query t has
 * q_positions[b][t] (NULL: L - n + t). RoPE, ALiBi, FIRE, T5 and KERPLE use these positions, never
 * the token index, so a server may evict tokens (drop them from the block table and shift the
 * later ones down) or re-number positions freely: with an UN-ROTATED cache (k_rotated = 0) the
 * kernel rotates every key in fp32 from its current position on each call. With a ROTATED cache
 * (k_rotated = 1) K was rotated once by posattn_cache_append at the position given then, and
 * RoPE's positions of cache tokens are fixed at that moment (bias methods still use the current
 * kv_positions).
 *
 * Memory spaces (see MEMORY SPACES above): the page pools, q, out, lse, the new K/V of an append
 * and the workspaces are backend memory; cache_lens, block tables, positions and sink logits are
 * HOST memory, read during the call only, on every backend.
 * ========================================================================================== */

/** A paged KV cache: two page pools of identical layout
 *  k_pages, v_pages [num_pages, page_size, kv_heads, head_dim], head_dim contiguous, element
 *  (page, slot, head, f) at page*stride_page + slot*stride_slot + head*stride_head + f.
 *  The pools may live in one buffer, INTERLEAVED: e.g. FlashInfer's [num_pages, 2, page_size,
 *  kv_heads, head_dim] is k_pages = buf, v_pages = buf + page_size*kv_heads*head_dim,
 *  stride_page = 2*page_size*kv_heads*head_dim; K and V side by side per slot works the same way
 *  with stride_slot = 2*kv_heads*head_dim. Decode only reads the pools (any overlap is fine);
 *  posattn_cache_append requires that no element of K is an element of V (checked exactly from
 *  v_pages - k_pages and the strides, not from the pools' address ranges). */
typedef struct posattn_kv_cache {
  void *k_pages;          /**< backend memory; may be NULL in supported/workspace queries */
  void *v_pages;          /**< backend memory; may be NULL in supported/workspace queries */
  posattn_dtype dtype;    /**< BF16, F16, FP8_E4M3 or FP8_E5M2 (F32 also accepted, for tests
                               and the REF backend) */
  int32_t num_pages;      /**< >= 1 */
  int32_t page_size;      /**< tokens per page, 1..256 */
  int32_t kv_heads;       /**< >= 1 */
  int32_t head_dim;       /**< >= 2, even */
  int64_t stride_page;    /**< elements between pages */
  int64_t stride_slot;    /**< elements between the tokens of a page */
  int64_t stride_head;    /**< elements between heads */
  /** 0: K is stored un-rotated (pre-RoPE); decode rotates it in fp32 from kv_positions.
   *  1: K is stored rotated (posattn_cache_append rotated it in fp32 before rounding).
   *  Only matters when the positional encoding is ROPE. */
  int32_t k_rotated;
  /** FP8 caches only (NULL otherwise, INVALID_ARGUMENT if set): dequantisation scales, fp32,
   *  BACKEND memory like the pools (device pointers on CUDA), read by every decode and append.
   *  The value of a stored code c is c_value * scale (exact in REF: fp64); an append stores
   *  fp8(x / scale) (one rounding to fp8, saturating, after the fp32 RoPE rotation of a rotated
   *  cache). Must be non-NULL in decode and append (NULL_POINTER); may be NULL in the supported /
   *  workspace queries. Values must be finite and > 0 (not checked: backend memory). */
  const float *k_scale;
  const float *v_scale;
  int32_t scale_kind;  /**< posattn_kv_scale_kind: one scale per pool, or one per kv head */
} posattn_kv_cache;

/** How many scales k_scale / v_scale hold. */
typedef enum posattn_kv_scale_kind {
  POSATTN_KV_SCALE_PER_TENSOR = 0, /**< [1]: one scale for the whole pool */
  POSATTN_KV_SCALE_PER_HEAD = 1    /**< [kv_heads]: one scale per kv head */
} posattn_kv_scale_kind;

/** Fills `cache` for contiguous pools: stride_head = head_dim, stride_slot = kv_heads*head_dim,
 *  stride_page = page_size*kv_heads*head_dim; k_rotated = 0; no scales (set k_scale, v_scale and
 *  scale_kind after this for an FP8 cache). NULL cache is a no-op. */
POSATTN_API void posattn_kv_cache_init(posattn_kv_cache *cache, void *k_pages, void *v_pages,
                                       posattn_dtype dtype, int32_t num_pages, int32_t page_size,
                                       int32_t kv_heads, int32_t head_dim);

/** Decode descriptor. Shapes: q, out [batch, num_q_tokens, q_heads, head_dim] (posattn_tensor
 *  strides; stride_seq steps over the query tokens); lse [batch][q_heads][num_q_tokens] fp32.
 *
 *  Logit of query (b, t, head h) and cache token j (visible by the rule above):
 *    s = softmax_scale * (q'.k')      q' = q rotated at pq (ROPE), k' = k rotated at pk (ROPE,
 *                                     un-rotated cache) or as stored (rotated cache / no RoPE)
 *    if softcap > 0: s = softcap * tanh(s / softcap);   s += bias(h, pq, pk) (ALiBi, FIRE, T5, KERPLE)
 *  Sink: with sink_logits, head h's softmax gets one more term exp(sink_logits[h]) that has no
 *  value vector: out = sum_j e^{s_j} v_j / (sum_j e^{s_j} + e^{sink}), lse = log of that
 *  denominator. Without sinks a query that sees no token gets out 0 and lse -inf; with a sink it
 *  gets out 0 and lse = sink_logits[h]. xPos is not available in decode (NOT_SUPPORTED). */
typedef struct posattn_decode_desc {
  int32_t batch;          /**< sequences, >= 1 */
  int32_t q_heads;        /**< >= 1, multiple of the cache's kv_heads */
  int32_t head_dim;       /**< must equal the cache's head_dim */
  int32_t num_q_tokens;   /**< new query tokens per sequence, 1..8 (speculative decoding) */
  const int32_t *cache_lens;  /**< [batch] cached tokens of each sequence (new ones included),
                                   0 <= L <= max_pages_per_seq * page_size; 0 allowed;
                                   BAD_SEQLENS otherwise */
  const int32_t *block_table; /**< [batch][max_pages_per_seq] page indices; entries of pages
                                   0 .. ceil(L/page_size)-1 must be in [0, num_pages), the rest
                                   are not read */
  int32_t max_pages_per_seq;  /**< row length of block_table (and of kv_positions / page_size);
                                   max_pages_per_seq * page_size < 2^31 (BAD_SIZE) */
  const int32_t *q_positions;  /**< [batch][num_q_tokens] in [0, 2^30); NULL = L - n + t */
  const int32_t *kv_positions; /**< [batch][max_pages_per_seq * page_size], entries j < L in
                                    [0, 2^30); NULL = j */
  int32_t causal;         /**< 0 or 1 (query t sees j <= L - n + t) */
  int32_t window_left;    /**< -1 = unbounded; else also j >= L - n + t - window_left */
  float softcap;          /**< 0 = off, else finite and > 0 */
  float softmax_scale;    /**< 0 = 1/sqrt(head_dim), else finite, > 0 and <= 1e30 */
  const float *sink_logits; /**< [q_heads] finite per-head sink logits (BAD_PE_PARAMS
                                 otherwise); NULL = no sink */
  /** KV splits (flash-decoding): each sequence's cache is cut into num_splits ranges of whole
   *  pages processed in parallel and merged through their LSE. 0 = the library chooses from the
   *  problem; 1..256 = forced (more splits than pages is allowed: the extra ranges are empty). */
  int32_t num_splits;
  posattn_pe pe;          /**< NONE, ROPE, ALIBI, FIRE, T5, KERPLE_* (XPOS: NOT_SUPPORTED) */
} posattn_decode_desc;

/** Defaults: sizes 0 (must be set), NULL arrays, causal 1, window_left -1, softcap 0,
 *  softmax_scale 0, no sinks, num_splits 0, pe NONE with defaults. NULL is a no-op. */
POSATTN_API void posattn_decode_desc_init(posattn_decode_desc *desc);

/** Whether the context's backend can run decode for `desc` on `cache` (its data pointers may be
 *  NULL here) with q of `q_dtype` and out of `out_dtype`. Validates first (same errors as
 *  posattn_decode), then asks the same chooser as posattn_decode: SUCCESS means decode will not
 *  answer NOT_SUPPORTED. Synchronous; reads host memory only. */
POSATTN_API posattn_status posattn_decode_supported(posattn_context *ctx,
                                                    const posattn_decode_desc *desc,
                                                    const posattn_kv_cache *cache,
                                                    posattn_dtype q_dtype, posattn_dtype out_dtype);

/** Bytes of workspace posattn_decode() needs (partial results of the KV splits, staged tables);
 *  same validation as posattn_decode_supported. Depends on the descriptor's host arrays: the
 *  lengths decide the split count when num_splits is 0, and with RoPE in EXACT angle mode
 *  (POSATTN_ANGLE_EXACT) the staged angle tables grow with the largest position in the call
 *  (about 2 sqrt(max position) rows). Query it again when they change, or size once for the
 *  largest problem you will run: the largest batch, lengths and a fixed num_splits, and in EXACT
 *  mode the largest position you will use (a size taken at short positions is too small later:
 *  WORKSPACE_TOO_SMALL). Synchronous. */
POSATTN_API posattn_status posattn_decode_workspace_size(posattn_context *ctx,
                                                         const posattn_decode_desc *desc,
                                                         const posattn_kv_cache *cache,
                                                         posattn_dtype q_dtype,
                                                         posattn_dtype out_dtype, size_t *bytes);

/** Decode attention (see posattn_decode_desc for the math).
 *  - q: [batch, num_q_tokens, q_heads, head_dim], dtype F32, F16 or BF16; out: same shape, any
 *    dtype; lse: NULL or [batch][q_heads][num_q_tokens] fp32. out and lse must not overlap q,
 *    the page pools or each other.
 *  - workspace: >= posattn_decode_workspace_size() bytes of backend memory, 256-byte aligned
 *    (NULL when that size is 0).
 *  REF and EMU are synchronous; CUDA (when it serves decode) is asynchronous on the context's
 *  stream, host arrays reusable on return. On any error nothing is written to out or lse.
 *  Errors: 1xx (message names the argument and the rule), NOT_SUPPORTED, BACKEND_UNAVAILABLE,
 *  DEVICE_ERROR, DEVICE_LOST, KERNEL_FAULT. */
POSATTN_API posattn_status posattn_decode(posattn_context *ctx, const posattn_decode_desc *desc,
                                          const posattn_kv_cache *cache, const posattn_tensor *q,
                                          const posattn_tensor *out, float *lse, void *workspace,
                                          size_t workspace_bytes);

/** Cache append: writes num new tokens per sequence into the pages.
 *  New token t (0 <= t < new_lens[b]) of sequence b goes to cache token index
 *  j = cache_lens[b] + t, i.e. page block_table[b][j / page_size], slot j % page_size. */
typedef struct posattn_cache_append_desc {
  int32_t batch;              /**< >= 1 */
  int32_t num_tokens;         /**< rows of the k/v tensors per sequence, >= 1 */
  const int32_t *new_lens;    /**< [batch] tokens to write per sequence, 0..num_tokens;
                                   NULL = num_tokens for every sequence */
  const int32_t *cache_lens;  /**< [batch] tokens already cached (the first write index), >= 0 */
  const int32_t *block_table; /**< [batch][max_pages_per_seq], as in decode */
  int32_t max_pages_per_seq;  /**< >= 1; cache_lens[b] + new_lens[b] must fit in these pages */
  const int32_t *positions;   /**< [batch][num_tokens] position of each new token, in
                                   [0, 2^30); NULL = its cache index j. Read only to rotate K
                                   into a rotated cache. */
  posattn_pe pe;              /**< read when the cache has k_rotated = 1 and kind is ROPE: K is
                                   rotated in fp32 at its position, then rounded once. */
} posattn_cache_append_desc;

/** Defaults: sizes 0, NULL arrays, pe NONE. NULL is a no-op. */
POSATTN_API void posattn_cache_append_desc_init(posattn_cache_append_desc *desc);

/** Workspace bytes of posattn_cache_append (staged index tables and RoPE frequencies).
 *  Validates like the append. Grows with batch * num_tokens and, when K is rotated into the cache
 *  with RoPE in EXACT angle mode, with the largest position (as decode's): to size it once, size
 *  it for the largest batch, num_tokens and position you will use. Synchronous. */
POSATTN_API posattn_status posattn_cache_append_workspace_size(posattn_context *ctx,
                                                               const posattn_cache_append_desc *desc,
                                                               const posattn_kv_cache *cache,
                                                               posattn_dtype in_dtype,
                                                               size_t *bytes);

/** Writes k_new/v_new [batch, num_tokens, kv_heads, head_dim] (any input dtype; converted to the
 *  cache dtype with one rounding, after the fp32 rotation when the cache is rotated) into the
 *  cache. Rejected before anything is written: a write past max_pages_per_seq * page_size
 *  (BAD_SIZE, names the sequence), a page index outside [0, num_pages) (INVALID_ARGUMENT), two
 *  writes to one (page, slot) in the call (INVALID_ARGUMENT: a page shared between sequences, or
 *  listed twice in one block_table row, must not have one slot written twice), K and V
 *  pools that share an element (INVALID_ARGUMENT; interleaved pools are fine, posattn_kv_cache),
 *  and k_new / v_new / the workspace overlapping a pool's address range. Tokens not written and
 *  other slots are left untouched. The host-side checks cost O(P log P) for P touched pages
 *  (about 0.1 ms for batch 64 x 512 tokens at page 16) plus a pass over the index arrays.
 *  Synchronous on REF/EMU; asynchronous on the CUDA stream. */
POSATTN_API posattn_status posattn_cache_append(posattn_context *ctx,
                                                const posattn_cache_append_desc *desc,
                                                const posattn_kv_cache *cache,
                                                const posattn_tensor *k_new,
                                                const posattn_tensor *v_new, void *workspace,
                                                size_t workspace_bytes);

/* ============================================================================================
 * Merging partial attention states (added by the context-parallel work, issue 15)
 *
 * A STATE is what attention over a subset of the keys gives each query row: the normalised
 * output O (softmax over those keys times V) and its log-sum-exp LSE. Attention over the union of
 * disjoint key subsets is the merge of their states; for rows r = (batch b, token t, head h):
 *   M = max_i LSE_i,  W_i = e^(LSE_i - M),  LSE = M + log(sum_i W_i),  O = sum_i (W_i / sum W) O_i
 * (base 2 with POSATTN_MERGE_LSE_BASE2: 2^ and log2 in place of e^ and log). This is how split-KV
 * decode, ring attention and context parallelism combine partial results; posattn_forward's
 * out/lse and posattn_decode's are states when called without sinks.
 *
 * Empty and non-finite states (the NaN RULE above): a state with LSE -inf is EMPTY (it saw no key)
 * and contributes nothing, exactly: its O is never read into the result (garbage or NaN there is
 * ignored). All states empty: O = 0 and LSE = -inf. A row is POISONED when one of its states has
 * a NaN or +inf LSE, or when an element of a non-empty state's O is not finite; a poisoned row gets
 * NaN in every output element and a NaN LSE; other rows are untouched by it.
 *
 * Precision: REF merges in fp64 (the definition); EMU and CUDA in fp32 (one kernel,
 * kernels/merge/merge.cuh, shared with decode's split combine). Output rounded once to its dtype.
 *
 * Sharding a sequence over ranks (ring attention): give every call the TRUE position ids of its
 * tokens; causal and document masks across shards are expressed with the fields above as in
 * docs/scaling.md (keys j0..j1 of a longer sequence: at most two calls per shard pair).
 * ========================================================================================== */

/** One attention state: O [batch, seq, heads, head_dim] (posattn_tensor strides, head_dim
 *  contiguous, any dtype) and its LSE, fp32, row (b, t, h) at
 *  lse[b*lse_stride_batch + t*lse_stride_seq + h*lse_stride_head] (element strides; the rule of
 *  STRIDES applies). posattn_forward writes lse as [batch][heads][seq]: strides
 *  (heads*seq, 1, seq), what posattn_attn_state_init() sets. */
typedef struct posattn_attn_state {
  posattn_tensor o;         /**< backend memory */
  float *lse;               /**< backend memory; may be NULL only for a merge's output */
  int64_t lse_stride_batch;
  int64_t lse_stride_seq;
  int64_t lse_stride_head;
} posattn_attn_state;

/** Fills `s` for a contiguous O [batch, seq, heads, head_dim] (posattn_tensor_init_contiguous)
 *  and an LSE laid out as posattn_forward writes it, [batch][heads][seq]. NULL s is a no-op. */
POSATTN_API void posattn_attn_state_init(posattn_attn_state *s, void *o, posattn_dtype dtype,
                                         float *lse, int32_t seq, int32_t heads,
                                         int32_t head_dim);

/** Flags of posattn_merge_desc. */
#define POSATTN_MERGE_LSE_BASE2 1u /**< every LSE (inputs and output) is in base 2 (FlashInfer's
                                        convention), not natural log */

/** The shape every state of a merge shares. */
typedef struct posattn_merge_desc {
  int32_t batch;    /**< >= 1 */
  int32_t seq_len;  /**< query tokens per batch item, >= 1 */
  int32_t heads;    /**< >= 1 */
  int32_t head_dim; /**< >= 1 (any value: the merge has no head_dim restriction) */
  uint32_t flags;   /**< 0 or POSATTN_MERGE_LSE_BASE2; other bits: INVALID_ARGUMENT */
} posattn_merge_desc;

/** Sizes 0 (must be set), flags 0 (natural log). NULL is a no-op. */
POSATTN_API void posattn_merge_desc_init(posattn_merge_desc *desc);

/** The most states one merge call takes (merging is associative: merge more in groups). */
#define POSATTN_MERGE_MAX_STATES 32

/** Merges states[0 .. num_states-1] into `out` (formula above).
 *  - num_states: 2 .. POSATTN_MERGE_MAX_STATES (BAD_SIZE otherwise). states: a HOST array of
 *    state descriptors whose data are backend memory; each O any dtype, each lse non-NULL.
 *  - out: O of any dtype; out->lse may be NULL (then no LSE is written). out's O and LSE must not
 *    overlap any input or each other (INVALID_ARGUMENT); inputs may share memory.
 *  No workspace. REF and EMU are synchronous. CUDA: device pointers only, one kernel on the
 *  context's stream, no host-device copy and no allocation, so the call can be captured in a CUDA
 *  graph (the descriptor and the state array are read during the call). On any error nothing is
 *  written. Errors: NULL_POINTER, BAD_SIZE, BAD_STRIDE, BAD_ENUM, BAD_ALIGNMENT,
 *  INVALID_ARGUMENT (flags, overlap), DEVICE_ERROR, DEVICE_LOST, KERNEL_FAULT. */
POSATTN_API posattn_status posattn_merge_states(posattn_context *ctx,
                                                const posattn_merge_desc *desc,
                                                int32_t num_states,
                                                const posattn_attn_state *states,
                                                const posattn_attn_state *out);

/** In place: merges states[1 .. num_states-1] into states[0], whose O and LSE receive the result
 *  (states[0].lse must not be NULL). The accumulator of a ring: start it empty (LSE -inf, any O)
 *  and merge each step's state into it. states[1..] must not overlap states[0]; otherwise as
 *  posattn_merge_states. */
POSATTN_API posattn_status posattn_merge_states_inplace(posattn_context *ctx,
                                                        const posattn_merge_desc *desc,
                                                        int32_t num_states,
                                                        const posattn_attn_state *states);

/* ============================================================================================
 * Serving: plan once, run per layer (issue 13)
 *
 * posattn_decode / posattn_cache_append read their index arrays from host memory and stage them
 * (and freshly built PE tables) into the workspace on every call: simple, but a server cannot
 * capture them in a CUDA graph and the host cannot run ahead of the GPU. A PLAN fixes everything
 * that does not change from step to step -- model shape, cache geometry and dtype, masks, the
 * positional encoding with its tables, the launch geometry and the workspace size -- for a
 * maximum problem; a RUN per layer and step takes DEVICE pointers for everything that changes
 * (query counts, cache lengths, block table, positions, sinks) and only launches kernels.
 *
 * One run serves prefill chunks and decode alike ("varlen Q over a paged cache"): sequence b has
 * n_b = q_indptr[b+1] - q_indptr[b] query tokens (rows q_indptr[b] .. q_indptr[b+1]-1 of q, out
 * and lse; 0 is allowed) and L_b = kv_lens[b] cached tokens, the step's new tokens included (append
 * them first with posattn_plan_append, which takes the same q_indptr / kv_lens). Query t of
 * sequence b is aligned with cache token i' = L_b - n_b + t; the logit, visibility (causal:
 * j <= i'; window_left: j >= i' - window_left), softcap, positional encodings, sinks and the NaN
 * rule are exactly those of posattn_decode_desc with num_q_tokens = n_b (any n_b, not 1..8).
 * Default positions: query t at i', cache token j at j.
 *
 * MEMORY SPACES. Everything a run or append reads or writes is backend memory (device memory on
 * CUDA; host memory on REF and EMU), including q_indptr, kv_lens, block tables, positions and
 * sinks. The plan descriptor's PE parameter arrays are host memory read (copied) by
 * posattn_plan_create only.
 *
 * BAD DEVICE-SIDE INDICES. A run cannot look at device arrays on the host, so the kernels check
 * them against the plan: q_indptr must have q_indptr[0] = 0, be non-decreasing and end at
 * <= max_q_tokens (else the whole run writes nothing); per sequence 0 <= L_b <= max_pages_per_seq
 * * page_size, block-table entries of pages 0 .. ceil(L_b/page_size)-1 in [0, num_pages), and
 * every position it reads in [0, max_position] (else that sequence's out and lse rows are not
 * written; the other sequences are computed). Appends check the same, except that they need
 * n_b <= L_b and check only the block-table entries of the pages they write, and write nothing
 * for an offending sequence. A sequence with n_b = 0 is not read at all (its kv_lens entry and
 * block-table row may hold anything: padding). The first violation found is recorded in the
 * workspace's ERROR RECORD (the sequence, the array, the index and the value) unless the record
 * already holds one; posattn_plan_check reads and clears it. REF checks in a fixed order
 * (q_indptr; then sequence by sequence: kv_lens, block table, query positions, kv positions);
 * with several violations in one call the kernels may record a different one of them. Nothing
 * is ever read or written out of bounds because of a bad index. Default positions (NULL position
 * arrays: the cache index j, or i' for a query) are not range-checked: the plan's tables cover
 * every index up to its capacity, so they are always served.
 *
 * STREAMS AND THREADS. A plan is immutable after creation: runs and appends only read it, so one
 * plan may be used from several threads and streams at once (each with its own context, or one
 * context per thread). A workspace belongs to one run at a time: concurrent runs need separate
 * workspaces. Runs and appends on CUDA are asynchronous on the context's stream, issue kernel
 * launches only (no allocation, copy, synchronisation or attribute query) and can be captured in
 * a CUDA graph; a replay reads the device arrays' current contents (lengths, tables, query counts
 * may change between replays; the host scalars -- batch and the pointers -- are baked in). The
 * caller's current CUDA device must be the plan's when it runs or appends (no device switch is
 * made on the hot path).
 * ========================================================================================== */

typedef struct posattn_plan posattn_plan;

/** The configuration and maximum problem of a plan. */
typedef struct posattn_plan_desc {
  int32_t max_batch;         /**< most sequences in one run, >= 1 */
  int32_t max_q_tokens;      /**< most query tokens in one run, summed over its sequences
                                  (rows of q/out/lse), >= 1 */
  int32_t max_pages_per_seq; /**< most pages of one sequence; a sequence holds at most
                                  max_pages_per_seq * page_size (< 2^31) tokens */
  int32_t max_position;      /**< largest position id a run may use, in [0, 2^30); 0 = the
                                  capacity max_pages_per_seq * page_size - 1. Sizes the EXACT RoPE
                                  tables and is DYNAMIC_NTK's length when dynamic_seq_len is 0. */
  int32_t q_heads;           /**< >= 1, multiple of cache.kv_heads */
  int32_t head_dim;          /**< must equal cache.head_dim */
  /** Cache geometry: dtype, num_pages, page_size, kv_heads, head_dim, strides, k_rotated,
   *  scale_kind. Its data and scale pointers are ignored (each run and append passes its layer's
   *  pools and scales). */
  posattn_kv_cache cache;
  posattn_dtype q_dtype;     /**< F32, F16 or BF16 (also the dtype of an append's new K/V) */
  posattn_dtype out_dtype;   /**< F32, F16 or BF16 */
  int32_t causal;            /**< 0 or 1 (query t sees j <= i') */
  int32_t window_left;       /**< -1 = unbounded, else j >= i' - window_left */
  float softcap;             /**< 0 = off, else finite and > 0 */
  float softmax_scale;       /**< 0 = 1/sqrt(head_dim), else finite, > 0 and <= 1e30 */
  int32_t use_sinks;         /**< 1: every run passes sink_logits [q_heads]; 0: none */
  /** KV splits per sequence (flash-decoding; each sequence's pages are cut into num_splits
   *  ranges computed from its own length on the device). 0 = chosen from the maximum problem;
   *  1..256 forced. */
  int32_t num_splits;
  posattn_pe pe;             /**< NONE, ROPE, ALIBI, FIRE, T5, KERPLE_* (XPOS: NOT_SUPPORTED);
                                  arrays read at creation only */
} posattn_plan_desc;

/** Defaults: sizes 0 (must be set), cache zeroed (set it, e.g. with posattn_kv_cache_init),
 *  q/out BF16, causal 1, window_left -1, softcap 0, softmax_scale 0, no sinks, num_splits 0, pe
 *  NONE with defaults. NULL is a no-op. */
POSATTN_API void posattn_plan_desc_init(posattn_plan_desc *desc);

/** Creates a plan on the context's backend (and device): validates `desc` (1xx errors name the
 *  field and the rule; NOT_SUPPORTED when no kernel serves it), copies the PE parameters, builds
 *  every PE table for positions up to max_position (device memory owned by the plan on CUDA),
 *  fixes the launch geometry and the workspace size. Synchronous; allocates. `*out` is NULL on
 *  failure. Errors: NULL_POINTER, 1xx, NOT_SUPPORTED, ALLOC_FAILED, DEVICE_ERROR. */
POSATTN_API posattn_status posattn_plan_create(posattn_context *ctx, const posattn_plan_desc *desc,
                                               posattn_plan **out);
/** Frees a plan (and its device tables). NULL is a no-op. No run may still use it (on CUDA:
 *  synchronise the streams that ran it first). */
POSATTN_API void posattn_plan_destroy(posattn_plan *plan);
/** Workspace bytes every run and append of this plan needs: an upper bound for every problem
 *  within the plan's maxima, fixed for the plan's lifetime. Never fails for a valid plan;
 *  NULL_POINTER otherwise. Pure, thread-safe. */
POSATTN_API posattn_status posattn_plan_workspace_size(const posattn_plan *plan, size_t *bytes);
/** Prepares a newly allocated workspace (>= posattn_plan_workspace_size bytes, 256-byte aligned,
 *  backend memory) for the plan's runs: clears its error record. Once per allocation, outside
 *  the hot path and outside graph capture. Synchronous (CUDA: on the context's stream, then
 *  waits). */
POSATTN_API posattn_status posattn_plan_workspace_init(posattn_context *ctx, const posattn_plan *plan,
                                                       void *workspace, size_t workspace_bytes);

/** Per-run arguments. Every pointer is backend memory (device memory on CUDA). */
typedef struct posattn_run_args {
  int32_t batch;                  /**< sequences in this run, 1..max_batch (host scalar; baked
                                       into a captured graph: pad with sequences of n_b = 0) */
  const int32_t *q_indptr;        /**< [batch+1]: sequence b owns rows q_indptr[b] ..
                                       q_indptr[b+1]-1 of q, out and lse */
  const int32_t *kv_lens;         /**< [batch]: cached tokens L_b (this step's tokens included) */
  const int32_t *block_table;     /**< [batch][block_table_stride] page indices */
  int64_t block_table_stride;     /**< >= max_pages_per_seq */
  const int32_t *q_positions;     /**< [rows] position of each query row; NULL = i' */
  const int32_t *kv_positions;    /**< [batch][kv_positions_stride]; NULL = j */
  int64_t kv_positions_stride;    /**< >= max_pages_per_seq * page_size when kv_positions given */
  const float *sink_logits;       /**< [q_heads] when the plan has use_sinks, else NULL */
  void *k_pages;                  /**< this layer's pools, laid out as the plan's cache */
  void *v_pages;
  const float *k_scale;           /**< FP8 caches: as posattn_kv_cache (plan's scale_kind) */
  const float *v_scale;
  /** q [rows, q_heads, head_dim] of the plan's q_dtype: stride_seq between rows, stride_head
   *  between heads (stride_batch ignored); the buffer holds max_q_tokens rows. */
  posattn_tensor q;
  posattn_tensor out;             /**< as q, dtype = the plan's out_dtype */
  float *lse;                     /**< NULL or [rows][q_heads] fp32, natural log (a sink counts
                                       in it as in decode) */
  void *workspace;                /**< >= posattn_plan_workspace_size bytes, initialised once
                                       with posattn_plan_workspace_init */
  size_t workspace_bytes;
} posattn_run_args;

/** Zeroes every field. NULL is a no-op. */
POSATTN_API void posattn_run_args_init(posattn_run_args *args);

/** Paged attention for every sequence of the batch (see the section comment). Host-side checks
 *  are O(1) (pointers, batch, strides, dtypes, alignment, workspace size: 1xx errors before
 *  anything is launched); device-side indices are checked by the kernels (BAD DEVICE-SIDE
 *  INDICES: read the result with posattn_plan_check). REF and EMU are synchronous; CUDA
 *  launches kernels on the context's stream and returns. The context must have the plan's
 *  backend (and device). Errors: NULL_POINTER, 1xx, DEVICE_ERROR, KERNEL_FAULT (EMU). */
POSATTN_API posattn_status posattn_plan_run(posattn_context *ctx, const posattn_plan *plan,
                                            const posattn_run_args *args);

/** Per-append arguments: the step's new K/V rows, addressed like a run's query rows. */
typedef struct posattn_append_args {
  int32_t batch;                  /**< 1..max_batch */
  const int32_t *new_indptr;      /**< [batch+1]: sequence b's new tokens are rows new_indptr[b]
                                       .. new_indptr[b+1]-1 of k_new/v_new (a run's q_indptr) */
  const int32_t *kv_lens;         /**< [batch] cache lengths AFTER the append (a run's kv_lens):
                                       new token t of b goes to cache index L_b - n_b + t */
  const int32_t *block_table;     /**< [batch][block_table_stride] */
  int64_t block_table_stride;     /**< >= max_pages_per_seq */
  const int32_t *positions;       /**< [rows] position of each new token (read only to rotate K
                                       into a rotated cache); NULL = its cache index */
  void *k_pages;
  void *v_pages;
  const float *k_scale;
  const float *v_scale;
  posattn_tensor k_new;           /**< [rows, kv_heads, head_dim] of the plan's q_dtype */
  posattn_tensor v_new;
  void *workspace;                /**< as in a run (its error record receives violations) */
  size_t workspace_bytes;
} posattn_append_args;

/** Zeroes every field. NULL is a no-op. */
POSATTN_API void posattn_append_args_init(posattn_append_args *args);

/** Writes the new K/V rows into their pages (converted to the cache dtype with one rounding;
 *  K rotated in fp32 first for a rotated cache with ROPE, by the plan's PE). Same host-side and
 *  device-side checking as a run; two sequences writing one (page, slot) is not detected on the
 *  device (the result is then one of the writes). Errors as posattn_plan_run. */
POSATTN_API posattn_status posattn_plan_append(posattn_context *ctx, const posattn_plan *plan,
                                               const posattn_append_args *args);

/** Reads and clears the workspace's error record (synchronous: CUDA waits for the context's
 *  stream). SUCCESS when no run or append since the last check found a bad index; otherwise the
 *  status of the first violation (BAD_SEQLENS for q_indptr / kv_lens, INVALID_ARGUMENT for a
 *  page index, BAD_POSITIONS for a position) with a message naming the sequence, the array
 *  element and its value, e.g. "run: sequence 3: block_table[3][7] = 9001 is outside
 *  [0, num_pages = 512)". Not for the hot path. */
POSATTN_API posattn_status posattn_plan_check(posattn_context *ctx, const posattn_plan *plan,
                                              void *workspace, size_t workspace_bytes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POSATTN_H */
