/* ref_paged.c -- the REF backend of the serving plan (posattn.h, "Serving: plan once, run per
 * layer"): the definition of what the paged kernels must compute for a run and an append, in
 * plain loops with fp64 arithmetic. host/plan.c has done the host-side checks (pointers, batch,
 * strides, dtypes, workspace size and alignment) before these are called.
 *
 * A run is posattn_decode's math with num_q_tokens = n_b for each sequence: every (row, head)
 * goes through pa_ref_paged_row, the row function REF decode uses (host/ref_decode.c), so a run
 * and a decode of the same problem give bit-identical results.
 *
 * BAD DEVICE-SIDE INDICES. On REF the "device" arrays are host memory and are checked here, in a
 * fixed order, so that "the first violation" is deterministic:
 *   1. q_indptr (new_indptr) element by element: [0] = 0, then each >= its predecessor and
 *      <= max_q_tokens. A violation skips the whole call (nothing written).
 *   2. then sequence by sequence (b = 0, 1, ...), for each sequence in array order: kv_lens[b],
 *      the block-table entries it uses (page slot by page slot), its query positions (row by
 *      row), its kv positions (j by j). A violation skips that sequence (its out/lse rows, or
 *      for an append its cache slots, are not written); the later sequences are still checked
 *      and computed.
 * Only the first violation of the call is recorded, and only if the workspace's record is clear
 * (status 0): an earlier unchecked violation is kept. The kernels check the same rules but, with
 * several violations, may record a different one of them (whichever thread gets there first).
 * What is checked:
 *   run:    0 <= L_b <= capacity; block_table[b][p] in [0, num_pages) for p < ceil(L_b/page_size);
 *           q_positions[row] (rows of b) and kv_positions[b][j] (j < L_b) in [0, max_position]
 *           when given (default positions are computed, not read, and not checked).
 *   append: n_b <= L_b <= capacity; the entries of the pages the new tokens go to (slots
 *           (L_b - n_b) / page_size .. (L_b - 1) / page_size); positions[row] in [0, max_position]
 *           when given and read (rotated cache with ROPE).
 * A sequence with n_b = 0 is not read at all (neither checked nor written): batches padded for a
 * captured CUDA graph may leave garbage in the lengths and tables of their padding sequences.
 *
 * Workspace: the error record (PA_RUN_ERROR_BYTES), then fp64 scratch for one row:
 * inv_freq[rotary_dim/2], q[d], k[d], acc[d]. The logits are recomputed in the second softmax
 * pass rather than stored, so the size does not depend on the cache length.
 *
 * Append: new token t of sequence b goes to cache index L_b - n_b + t; K is widened, rotated in
 * fp64 at its position (positions[row], default its cache index) when the plan rotates on append,
 * and rounded once to the cache dtype (FP8: fp8(x / scale), saturating; host/fp8.h via pa_store);
 * V is rounded once. */
#include <math.h>
#include <stdint.h>

#include "decode.h"
#include "plan.h"

/* The scratch after the error record, in doubles. */
static size_t scratch_doubles(const posattn_plan *plan) {
  return (size_t)(plan->rotary_dim / 2) + 3 * (size_t)plan->d;
}

posattn_status pa_plan_ref_prepare(posattn_plan *plan, char *msg, size_t msg_size) {
  if (plan->desc.pe.kind == POSATTN_PE_XPOS)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "desc->pe.kind: XPOS is not available in paged attention");
  /* REF computes every row in one pass over its cache: the split count is only reported */
  plan->num_splits = plan->desc.num_splits > 0 ? plan->desc.num_splits : 1;
  plan->workspace_bytes = pa_size_align256(
      pa_size_add(PA_RUN_ERROR_BYTES, pa_size_mul(scratch_doubles(plan), sizeof(double))));
  return POSATTN_STATUS_SUCCESS;
}

/* ---- the checks of BAD DEVICE-SIDE INDICES ----------------------------------------------- */

