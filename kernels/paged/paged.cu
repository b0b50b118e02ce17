// paged.cu -- the kernels of a plan's run and append (posattn.h, "Serving: plan once, run per
// layer"), written once against the device layer (EMU and nvcc). Every grid is fixed by the plan
// and the host scalar `batch`, never by device data, so a run can be captured in a CUDA graph and
// replayed with new lengths, block tables and query counts:
//
//   paged_check    one block per sequence: validates the call's device-side indices against the
//                  plan (BAD DEVICE-SIDE INDICES): the indptr of the whole call, then the
//                  sequence's length, the block-table entries of its pages and the positions it
//                  reads. Writes the sequence's verdict (params.h) and records the first violation
//                  found in the workspace's error record (atomic compare-and-swap of `status`).
//   paged_split    one block per (KV split, kv head, chunk slot): a chunk is up to kRows query rows
//                  of ONE sequence (rows = that sequence's tokens x the GQA group, token-major).
//                  Each block maps its slot to (sequence, chunk) by walking the indptr (unused
//                  slots exit) and its split to a page range from the sequence's own length. The
//                  block body is decode_split's (kernels/decode/simt_split.cuh): K/V tiles
//                  gathered through the block table into shared memory as fp32 (K rotated there
//                  for un-rotated caches), q rotated once; causal / window per row at
//                  i' = L_b - n_b + t; writes a normalised partial output and its LSE per split.
//   paged_combine  grid-stride over (row, head) pairs of rows < indptr[batch]: finds the row's
//                  sequence by binary search of the indptr, merges the splits and the sink
//                  (kernels/merge/merge.cuh, as decode_combine), writes out and lse.
//   paged_append   grid-stride over new rows: writes K/V into their page slots (K rotated in fp32
//                  first for a rotated cache; FP8 encoded with its scale).
// Sequences with a bad verdict are skipped by every kernel after paged_check; nothing reads or
// writes memory through an index that paged_check did not accept.
// Numerics follow decode (kernels/decode/decode.cu): fp32 online softmax (the shared block body), the NaN rule (a
// non-finite V element is staged as 0 with its key's K element NaN, so only rows that see the key
// become NaN), logit_or_nan, a NaN-keeping combine.
#ifndef POSATTN_PAGED_CU
#define POSATTN_PAGED_CU

#include "decode/cache_io.cuh"
#include "decode/simt_split.cuh"
#include "fp8.h"
#include "merge/merge.cuh"
#include "paged/config.h"
#include "paged/params.h"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"
#include "plan.h"

