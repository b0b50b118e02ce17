/* plan.c -- the serving plan/run entry points (posattn.h, "Serving: plan once, run per layer").
 * Creation validates the descriptor (host/validate.c, "Serving plans"), copies the PE parameter
 * arrays into one host block owned by the plan, and hands the plan to its backend's prepare hook
 * (tables, launch geometry, workspace size). Runs and appends check their arguments in O(1) and
 * call the backend; posattn_plan_check turns the workspace's error record into a status and a
 * message. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

void posattn_plan_desc_init(posattn_plan_desc *desc) {
  if (desc == NULL) return;
  memset(desc, 0, sizeof *desc);
  desc->q_dtype = POSATTN_DTYPE_BF16;
  desc->out_dtype = POSATTN_DTYPE_BF16;
  desc->causal = 1;
  desc->window_left = -1;
  posattn_pe_init(&desc->pe);
}

void posattn_run_args_init(posattn_run_args *args) {
  if (args != NULL) memset(args, 0, sizeof *args);
}

void posattn_append_args_init(posattn_append_args *args) {
  if (args != NULL) memset(args, 0, sizeof *args);
}

/* ---- the PE copy ----------------------------------------------------------------------------
 * Every array the plan's PE points to, copied into one block (8-byte aligned pieces) so that the
 * plan never reads caller memory after creation. Only the arrays of pe->kind are copied; the
 * others are set to NULL. */
typedef struct pe_array {
  const void **field; /* the pointer inside the plan's copy of the PE */
  size_t bytes;
} pe_array;

static int pe_arrays(posattn_pe *pe, int32_t hq, int32_t d, pe_array out[8]) {
  int n = 0;
  const size_t f4 = sizeof(float), f8 = sizeof(double);
  const size_t pairs = (size_t)pa_rope_dim(&pe->rope, d) / 2;
  switch (pe->kind) {
    case POSATTN_PE_ROPE:
      if (pe->rope.scaling == POSATTN_ROPE_SCALING_LONGROPE && pe->rope.ext_factors)
        out[n++] = (pe_array){(const void **)&pe->rope.ext_factors, pairs * f8};
      if (pe->rope.scaling == POSATTN_ROPE_SCALING_INV_FREQ && pe->rope.inv_freq)
        out[n++] = (pe_array){(const void **)&pe->rope.inv_freq, pairs * f8};
      break;
    case POSATTN_PE_ALIBI:
      if (pe->alibi.slopes) out[n++] = (pe_array){(const void **)&pe->alibi.slopes, (size_t)hq * f4};
      break;
    case POSATTN_PE_FIRE: {
      const size_t w = (size_t)pe->fire.mlp_width;
      out[n++] = (pe_array){(const void **)&pe->fire.w1, w * f4};
      out[n++] = (pe_array){(const void **)&pe->fire.b1, w * f4};
      out[n++] = (pe_array){(const void **)&pe->fire.w2, (size_t)hq * w * f4};
      out[n++] = (pe_array){(const void **)&pe->fire.b2, (size_t)hq * f4};
      break;
    }
    case POSATTN_PE_T5:
      out[n++] = (pe_array){(const void **)&pe->t5.table, (size_t)pe->t5.num_buckets * hq * f4};
      break;
    case POSATTN_PE_KERPLE_LOG:
    case POSATTN_PE_KERPLE_POWER:
      out[n++] = (pe_array){(const void **)&pe->kerple.a, (size_t)hq * f4};
      out[n++] = (pe_array){(const void **)&pe->kerple.p, (size_t)hq * f4};
      break;
    default: break;
  }
  return n;
}

/* Copies the arrays of plan->desc.pe (still pointing at the caller's memory) into pe_store and
 * re-points the fields; clears the arrays of the kinds the PE does not use. */