/* Records a violation unless one is already recorded; returns 0 (so `return fail(...)` reads as
 * "not valid"). */
static int fail(pa_run_error *rec, int32_t op, posattn_status st, int32_t what, int32_t seq,
                int64_t index, int64_t value) {
  if (rec->status == 0) {
    rec->op = op;
    rec->what = what;
    rec->seq = seq;
    rec->index = index;
    rec->value = value;
    rec->status = (int32_t)st;
  }
  return 0;
}

/* indptr[0 .. batch]: starts at 0, non-decreasing, ends <= max_q_tokens. */
static int indptr_ok(const posattn_plan *plan, const int32_t *indptr, int32_t batch, int32_t op,
                     int32_t what, pa_run_error *rec) {
  for (int32_t i = 0; i <= batch; i++) {
    const int32_t v = indptr[i];
    if ((i == 0 && v != 0) || (i > 0 && v < indptr[i - 1]) || v > plan->desc.max_q_tokens)
      return fail(rec, op, POSATTN_STATUS_BAD_SEQLENS, what, -1, i, v);
  }
  return 1;
}

/* What one sequence of a run or append reads. */
typedef struct seq_reads {
  int32_t b, len;             /* sequence, L_b */
  int64_t row0;               /* its first row (query row / new-token row) */
  int32_t n;                  /* its rows */
  const int32_t *block_row;   /* block_table + b * stride */
  int32_t page_lo, page_hi;   /* page slots used: [page_lo, page_hi) */
  const int32_t *row_pos;     /* q_positions / positions (indexed by row) or NULL */
  int32_t row_pos_what;       /* PA_RUN_BAD_Q_POSITION or PA_RUN_BAD_NEW_POSITION */
  const int32_t *kv_pos;      /* kv_positions row of b or NULL */
} seq_reads;

/* The per-sequence rules, in the documented order: pages, row positions, kv positions (the
 * length was checked by the caller, which knows the operation's rule). */
static int seq_ok(const posattn_plan *plan, const seq_reads *s, int32_t op, pa_run_error *rec) {
  for (int32_t p = s->page_lo; p < s->page_hi; p++) {
    const int32_t page = s->block_row[p];
    if (page < 0 || page >= plan->num_pages)
      return fail(rec, op, POSATTN_STATUS_INVALID_ARGUMENT, PA_RUN_BAD_PAGE, s->b, p, page);
  }
  if (s->row_pos)
    for (int64_t r = s->row0; r < s->row0 + s->n; r++)
      if (s->row_pos[r] < 0 || s->row_pos[r] > plan->max_position)
        return fail(rec, op, POSATTN_STATUS_BAD_POSITIONS, s->row_pos_what, s->b, r,
                    s->row_pos[r]);
  if (s->kv_pos)
    for (int32_t j = 0; j < s->len; j++)
      if (s->kv_pos[j] < 0 || s->kv_pos[j] > plan->max_position)
        return fail(rec, op, POSATTN_STATUS_BAD_POSITIONS, PA_RUN_BAD_KV_POSITION, s->b, j,
                    s->kv_pos[j]);
  return 1;
}

/* The plan's RoPE table (inv_freq[rotary_dim/2] and the attention factor) when q or K is rotated:
 * DYNAMIC_NTK without dynamic_seq_len uses max_position + 1 (posattn_plan_desc). */
static posattn_status rope_table(posattn_context *ctx, const posattn_plan *plan, double *inv_freq,
                                 double *af) {
  *af = 1.0;
  if (plan->rotary_dim == 0) return POSATTN_STATUS_SUCCESS;
  const int32_t seq_len = plan->max_position + 1;
  return posattn_pe_rope_inv_freq(&plan->desc.pe.rope, plan->d, seq_len, inv_freq, af, ctx->msg,
                                  PA_MSG_SIZE);
}