namespace pa_paged {

using pa_merge::load_any;
using pa_merge::store_any;

// Element I/O of the cache pools, as decode's (kernels/decode/cache_io.cuh).
using pa_cache::CacheIO;
using pa_cache::Fp8IO;
using pa_cache::scale_of;

// ---- paged_check -----------------------------------------------------------------------------

// The error record (host/plan.h pa_run_error) as int32 words: status, op, what, seq, then the
// int64 index and value at words 4 and 6. The first finder wins the compare-and-swap of status.
PA_DEVICE void record_error(const pa_paged_seqs &s, int32_t status, int32_t what, int32_t seq,
                            int64_t index, int64_t value) {
  if (pa::atomic_cas(s.err, int32_t(0), status) != 0) return;
  s.err[1] = s.op;
  s.err[2] = what;
  s.err[3] = seq;
  const pa::gptr<int64_t> wide = pa::ptr_cast<int64_t>(s.err);
  wide[2] = index;
  wide[3] = value;
}

// The smallest i in [0, count) with bad(i), or -1; every thread of the block gets the answer.
// `red` is kThreads int64 of shared memory. Every thread of the block must call it.
template <class Bad>
PA_DEVICE int64_t first_bad(int64_t count, Bad bad, pa::sptr<int64_t> red, int tid) {
  int64_t mine = -1;
  for (int64_t i = tid; i < count; i += kThreads)
    if (bad(i)) {
      mine = i;
      break;
    }
  red[tid] = mine;
  __syncthreads();
  int64_t best = -1;
  for (int t = 0; t < kThreads; ++t) {
    const int64_t v = red[t];
    if (v >= 0 && (best < 0 || v < best)) best = v;
  }
  __syncthreads();  // red is reused by the next call
  return best;
}

__global__ void __launch_bounds__(kThreads) paged_check(const pa_paged_seqs s) {
  const int b = int(blockIdx.x), tid = int(threadIdx.x);
  PA_SHARED(int64_t, red, kThreads);
  const bool append = s.op == PA_RUN_OP_APPEND;

  // The indptr of the whole call: indptr[0] = 0, non-decreasing, indptr[batch] <= max_q_tokens.
  const int64_t bad_ip = first_bad(
      int64_t(s.batch) + 1,
      [&](int64_t i) {
        const int32_t v = s.indptr[i];
        if (i == 0) return v != 0;
        return v < int32_t(s.indptr[i - 1]) || v > s.max_q_tokens;
      },
      red, tid);
  if (bad_ip >= 0) {
    if (tid == 0) {
      s.verdict[b] = PA_PAGED_BAD_RUN;
      if (b == 0)
        record_error(s, POSATTN_STATUS_BAD_SEQLENS, append ? PA_RUN_BAD_NEW_INDPTR : PA_RUN_BAD_Q_INDPTR,
                     -1, bad_ip, int32_t(s.indptr[bad_ip]));
    }
    return;
  }

  const int32_t q0 = s.indptr[b], n = s.indptr[b + 1] - q0;
  if (n == 0) {  // not read at all: padding sequences of a captured batch may hold anything
    if (tid == 0) s.verdict[b] = PA_PAGED_OK;
    return;
  }
  const int32_t len = s.kv_lens[b];
  int32_t status = 0, what = 0;
  int64_t index = 0, value = 0;
  // Append: the new tokens go to cache indices len - n .. len - 1, so n <= len.
  if (len < 0 || len > s.capacity || (append && n > len)) {
    status = POSATTN_STATUS_BAD_SEQLENS;
    what = PA_RUN_BAD_KV_LEN;
    index = b;
    value = len;
  }
  if (!status) {  // the pages read (run: all of the sequence's) or written (append)
    const int64_t first = append ? (int64_t(len) - n) / s.page_size : 0;
    const int64_t pages = (int64_t(len) + s.page_size - 1) / s.page_size - first;
    const pa::gptr<const int32_t> row = s.block_table + int64_t(b) * s.bt_stride + first;
    const int64_t p = first_bad(pages, [&](int64_t i) {
      const int32_t pg = row[i];
      return pg < 0 || pg >= s.num_pages;
    }, red, tid);
    if (p >= 0) {
      status = POSATTN_STATUS_INVALID_ARGUMENT;
      what = PA_RUN_BAD_PAGE;
      index = first + p;
      value = int32_t(row[p]);
    }
  }
  // Positions: a given array is checked when the call reads it. Default positions are not
  // checked (as REF): the PE tables cover every default position (host.h, PagedPeView).
  if (!status && s.pos && s.check_pos) {  // query / new-token rows of the sequence
    const int64_t t = first_bad(n, [&](int64_t i) {
      const int32_t v = s.pos[q0 + i];
      return v < 0 || v > s.max_position;
    }, red, tid);
    if (t >= 0) {
      status = POSATTN_STATUS_BAD_POSITIONS;
      what = append ? PA_RUN_BAD_NEW_POSITION : PA_RUN_BAD_Q_POSITION;
      index = q0 + t;
      value = int32_t(s.pos[q0 + t]);
    }
  }
  if (!status && !append && s.kv_pos && s.check_pos) {  // keys j < L_b
    const pa::gptr<const int32_t> row = s.kv_pos + int64_t(b) * s.kvp_stride;
    const int64_t j = first_bad(len, [&](int64_t i) {
      const int32_t v = row[i];
      return v < 0 || v > s.max_position;
    }, red, tid);
    if (j >= 0) {
      status = POSATTN_STATUS_BAD_POSITIONS;
      what = PA_RUN_BAD_KV_POSITION;
      index = j;
      value = int32_t(row[j]);
    }
  }
  if (tid == 0) {
    s.verdict[b] = status ? PA_PAGED_BAD_SEQ : PA_PAGED_OK;
    if (status) record_error(s, status, what, b, index, value);
  }
}

// The sequence of row `row` (indptr[b] <= row < indptr[b + 1]; row < indptr[batch]).
PA_DEVICE int seq_of_row(const pa_paged_seqs &s, int32_t row) {
  int lo = 0, hi = s.batch;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (int32_t(s.indptr[mid]) <= row) lo = mid; else hi = mid;
  }
  return lo;
}

