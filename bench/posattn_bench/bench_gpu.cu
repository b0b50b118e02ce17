// The GPU half of posattn-bench (bench_gpu.h): device probe, event timing with an L2 flush before
// every repetition, measured ceilings, posattn's CUDA backend, and the cuBLAS unfused baseline.
//
// Timing (testing.md §2.7): one stream; warm-up launches for warmup_seconds (at least two); then
// per repetition: cudaMemsetAsync over 2x the L2 size, event record, ONE launch of the contender,
// event record, synchronise; repeat until pb_should_stop (spread < target after min samples, or
// the time bound). The flush is outside the timed interval.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bench_gpu.h"

namespace {

bool ok(cudaError_t e, const char *what, char *msg, size_t n) {
  if (e == cudaSuccess) return true;
  snprintf(msg, n, "%s: %s", what, cudaGetErrorString(e));
  return false;
}
bool ok(cublasStatus_t e, const char *what, char *msg, size_t n) {
  if (e == CUBLAS_STATUS_SUCCESS) return true;
  snprintf(msg, n, "%s: cuBLAS status %d", what, int(e));
  return false;
}
#define CK(x)                                              \
  do {                                                     \
    if (!ok((x), #x, msg, msg_size)) return PB_RUN_ERROR;  \
  } while (0)

// Owners that release on every return path.
struct DevBuf {
  void *p = nullptr;
  ~DevBuf() { if (p) cudaFree(p); }
};
struct Stream {
  cudaStream_t s = nullptr;
  ~Stream() { if (s) cudaStreamDestroy(s); }
};
struct Events {
  cudaEvent_t a = nullptr, b = nullptr;
  ~Events() {
    if (a) cudaEventDestroy(a);
    if (b) cudaEventDestroy(b);
  }
};
struct Blas {
  cublasHandle_t h = nullptr;
  ~Blas() { if (h) cublasDestroy(h); }
};
struct Ctx {
  posattn_context *c = nullptr;
  ~Ctx() { posattn_context_destroy(c); }
};

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// The shared timing rig: a stream, two events and the flush buffer.
struct Rig {
  Stream stream;
  Events ev;
  DevBuf flush;
  size_t flush_bytes = 0;
};

int rig_init(Rig &r, char *msg, size_t msg_size) {
  int dev = 0, l2 = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  r.flush_bytes = 2 * size_t(l2 > 0 ? l2 : (64 << 20));
  CK(cudaMalloc(&r.flush.p, r.flush_bytes));
  CK(cudaStreamCreateWithFlags(&r.stream.s, cudaStreamNonBlocking));
  CK(cudaEventCreate(&r.ev.a));
  CK(cudaEventCreate(&r.ev.b));
  return PB_RUN_OK;
}

// launch(stream, msg, msg_size) -> PB_RUN_*; enqueues one run of the contender.
template <class F>
int time_loop(Rig &r, const pb_time_opts *o, F &&launch, pb_stats *st, char *msg,
              size_t msg_size) {
  cudaStream_t s = r.stream.s;
  const double w0 = now_s();
  for (int i = 0; i < 2 || now_s() - w0 < o->warmup_seconds; ++i) {
    CK(cudaMemsetAsync(r.flush.p, i & 0xff, r.flush_bytes, s));
    const int rc = launch(s, msg, msg_size);
    if (rc != PB_RUN_OK) return rc;
    CK(cudaStreamSynchronize(s));
  }
  std::vector<double> t;
  t.reserve(size_t(o->max_samples));
  int conv = 0;
  const double t0 = now_s();
  for (;;) {
    CK(cudaMemsetAsync(r.flush.p, int(t.size()) & 0xff, r.flush_bytes, s));
    CK(cudaEventRecord(r.ev.a, s));
    const int rc = launch(s, msg, msg_size);
    if (rc != PB_RUN_OK) return rc;
    CK(cudaEventRecord(r.ev.b, s));
    CK(cudaEventSynchronize(r.ev.b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, r.ev.a, r.ev.b));
    t.push_back(double(ms));
    if (pb_should_stop(t.data(), int(t.size()), now_s() - t0, o, &conv)) break;
  }
  pb_stats_compute(t.data(), int(t.size()), st);
  st->converged = conv;
  return PB_RUN_OK;
}

// ---- element types ----------------------------------------------------------------------------
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

cudaDataType_t cuda_type(posattn_dtype d) {
  return d == POSATTN_DTYPE_BF16 ? CUDA_R_16BF : d == POSATTN_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

// Deterministic values in [-1, 1) so that the GEMM ceiling is not measured on zeros.
__global__ void fill_bf16(__nv_bfloat16 *p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u;
    h ^= h >> 16;
    p[i] = __float2bfloat16_rn(float(h & 0xffff) / 32768.0f - 1.0f);
  }
}

// ---- the unfused baseline's kernels -------------------------------------------------------------

// RoPE (NeoX pairs (c, c + rd/2)) from a cos/sin cache [position][rd/2] precomputed on the host,
// as users of unfused attention do; positions i + Lk - Lq for queries and j for keys.
template <class T>
__global__ void rope_neox(const T *x, T *y, int64_t tokens, int len, int pos_offset, int heads,
                          int d, int rd, const float *cos_t, const float *sin_t) {
  const int half = rd / 2;
  const int64_t n = tokens * heads * int64_t(d);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int c = int(e % d);
    const int64_t tok = e / (int64_t(d) * heads);
    const int64_t base = e - c;
    if (c >= rd) {
      y[e] = x[e];
      continue;
    }
    const int pair = c < half ? c : c - half;
    const int64_t t = int64_t(int(tok % len) + pos_offset) * half + pair;
    const float cs = cos_t[t], sn = sin_t[t];
    const float a = to_f(x[base + pair]), b = to_f(x[base + pair + half]);
    y[e] = from_f<T>(c < half ? a * cs - b * sn : b * cs + a * sn);
  }
}

struct SoftmaxArgs {
  const float *s;       // scores [B*Hq][Lq][Lk], fp32, unscaled q.k
  int lq, lk, hq;
  float scale, softcap;
  int causal, wl, wr;
  const int32_t *doc;   // [B][Lq] or null
  int anchors;
  const float *slopes;  // ALiBi [Hq] or null
};

__device__ __forceinline__ float logit(const SoftmaxArgs &a, const float *srow, int h, int b,
                                       int i, int j) {
  const int ip = i + a.lk - a.lq;
  if (a.causal && j > ip) return -INFINITY;
  if (a.wl >= 0 && j < ip - a.wl) return -INFINITY;
  if (a.wr >= 0 && j > ip + a.wr) return -INFINITY;
  if (a.doc && j >= a.anchors && a.doc[int64_t(b) * a.lq + i] != a.doc[int64_t(b) * a.lq + j])
    return -INFINITY;
  float x = srow[j] * a.scale;
  if (a.softcap > 0) x = a.softcap * tanhf(x / a.softcap);
  if (a.slopes) x -= a.slopes[h] * fabsf(float(ip - j));
  return x;
}

// (max, sum) pairs combined so that sum is relative to the running max.
__device__ __forceinline__ void combine(float &m, float &s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  if (mm == -INFINITY) return;
  s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
  m = mm;
}

// One block per score row: online max/sum over the row, block reduction, then P written in T.
template <class T>
__global__ void softmax_rows(SoftmaxArgs a, T *p) {
  const int64_t r = blockIdx.x;  // (b*Hq + h)*Lq + i
  const int i = int(r % a.lq);
  const int bh = int(r / a.lq);
  const int h = bh % a.hq, b = bh / a.hq;
  const float *srow = a.s + r * a.lk;
  T *prow = p + r * a.lk;
  float m = -INFINITY, s = 0;
  for (int j = threadIdx.x; j < a.lk; j += blockDim.x) {
    const float x = logit(a, srow, h, b, i, j);
    combine(m, s, x, 1.0f);
  }
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, off);
    combine(m, s, m2, s2);
  }
  __shared__ float sm[32], ss[32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x / 32;
    m = lane < nw ? sm[lane] : -INFINITY;
    s = lane < nw ? ss[lane] : 0;
    for (int off = 16; off > 0; off >>= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
      const float s2 = __shfl_xor_sync(0xffffffffu, s, off);
      combine(m, s, m2, s2);
    }
    if (lane == 0) {
      sm[0] = m;
      ss[0] = s;
    }
  }
  __syncthreads();
  m = sm[0];
  const float inv = ss[0] > 0 ? 1.0f / ss[0] : 0.0f;  // a row with no visible key gives 0
  for (int j = threadIdx.x; j < a.lk; j += blockDim.x) {
    const float x = logit(a, srow, h, b, i, j);
    prow[j] = from_f<T>(x == -INFINITY ? 0.0f : __expf(x - m) * inv);
  }
}

