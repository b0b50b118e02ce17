// The cuDNN SDPA baseline of posattn-bench (bench_cudnn.h): fused attention forward written as a
// cuDNN backend-API operation graph, the form cuDNN's fused flash-attention engines match:
//
//   S = Q·Kᵀ (fp32) → ×scale → [+ slope·(j − i)  ALiBi] → [causal select] → [left-window select]
//     → softmax (max, sub, exp, sum, log+add = stats, div) → O = P·V
//
// Every intermediate is a virtual fp32 tensor (index and mask tensors int32/bool), so cuDNN keeps
// them on chip; only Q, K, V, O, the ALiBi slopes and the by-value scalars have memory. The masks
// are built from GEN_INDEX row/column indices: bottom-right alignment (posattn's rule, i' = i +
// Lk − Lq) shifts the row index by Lk − Lq before the comparison. Timing is the harness's timer
// (pb_gpu_time_launch): one cudnnBackendExecute per repetition, nothing else in the interval.
// Compiled and linked here; not yet run on a GPU (docs/benchmarks.md).
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "bench_cudnn.h"

namespace {

using Dims = std::array<int64_t, 4>;

struct DevBuf {
  void *p = nullptr;
  ~DevBuf() { if (p) cudaFree(p); }
};
struct Handle {
  cudnnHandle_t h = nullptr;
  ~Handle() { if (h) cudnnDestroy(h); }
};

struct Tensor {
  cudnnBackendDescriptor_t d = nullptr;
  int64_t uid = 0;
};

// The descriptors of one graph, destroyed together. The first failing cuDNN call is kept and
// every later call does nothing, so the graph is written as a straight line and checked once.
class Graph {
 public:
  Graph(const Dims &s, const Dims &row) : s_(s), row_(row) {}
  ~Graph() {
    for (auto it = owned_.rbegin(); it != owned_.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
  }
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;

  bool failed() const { return status_ != CUDNN_STATUS_SUCCESS; }
  cudnnStatus_t status() const { return status_; }
  const char *where() const { return where_; }
  const std::vector<cudnnBackendDescriptor_t> &ops() const { return ops_; }
  // Takes ownership of a descriptor created outside make() (execution plans: their failure to
  // finalize is an answer, not an error).
  void adopt(cudnnBackendDescriptor_t d) { owned_.push_back(d); }

  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t type, const char *what) {
    cudnnBackendDescriptor_t d = nullptr;
    if (failed()) return nullptr;
    if (check(cudnnBackendCreateDescriptor(type, &d), what)) owned_.push_back(d);
    return d;
  }
  void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
           cudnnBackendAttributeType_t type, int64_t n, const void *value, const char *what) {
    if (!failed()) check(cudnnBackendSetAttribute(d, name, type, n, value), what);
  }
  void finalize(cudnnBackendDescriptor_t d, const char *what) {
    if (!failed()) check(cudnnBackendFinalize(d), what);
  }
  void set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                cudnnBackendDescriptor_t value, const char *what) {
    set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value, what);
  }

  // A tensor with memory (by_value: a host scalar passed in the variant pack) or a virtual one.
  Tensor tensor(cudnnDataType_t type, const Dims &dim, const Dims &stride, bool is_virtual,
                bool by_value = false) {
    Tensor t;
    t.d = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor descriptor");
    t.uid = next_uid_++;
    const int64_t align = 16;
    set(t.d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor data type");
    set(t.d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim.data(), "tensor dims");
    set(t.d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, stride.data(), "tensor strides");
    set(t.d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &t.uid, "tensor uid");
    set(t.d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    const bool yes = true;
    if (is_virtual) set(t.d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &yes, "virtual");
    if (by_value) set(t.d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes, "by value");
    finalize(t.d, "tensor finalize");
    return t;
  }
  Tensor scalar(cudnnDataType_t type) {
    return tensor(type, Dims{1, 1, 1, 1}, Dims{1, 1, 1, 1}, false, true);
  }
  // Virtual tensors shaped like the score matrix [b, h, s_q, s_kv] or a row statistic [.., 1].
  Tensor score(cudnnDataType_t type) { return tensor(type, s_, strides(s_), true); }
  Tensor row_stat() { return tensor(CUDNN_DATA_FLOAT, row_, strides(row_), true); }

  // y = mode(x[, b][, t]) with math precision `prec`; axis >= 0 for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t prec, const Tensor &x, const Tensor *b,
                 const Tensor *t, const Tensor &y, int64_t axis = -1) {
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise descriptor");
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    if (axis >= 0) set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    finalize(pw, "pointwise finalize");
    cudnnBackendDescriptor_t op =
        make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise operation");
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, "pointwise op descriptor");
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x.d, "pointwise x");
    if (b) set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b->d, "pointwise b");
    if (t) set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t->d, "pointwise t");
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y.d, "pointwise y");
    finalize(op, "pointwise operation finalize");
    ops_.push_back(op);
  }
  Tensor pw_score(cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnDataType_t out,
                  const Tensor &x, const Tensor *b = nullptr, const Tensor *t = nullptr,
                  int64_t axis = -1) {
    const Tensor y = score(out);
    pointwise(mode, prec, x, b, t, y, axis);
    return y;
  }

  // y = reduce(x) over the last axis (y is a row statistic).
  void reduction(cudnnReduceTensorOp_t op_type, const Tensor &x, const Tensor &y) {
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t r = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction descriptor");
    set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &op_type,
        "reduction operator");
    set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "reduction type");
    finalize(r, "reduction finalize");
    cudnnBackendDescriptor_t op =
        make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction operation");
    set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, r, "reduction op descriptor");
    set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x.d, "reduction x");
    set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y.d, "reduction y");
    finalize(op, "reduction operation finalize");
    ops_.push_back(op);
  }

  // c = a · b, batched over the two leading axes (b's head axis may be smaller: GQA).
  void matmul(const Tensor &a, const Tensor &b, const Tensor &c) {
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t m = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul descriptor");
    set(m, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "matmul compute type");
    finalize(m, "matmul finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul op");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a.d, "matmul a");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b.d, "matmul b");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c.d, "matmul c");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, m, "matmul op descriptor");
    finalize(op, "matmul operation finalize");
    ops_.push_back(op);
  }

 private:
  static Dims strides(const Dims &d) { return Dims{d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}; }
  bool check(cudnnStatus_t s, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS) return true;
    status_ = s;
    where_ = what;
    return false;
  }

  Dims s_, row_;
  std::vector<cudnnBackendDescriptor_t> owned_, ops_;
  int64_t next_uid_ = 1;
  cudnnStatus_t status_ = CUDNN_STATUS_SUCCESS;
  const char *where_ = "";
};