// ---- paged_split -----------------------------------------------------------------------------
// Slot `slot` of a chunk grid of `rows_per_block` rows -> (sequence, chunk): sequences' chunks are
// numbered in order. -1 for an unused slot.
PA_DEVICE int slot_sequence(const pa_paged_seqs &sq, int group, int rows_per_block, int slot,
                            int &chunk) {
  chunk = slot;
  for (int i = 0; i < sq.batch; ++i) {
    const int rows_i = (int32_t(sq.indptr[i + 1]) - int32_t(sq.indptr[i])) * group;
    const int chunks_i = (rows_i + rows_per_block - 1) / rows_per_block;
    if (chunk < chunks_i) return i;
    chunk -= chunks_i;
  }
  return -1;
}

// The keys [lo, hi) of split `split` for the chunk whose rows hold tokens t_first .. t_last of
// sequence b (length len, n tokens): pages per split from the sequence's own length, narrowed to
// the keys the first token may see (window) and the last may see (causal).
PA_DEVICE void split_keys(const pa_paged_params &p, int len, int base, int split, int t_first,
                          int t_last, int &lo, int &hi) {
  const pa_paged_seqs &sq = p.sq;
  const int64_t pages = (int64_t(len) + sq.page_size - 1) / sq.page_size;
  const int64_t split_tokens = ((pages + p.num_splits - 1) / p.num_splits) * sq.page_size;
  int64_t lo64 = pa::min(int64_t(split) * split_tokens, int64_t(len));
  int64_t hi64 = pa::min(lo64 + split_tokens, int64_t(len));
  if (p.causal) hi64 = pa::max(lo64, pa::min(hi64, int64_t(base) + t_last + 1));
  if (p.window_left >= 0)
    lo64 = pa::min(pa::max(lo64, int64_t(base) + t_first - p.window_left), hi64);
  lo = int(lo64);
  hi = int(hi64);
}

// A split block's work (kernels/decode/simt_split.cuh; paged_mma.cuh adds what mma_split.cuh
// needs): row r is token t of the sequence for q head h, the heads of a token adjacent.
struct PagedJob {
  const pa_paged_params &p;
  int split, b, hk, q0, r0, base, rows, lo, hi;

