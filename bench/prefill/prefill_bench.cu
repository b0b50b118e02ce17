// prefill_bench.cu -- the short benchmark of scripts/gpu-check.sh: the tensor-core prefill kernel
// (kernels/prefill/mma.cuh) on the GPU, hd128 bf16, launched directly with hand-filled parameters
// (no CUDA backend exists yet). Prints one line per measurement and a table last.
//   TFLOP/s at 4k and 16k, causal and not (FLOPs of visible score elements only: 4*d per pair)
//   each PE relative to no-PE (same shape, causal 4k)
//   fused RoPE (the kernel's key pre-pass included) versus a separate RoPE kernel followed by
//   no-PE attention
// Timing: cudaEvents, 3 warm-up runs, median of 10, L2 flushed before each repetition.
// Build: nvcc -std=c++17 -arch=sm_90a -Ikernels -Iinclude -Ihost bench/prefill/prefill_bench.cu
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "prefill/mma.cuh"
#include "prefill/rope_k.cu"

using namespace pa_kernels;

#define CK(x)                                                                             \
  do {                                                                                    \
    cudaError_t e_ = (x);                                                                 \
    if (e_ != cudaSuccess) {                                                              \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

template <class T>
T *dev(const std::vector<T> &h) {
  T *d;
  CK(cudaMalloc(&d, h.size() * sizeof(T)));
  CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

__global__ void rope_separate(const pa::bf16 *x, pa::bf16 *y, int64_t rows, int heads, int d,
                              const float *inv_freq) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // one pair per thread
  const int half = d / 2;
  if (idx >= rows * heads * half) return;
  const int i = int(idx % half);
  const int64_t rh = idx / half, tok = rh / heads;
  const pa::bf16 *src = x + rh * d;
  pa::bf16 *dst = y + rh * d;
  const float2 cs = pa_pe::fast_cos_sin(float(tok) * inv_freq[i]);  // the library's FAST angles
  const float c = cs.x, s = cs.y;
  const float a = pa::to_float(src[i]), b = pa::to_float(src[i + half]);
  dst[i] = pa::bf16_from_float(a * c - b * s);
  dst[i + half] = pa::bf16_from_float(a * s + b * c);
}

struct Setup {
  pa_prefill_params p{};
  int batch, heads, L;
  double flops;
};

Setup make(int batch, int heads, int L, int causal, int pe, const pa::bf16 *q, const pa::bf16 *k,
           const pa::bf16 *v, pa::bf16 *out, float *lse, const pa_prefill_params &tables,
           pa::bf16 *k_rot = nullptr) {
  Setup s;
  s.batch = batch; s.heads = heads; s.L = L;
  pa_prefill_params &p = s.p;
  p = tables;
  const int d = 128;
  p.q = reinterpret_cast<const unsigned char *>(q);
  p.k = reinterpret_cast<const unsigned char *>(k);
  p.v = reinterpret_cast<const unsigned char *>(v);
  p.out = reinterpret_cast<unsigned char *>(out);
  p.lse = lse;
  const int64_t ss = int64_t(heads) * d, sb = ss * L;
  p.q_sb = p.k_sb = p.v_sb = p.o_sb = sb;
  p.q_ss = p.k_ss = p.v_ss = p.o_ss = ss;
  p.q_sh = p.k_sh = p.v_sh = p.o_sh = d;
  p.in_dtype = p.out_dtype = POSATTN_DTYPE_BF16;
  p.batch = batch; p.hq = p.hkv = heads; p.group = 1; p.d = d;
  p.q_len = p.kv_len = L; p.total_q = p.total_kv = int64_t(batch) * L;
  p.causal = causal; p.window_left = p.window_right = -1;
  p.mask_bits = causal ? PA_PF_MASK_CAUSAL : 0;
  p.scale = 1.f / std::sqrt(float(d));
  p.pe_kind = pe;
  p.rotary_dim = (pe == POSATTN_PE_ROPE || pe == POSATTN_PE_XPOS) ? d : 0;
  if (pe == POSATTN_PE_ROPE) p.k_rot = reinterpret_cast<unsigned char *>(k_rot);
  const double pairs = causal ? double(L) * (L + 1) / 2 : double(L) * L;
  s.flops = 4.0 * d * pairs * batch * heads;
  return s;
}

float time_ms(const std::vector<std::function<void()>> &steps, void *flush, size_t flush_bytes) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i)
    for (auto &f : steps) f();
  std::vector<float> t;
  for (int r = 0; r < 10; ++r) {
    CK(cudaMemsetAsync(flush, r, flush_bytes));  // evict q/k/v from L2
    CK(cudaEventRecord(a));
    for (auto &f : steps) f();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main(int argc, char **argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";  // sanitizer runs: one tiny shape
  const int d = 128, heads = 16;
  const int64_t max_tok = quick ? 256 : 16384;  // batch * L per shape below
  std::vector<pa::bf16> h(size_t(max_tok) * heads * d);
  uint32_t seed = 1;
  for (auto &x : h) {
    seed = seed * 1664525u + 1013904223u;
    x = pa::bf16{__bfloat16_as_ushort(__float2bfloat16_rn((int32_t(seed >> 8) % 2001 - 1000) * 1e-3f))};
  }
  pa::bf16 *q = dev(h), *k = dev(h), *v = dev(h), *out, *qr, *kr, *krot;
  CK(cudaMalloc(&out, h.size() * 2));
  CK(cudaMalloc(&qr, h.size() * 2));
  CK(cudaMalloc(&kr, h.size() * 2));
  CK(cudaMalloc(&krot, h.size() * 2));  // the RoPE key pre-pass's output
  float *lse;
  CK(cudaMalloc(&lse, size_t(max_tok) * heads * 4));
  const size_t flush_bytes = size_t(256) << 20;
  void *flush;
  CK(cudaMalloc(&flush, flush_bytes));

  // Synthetic PE tables (values only shape the work, not the timing).
  std::vector<float> inv_freq(d / 2), slopes(heads), fstart(34), fslope(heads * 33), ficpt(heads * 33),
      xdec(d / 2), t5tab(32 * heads), ka(heads, 0.5f), kp(heads, 1.5f);
  std::vector<int32_t> fcell(33), t5bucket(2 * 129);
  for (int i = 0; i < d / 2; ++i) inv_freq[i] = std::pow(10000.f, -2.f * i / d), xdec[i] = -1e-3f;
  for (int i = 0; i < heads; ++i) slopes[i] = std::pow(2.f, -8.f * (i + 1) / heads);
  for (int i = 0; i < 33; ++i) fstart[i] = i / 33.f;
  fstart[33] = INFINITY;
  for (int c = 0; c <= 32; ++c) fcell[c] = c > 0 ? c - 1 : 0;  // 32 cells, about one start each
  for (size_t i = 0; i < fslope.size(); ++i) fslope[i] = 0.1f * float(i % 7), ficpt[i] = -0.05f * float(i % 5);
  for (int n = 0; n <= 128; ++n) t5bucket[n] = n < 8 ? n : std::min(15, 8 + int(std::log2(n / 8.0) * 2)),
                                 t5bucket[129 + n] = 16 + t5bucket[n];
  for (size_t i = 0; i < t5tab.size(); ++i) t5tab[i] = 0.01f * float(i % 13);
  pa_prefill_params tables{};
  tables.rope_attn_factor = 1.f;
  tables.inv_freq = dev(inv_freq);
  tables.alibi_slopes = dev(slopes);
  tables.fire_nseg = 33; tables.fire_start = dev(fstart); tables.fire_slope = dev(fslope);
  tables.fire_icpt = dev(ficpt); tables.fire_c = 0.1f; tables.fire_L = 512.f; tables.fire_eps = 1e-6f;
  tables.fire_cells = 32; tables.fire_cell_scale = 33.f; tables.fire_cell_seg = dev(fcell);
  tables.fire_steps = 1;
  tables.xpos_log2_decay = dev(xdec);
  tables.t5_dir_buckets = 16; tables.t5_nmax = 128; tables.t5_bucket = dev(t5bucket);
  tables.t5_table = dev(t5tab);
  tables.kerple_a = dev(ka); tables.kerple_p = dev(kp);
  const float *d_inv_freq = tables.inv_freq;

  // RoPE: the key pre-pass, then the kernel on its output (what the backends do)
  auto run = [&](const pa_prefill_params &p) {
    pa::launch_status st = p.k_rot ? pa_prefill::rope_k_launch(p, nullptr) : pa::launch_status{true, {0}};
    if (st.ok) st = mma::launch(p.k_rot ? pa_prefill::prerotated(p) : p, nullptr);
    if (!st.ok) { std::fprintf(stderr, "%s\n", st.msg); std::exit(1); }
  };
  struct Row { char name[64]; double ms, tflops, rel; };
  std::vector<Row> rows;

  // 1. no-PE TFLOP/s: 4k (batch 4) and 16k (batch 1), causal and not
  const int Ls[2] = {quick ? 128 : 4096, quick ? 256 : 16384};
  const int Bs[2] = {quick ? 2 : 4, 1};
  double base4k_causal = 0;
  for (int li = 0; li < 2; ++li)
    for (int causal = 0; causal < 2; ++causal) {
      Setup s = make(Bs[li], heads, Ls[li], causal, POSATTN_PE_NONE, q, k, v, out, lse, tables);
      const float ms = time_ms({[&] { run(s.p); }}, flush, flush_bytes);
      Row r;
      std::snprintf(r.name, sizeof r.name, "none L=%d b=%d %s", s.L, s.batch, causal ? "causal" : "full");
      r.ms = ms; r.tflops = s.flops / (ms * 1e-3) / 1e12; r.rel = 1.0;
      if (li == 0 && causal) base4k_causal = ms;
      rows.push_back(r);
      std::printf("%-34s %9.3f ms %8.1f TFLOP/s\n", r.name, r.ms, r.tflops);
    }
  // 2. each PE relative to no-PE (4k causal)
  const int kinds[7] = {POSATTN_PE_ROPE, POSATTN_PE_ALIBI, POSATTN_PE_FIRE, POSATTN_PE_XPOS,
                        POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER};
  const char *names[7] = {"rope", "alibi", "fire", "xpos", "t5", "kerple_log", "kerple_power"};
  for (int i = 0; i < 7; ++i) {
    Setup s = make(Bs[0], heads, Ls[0], 1, kinds[i], q, k, v, out, lse, tables, krot);
    const float ms = time_ms({[&] { run(s.p); }}, flush, flush_bytes);
    Row r;
    std::snprintf(r.name, sizeof r.name, "%s L=%d causal", names[i], s.L);
    r.ms = ms; r.tflops = s.flops / (ms * 1e-3) / 1e12; r.rel = ms / base4k_causal;
    rows.push_back(r);
    std::printf("%-34s %9.3f ms %8.1f TFLOP/s  x%.3f of no-PE\n", r.name, r.ms, r.tflops, r.rel);
  }
  // 3. fused RoPE vs separate RoPE kernel + no-PE attention (4k causal)
  {
    Setup fused = make(Bs[0], heads, Ls[0], 1, POSATTN_PE_ROPE, q, k, v, out, lse, tables, krot);
    Setup plain = make(Bs[0], heads, Ls[0], 1, POSATTN_PE_NONE, qr, kr, v, out, lse, tables);
    const int64_t toks = int64_t(Bs[0]) * Ls[0], pairs = toks * heads * d / 2;
    const unsigned blocks = unsigned((pairs + 255) / 256);
    const float f = time_ms({[&] { run(fused.p); }}, flush, flush_bytes);
    const float sep = time_ms({[&] { rope_separate<<<blocks, 256>>>(q, qr, toks, heads, d, d_inv_freq); },
                               [&] { rope_separate<<<blocks, 256>>>(k, kr, toks, heads, d, d_inv_freq); },
                               [&] { run(plain.p); }},
                              flush, flush_bytes);
    Row r1, r2;
    std::snprintf(r1.name, sizeof r1.name, "rope fused L=%d causal", Ls[0]);
    r1.ms = f; r1.tflops = fused.flops / (f * 1e-3) / 1e12; r1.rel = 1.0;
    std::snprintf(r2.name, sizeof r2.name, "rope separate+attn L=%d causal", Ls[0]);
    r2.ms = sep; r2.tflops = fused.flops / (sep * 1e-3) / 1e12; r2.rel = sep / f;
    rows.push_back(r1);
    rows.push_back(r2);
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("\n== prefill_mma hd128 bf16 on %s (rel: PE rows vs no-PE 4k causal; last row vs fused) ==\n",
              prop.name);
  std::printf("%-34s %10s %10s %8s\n", "case", "ms", "TFLOP/s", "rel");
  for (const Row &r : rows) std::printf("%-34s %10.3f %10.1f %8.3f\n", r.name, r.ms, r.tflops, r.rel);
  return 0;
}