// cuDNN 9 groups statuses by thousands; 3xxx = "not supported" in any of its forms.
bool not_supported(cudnnStatus_t s) { return int(s) / 1000 == int(CUDNN_STATUS_NOT_SUPPORTED) / 1000; }

int fail(cudnnStatus_t s, const char *where, char *msg, size_t msg_size) {
  char detail[200] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  if (not_supported(s)) {
    snprintf(msg, msg_size, "cuDNN: no engine for this configuration (%s: %s%s%s)", where,
             cudnnGetErrorString(s), detail[0] ? "; " : "", detail);
    return PB_RUN_SKIP;
  }
  snprintf(msg, msg_size, "cuDNN %s: %s%s%s", where, cudnnGetErrorString(s),
           detail[0] ? "; " : "", detail);
  return PB_RUN_ERROR;
}

bool cuda_ok(cudaError_t e, const char *what, char *msg, size_t msg_size) {
  if (e == cudaSuccess) return true;
  snprintf(msg, msg_size, "%s: %s", what, cudaGetErrorString(e));
  return false;
}

// Everything one timed run needs; the launch callback reads it.
struct Run {
  cudnnHandle_t handle = nullptr;
  cudnnBackendDescriptor_t plan = nullptr, pack = nullptr;
  cudaStream_t bound = nullptr;
};

int launch(void *stream, void *user, char *msg, size_t msg_size) {
  Run *r = static_cast<Run *>(user);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (s != r->bound) {
    const cudnnStatus_t st = cudnnSetStream(r->handle, s);
    if (st != CUDNN_STATUS_SUCCESS) return fail(st, "cudnnSetStream", msg, msg_size);
    r->bound = s;
  }
  const cudnnStatus_t st = cudnnBackendExecute(r->handle, r->plan, r->pack);
  return st == CUDNN_STATUS_SUCCESS ? int(PB_RUN_OK) : fail(st, "execute", msg, msg_size);
}