  PA_DEVICE const pa_prefill_params &pe() const { return p.pe; }
  PA_DEVICE int causal() const { return p.causal; }
  PA_DEVICE int window_left() const { return p.window_left; }
  PA_DEVICE int rotate_k() const { return p.rotate_k; }
  PA_DEVICE int d() const { return p.d; }
  PA_DEVICE float k_scale() const { return scale_of(p.k_scale, p.scale_per_head, hk); }
  PA_DEVICE float v_scale() const { return scale_of(p.v_scale, p.scale_per_head, hk); }
  PA_DEVICE pa::gptr<const unsigned char> k_pages() const { return p.k_pages; }
  PA_DEVICE pa::gptr<const unsigned char> v_pages() const { return p.v_pages; }
  PA_DEVICE pa::gptr<float> part_o() const { return p.part_o; }
  PA_DEVICE pa::gptr<float> part_lse() const { return p.part_lse; }
  PA_DEVICE int row_token(int r) const { return (r0 + r) / p.group; }
  PA_DEVICE int row_head(int r) const { return hk * p.group + (r0 + r) % p.group; }
  PA_DEVICE int q_index(int r) const { return base + row_token(r); }
  PA_DEVICE int32_t q_pos(int r) const {
    return p.sq.pos ? int32_t(p.sq.pos[q0 + row_token(r)]) : base + row_token(r);
  }
  PA_DEVICE int32_t kv_pos(int j) const {
    return p.sq.kv_pos ? int32_t(p.sq.kv_pos[int64_t(b) * p.sq.kvp_stride + j]) : int32_t(j);
  }
  PA_DEVICE float q_elem(int r, int c) const {
    return load_any(p.q, p.q_dtype, int64_t(q0 + row_token(r)) * p.q_ss + int64_t(row_head(r)) * p.q_sh + c);
  }
  PA_DEVICE int64_t token_offset(int j) const {
    const int64_t page = p.sq.block_table[int64_t(b) * p.sq.bt_stride + j / p.sq.page_size];
    return page * p.stride_page + int64_t(j % p.sq.page_size) * p.stride_slot + int64_t(hk) * p.stride_head;
  }
  PA_DEVICE int64_t part_row(int r) const {
    return (int64_t(split) * p.sq.max_q_tokens + q0 + row_token(r)) * p.hq + row_head(r);
  }
};

// The block's (sequence, chunk of kRows rows) from its slot, its keys from the split, then the
// block body shared with decode_split (kernels/decode/simt_split.cuh).
template <class IO, int DMAX>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DMAX>) paged_split(const pa_paged_params p) {
  const pa_paged_seqs &sq = p.sq;
  if (sq.verdict[0] == PA_PAGED_BAD_RUN) return;  // the indptr is bad: nothing to map

  int chunk;
  const int b = slot_sequence(sq, p.group, kRows, int(blockIdx.x), chunk);
  if (b < 0 || sq.verdict[b] != PA_PAGED_OK) return;

  const int split = int(blockIdx.z), hk = int(blockIdx.y);
  const int q0 = sq.indptr[b], n = int32_t(sq.indptr[b + 1]) - q0, len = sq.kv_lens[b];
  const int r0 = chunk * kRows, rows = pa::min(kRows, n * p.group - r0);
  const int base = len - n;  // i' of token t is base + t
  // This split's keys, narrowed to those the chunk's tokens may see.
  int lo, hi;
  split_keys(p, len, base, split, r0 / p.group, rows > 0 ? (r0 + rows - 1) / p.group : 0, lo, hi);
  const PagedJob job{p, split, b, hk, q0, r0, base, rows, lo, hi};
  pa_decode::simt_split_block<IO, DMAX>(job);
}

// ---- paged_combine ---------------------------------------------------------------------------
// The splits and the sink of each (row, head) merged by combine_splits (kernels/merge/merge.cuh),
// as decode_combine.
__global__ void __launch_bounds__(kThreads) paged_combine(const pa_paged_params p) {
  const pa_paged_seqs &sq = p.sq;
  if (sq.verdict[0] == PA_PAGED_BAD_RUN) return;
  const int32_t rows = sq.indptr[sq.batch];
  const int64_t per_split = int64_t(sq.max_q_tokens) * p.hq;
  for (int64_t e = blockIdx.x; e < int64_t(rows) * p.hq; e += gridDim.x) {
    const int32_t row = int32_t(e / p.hq);
    const int h = int(e % p.hq);
    if (sq.verdict[seq_of_row(sq, row)] != PA_PAGED_OK) continue;  // uniform in the block
    const int64_t r0 = int64_t(row) * p.hq + h;
    const auto store = [&](int c, float o) {
      store_any(p.out, p.out_dtype, int64_t(row) * p.o_ss + int64_t(h) * p.o_sh + c, o);
    };
    const pa_merge::LseSum sum = pa_merge::combine_splits<kThreads>(
        p.num_splits, per_split, r0, p.d, p.part_o, p.part_lse, p.sinks ? float(p.sinks[h]) : -INFINITY, store);
    if (p.lse && threadIdx.x == 0) p.lse[r0] = sum.lse(false);
  }
}