template <class T>
void launch_rope(const void *x, void *y, int64_t tokens, int len, int off, int heads, int d,
                 int rd, const float *cos_t, const float *sin_t, cudaStream_t s) {
  const int64_t n = tokens * heads * int64_t(d);
  const int blocks = int(n / 256 + 1 < 65535 * 16 ? n / 256 + 1 : 65535 * 16);
  rope_neox<T><<<blocks, 256, 0, s>>>(static_cast<const T *>(x), static_cast<T *>(y), tokens, len,
                                      off, heads, d, rd, cos_t, sin_t);
}

template <class T>
void launch_softmax(const SoftmaxArgs &a, void *p, int64_t rows, cudaStream_t s) {
  softmax_rows<T><<<unsigned(rows), 256, 0, s>>>(a, static_cast<T *>(p));
}

}  // namespace

extern "C" int pb_gpu_probe(pb_gpu_info *info, char *why, size_t why_size) {
  memset(info, 0, sizeof *info);
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    snprintf(why, why_size, "no usable CUDA device (%s)",
             e != cudaSuccess ? cudaGetErrorString(e) : "device count 0");
    return 0;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    snprintf(why, why_size, "cudaGetDeviceProperties failed");
    return 0;
  }
  snprintf(info->name, sizeof info->name, "%s", prop.name);
  info->cc_major = prop.major;
  info->cc_minor = prop.minor;
  info->l2_bytes = prop.l2CacheSize;
  info->sms = prop.multiProcessorCount;
  info->mem_gib = double(prop.totalGlobalMem) / double(1 << 30);
  cudaDriverGetVersion(&info->driver_version);
  cudaRuntimeGetVersion(&info->runtime_version);
  cublasHandle_t h;
  if (cublasCreate(&h) == CUBLAS_STATUS_SUCCESS) {
    cublasGetVersion(h, &info->cublas_version);
    cublasDestroy(h);
  }
  return 1;
}