// Why the graph below does not express `p`, or nullptr when it does.
const char *unsupported(const pb_problem *p, size_t version) {
  const posattn_attention_desc &D = p->desc;
  if (p->dtype != POSATTN_DTYPE_BF16 && p->dtype != POSATTN_DTYPE_F16)
    return "cuDNN SDPA baseline: bf16 and f16 only";
  if (D.cu_seqlens_q) return "cuDNN SDPA baseline: dense batches only (varlen not written)";
  if (D.q_positions || D.kv_positions) return "cuDNN SDPA baseline: default positions only";
  if (D.doc_ids) return "cuDNN SDPA baseline: no document mask";
  if (D.softcap > 0) return "cuDNN SDPA baseline: no softcap";
  if (D.pe.kind != POSATTN_PE_NONE && D.pe.kind != POSATTN_PE_ALIBI)
    return "cuDNN SDPA baseline: pe none and alibi only";
  if (!D.causal && (D.window_left >= 0 || D.window_right >= 0))
    return "cuDNN SDPA baseline: windows only together with causal";
  if (D.causal && D.q_len > D.kv_len)
    return "cuDNN: bottom-right causal needs q_len <= kv_len";
  if (D.pe.kind == POSATTN_PE_ALIBI && !(D.causal && D.q_len == D.kv_len))
    return "cuDNN: ALiBi only with causal self-attention (q_len == kv_len; cuDNN has no "
           "bottom-right ALiBi, and its bias slope*(j-i) equals posattn's only under causal)";
  if (version < 90000) return "cuDNN SDPA baseline: needs cuDNN 9";
  if (D.causal && D.q_len != D.kv_len && version < 90600 &&
      (D.q_len % 64 != 0 || D.kv_len % 64 != 0))
    return "cuDNN < 9.6: bottom-right causal needs q_len and kv_len multiples of 64";
  return nullptr;
}

// Host values of the by-value scalars (the variant pack points at them).
struct Scalars {
  float scale, masked, left_bound;
  int32_t kv_len, q_len;
};

// The tensors with memory: their uids and data pointers, in variant-pack order.
struct Bindings {
  std::vector<int64_t> uids;
  std::vector<void *> ptrs;
};