static posattn_status pe_copy(posattn_plan *plan, char *msg, size_t msg_size) {
  posattn_pe *pe = &plan->desc.pe;
  /* keep the scalars of every method, drop the pointers of the methods not selected */
  if (pe->kind != POSATTN_PE_ROPE) pe->rope.ext_factors = pe->rope.inv_freq = NULL;
  if (pe->kind != POSATTN_PE_ALIBI) pe->alibi.slopes = NULL;
  if (pe->kind != POSATTN_PE_FIRE) pe->fire.w1 = pe->fire.b1 = pe->fire.w2 = pe->fire.b2 = NULL;
  if (pe->kind != POSATTN_PE_T5) pe->t5.table = NULL;
  if (pe->kind != POSATTN_PE_KERPLE_LOG && pe->kind != POSATTN_PE_KERPLE_POWER)
    pe->kerple.a = pe->kerple.p = NULL;
  pe_array arr[8];
  const int n = pe_arrays(pe, plan->hq, plan->d, arr);
  size_t total = 0;
  for (int i = 0; i < n; ++i) total += (arr[i].bytes + 7) & ~(size_t)7;
  if (total == 0) return POSATTN_STATUS_SUCCESS;
  unsigned char *store = (unsigned char *)malloc(total);
  if (store == NULL)
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED,
                   "posattn_plan_create: out of host memory for the PE parameters (%zu bytes)",
                   total);
  size_t at = 0;
  for (int i = 0; i < n; ++i) {
    memcpy(store + at, *arr[i].field, arr[i].bytes);
    *arr[i].field = store + at;
    at += (arr[i].bytes + 7) & ~(size_t)7;
  }
  plan->pe_store = store;
  return POSATTN_STATUS_SUCCESS;
}

/* ---- backend dispatch ----------------------------------------------------------------------- */

static posattn_status backend_prepare(posattn_context *ctx, posattn_plan *plan) {
  switch (plan->backend) {
    case POSATTN_BACKEND_REF: return pa_plan_ref_prepare(plan, ctx->msg, PA_MSG_SIZE);
    case POSATTN_BACKEND_EMU: return pa_plan_emu_prepare(plan, ctx->msg, PA_MSG_SIZE);
    case POSATTN_BACKEND_CUDA:
#if defined(POSATTN_WITH_CUDA)
      return pa_plan_cuda_prepare(plan, ctx->msg, PA_MSG_SIZE);
#else
      return pa_cuda_available(ctx->device, ctx->msg, PA_MSG_SIZE);
#endif
    default: break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "plan on backend %d", (int)plan->backend);
}

static void backend_release(posattn_plan *plan) {
  if (plan->backend == POSATTN_BACKEND_EMU) pa_plan_emu_release(plan);
#if defined(POSATTN_WITH_CUDA)
  if (plan->backend == POSATTN_BACKEND_CUDA) pa_plan_cuda_release(plan);
#endif
}

posattn_status posattn_plan_create(posattn_context *ctx, const posattn_plan_desc *desc,
                                   posattn_plan **out) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  if (out == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "out is NULL");
  *out = NULL;
  posattn_plan *plan = (posattn_plan *)calloc(1, sizeof *plan);
  if (plan == NULL)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "posattn_plan_create: out of host memory");
  posattn_status st = pa_validate_plan_desc(ctx->msg, PA_MSG_SIZE, desc, plan);
  if (st == POSATTN_STATUS_SUCCESS) {
    plan->backend = ctx->backend;
    plan->device = ctx->device;
    plan->desc = *desc;
    plan->desc.cache.k_pages = plan->desc.cache.v_pages = NULL;
    plan->desc.cache.k_scale = plan->desc.cache.v_scale = NULL;
    /* DYNAMIC_NTK has no per-call length in a plan: its length is max_position + 1 unless given */
    if (plan->desc.pe.kind == POSATTN_PE_ROPE &&
        plan->desc.pe.rope.scaling == POSATTN_ROPE_SCALING_DYNAMIC_NTK &&
        plan->desc.pe.rope.dynamic_seq_len == 0)
      plan->desc.pe.rope.dynamic_seq_len = plan->max_position + 1;
    st = pe_copy(plan, ctx->msg, PA_MSG_SIZE);
  }
  if (st == POSATTN_STATUS_SUCCESS) st = backend_prepare(ctx, plan);
  if (st == POSATTN_STATUS_SUCCESS &&
      (plan->workspace_bytes < PA_RUN_ERROR_BYTES || plan->num_splits < 1))
    st = PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL,
                     "plan backend left workspace_bytes %zu / num_splits %d", plan->workspace_bytes,
                     plan->num_splits);
  if (st != POSATTN_STATUS_SUCCESS) {
    posattn_plan_destroy(plan);
    return st;
  }
  *out = plan;
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

