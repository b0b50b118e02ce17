// gpu_ref64.cu -- the fp64 attention reference on a GPU (kernels/ref64/gpu_ref64.h).
//
// Per (sequence, kv head): K' (RoPE/xPos in fp64) and V widened to fp64 once; then per chunk of
// query rows: Q' for the group's query heads, S = Q' K'^T (one strided-batched cublasDgemm over the
// heads, K' shared), a row kernel that turns S into normalised P in place (scale, softcap, bias,
// mask, max, exp, sum) and writes the LSE, O = P V (strided-batched cublasDgemm), and a 2-D copy of
// O into the caller's token-ordered output. Everything is fp64; the only departures from REF are
// the order of the sums inside the GEMMs and, for xPos, the decay split into a query and a key
// factor around the chunk's last query position (REF weights each pair by the decay of the
// difference; the split is the same product, rounded differently, while both factors stay finite,
// which is checked).
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "gpu_ref64.h"
#include "internal.h"

namespace {

// ---- the bias, shared by host and device ----------------------------------------------------
// A port of pa_pe_bias_eval (host/pe_bias.c, pe_fire.c) over parameters widened to fp64 and
// staged in one array; pa_gpu_ref64_bias_host runs this same code on the host so that it can be
// checked against posattn_pe_bias without a GPU.
struct Bias {
  int kind = POSATTN_PE_NONE;
  int hq = 1;
  const double *slope = nullptr;      // ALiBi [hq]
  const double *ka = nullptr;         // KERPLE a [hq]
  const double *kp = nullptr;         // KERPLE p [hq]
  const double *t5 = nullptr;         // T5 [num_buckets][hq]
  int nb = 0, maxd = 0, bidir = 0;    // T5
  const double *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr;  // FIRE
  int width = 0;
  double c = 0, L = 0, eps = 0;
};

__host__ __device__ int t5_bucket(long long rel, int bidir, int num_buckets, int max_distance) {
  int nb = num_buckets, bucket = 0;
  unsigned long long n;
  if (bidir) {
    nb /= 2;
    if (rel > 0) bucket = nb;
    n = rel < 0 ? 0ull - (unsigned long long)rel : (unsigned long long)rel;
  } else {
    n = rel < 0 ? 0ull - (unsigned long long)rel : 0ull;
  }
  const int max_exact = nb / 2;
  if (n < (unsigned long long)max_exact) return bucket + (int)n;
  if (n >= (unsigned long long)max_distance || max_exact == nb - 1) return bucket + nb - 1;
  // the 1e-9 slack of the host rule absorbs the last-bit differences of device log()
  const double v = log((double)n / max_exact) / log((double)max_distance / max_exact) *
                   (double)(nb - max_exact);
  int k = (int)floor(v + 1e-9);
  if (k > nb - 1 - max_exact) k = nb - 1 - max_exact;
  return bucket + max_exact + k;
}

__host__ __device__ double bias_eval(const Bias &b, int h, long long pq, long long pk) {
  const double dist = fabs((double)pq - (double)pk);
  switch (b.kind) {
    case POSATTN_PE_ALIBI: return -b.slope[h] * dist;
    case POSATTN_PE_FIRE: {
      const double ac = fabs(b.c), norm = (double)pq > b.L ? (double)pq : b.L;
      const double x = log1p(ac * dist) / (log1p(ac * norm) + b.eps);
      double y = b.b2[h];
      for (int k = 0; k < b.width; ++k) {
        const double hidden = b.w1[k] * x + b.b1[k];
        if (hidden > 0) y += b.w2[(long long)h * b.width + k] * hidden;
      }
      return y;
    }
    case POSATTN_PE_T5:
      return b.t5[(long long)t5_bucket(pk - pq, b.bidir, b.nb, b.maxd) * b.hq + h];
    case POSATTN_PE_KERPLE_LOG: return -b.kp[h] * log1p(b.ka[h] * dist);
    case POSATTN_PE_KERPLE_POWER: return dist == 0 ? 0.0 : -b.ka[h] * pow(dist, b.kp[h]);
    default: return 0.0;
  }
}

// The parameters of pe's bias widened to fp64 into `store`; bias_at() points a Bias into a copy
// of `store` at `base` (the host vector itself, or its device image).
struct BiasLayout {
  size_t slope = 0, ka = 0, kp = 0, t5 = 0, w1 = 0, b1 = 0, w2 = 0, b2 = 0;
};

BiasLayout bias_stage(const posattn_pe *pe, int32_t hq, std::vector<double> &store) {
  BiasLayout L;
  auto put = [&store](size_t n, auto get) {
    const size_t at = store.size();
    for (size_t i = 0; i < n; ++i) store.push_back(get(i));
    return at;
  };
  switch (pe->kind) {
    case POSATTN_PE_ALIBI:
      L.slope = put(size_t(hq), [&](size_t h) {
        return pe->alibi.slopes ? double(pe->alibi.slopes[h]) : pa_alibi_slope(hq, int32_t(h));
      });
      break;
    case POSATTN_PE_KERPLE_LOG:
    case POSATTN_PE_KERPLE_POWER:
      L.ka = put(size_t(hq), [&](size_t h) { return double(pe->kerple.a[h]); });
      L.kp = put(size_t(hq), [&](size_t h) { return double(pe->kerple.p[h]); });
      break;
    case POSATTN_PE_T5:
      L.t5 = put(size_t(pe->t5.num_buckets) * size_t(hq),
                 [&](size_t i) { return double(pe->t5.table[i]); });
      break;
    case POSATTN_PE_FIRE: {
      const size_t w = size_t(pe->fire.mlp_width);
      L.w1 = put(w, [&](size_t i) { return double(pe->fire.w1[i]); });
      L.b1 = put(w, [&](size_t i) { return double(pe->fire.b1[i]); });
      L.w2 = put(w * size_t(hq), [&](size_t i) { return double(pe->fire.w2[i]); });
      L.b2 = put(size_t(hq), [&](size_t i) { return double(pe->fire.b2[i]); });
      break;
    }
    default: break;
  }
  return L;
}

Bias bias_at(const posattn_pe *pe, int32_t hq, const BiasLayout &L, const double *base) {
  Bias b;
  b.kind = pe->kind;
  b.hq = hq;
  b.slope = base + L.slope;
  b.ka = base + L.ka;
  b.kp = base + L.kp;
  b.t5 = base + L.t5;
  b.nb = pe->t5.num_buckets;
  b.maxd = pe->t5.max_distance;
  b.bidir = pe->t5.bidirectional;
  b.w1 = base + L.w1;
  b.b1 = base + L.b1;
  b.w2 = base + L.w2;
  b.b2 = base + L.b2;
  b.width = pe->fire.mlp_width;
  b.c = pe->fire.c;
  b.L = pe->fire.L;
  b.eps = pe->fire.eps;
  return b;
}

// ---- device kernels --------------------------------------------------------------------------

__device__ double load_elem(const void *base, int dtype, long long idx) {
  if (dtype == POSATTN_DTYPE_F32) return double(static_cast<const float *>(base)[idx]);
  const unsigned short u = static_cast<const unsigned short *>(base)[idx];
  if (dtype == POSATTN_DTYPE_F16) return double(__half2float(__ushort_as_half(u)));
  return double(__uint_as_float(unsigned(u) << 16));  // bf16: the high half of an fp32
}

// What rotates a head vector: RoPE's table and factor, xPos's log decay per pair.
struct Rot {
  int rotary_dim = 0;  // 0 = no rotation
  int gptj = 0;
  double attn_factor = 1;
  const double *inv_freq = nullptr;  // [rotary_dim/2], device
  const double *xpos_ld = nullptr;   // [rotary_dim/2], device; nullptr = not xPos
};

// One head vector's pair t (t < d/2) from `src` (element offset `off`) into dst[d] (fp64): pairs
// below rotary_dim/2 rotated at pos exactly as pa_rope_rotate does (angle = hi + lo via fma),
// xPos pairs also scaled by exp(ld * xpos_delta); the tail copied in pairs of features.
__device__ void prep_pair(const Rot &r, const void *src, int dtype, long long off, int t,
                          long long pos, double xpos_delta, double *dst) {
  const int half = r.rotary_dim / 2;
  if (t >= half) {
    const int f = r.rotary_dim + 2 * (t - half);
    dst[f] = load_elem(src, dtype, off + f);
    dst[f + 1] = load_elem(src, dtype, off + f + 1);
    return;
  }
  const int a = r.gptj ? 2 * t : t, b = r.gptj ? 2 * t + 1 : t + half;
  const double p = double(pos);
  const double hi = p * r.inv_freq[t], lo = fma(p, r.inv_freq[t], -hi);
  const double ch = cos(hi), sh = sin(hi), cl = cos(lo), sl = sin(lo);
  double c = (ch * cl - sh * sl) * r.attn_factor, s = (sh * cl + ch * sl) * r.attn_factor;
  if (r.xpos_ld) {
    const double z = exp(r.xpos_ld[t] * xpos_delta);
    c *= z;
    s *= z;
  }
  const double xa = load_elem(src, dtype, off + a), xb = load_elem(src, dtype, off + b);
  dst[a] = xa * c - xb * s;
  dst[b] = xa * s + xb * c;
}

// K'[j] and V[j] for the n keys of one (sequence, kv head): token j at element offset
// base + j*stride_seq, position pos[j]. xPos keys get the decay exp(ld*(center - pk)).
__global__ void prep_kv(Rot r, const void *k, const void *v, int dtype, long long kbase,
                        long long kstride, long long vbase, long long vstride, const long long *pos,
                        int n, int d, double center, double *kout, double *vout) {
  const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const int pairs = d / 2;
  if (idx >= (long long)n * pairs) return;
  const int j = int(idx / pairs), t = int(idx % pairs);
  prep_pair(r, k, dtype, kbase + j * kstride, t, pos[j], center - double(pos[j]),
            kout + (long long)j * d);
  if (vout) {
    const long long vo = vbase + j * vstride;
    vout[(long long)j * d + 2 * t] = load_elem(v, dtype, vo + 2 * t);
    vout[(long long)j * d + 2 * t + 1] = load_elem(v, dtype, vo + 2 * t + 1);
  }
}

// Q'[hl][r] for the chunk's m rows (token i0 + r) and the group's heads; head hl's first element
// at qbase[hl] (device array), rows stride_seq apart. xPos queries get exp(ld*(pq - center)).
__global__ void prep_q(Rot r, const void *q, int dtype, const long long *qbase, long long stride,
                       const long long *pos, int i0, int m, int group, int d, double center,
                       double *qout) {
  const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const int pairs = d / 2;
  if (idx >= (long long)group * m * pairs) return;
  const int t = int(idx % pairs);
  const long long hr = idx / pairs;
  const int hl = int(hr / m), row = int(hr % m);
  const long long i = i0 + row;
  prep_pair(r, q, dtype, qbase[hl] + i * stride, t, pos[i], double(pos[i]) - center,
            qout + hr * d);
}

// The header's mask for query i and key j of one sequence (doc: that sequence's doc ids or null).
struct Mask {
  int causal, wl, wr, anchors;
  const int *doc;
};

__device__ bool visible(const Mask &mk, long long i, long long j, int lq, int lk) {
  const long long ii = i + lk - lq;
  if (mk.causal && j > ii) return false;
  if (mk.wl >= 0 && j < ii - mk.wl) return false;
  if (mk.wr >= 0 && j > ii + mk.wr) return false;
  if (mk.doc && j >= mk.anchors && mk.doc[i] != mk.doc[j]) return false;
  return true;
}

constexpr int kRowThreads = 256;

__device__ double block_reduce(double x, bool is_max, double *sh) {
  for (int o = 16; o > 0; o /= 2) {
    const double y = __shfl_xor_sync(0xffffffffu, x, o);
    x = is_max ? fmax(x, y) : x + y;
  }
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // sh is reused by consecutive reductions
  if (lane == 0) sh[w] = x;
  __syncthreads();
  x = is_max ? -INFINITY : 0.0;
  for (int i = 0; i < kRowThreads / 32; ++i) x = is_max ? fmax(x, sh[i]) : x + sh[i];
  return x;
}

// One block per (head of the group, row of the chunk): S row -> normalised P in place, and lse.
// sinks (NULL = none): [hq] sink logits, one more term of the sum without a value (posattn.h).
__global__ void softmax_rows(double *S, int m, int lk, int lq, int i0, int h0, double scale,
                             double softcap, Bias bias, Mask mk, const long long *qpos,
                             const long long *kpos, const double *sinks, double *lse,
                             long long lse_base, long long lse_hstride) {
  __shared__ double sh[kRowThreads / 32];
  const int hl = blockIdx.x / m, row = blockIdx.x % m, h = h0 + hl;
  const long long i = i0 + row;
  double *s = S + (long long)blockIdx.x * lk;
  const long long pq = qpos[i];
  const double sink = sinks ? sinks[h] : -INFINITY;
  double mx = sink;
  for (int j = threadIdx.x; j < lk; j += kRowThreads) {
    double x = -INFINITY;
    if (visible(mk, i, j, lq, lk)) {
      x = scale * s[j];
      if (softcap > 0) x = softcap * tanh(x / softcap);
      x += bias_eval(bias, h, pq, kpos[j]);
    }
    s[j] = x;
    mx = fmax(mx, x);
  }
  mx = block_reduce(mx, true, sh);
  double sum = 0;
  for (int j = threadIdx.x; j < lk; j += kRowThreads) {
    const double e = mx == -INFINITY ? 0.0 : exp(s[j] - mx);  // exp(-inf) = 0 for masked keys
    s[j] = e;
    sum += e;
  }
  sum = block_reduce(sum, false, sh);
  if (sink > -INFINITY) sum += exp(sink - mx);  // mx >= sink: finite
  for (int j = threadIdx.x; j < lk; j += kRowThreads) s[j] = sum > 0 ? s[j] / sum : 0.0;
  if (threadIdx.x == 0 && lse) lse[lse_base + h * lse_hstride + i] = sum > 0 ? mx + log(sum) : -INFINITY;
}

// ---- host side -------------------------------------------------------------------------------

posattn_status cuda_err(char *msg, size_t msz, const char *what, cudaError_t e) {
  return pa_fail(msg, msz,
                 e == cudaErrorMemoryAllocation ? POSATTN_STATUS_ALLOC_FAILED
                 : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
                     ? POSATTN_STATUS_NO_DEVICE
                     : POSATTN_STATUS_DEVICE_ERROR,
                 "GPU fp64 reference: %s: %s (%s)", what, cudaGetErrorString(e),
                 cudaGetErrorName(e));
}

posattn_status cublas_err(char *msg, size_t msz, const char *what, cublasStatus_t s) {
  return pa_fail(msg, msz,
                 s == CUBLAS_STATUS_ALLOC_FAILED ? POSATTN_STATUS_ALLOC_FAILED
                                                 : POSATTN_STATUS_DEVICE_ERROR,
                 "GPU fp64 reference: %s: %s (%s)", what, cublasGetStatusString(s),
                 cublasGetStatusName(s));
}

#define RC(expr, what)                                            \
  do {                                                            \
    cudaError_t e_ = (expr);                                      \
    if (e_ != cudaSuccess) return cuda_err(msg, msz, what, e_);   \
  } while (0)
#define RB(expr, what)                                                     \
  do {                                                                     \
    cublasStatus_t s_ = (expr);                                            \
    if (s_ != CUBLAS_STATUS_SUCCESS) return cublas_err(msg, msz, what, s_); \
  } while (0)

// Device allocations of one call, freed together.
struct DevArena {
  std::vector<void *> ptrs;
  ~DevArena() {
    for (void *p : ptrs) cudaFree(p);
  }
  template <class T>
  cudaError_t alloc(T **p, size_t n) {
    void *v = nullptr;
    const cudaError_t e = cudaMalloc(&v, n > 0 ? n * sizeof(T) : 1);
    if (e == cudaSuccess) ptrs.push_back(v);
    *p = static_cast<T *>(v);
    return e;
  }
  template <class T>
  cudaError_t upload(T **p, const std::vector<T> &h) {
    cudaError_t e = alloc(p, h.size());
    if (e == cudaSuccess && !h.empty())
      e = cudaMemcpy(*p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
    return e;
  }
};

struct Handle {
  cublasHandle_t h = nullptr;
  ~Handle() {
    if (h) cublasDestroy(h);
  }
};

// The caller's device stays current after the call.
struct DeviceScope {
  int prev = -1;
  ~DeviceScope() {
    if (prev >= 0) cudaSetDevice(prev);
  }
};

unsigned blocks_for(long long n, int threads) { return unsigned((n + threads - 1) / threads); }

posattn_status forward(const posattn_attention_desc *desc, const posattn_tensor *q,
                       const posattn_tensor *k, const posattn_tensor *v, double *out, double *lse,
                       int device, char *msg, size_t msz) {
  if (!q || !k || !v || !out)
    return pa_fail(msg, msz, POSATTN_STATUS_NULL_POINTER, "q, k, v and out must not be NULL");
  // out is fp64, which no posattn_dtype names: validate it as the fp32 tensor that covers the
  // first half of each fp64 head vector, which is enough for the overlap rules.
  pa_problem p;
  {
    posattn_tensor o;
    posattn_tensor_init_contiguous(&o, out, POSATTN_DTYPE_F32, desc ? desc->q_len : 0,
                                   desc ? desc->q_heads : 0, desc ? 2 * desc->head_dim : 0);
    PA_TRY(pa_validate(msg, msz, desc, q->dtype, POSATTN_DTYPE_F32, q, k, v, &o, nullptr, &p));
  }
  const posattn_pe *pe = &desc->pe;
  const int32_t d = p.d, group = p.group;
  const bool rotary = pe->kind == POSATTN_PE_ROPE || pe->kind == POSATTN_PE_XPOS;
  const bool xpos = pe->kind == POSATTN_PE_XPOS;

  std::vector<double> params;  // inv_freq, xPos log decay, then the bias parameters
  Rot rot;
  if (rotary) {
    const int64_t max_pos = p.max_q_pos > p.max_kv_pos ? p.max_q_pos : p.max_kv_pos;
    const int32_t seq_len = max_pos + 1 > INT32_MAX ? INT32_MAX : int32_t(max_pos + 1);
    params.resize(size_t(p.rotary_dim / 2));
    PA_TRY(posattn_pe_rope_inv_freq(&pe->rope, d, seq_len, params.data(), &rot.attn_factor, msg,
                                    msz));
    if (xpos)
      for (int32_t i = 0; i < p.rotary_dim / 2; ++i)
        params.push_back(pa_xpos_log_decay(&pe->xpos, p.rotary_dim, i));
    rot.rotary_dim = p.rotary_dim;
    rot.gptj = pe->rope.layout == POSATTN_ROPE_GPTJ;
  }
  const size_t bias_at_ofs = params.size();
  const BiasLayout bl = bias_stage(pe, p.hq, params);
  // the strongest decay per position, for the xPos overflow rule
  const double ld_max = xpos ? fabs(pa_xpos_log_decay(&pe->xpos, p.rotary_dim, 0)) : 0.0;

  // positions of every token (header defaults applied), and doc ids
  std::vector<long long> qpos(size_t(p.total_q)), kpos(size_t(p.total_kv));
  for (int32_t b = 0; b < p.batch; ++b) {
    for (int32_t i = 0; i < pa_q_seqlen(&p, b); ++i)
      qpos[size_t(pa_q_start(&p, b) + i)] = pa_q_pos(&p, b, i);
    for (int32_t j = 0; j < pa_kv_seqlen(&p, b); ++j)
      kpos[size_t(pa_kv_start(&p, b) + j)] = pa_kv_pos(&p, b, j);
  }
  std::vector<int> docs(desc->doc_ids ? size_t(p.total_q) : 0);
  for (size_t t = 0; t < docs.size(); ++t) docs[t] = desc->doc_ids[t];
  std::vector<double> sinks(desc->sink_logits ? size_t(p.hq) : 0);
  for (size_t h = 0; h < sinks.size(); ++h) sinks[h] = desc->sink_logits[h];

  DeviceScope scope;
  RC(cudaGetDevice(&scope.prev), "cudaGetDevice");
  RC(cudaSetDevice(device), "cudaSetDevice");
  DevArena A;
  double *d_params, *d_k, *d_v, *d_q, *d_s, *d_o;
  long long *d_qpos, *d_kpos, *d_qbase;
  int *d_docs = nullptr;
  RC(A.upload(&d_params, params), "staging the PE tables");
  RC(A.upload(&d_qpos, qpos), "staging the query positions");
  RC(A.upload(&d_kpos, kpos), "staging the key positions");
  if (!docs.empty()) RC(A.upload(&d_docs, docs), "staging the doc ids");
  double *d_sinks = nullptr;
  if (!sinks.empty()) RC(A.upload(&d_sinks, sinks), "staging the sink logits");
  RC(A.alloc(&d_qbase, size_t(group)), "cudaMalloc");
  if (rotary) {
    rot.inv_freq = d_params;
    if (xpos) rot.xpos_ld = d_params + p.rotary_dim / 2;
  }
  const Bias bias = bias_at(pe, p.hq, bl, d_params + bias_at_ofs);
  const size_t kv_elems = size_t(p.kv_len) * size_t(d);
  RC(A.alloc(&d_k, kv_elems), "cudaMalloc of K' (fp64)");
  RC(A.alloc(&d_v, kv_elems), "cudaMalloc of V (fp64)");

  // chunk rows: the logits S [group][m][kv_len] take at most half the free memory
  size_t free_b = 0, total_b = 0;
  RC(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  const size_t per_row = size_t(group) * (size_t(p.kv_len) + 2 * size_t(d)) * sizeof(double);
  size_t m_max = (free_b / 2) / per_row;
  if (m_max > size_t(p.q_len)) m_max = size_t(p.q_len);
  if (m_max < 1)
    return pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED,
                   "GPU fp64 reference: one query row of %d keys x %d heads needs %zu bytes, "
                   "%zu are free", int(p.kv_len), int(group), per_row, free_b);
  RC(A.alloc(&d_s, m_max * size_t(group) * size_t(p.kv_len)), "cudaMalloc of the logits");
  RC(A.alloc(&d_q, m_max * size_t(group) * size_t(d)), "cudaMalloc of Q'");
  RC(A.alloc(&d_o, m_max * size_t(group) * size_t(d)), "cudaMalloc of O");

  Handle H;
  RB(cublasCreate(&H.h), "cublasCreate");
  const double one = 1.0, zero = 0.0;
  const int T = 256;
  const bool dense_lse = !p.varlen;
  for (int32_t b = 0; b < p.batch; ++b) {
    const int32_t lq = pa_q_seqlen(&p, b), lk = pa_kv_seqlen(&p, b);
    if (lq == 0) continue;
    const int64_t qs = pa_q_start(&p, b), ks = pa_kv_start(&p, b);
    Mask mk{desc->causal, desc->window_left, desc->window_right, desc->num_anchor_tokens,
            d_docs ? d_docs + qs : nullptr};
    long long kmin = 0, kmax = 0;
    for (int32_t j = 0; j < lk; ++j) {
      const long long x = kpos[size_t(ks + j)];
      kmin = j == 0 || x < kmin ? x : kmin;
      kmax = j == 0 || x > kmax ? x : kmax;
    }
    for (int32_t g = 0; g < p.hkv; ++g) {
      std::vector<long long> qbase(static_cast<size_t>(group));
      for (int32_t hl = 0; hl < group; ++hl)
        qbase[size_t(hl)] = pa_q_offset(&p, q, b, 0, g * group + hl);
      RC(cudaMemcpy(d_qbase, qbase.data(), qbase.size() * sizeof(long long), cudaMemcpyHostToDevice),
         "staging the query offsets");
      for (int32_t i0 = 0; i0 < lq; i0 += int32_t(m_max)) {
        const int32_t m = lq - i0 < int32_t(m_max) ? lq - i0 : int32_t(m_max);
        // xPos: decay split around the chunk's last query position c, exp(ld*(pq-c))*exp(ld*(c-pk))
        double center = 0;
        if (xpos) {
          long long qmin = qpos[size_t(qs + i0)], qmax = qmin;
          for (int32_t r = 0; r < m; ++r) {
            const long long x = qpos[size_t(qs + i0 + r)];
            qmin = x < qmin ? x : qmin;
            qmax = x > qmax ? x : qmax;
          }
          center = double(qmax);
          const double span = fmax(double(qmax - qmin), fmax(fabs(center - double(kmin)),
                                                             fabs(double(kmax) - center)));
          if (ld_max * span > 700.0)
            return pa_fail(msg, msz, POSATTN_STATUS_NOT_SUPPORTED,
                           "GPU fp64 reference: xPos over a span of %.0f positions (sequence %d) "
                           "would overflow the fp64 split of the decay (max |log zeta|/scale_base "
                           "* span must be <= 700)", span, int(b));
        }
        if (lk == 0) {
          RC(cudaMemset(d_o, 0, size_t(group) * size_t(m) * size_t(d) * sizeof(double)), "cudaMemset");
        } else {
          if (i0 == 0 || xpos) {  // K' depends on the chunk only through xPos's centre
            prep_kv<<<blocks_for((long long)lk * (d / 2), T), T>>>(
                rot, k->data, v->data, p.in_dtype, pa_kv_offset(&p, k, b, 0, g), k->stride_seq,
                pa_kv_offset(&p, v, b, 0, g), v->stride_seq, d_kpos + ks, lk, d, center, d_k,
                i0 == 0 ? d_v : nullptr);
            RC(cudaGetLastError(), "prep_kv launch");
          }
          prep_q<<<blocks_for((long long)group * m * (d / 2), T), T>>>(
              rot, q->data, p.in_dtype, d_qbase, q->stride_seq, d_qpos + qs, i0, m, group, d,
              center, d_q);
          RC(cudaGetLastError(), "prep_q launch");
          // S_h (row-major m x lk) = Q'_h K'^T, i.e. column-major lk x m = K'(d x lk)^T Q'_h(d x m)
          RB(cublasDgemmStridedBatched(H.h, CUBLAS_OP_T, CUBLAS_OP_N, lk, m, d, &one, d_k, d, 0,
                                       d_q, d, (long long)m * d, &zero, d_s, lk, (long long)m * lk,
                                       group),
             "cublasDgemmStridedBatched (S = Q K^T)");
        }
        softmax_rows<<<unsigned(group * m), kRowThreads>>>(
            d_s, m, lk, lq, i0, g * group, p.scale, double(desc->softcap), bias, mk, d_qpos + qs,
            d_kpos + ks, d_sinks, lse, dense_lse ? (long long)b * p.hq * p.q_len : qs,
            dense_lse ? p.q_len : p.total_q);
        RC(cudaGetLastError(), "softmax_rows launch");
        if (lk > 0)  // O_h (row-major m x d) = P_h V, i.e. column-major d x m = V(d x lk) P_h(lk x m)
          RB(cublasDgemmStridedBatched(H.h, CUBLAS_OP_N, CUBLAS_OP_N, d, m, lk, &one, d_v, d, 0,
                                       d_s, lk, (long long)m * lk, &zero, d_o, d, (long long)m * d,
                                       group),
             "cublasDgemmStridedBatched (O = P V)");
        for (int32_t hl = 0; hl < group; ++hl) {
          double *dst = out + ((qs + i0) * p.hq + g * group + hl) * d;
          RC(cudaMemcpy2D(dst, size_t(p.hq) * d * sizeof(double), d_o + size_t(hl) * m * d,
                          size_t(d) * sizeof(double), size_t(d) * sizeof(double), size_t(m),
                          cudaMemcpyDeviceToDevice),
             "copying O to out");
        }
      }
    }
  }
  RC(cudaDeviceSynchronize(), "the reference's kernels");
  return POSATTN_STATUS_SUCCESS;
}

}  // namespace

extern "C" posattn_status pa_gpu_ref64_forward(const posattn_attention_desc *desc,
                                               const posattn_tensor *q, const posattn_tensor *k,
                                               const posattn_tensor *v, double *out, double *lse,
                                               int device, char *msg, size_t msg_size) {
  try {
    return forward(desc, q, k, v, out, lse, device, msg, msg_size);
  } catch (const std::bad_alloc &) {
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED,
                   "GPU fp64 reference: out of host memory");
  }
}