// Adds the operations of the SDPA graph for `p` (unsupported() is nullptr) to g. q, k, v, out,
// slopes: device pointers (NULL when only the descriptors are checked). Needs no device.
void build_ops(Graph &g, const pb_problem *p, size_t version, Scalars &sc, void *q, void *k,
               void *v, void *out, void *slopes, Bindings &bind) {
  const posattn_attention_desc &D = p->desc;
  const int64_t B = D.batch, hq = D.q_heads, hkv = D.kv_heads, d = D.head_dim;
  const int64_t lq = D.q_len, lk = D.kv_len;
  const bool alibi = D.pe.kind == POSATTN_PE_ALIBI;
  sc.scale = D.softmax_scale > 0 ? D.softmax_scale : float(1.0 / std::sqrt(double(d)));
  // cuDNN before 9.10 wants the lowest finite float as the masked value, later -inf.
  sc.masked = version < 91000 ? std::numeric_limits<float>::lowest()
                              : -std::numeric_limits<float>::infinity();
  sc.kv_len = int32_t(lk);
  sc.q_len = int32_t(lq);
  // Left window: posattn keeps j >= i' - window_left; the graph keeps j + bound > i (top-left
  // row index), i.e. bound = window_left + 1 - (Lk - Lq).
  sc.left_bound = float(int64_t(D.window_left) + 1 - (lk - lq));

  const cudnnDataType_t io = p->dtype == POSATTN_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT, i32 = CUDNN_DATA_INT32, b8 = CUDNN_DATA_BOOLEAN;
  // posattn's [batch, len, heads, d] as cuDNN's [b, h, s, d] by strides; K enters as Kᵀ.
  const Tensor tq = g.tensor(io, Dims{B, hq, lq, d}, Dims{lq * hq * d, d, hq * d, 1}, false);
  const Tensor tk = g.tensor(io, Dims{B, hkv, d, lk}, Dims{lk * hkv * d, d, 1, hkv * d}, false);
  const Tensor tv = g.tensor(io, Dims{B, hkv, lk, d}, Dims{lk * hkv * d, d, hkv * d, 1}, false);
  const Tensor to = g.tensor(io, Dims{B, hq, lq, d}, Dims{lq * hq * d, d, hq * d, 1}, false);
  bind.uids = {tq.uid, tk.uid, tv.uid, to.uid};
  bind.ptrs = {q, k, v, out};
  auto by_value = [&](cudnnDataType_t type, void *host) {
    const Tensor t = g.scalar(type);
    bind.uids.push_back(t.uid);
    bind.ptrs.push_back(host);
    return t;
  };

  Tensor s = g.score(f32);
  g.matmul(tq, tk, s);
  const Tensor t_scale = by_value(f32, &sc.scale);
  s = g.pw_score(CUDNN_POINTWISE_MUL, f32, f32, s, &t_scale);
  if (alibi) {  // + slope_h * (j - i): posattn's -slope_h * |i' - j| under causal, up to a row constant
    const Tensor t_slopes = g.tensor(f32, Dims{1, hq, 1, 1}, Dims{hq, 1, 1, 1}, false);
    bind.uids.push_back(t_slopes.uid);
    bind.ptrs.push_back(slopes);
    const Tensor row = g.pw_score(CUDNN_POINTWISE_GEN_INDEX, i32, i32, s, nullptr, nullptr, 2);
    const Tensor col = g.pw_score(CUDNN_POINTWISE_GEN_INDEX, i32, i32, s, nullptr, nullptr, 3);
    const Tensor dist = g.pw_score(CUDNN_POINTWISE_SUB, i32, i32, col, &row);
    const Tensor bias = g.pw_score(CUDNN_POINTWISE_MUL, f32, f32, dist, &t_slopes);
    s = g.pw_score(CUDNN_POINTWISE_ADD, f32, f32, s, &bias);
  }
  if (D.causal) {  // keep j <= i + (Lk - Lq)
    Tensor row = g.pw_score(CUDNN_POINTWISE_GEN_INDEX, f32, i32, s, nullptr, nullptr, 2);
    const Tensor col = g.pw_score(CUDNN_POINTWISE_GEN_INDEX, f32, i32, s, nullptr, nullptr, 3);
    if (lq != lk) {
      const Tensor t_lk = by_value(i32, &sc.kv_len);
      const Tensor t_lq = by_value(i32, &sc.q_len);
      row = g.pw_score(CUDNN_POINTWISE_ADD, i32, i32, row, &t_lk);
      row = g.pw_score(CUDNN_POINTWISE_SUB, i32, i32, row, &t_lq);
    }
    const Tensor keep = g.pw_score(CUDNN_POINTWISE_CMP_GE, b8, b8, row, &col);
    const Tensor t_masked = by_value(f32, &sc.masked);
    s = g.pw_score(CUDNN_POINTWISE_BINARY_SELECT, f32, f32, s, &t_masked, &keep);
  }
  if (D.causal && D.window_left >= 0) {  // keep j + bound > i
    const Tensor row = g.pw_score(CUDNN_POINTWISE_GEN_INDEX, f32, i32, s, nullptr, nullptr, 2);
    Tensor col = g.pw_score(CUDNN_POINTWISE_GEN_INDEX, f32, i32, s, nullptr, nullptr, 3);
    const Tensor t_bound = by_value(f32, &sc.left_bound);
    col = g.pw_score(CUDNN_POINTWISE_ADD, f32, f32, col, &t_bound);
    const Tensor keep = g.pw_score(CUDNN_POINTWISE_CMP_GT, b8, b8, col, &row);
    const Tensor t_masked = by_value(f32, &sc.masked);
    s = g.pw_score(CUDNN_POINTWISE_BINARY_SELECT, f32, f32, s, &t_masked, &keep);
  }
  // Softmax over the key axis, with the log-sum-exp statistic the fused engines expect to see
  // (virtual: not written).
  const Tensor mx = g.row_stat();
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, s, mx);
  const Tensor shifted = g.pw_score(CUDNN_POINTWISE_SUB, f32, f32, s, &mx);
  const Tensor e = g.pw_score(CUDNN_POINTWISE_EXP, f32, f32, shifted);
  const Tensor sum = g.row_stat();
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, sum);
  const Tensor log_sum = g.row_stat();
  g.pointwise(CUDNN_POINTWISE_LOG, f32, sum, nullptr, nullptr, log_sum);
  const Tensor stats = g.row_stat();
  g.pointwise(CUDNN_POINTWISE_ADD, f32, mx, &log_sum, nullptr, stats);
  const Tensor prob = g.pw_score(CUDNN_POINTWISE_DIV, f32, f32, e, &sum);
  g.matmul(prob, tv, to);
}

}  // namespace