/* The plan's cache geometry with this call's pools and scales. */
static posattn_kv_cache layer_cache(const posattn_plan *plan, void *k_pages, void *v_pages,
                                    const float *k_scale, const float *v_scale) {
  posattn_kv_cache c = plan->desc.cache;
  c.k_pages = k_pages;
  c.v_pages = v_pages;
  c.k_scale = k_scale;
  c.v_scale = v_scale;
  return c;
}

/* ---- run ---------------------------------------------------------------------------------- */

posattn_status pa_plan_ref_run(posattn_context *ctx, const posattn_plan *plan,
                               const posattn_run_args *a) {
  PA_CHECK_INTERNAL(ctx, plan && a && a->workspace && a->workspace_bytes >= plan->workspace_bytes);
  pa_run_error *rec = (pa_run_error *)a->workspace;
  if (!indptr_ok(plan, a->q_indptr, a->batch, PA_RUN_OP_RUN, PA_RUN_BAD_Q_INDPTR, rec))
    return POSATTN_STATUS_SUCCESS;

  double *inv_freq = (double *)((char *)a->workspace + PA_RUN_ERROR_BYTES);
  double *q = inv_freq + plan->rotary_dim / 2, *k = q + plan->d, *acc = k + plan->d;
  double af = 1.0;
  PA_TRY(rope_table(ctx, plan, inv_freq, &af));
  const posattn_plan_desc *P = &plan->desc;
  const posattn_kv_cache cache = layer_cache(plan, a->k_pages, a->v_pages, a->k_scale, a->v_scale);
  const pa_ref_paged_cfg cfg = {.cache = &cache,
                                .d = plan->d,
                                .hq = plan->hq,
                                .group = plan->group,
                                .page_size = plan->page_size,
                                .scale = plan->scale,
                                .softcap = P->softcap,
                                .causal = P->causal,
                                .window_left = P->window_left,
                                .pe = &P->pe,
                                .rotary_dim = plan->rotary_dim,
                                .rotate_k = plan->rotate_k,
                                .inv_freq = inv_freq,
                                .attn_factor = af,
                                .sink_logits = P->use_sinks ? a->sink_logits : NULL};

  for (int32_t b = 0; b < a->batch; b++) {
    const int32_t n = a->q_indptr[b + 1] - a->q_indptr[b];
    if (n == 0) continue; /* not read: padding */
    const int32_t len = a->kv_lens[b];
    if (len < 0 || len > plan->capacity) {
      fail(rec, PA_RUN_OP_RUN, POSATTN_STATUS_BAD_SEQLENS, PA_RUN_BAD_KV_LEN, b, b, len);
      continue;
    }
    const seq_reads s = {
        .b = b,
        .len = len,
        .row0 = a->q_indptr[b],
        .n = n,
        .block_row = a->block_table + (int64_t)b * a->block_table_stride,
        .page_lo = 0,
        .page_hi = (len + plan->page_size - 1) / plan->page_size,
        .row_pos = a->q_positions,
        .row_pos_what = PA_RUN_BAD_Q_POSITION,
        .kv_pos = a->kv_positions ? a->kv_positions + (int64_t)b * a->kv_positions_stride : NULL};
    if (!seq_ok(plan, &s, PA_RUN_OP_RUN, rec)) continue;

    const pa_ref_paged_seq seq = {s.block_row, s.kv_pos, len};
    for (int32_t t = 0; t < n; t++) {
      const int64_t row = s.row0 + t, ia = (int64_t)len - n + t;
      const int64_t pq = a->q_positions ? a->q_positions[row] : ia;
      for (int32_t h = 0; h < plan->hq; h++) {
        const int64_t qoff = row * a->q.stride_seq + (int64_t)h * a->q.stride_head;
        const int64_t ooff = row * a->out.stride_seq + (int64_t)h * a->out.stride_head;
        for (int32_t f = 0; f < plan->d; f++) q[f] = pa_load(a->q.data, a->q.dtype, qoff + f);
        float *lse = a->lse ? &a->lse[row * plan->hq + h] : NULL;
        pa_ref_paged_row(&cfg, &seq, ia, pq, h, q, k, acc, a->out.data, a->out.dtype, ooff, lse);
      }
    }
  }
  return POSATTN_STATUS_SUCCESS;
}