extern "C" posattn_status pa_gpu_ref64_row(void *user, const posattn_pe *pe, const double *q,
                                           int32_t pq, const double *K, const double *V,
                                           const int32_t *pk, int32_t n, int32_t d, double *out,
                                           double *lse, char *msg, size_t msz) {
  (void)user;
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = desc.q_heads = desc.kv_heads = 1;
  desc.head_dim = d;
  desc.q_len = 1;
  desc.kv_len = n;
  desc.q_positions = &pq;
  desc.kv_positions = pk;
  desc.pe = *pe;
  try {
    // fp32 carries the study's (bf16- or fp32-valued) inputs exactly
    std::vector<float> hq(q, q + d), hk(K, K + size_t(n) * d), hv(V, V + size_t(n) * d);
    DevArena A;
    float *dq, *dk, *dv;
    double *dout, *dlse;
    RC(A.upload(&dq, hq), "uploading q");
    RC(A.upload(&dk, hk), "uploading K");
    RC(A.upload(&dv, hv), "uploading V");
    RC(A.alloc(&dout, size_t(d)), "cudaMalloc");
    RC(A.alloc(&dlse, 1), "cudaMalloc");
    posattn_tensor tq, tk, tv;
    posattn_tensor_init_contiguous(&tq, dq, POSATTN_DTYPE_F32, 1, 1, d);
    posattn_tensor_init_contiguous(&tk, dk, POSATTN_DTYPE_F32, n, 1, d);
    posattn_tensor_init_contiguous(&tv, dv, POSATTN_DTYPE_F32, n, 1, d);
    PA_TRY(forward(&desc, &tq, &tk, &tv, dout, dlse, 0, msg, msz));
    RC(cudaMemcpy(out, dout, size_t(d) * sizeof(double), cudaMemcpyDeviceToHost), "downloading out");
    RC(cudaMemcpy(lse, dlse, sizeof(double), cudaMemcpyDeviceToHost), "downloading lse");
  } catch (const std::bad_alloc &) {
    return pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "GPU fp64 reference: out of host memory");
  }
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_gpu_ref64_bias_host(const posattn_pe *pe, int32_t q_heads,
                                                 int32_t head, int64_t pq, int64_t pk,
                                                 double *out) {
  try {
    std::vector<double> store;
    const BiasLayout L = bias_stage(pe, q_heads, store);
    *out = bias_eval(bias_at(pe, q_heads, L, store.data()), head, pq, pk);
  } catch (const std::bad_alloc &) {
    return pa_fail(nullptr, 0, POSATTN_STATUS_ALLOC_FAILED, "GPU fp64 reference: bias staging");
  }
  return POSATTN_STATUS_SUCCESS;
}