extern "C" size_t pb_cudnn_version(void) { return cudnnGetVersion(); }

extern "C" int pb_cudnn_check_ops(const pb_problem *p, int *n_ops, char *msg, size_t msg_size) {
  const size_t version = cudnnGetVersion();
  *n_ops = 0;
  if (const char *why = unsupported(p, version)) {
    snprintf(msg, msg_size, "%s", why);
    return PB_RUN_SKIP;
  }
  const posattn_attention_desc &D = p->desc;
  Scalars sc;
  Bindings bind;
  Graph g(Dims{D.batch, D.q_heads, D.q_len, D.kv_len}, Dims{D.batch, D.q_heads, D.q_len, 1});
  build_ops(g, p, version, sc, nullptr, nullptr, nullptr, nullptr, nullptr, bind);
  if (g.failed()) return fail(g.status(), g.where(), msg, msg_size);
  *n_ops = int(g.ops().size());
  return PB_RUN_OK;
}

extern "C" int pb_gpu_time_cudnn(const pb_problem *p, const pb_time_opts *o, pb_stats *st,
                                 void *out_host, char *msg, size_t msg_size) {
  const size_t version = cudnnGetVersion();
  if (const char *why = unsupported(p, version)) {
    snprintf(msg, msg_size, "%s", why);
    return PB_RUN_SKIP;
  }
  const posattn_attention_desc &D = p->desc;
  const int64_t B = D.batch, hq = D.q_heads, hkv = D.kv_heads, d = D.head_dim;
  const int64_t lq = D.q_len, lk = D.kv_len;
  const size_t es = posattn_dtype_size(p->dtype);
  const size_t nq = size_t(B * lq * hq * d), nkv = size_t(B * lk * hkv * d);

  Handle handle;
  cudnnStatus_t cs = cudnnCreate(&handle.h);
  if (cs != CUDNN_STATUS_SUCCESS) return fail(cs, "cudnnCreate", msg, msg_size);
  DevBuf q, k, v, out, slopes, ws;
  if (!cuda_ok(cudaMalloc(&q.p, nq * es), "cudaMalloc q", msg, msg_size) ||
      !cuda_ok(cudaMalloc(&k.p, nkv * es), "cudaMalloc k", msg, msg_size) ||
      !cuda_ok(cudaMalloc(&v.p, nkv * es), "cudaMalloc v", msg, msg_size) ||
      !cuda_ok(cudaMalloc(&out.p, nq * es), "cudaMalloc out", msg, msg_size) ||
      !cuda_ok(cudaMemcpy(q.p, p->q, nq * es, cudaMemcpyHostToDevice), "upload q", msg, msg_size) ||
      !cuda_ok(cudaMemcpy(k.p, p->k, nkv * es, cudaMemcpyHostToDevice), "upload k", msg, msg_size) ||
      !cuda_ok(cudaMemcpy(v.p, p->v, nkv * es, cudaMemcpyHostToDevice), "upload v", msg, msg_size) ||
      !cuda_ok(cudaMemset(out.p, 0xff, nq * es), "cudaMemset out", msg, msg_size))  // NaN: unwritten shows
    return PB_RUN_ERROR;

  const bool alibi = D.pe.kind == POSATTN_PE_ALIBI;
  if (alibi) {
    std::vector<float> sl(static_cast<size_t>(hq));
    if (D.pe.alibi.slopes) {
      for (int64_t h = 0; h < hq; ++h) sl[size_t(h)] = D.pe.alibi.slopes[h];
    } else {
      std::vector<double> sd(static_cast<size_t>(hq));
      posattn_pe_alibi_slopes(int32_t(hq), sd.data());
      for (int64_t h = 0; h < hq; ++h) sl[size_t(h)] = float(sd[size_t(h)]);
    }
    if (!cuda_ok(cudaMalloc(&slopes.p, sl.size() * 4), "cudaMalloc slopes", msg, msg_size) ||
        !cuda_ok(cudaMemcpy(slopes.p, sl.data(), sl.size() * 4, cudaMemcpyHostToDevice),
                 "upload slopes", msg, msg_size))
      return PB_RUN_ERROR;
  }

  Scalars sc;
  Bindings bind;
  Graph g(Dims{B, hq, lq, lk}, Dims{B, hq, lq, 1});
  build_ops(g, p, version, sc, q.p, k.p, v.p, out.p, slopes.p, bind);
  if (g.failed()) return fail(g.status(), g.where(), msg, msg_size);

  cudnnBackendDescriptor_t graph = g.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "graph");
  g.set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle.h, "graph handle");
  g.set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
        int64_t(g.ops().size()), g.ops().data(), "graph operations");
  g.finalize(graph, "operation graph");
  cudnnBackendDescriptor_t heur = g.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
  g.set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, "heuristics graph");
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  g.set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
  g.finalize(heur, "engine heuristics");
  if (g.failed()) return fail(g.status(), g.where(), msg, msg_size);
  int64_t n_cfg = 0;
  cs = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                0, &n_cfg, nullptr);
  if (cs != CUDNN_STATUS_SUCCESS) return fail(cs, "heuristics result count", msg, msg_size);
  std::vector<cudnnBackendDescriptor_t> cfgs;
  for (int64_t i = 0; i < n_cfg && !g.failed(); ++i)
    cfgs.push_back(g.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config"));
  if (g.failed()) return fail(g.status(), g.where(), msg, msg_size);
  int64_t got = 0;
  if (n_cfg > 0) {
    cs = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, n_cfg, &got, cfgs.data());
    if (cs != CUDNN_STATUS_SUCCESS) return fail(cs, "heuristics results", msg, msg_size);
  }
  // The first configuration, in heuristic order, that finalizes into a plan: what a user gets.
  Run run;
  run.handle = handle.h;
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  for (int64_t i = 0; i < got && !run.plan; ++i) {
    cudnnBackendDescriptor_t plan = nullptr;
    cs = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan);
    if (cs != CUDNN_STATUS_SUCCESS) return fail(cs, "execution plan", msg, msg_size);
    cs = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                  &handle.h);
    if (cs == CUDNN_STATUS_SUCCESS)
      cs = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[size_t(i)]);
    if (cs == CUDNN_STATUS_SUCCESS) cs = cudnnBackendFinalize(plan);
    if (cs == CUDNN_STATUS_SUCCESS) {
      run.plan = plan;
    } else {
      last = cs;
    }
    // Owned by the graph either way: destroyed with the rest after the timing.
    g.adopt(plan);
  }
  if (!run.plan) {
    if (got == 0) {
      snprintf(msg, msg_size, "cuDNN: no engine for this configuration (heuristics returned none)");
      return PB_RUN_SKIP;
    }
    return fail(not_supported(last) ? last : CUDNN_STATUS_NOT_SUPPORTED, "no plan finalized",
                msg, msg_size);
  }
  int64_t ws_bytes = 0, n_ws = 0;
  cs = cudnnBackendGetAttribute(run.plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                CUDNN_TYPE_INT64, 1, &n_ws, &ws_bytes);
  if (cs != CUDNN_STATUS_SUCCESS) return fail(cs, "plan workspace size", msg, msg_size);
  if (ws_bytes > 0 &&
      !cuda_ok(cudaMalloc(&ws.p, size_t(ws_bytes)), "cudaMalloc workspace", msg, msg_size))
    return PB_RUN_ERROR;

  run.pack = g.make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "variant pack");
  g.set(run.pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
        int64_t(bind.uids.size()), bind.uids.data(), "variant pack uids");
  g.set(run.pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
        int64_t(bind.ptrs.size()), bind.ptrs.data(), "variant pack pointers");
  g.set(run.pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws.p,
        "variant pack workspace");
  g.finalize(run.pack, "variant pack");
  if (g.failed()) return fail(g.status(), g.where(), msg, msg_size);

  const int rc = pb_gpu_time_launch(o, launch, &run, st, msg, msg_size);
  if (rc != PB_RUN_OK) return rc;
  if (out_host &&
      !cuda_ok(cudaMemcpy(out_host, out.p, nq * es, cudaMemcpyDeviceToHost), "download out", msg,
               msg_size))
    return PB_RUN_ERROR;
  return PB_RUN_OK;
}