extern "C" int pb_gpu_ceilings(const pb_time_opts *o, pb_stats *copy, double *copy_bytes,
                               pb_stats *gemm, double *gemm_flops, char *msg, size_t msg_size) {
  Rig rig;
  int rc = rig_init(rig, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  // Copy: 512 MiB each way, far beyond L2; bytes = read + write.
  const size_t cb = size_t(512) << 20;
  DevBuf src, dst;
  CK(cudaMalloc(&src.p, cb));
  CK(cudaMalloc(&dst.p, cb));
  CK(cudaMemset(src.p, 1, cb));
  rc = time_loop(rig, o, [&](cudaStream_t s, char *m, size_t mn) {
    return ok(cudaMemcpyAsync(dst.p, src.p, cb, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync",
              m, mn) ? PB_RUN_OK : PB_RUN_ERROR;
  }, copy, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  *copy_bytes = 2.0 * double(cb);
  // GEMM: 8192^3, bf16 in and out, fp32 accumulation: 2*M*N*K FLOPs.
  const int n = 8192;
  const size_t elems = size_t(n) * n;
  DevBuf a, b, c;
  CK(cudaMalloc(&a.p, elems * 2));
  CK(cudaMalloc(&b.p, elems * 2));
  CK(cudaMalloc(&c.p, elems * 2));
  fill_bf16<<<1024, 256, 0, rig.stream.s>>>(static_cast<__nv_bfloat16 *>(a.p), elems);
  fill_bf16<<<1024, 256, 0, rig.stream.s>>>(static_cast<__nv_bfloat16 *>(b.p), elems);
  CK(cudaGetLastError());
  Blas blas;
  CK(cublasCreate(&blas.h));
  CK(cublasSetStream(blas.h, rig.stream.s));
  const float one = 1, zero = 0;
  rc = time_loop(rig, o, [&](cudaStream_t, char *m, size_t mn) {
    return ok(cublasGemmEx(blas.h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.p, CUDA_R_16BF, n,
                           b.p, CUDA_R_16BF, n, &zero, c.p, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT), "cublasGemmEx", m, mn) ? PB_RUN_OK : PB_RUN_ERROR;
  }, gemm, msg, msg_size);
  *gemm_flops = 2.0 * double(n) * n * n;
  return rc;
}

extern "C" int pb_gpu_time_launch(const pb_time_opts *o, pb_gpu_launch_fn launch, void *user,
                                  pb_stats *st, char *msg, size_t msg_size) {
  Rig rig;
  const int rc = rig_init(rig, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  return time_loop(rig, o, [&](cudaStream_t s, char *m, size_t mn) {
    return launch(s, user, m, mn);
  }, st, msg, msg_size);
}

namespace {

// Device copies of q, k, v and an output buffer.
struct DevProblem {
  DevBuf q, k, v, out;
  size_t nq = 0, nkv = 0, es = 0;
};

int upload(const pb_problem *p, DevProblem &d, char *msg, size_t msg_size) {
  const posattn_attention_desc &D = p->desc;
  d.es = posattn_dtype_size(p->dtype);
  d.nq = size_t(p->total_q) * size_t(D.q_heads) * size_t(D.head_dim);
  d.nkv = size_t(p->total_kv) * size_t(D.kv_heads) * size_t(D.head_dim);
  CK(cudaMalloc(&d.q.p, d.nq * d.es));
  CK(cudaMalloc(&d.k.p, d.nkv * d.es));
  CK(cudaMalloc(&d.v.p, d.nkv * d.es));
  CK(cudaMalloc(&d.out.p, d.nq * d.es));
  CK(cudaMemcpy(d.q.p, p->q, d.nq * d.es, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d.k.p, p->k, d.nkv * d.es, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d.v.p, p->v, d.nkv * d.es, cudaMemcpyHostToDevice));
  CK(cudaMemset(d.out.p, 0xff, d.nq * d.es));  // NaN in every dtype: unwritten output shows
  return PB_RUN_OK;
}

}  // namespace

extern "C" int pb_gpu_time_posattn(const pb_problem *p, const pb_time_opts *o, pb_stats *st,
                                   void *out_host, char *msg, size_t msg_size) {
  char why[256] = "";
  if (posattn_backend_available(POSATTN_BACKEND_CUDA, why, sizeof why) != POSATTN_STATUS_SUCCESS) {
    snprintf(msg, msg_size, "posattn CUDA backend unavailable: %s", why);
    return PB_RUN_SKIP;
  }
  Ctx ctx;
  posattn_status s = posattn_context_create(POSATTN_BACKEND_CUDA, 0, &ctx.c);
  if (s != POSATTN_STATUS_SUCCESS) {
    snprintf(msg, msg_size, "context: %s", posattn_status_string(s));
    return PB_RUN_ERROR;
  }
  const posattn_attention_desc *D = &p->desc;
  s = posattn_supported(ctx.c, D, p->dtype, p->dtype);
  if (s != POSATTN_STATUS_SUCCESS) {
    snprintf(msg, msg_size, "%s", posattn_context_last_message(ctx.c));
    return s == POSATTN_STATUS_NOT_SUPPORTED ? PB_RUN_SKIP : PB_RUN_ERROR;
  }
  Rig rig;
  int rc = rig_init(rig, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  posattn_context_set_stream(ctx.c, rig.stream.s);
  DevProblem d;
  rc = upload(p, d, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  size_t wsb = 0;
  posattn_workspace_size(ctx.c, D, p->dtype, p->dtype, &wsb);
  DevBuf ws;
  if (wsb) CK(cudaMalloc(&ws.p, wsb));
  const int varlen = D->cu_seqlens_q != nullptr;
  posattn_tensor tq, tk, tv, to;
  posattn_tensor_init_contiguous(&tq, d.q.p, p->dtype, varlen ? 0 : D->q_len, D->q_heads,
                                 D->head_dim);
  posattn_tensor_init_contiguous(&tk, d.k.p, p->dtype, varlen ? 0 : D->kv_len, D->kv_heads,
                                 D->head_dim);
  posattn_tensor_init_contiguous(&tv, d.v.p, p->dtype, varlen ? 0 : D->kv_len, D->kv_heads,
                                 D->head_dim);
  posattn_tensor_init_contiguous(&to, d.out.p, p->dtype, varlen ? 0 : D->q_len, D->q_heads,
                                 D->head_dim);
  rc = time_loop(rig, o, [&](cudaStream_t, char *m, size_t mn) {
    const posattn_status r = posattn_forward(ctx.c, D, &tq, &tk, &tv, &to, nullptr, ws.p, wsb);
    if (r == POSATTN_STATUS_SUCCESS) return int(PB_RUN_OK);
    snprintf(m, mn, "%s: %s", posattn_status_string(r), posattn_context_last_message(ctx.c));
    return int(PB_RUN_ERROR);
  }, st, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  if (out_host) CK(cudaMemcpy(out_host, d.out.p, d.nq * d.es, cudaMemcpyDeviceToHost));
  return PB_RUN_OK;
}

extern "C" int pb_gpu_time_cublas(const pb_problem *p, const pb_time_opts *o, pb_stats *st,
                                  void *out_host, char *msg, size_t msg_size) {
  const posattn_attention_desc *D = &p->desc;
  const posattn_pe_kind pe = D->pe.kind;
  if (D->cu_seqlens_q) {
    snprintf(msg, msg_size, "baseline not written for varlen (a user pads or loops)");
    return PB_RUN_SKIP;
  }
  if (pe != POSATTN_PE_NONE && pe != POSATTN_PE_ROPE && pe != POSATTN_PE_ALIBI) {
    snprintf(msg, msg_size, "baseline covers pe none, rope, alibi only");
    return PB_RUN_SKIP;
  }
  if (D->q_positions || D->kv_positions) {
    snprintf(msg, msg_size, "baseline uses default positions only");
    return PB_RUN_SKIP;
  }
  const int B = D->batch, hq = D->q_heads, hkv = D->kv_heads, d = D->head_dim;
  const int lq = D->q_len, lk = D->kv_len, g = hq / hkv;
  const int64_t rows = int64_t(B) * hq * lq;
  const size_t es = posattn_dtype_size(p->dtype);
  const double score_bytes = double(rows) * lk * (4.0 + double(es));
  size_t free_b = 0, total_b = 0;
  CK(cudaMemGetInfo(&free_b, &total_b));
  if (score_bytes > 0.6 * double(free_b)) {
    snprintf(msg, msg_size, "scores and probabilities need %.1f GiB; %.1f GiB free",
             score_bytes / 1073741824.0, double(free_b) / 1073741824.0);
    return PB_RUN_SKIP;
  }
  Rig rig;
  int rc = rig_init(rig, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  DevProblem dp;
  rc = upload(p, dp, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  DevBuf S, P, qr, kr, tables, ptrs;
  CK(cudaMalloc(&S.p, size_t(rows) * lk * 4));
  CK(cudaMalloc(&P.p, size_t(rows) * lk * es));

  // Host-side PE tables, as a user would precompute them.
  std::vector<float> tab;
  int rd = 0;
  if (pe == POSATTN_PE_ROPE) {
    if (D->pe.rope.layout != POSATTN_ROPE_NEOX) {
      snprintf(msg, msg_size, "baseline RoPE kernel is NeoX only");
      return PB_RUN_SKIP;
    }
    rd = D->pe.rope.rotary_dim ? D->pe.rope.rotary_dim : d;
    std::vector<double> inv(static_cast<size_t>(rd / 2));
    double af = 1;
    char why[200] = "";
    if (posattn_pe_rope_inv_freq(&D->pe.rope, d, lk, inv.data(), &af, why, sizeof why) !=
        POSATTN_STATUS_SUCCESS) {
      snprintf(msg, msg_size, "rope tables: %s", why);
      return PB_RUN_ERROR;
    }
    // cos/sin cache for positions 0 .. Lk-1 (fp64 angles, fp32 values, attention factor in).
    tab.resize(size_t(2) * lk * (rd / 2));
    for (int pos = 0; pos < lk; ++pos)
      for (int i = 0; i < rd / 2; ++i) {
        const size_t t = size_t(pos) * (rd / 2) + i;
        tab[t] = float(af * cos(pos * inv[i]));
        tab[size_t(lk) * (rd / 2) + t] = float(af * sin(pos * inv[i]));
      }
    CK(cudaMalloc(&qr.p, dp.nq * es));
    CK(cudaMalloc(&kr.p, dp.nkv * es));
  } else if (pe == POSATTN_PE_ALIBI) {
    std::vector<double> sl(static_cast<size_t>(hq));
    if (D->pe.alibi.slopes) {
      for (int h = 0; h < hq; ++h) tab.push_back(D->pe.alibi.slopes[h]);
    } else {
      posattn_pe_alibi_slopes(hq, sl.data());
      for (double x : sl) tab.push_back(float(x));
    }
  }
  DevBuf doc;
  if (D->doc_ids) {
    CK(cudaMalloc(&doc.p, size_t(B) * lq * 4));
    CK(cudaMemcpy(doc.p, D->doc_ids, size_t(B) * lq * 4, cudaMemcpyHostToDevice));
  }
  if (!tab.empty()) {
    CK(cudaMalloc(&tables.p, tab.size() * 4));
    CK(cudaMemcpy(tables.p, tab.data(), tab.size() * 4, cudaMemcpyHostToDevice));
  }
  const char *qsrc = static_cast<const char *>(pe == POSATTN_PE_ROPE ? qr.p : dp.q.p);
  const char *ksrc = static_cast<const char *>(pe == POSATTN_PE_ROPE ? kr.p : dp.k.p);
  // Pointer arrays for the batched GEMMs: one (b, h) problem each; GQA maps h to h / g.
  const size_t nb = size_t(B) * hq;
  std::vector<const void *> hp(5 * nb);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < hq; ++h) {
      const size_t i = size_t(b) * hq + h;
      const size_t qo = (size_t(b) * lq * hq + h) * d, ko = (size_t(b) * lk * hkv + h / g) * d;
      hp[i] = ksrc + ko * es;
      hp[nb + i] = qsrc + qo * es;
      hp[2 * nb + i] = static_cast<char *>(S.p) + i * size_t(lq) * lk * 4;
      hp[3 * nb + i] = static_cast<char *>(P.p) + i * size_t(lq) * lk * es;
      hp[4 * nb + i] = static_cast<char *>(dp.v.p) + ko * es;
    }
  std::vector<void *> ho(nb);
  for (size_t i = 0; i < nb; ++i)
    ho[i] = static_cast<char *>(dp.out.p) + ((i / hq) * size_t(lq) * hq + i % hq) * d * es;
  CK(cudaMalloc(&ptrs.p, 6 * nb * sizeof(void *)));
  CK(cudaMemcpy(ptrs.p, hp.data(), 5 * nb * sizeof(void *), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(static_cast<void **>(ptrs.p) + 5 * nb, ho.data(), nb * sizeof(void *),
                cudaMemcpyHostToDevice));
  const void *const *pk = static_cast<const void *const *>(ptrs.p);
  const void *const *pq = pk + nb;
  void *const *ps = static_cast<void *const *>(ptrs.p) + 2 * nb;
  const void *const *pp = pk + 3 * nb;
  const void *const *pv = pk + 4 * nb;
  void *const *po = static_cast<void *const *>(ptrs.p) + 5 * nb;

  Blas blas;
  CK(cublasCreate(&blas.h));
  CK(cublasSetStream(blas.h, rig.stream.s));
  SoftmaxArgs sa{static_cast<const float *>(S.p), lq, lk, hq,
                 D->softmax_scale > 0 ? D->softmax_scale : 1.0f / sqrtf(float(d)), D->softcap,
                 D->causal, D->window_left, D->window_right,
                 static_cast<const int32_t *>(doc.p), D->num_anchor_tokens,
                 pe == POSATTN_PE_ALIBI ? static_cast<const float *>(tables.p) : nullptr};
  const cudaDataType_t ty = cuda_type(p->dtype);
  const float one = 1, zero = 0;
  const posattn_dtype dt = p->dtype;
  auto launch = [&](cudaStream_t s, char *m, size_t mn) -> int {
    if (pe == POSATTN_PE_ROPE) {
      const float *ct = static_cast<const float *>(tables.p);
      const float *st_ = ct + size_t(lk) * (rd / 2);
      if (dt == POSATTN_DTYPE_BF16) {
        launch_rope<__nv_bfloat16>(dp.q.p, qr.p, int64_t(B) * lq, lq, lk - lq, hq, d, rd, ct, st_, s);
        launch_rope<__nv_bfloat16>(dp.k.p, kr.p, int64_t(B) * lk, lk, 0, hkv, d, rd, ct, st_, s);
      } else if (dt == POSATTN_DTYPE_F16) {
        launch_rope<__half>(dp.q.p, qr.p, int64_t(B) * lq, lq, lk - lq, hq, d, rd, ct, st_, s);
        launch_rope<__half>(dp.k.p, kr.p, int64_t(B) * lk, lk, 0, hkv, d, rd, ct, st_, s);
      } else {
        launch_rope<float>(dp.q.p, qr.p, int64_t(B) * lq, lq, lk - lq, hq, d, rd, ct, st_, s);
        launch_rope<float>(dp.k.p, kr.p, int64_t(B) * lk, lk, 0, hkv, d, rd, ct, st_, s);
      }
    }
    // S^T (col-major Lk x Lq) = K Q^T: row-major S[i][j] = q_i . k_j.
    if (!ok(cublasGemmBatchedEx(blas.h, CUBLAS_OP_T, CUBLAS_OP_N, lk, lq, d, &one, pk, ty, hkv * d,
                                pq, ty, hq * d, &zero, ps, CUDA_R_32F, lk, int(nb),
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "QK^T cublasGemmBatchedEx", m, mn))
      return PB_RUN_ERROR;
    if (dt == POSATTN_DTYPE_BF16) launch_softmax<__nv_bfloat16>(sa, P.p, rows, s);
    else if (dt == POSATTN_DTYPE_F16) launch_softmax<__half>(sa, P.p, rows, s);
    else launch_softmax<float>(sa, P.p, rows, s);
    // O^T (col-major d x Lq) = V^T P^T: row-major O[i] = sum_j P[i][j] v_j.
    if (!ok(cublasGemmBatchedEx(blas.h, CUBLAS_OP_N, CUBLAS_OP_N, d, lq, lk, &one, pv, ty, hkv * d,
                                pp, ty, lk, &zero, po, ty, hq * d, int(nb), CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
            "PV cublasGemmBatchedEx", m, mn))
      return PB_RUN_ERROR;
    return ok(cudaGetLastError(), "baseline kernel launch", m, mn) ? PB_RUN_OK : PB_RUN_ERROR;
  };
  rc = time_loop(rig, o, launch, st, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  if (out_host) CK(cudaMemcpy(out_host, dp.out.p, dp.nq * es, cudaMemcpyDeviceToHost));
  return PB_RUN_OK;
}