/* ---- append ------------------------------------------------------------------------------- */

posattn_status pa_plan_ref_append(posattn_context *ctx, const posattn_plan *plan,
                                  const posattn_append_args *a) {
  PA_CHECK_INTERNAL(ctx, plan && a && a->workspace && a->workspace_bytes >= plan->workspace_bytes);
  pa_run_error *rec = (pa_run_error *)a->workspace;
  if (!indptr_ok(plan, a->new_indptr, a->batch, PA_RUN_OP_APPEND, PA_RUN_BAD_NEW_INDPTR, rec))
    return POSATTN_STATUS_SUCCESS;

  double *inv_freq = (double *)((char *)a->workspace + PA_RUN_ERROR_BYTES);
  double *x = inv_freq + plan->rotary_dim / 2;
  double af = 1.0;
  const int rotate = plan->rotate_on_append;
  if (rotate) PA_TRY(rope_table(ctx, plan, inv_freq, &af));
  const posattn_kv_cache c = layer_cache(plan, a->k_pages, a->v_pages, a->k_scale, a->v_scale);
  const posattn_rope_params *rope = &plan->desc.pe.rope;
  const int32_t ps = plan->page_size;

  for (int32_t b = 0; b < a->batch; b++) {
    const int32_t n = a->new_indptr[b + 1] - a->new_indptr[b];
    if (n == 0) continue; /* not read: padding */
    const int32_t len = a->kv_lens[b];
    if (len < n || len > plan->capacity) { /* also len < 0 */
      fail(rec, PA_RUN_OP_APPEND, POSATTN_STATUS_BAD_SEQLENS, PA_RUN_BAD_KV_LEN, b, b, len);
      continue;
    }
    const int32_t first = len - n; /* cache index of new token 0 */
    const seq_reads s = {.b = b,
                         .len = len,
                         .row0 = a->new_indptr[b],
                         .n = n,
                         .block_row = a->block_table + (int64_t)b * a->block_table_stride,
                         .page_lo = first / ps,
                         .page_hi = (len - 1) / ps + 1,
                         .row_pos = rotate ? a->positions : NULL,
                         .row_pos_what = PA_RUN_BAD_NEW_POSITION,
                         .kv_pos = NULL};
    if (!seq_ok(plan, &s, PA_RUN_OP_APPEND, rec)) continue;

    for (int32_t t = 0; t < n; t++) {
      const int64_t row = s.row0 + t, j = (int64_t)first + t;
      const int64_t page = s.block_row[j / ps];
      const int64_t pos = a->positions ? a->positions[row] : j;
      for (int32_t h = 0; h < plan->hkv; h++) {
        const int64_t dst = page * c.stride_page + (j % ps) * c.stride_slot +
                            (int64_t)h * c.stride_head;
        const int64_t ko = row * a->k_new.stride_seq + (int64_t)h * a->k_new.stride_head;
        const int64_t vo = row * a->v_new.stride_seq + (int64_t)h * a->v_new.stride_head;
        for (int32_t f = 0; f < plan->d; f++) x[f] = pa_load(a->k_new.data, a->k_new.dtype, ko + f);
        if (rotate)
          pa_rope_rotate(rope->layout, plan->rotary_dim, inv_freq, af, pos,
                         x + rope->rotary_offset);
        const double ks = pa_cache_scale(&c, 0, h), vs = pa_cache_scale(&c, 1, h);
        for (int32_t f = 0; f < plan->d; f++) pa_store(c.k_pages, c.dtype, dst + f, x[f] / ks);
        for (int32_t f = 0; f < plan->d; f++)
          pa_store(c.v_pages, c.dtype, dst + f,
                   pa_load(a->v_new.data, a->v_new.dtype, vo + f) / vs);
      }
    }
  }
  return POSATTN_STATUS_SUCCESS;
}