void posattn_plan_destroy(posattn_plan *plan) {
  if (plan == NULL) return;
  backend_release(plan);
  free(plan->pe_store);
  free(plan);
}

posattn_status posattn_plan_workspace_size(const posattn_plan *plan, size_t *bytes) {
  if (plan == NULL || bytes == NULL) return POSATTN_STATUS_NULL_POINTER;
  *bytes = plan->workspace_bytes;
  return POSATTN_STATUS_SUCCESS;
}

/* The context must run the plan's backend on the plan's device. */
static posattn_status check_ctx(posattn_context *ctx, const posattn_plan *plan) {
  if (plan == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "plan is NULL");
  if (ctx->backend != plan->backend)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_INVALID_ARGUMENT,
                       "the context's backend (%s) must be the plan's (%s)",
                       posattn_backend_string(ctx->backend), posattn_backend_string(plan->backend));
  if (ctx->backend == POSATTN_BACKEND_CUDA && ctx->device != plan->device)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_INVALID_ARGUMENT,
                       "the context's device (%d) must be the plan's (%d)", ctx->device,
                       plan->device);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_plan_workspace_init(posattn_context *ctx, const posattn_plan *plan,
                                           void *workspace, size_t workspace_bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  PA_TRY(check_ctx(ctx, plan));
  PA_TRY(pa_validate_plan_workspace(ctx->msg, PA_MSG_SIZE, plan, workspace, workspace_bytes));
#if defined(POSATTN_WITH_CUDA)
  if (plan->backend == POSATTN_BACKEND_CUDA) {
    PA_TRY(pa_plan_cuda_clear_error(ctx, workspace));
    ctx->msg[0] = '\0';
    return POSATTN_STATUS_SUCCESS;
  }
#endif
  memset(workspace, 0, PA_RUN_ERROR_BYTES);
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_plan_run(posattn_context *ctx, const posattn_plan *plan,
                                const posattn_run_args *args) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  PA_TRY(check_ctx(ctx, plan));
  PA_TRY(pa_validate_run_args(ctx->msg, PA_MSG_SIZE, plan, args));
  switch (plan->backend) {
    case POSATTN_BACKEND_REF: PA_TRY(pa_plan_ref_run(ctx, plan, args)); break;
    case POSATTN_BACKEND_EMU: PA_TRY(pa_plan_emu_run(ctx, plan, args)); break;
#if defined(POSATTN_WITH_CUDA)
    case POSATTN_BACKEND_CUDA: PA_TRY(pa_plan_cuda_run(ctx, plan, args)); break;
#endif
    default:
      return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "run on backend %d", (int)plan->backend);
  }
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_plan_append(posattn_context *ctx, const posattn_plan *plan,
                                   const posattn_append_args *args) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  PA_TRY(check_ctx(ctx, plan));
  PA_TRY(pa_validate_append_args(ctx->msg, PA_MSG_SIZE, plan, args));
  switch (plan->backend) {
    case POSATTN_BACKEND_REF: PA_TRY(pa_plan_ref_append(ctx, plan, args)); break;
    case POSATTN_BACKEND_EMU: PA_TRY(pa_plan_emu_append(ctx, plan, args)); break;
#if defined(POSATTN_WITH_CUDA)
    case POSATTN_BACKEND_CUDA: PA_TRY(pa_plan_cuda_append(ctx, plan, args)); break;
#endif
    default:
      return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "append on backend %d", (int)plan->backend);
  }
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

/* ---- the error record ----------------------------------------------------------------------- */

static int known_violation(const pa_run_error *e) {
  const int st_ok = e->status == POSATTN_STATUS_BAD_SEQLENS ||
                    e->status == POSATTN_STATUS_INVALID_ARGUMENT ||
                    e->status == POSATTN_STATUS_BAD_POSITIONS;
  const int op_ok = e->op == PA_RUN_OP_RUN || e->op == PA_RUN_OP_APPEND;
  return st_ok && op_ok && e->what >= PA_RUN_BAD_Q_INDPTR && e->what <= PA_RUN_BAD_NEW_POSITION;
}