// ---- paged_append ----------------------------------------------------------------------------
template <class IO>
__global__ void __launch_bounds__(kThreads) paged_append(const pa_paged_append_params p) {
  const pa_paged_seqs &sq = p.sq;
  if (sq.verdict[0] == PA_PAGED_BAD_RUN) return;
  const int32_t rows = sq.indptr[sq.batch];
  for (int32_t row = int32_t(blockIdx.x); row < rows; row += int32_t(gridDim.x)) {
    const int b = seq_of_row(sq, row);
    if (sq.verdict[b] != PA_PAGED_OK) continue;
    const int32_t q0 = sq.indptr[b], n = int32_t(sq.indptr[b + 1]) - q0;
    const int64_t j = int64_t(sq.kv_lens[b]) - n + (row - q0);  // cache index, >= 0 (checked)
    const int32_t pos = sq.pos ? int32_t(sq.pos[row]) : int32_t(j);
    const int64_t page = sq.block_table[int64_t(b) * sq.bt_stride + j / sq.page_size];
    const int64_t slot = page * p.stride_page + (j % sq.page_size) * p.stride_slot;
    for (int e = int(threadIdx.x); e < p.hkv * p.d; e += kThreads) {
      const int h = e / p.d, f = e % p.d;
      const int64_t ko = int64_t(row) * p.k_ss + int64_t(h) * p.k_sh;
      const auto k_in = [&](int i) { return load_any(p.k, p.in_dtype, ko + i); };
      const float x = pa_cache::rope_feature(p.pe, f, pos, k_in);
      const int64_t dst = slot + int64_t(h) * p.stride_head + f;
      IO::store(p.k_pages, dst, x / scale_of(p.k_scale, p.scale_per_head, h));
      const int64_t vo = int64_t(row) * p.v_ss + int64_t(h) * p.v_sh + f;
      IO::store(p.v_pages, dst, load_any(p.v, p.in_dtype, vo) / scale_of(p.v_scale, p.scale_per_head, h));
    }
  }
}

// ---- the kernel set --------------------------------------------------------------------------
// Every kernel of a plan, indexed as config.h says (cache dtype index, head-dim class): the EMU
// backend launches them through pa::launch, the CUDA backend takes their addresses
// (kernels/paged/cuda_kernels.cu) and launches them with cudaLaunchKernel.
using SplitFn = void (*)(const pa_paged_params);
using AppendFn = void (*)(const pa_paged_append_params);

template <class IO>
inline SplitFn split_kernel_dim(int dim_class) {
  switch (dim_class) {
    case 0: return paged_split<IO, 64>;
    case 1: return paged_split<IO, 128>;
    default: return paged_split<IO, kMaxDim>;
  }
}
inline SplitFn split_kernel(int cache_index, int dim_class) {
  switch (cache_index) {
    case kCacheF16: return split_kernel_dim<CacheIO<pa::f16>>(dim_class);
    case kCacheBF16: return split_kernel_dim<CacheIO<pa::bf16>>(dim_class);
    case kCacheE4M3: return split_kernel_dim<Fp8IO<0>>(dim_class);
    case kCacheE5M2: return split_kernel_dim<Fp8IO<1>>(dim_class);
    default: return split_kernel_dim<CacheIO<float>>(dim_class);
  }
}
inline AppendFn append_kernel(int cache_index) {
  switch (cache_index) {
    case kCacheF16: return paged_append<CacheIO<pa::f16>>;
    case kCacheBF16: return paged_append<CacheIO<pa::bf16>>;
    case kCacheE4M3: return paged_append<Fp8IO<0>>;
    case kCacheE5M2: return paged_append<Fp8IO<1>>;
    default: return paged_append<CacheIO<float>>;
  }
}

}  // namespace pa_paged
#endif