/* The message of a recorded violation (posattn.h: names the sequence, the element, the value and
 * the rule, and says what was not written). */
static posattn_status report(posattn_context *ctx, const posattn_plan *plan, const pa_run_error *e) {
  const char *op = e->op == PA_RUN_OP_APPEND ? "append" : "run";
  const long long idx = (long long)e->index, val = (long long)e->value;
  const char *skipped = e->op == PA_RUN_OP_APPEND ? "nothing of it was written to the cache"
                                                  : "its out and lse rows were not written";
  const posattn_status st = (posattn_status)e->status;
  switch (e->what) {
    case PA_RUN_BAD_Q_INDPTR:
    case PA_RUN_BAD_NEW_INDPTR:
      return PA_CTX_FAIL(ctx, st,
                         "%s: %s[%lld] = %lld breaks the rule %s[0] = 0, non-decreasing, last "
                         "entry <= max_q_tokens (%d): the whole %s wrote nothing",
                         op, e->what == PA_RUN_BAD_Q_INDPTR ? "q_indptr" : "new_indptr", idx, val,
                         e->what == PA_RUN_BAD_Q_INDPTR ? "q_indptr" : "new_indptr",
                         plan->desc.max_q_tokens, op);
    case PA_RUN_BAD_KV_LEN:
      return PA_CTX_FAIL(ctx, st,
                         "%s: sequence %d: kv_lens[%d] = %lld must be in [%s, max_pages_per_seq * "
                         "page_size = %lld]: %s",
                         op, e->seq, e->seq, val,
                         e->op == PA_RUN_OP_APPEND ? "its new tokens" : "0",
                         (long long)plan->capacity, skipped);
    case PA_RUN_BAD_PAGE:
      return PA_CTX_FAIL(ctx, st,
                         "%s: sequence %d: block_table[%d][%lld] = %lld is outside [0, num_pages = "
                         "%d): %s",
                         op, e->seq, e->seq, idx, val, plan->num_pages, skipped);
    case PA_RUN_BAD_Q_POSITION:
    case PA_RUN_BAD_NEW_POSITION:
      return PA_CTX_FAIL(ctx, st,
                         "%s: sequence %d: %s[%lld] = %lld is outside [0, max_position = %d]: %s",
                         op, e->seq, e->what == PA_RUN_BAD_Q_POSITION ? "q_positions" : "positions",
                         idx, val, plan->max_position, skipped);
    case PA_RUN_BAD_KV_POSITION:
      return PA_CTX_FAIL(ctx, st,
                         "%s: sequence %d: kv_positions[%d][%lld] = %lld is outside [0, "
                         "max_position = %d]: %s",
                         op, e->seq, e->seq, idx, val, plan->max_position, skipped);
    default: break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "error record holds kind %d", e->what);
}

posattn_status posattn_plan_check(posattn_context *ctx, const posattn_plan *plan, void *workspace,
                                  size_t workspace_bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  PA_TRY(check_ctx(ctx, plan));
  PA_TRY(pa_validate_plan_workspace(ctx->msg, PA_MSG_SIZE, plan, workspace, workspace_bytes));
  pa_run_error rec;
#if defined(POSATTN_WITH_CUDA)
  if (plan->backend == POSATTN_BACKEND_CUDA) {
    PA_TRY(pa_plan_cuda_read_error(ctx, workspace, &rec));
    if (rec.status != 0) PA_TRY(pa_plan_cuda_clear_error(ctx, workspace));
  } else
#endif
  {
    memcpy(&rec, workspace, sizeof rec);
    memset(workspace, 0, PA_RUN_ERROR_BYTES);
  }
  if (rec.status == 0) {
    ctx->msg[0] = '\0';
    return POSATTN_STATUS_SUCCESS;
  }
  if (!known_violation(&rec))
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL,
                       "the workspace's error record is garbage (status %d, kind %d): was the "
                       "workspace prepared with posattn_plan_workspace_init?",
                       rec.status, rec.what);
  return report(ctx, plan, &rec);
}
