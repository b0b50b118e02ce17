/* plan.h -- internal interfaces of the serving plan/run API (issue 13), shared by host/plan.c
 * (entry points, host-side validation, REF dispatch), host/ref_paged.c (REF run and append, fp64)
 * and the kernel backends kernels/paged/ (EMU and CUDA). C11, also valid C++.
 *
 * A plan owns: a copy of its descriptor whose PE arrays point into `pe_store` (deep copies, host
 * memory), the derived geometry below, and whatever its backend builds at creation (EMU/CUDA:
 * the PE tables and kernel-parameter templates, through `backend_state`, released by the
 * backend's release hook).
 *
 * Workspace layout (every backend): bytes [0, PA_RUN_ERROR_BYTES) hold the ERROR RECORD
 * (pa_run_error below); the backend's own regions follow. */
#ifndef POSATTN_PLAN_H
#define POSATTN_PLAN_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the error record ------------------------------------------------------------------------
 * Written by the kernels (and REF) on the first bad device-side index of a run/append: `status`
 * goes from 0 to the posattn_status of the violation with one atomic compare-and-swap (so the
 * first finder wins), then the finder writes the other fields. posattn_plan_check reads it, turns
 * it into the message, and zeroes it. */
enum {
  PA_RUN_ERROR_BYTES = 256,
  /* which array (pa_run_error.what) */
  PA_RUN_BAD_Q_INDPTR = 1,    /* index = b (element q_indptr[b]), value = its value */
  PA_RUN_BAD_KV_LEN = 2,      /* index = b, value = kv_lens[b] */
  PA_RUN_BAD_PAGE = 3,        /* index = page slot p of block_table[seq][p], value = the entry */
  PA_RUN_BAD_Q_POSITION = 4,  /* index = row, value = q_positions[row] */
  PA_RUN_BAD_KV_POSITION = 5, /* index = j, value = kv_positions[seq][j] */
  PA_RUN_BAD_NEW_INDPTR = 6,  /* append: as PA_RUN_BAD_Q_INDPTR for new_indptr */
  PA_RUN_BAD_NEW_POSITION = 7 /* append: index = row, value = positions[row] */
};
enum { PA_RUN_OP_RUN = 1, PA_RUN_OP_APPEND = 2 };
typedef struct pa_run_error {
  int32_t status; /* 0 = no violation recorded; else a posattn_status (BAD_SEQLENS, ...) */
  int32_t op;     /* PA_RUN_OP_RUN or PA_RUN_OP_APPEND */
  int32_t what;   /* PA_RUN_BAD_* */
  int32_t seq;    /* sequence b (-1 when the whole call is affected: q_indptr) */
  int64_t index;  /* see PA_RUN_BAD_* */
  int64_t value;  /* the offending value */
} pa_run_error;

/* ---- the plan ----------------------------------------------------------------------------- */
struct posattn_plan {
  posattn_backend backend; /* the creating context's backend (never AUTO) */
  int device;              /* CUDA device ordinal */
  posattn_plan_desc desc;  /* validated copy; desc.pe's arrays point into pe_store */
  void *pe_store;          /* host copies of the PE parameter arrays (one allocation) */

  int32_t hq, hkv, group, d;
  int32_t page_size, num_pages, mpps; /* mpps = max_pages_per_seq */
  int64_t capacity;                   /* mpps * page_size */
  int32_t max_position;               /* effective (desc value or capacity - 1) */
  double scale;                       /* effective softmax scale */
  int32_t rotary_dim;                 /* ROPE: effective rotary dim, else 0 */
  int rotate_k;                       /* ROPE on an un-rotated cache: runs rotate K at pk */
  int rotate_on_append;               /* ROPE on a rotated cache: appends rotate K */
  int32_t num_splits;                 /* effective split count, fixed by the backend at creation */

  size_t workspace_bytes;             /* set at creation: >= PA_RUN_ERROR_BYTES */
  void *backend_state;                /* the EMU/CUDA backend's (tables, parameter templates) */
};

/* ---- validation (host/validate.c, section "Serving plans") ------------------------------------
 * pa_validate_plan_desc: the whole descriptor; fills plan's derived fields (not desc, pe_store,
 * num_splits's final value, workspace_bytes, backend_state). The others: O(1) host-side checks of a
 * run's / append's arguments against a created plan (never reading device-side arrays). */
posattn_status pa_validate_plan_desc(char *msg, size_t msg_size, const posattn_plan_desc *desc,
                                     posattn_plan *plan);
posattn_status pa_validate_run_args(char *msg, size_t msg_size, const posattn_plan *plan,
                                    const posattn_run_args *args);
posattn_status pa_validate_append_args(char *msg, size_t msg_size, const posattn_plan *plan,
                                       const posattn_append_args *args);
posattn_status pa_validate_plan_workspace(char *msg, size_t msg_size, const posattn_plan *plan,
                                          const void *ws, size_t bytes);

/* ---- backend hooks ------------------------------------------------------------------------
 * prepare: called by posattn_plan_create after validation and the PE copy; fixes num_splits and
 *          workspace_bytes, builds backend_state (NOT_SUPPORTED with a reason when no kernel
 *          serves the plan). release: frees backend_state (NULL-safe, also after a failed
 *          prepare). run / append: host-side checks are done by host/plan.c; these only launch.
 * read_error / clear_error: copy the record out of / zero it in a workspace of the backend's
 *          memory space (REF/EMU: plain memory; CUDA: synchronous copies on ctx's stream). */
posattn_status pa_plan_ref_prepare(posattn_plan *plan, char *msg, size_t msg_size);
posattn_status pa_plan_ref_run(posattn_context *ctx, const posattn_plan *plan,
                               const posattn_run_args *a);
posattn_status pa_plan_ref_append(posattn_context *ctx, const posattn_plan *plan,
                                  const posattn_append_args *a);

posattn_status pa_plan_emu_prepare(posattn_plan *plan, char *msg, size_t msg_size);
void pa_plan_emu_release(posattn_plan *plan);
posattn_status pa_plan_emu_run(posattn_context *ctx, const posattn_plan *plan,
                               const posattn_run_args *a);
posattn_status pa_plan_emu_append(posattn_context *ctx, const posattn_plan *plan,
                                  const posattn_append_args *a);

/* CUDA: defined only with POSATTN_WITH_CUDA (kernels/paged/). */
posattn_status pa_plan_cuda_prepare(posattn_plan *plan, char *msg, size_t msg_size);
void pa_plan_cuda_release(posattn_plan *plan);
posattn_status pa_plan_cuda_run(posattn_context *ctx, const posattn_plan *plan,
                                const posattn_run_args *a);
posattn_status pa_plan_cuda_append(posattn_context *ctx, const posattn_plan *plan,
                                   const posattn_append_args *a);
posattn_status pa_plan_cuda_read_error(posattn_context *ctx, const void *ws, pa_run_error *rec);
posattn_status pa_plan_cuda_clear_error(posattn_context *ctx, void *ws);

#ifdef __cplusplus
}
#endif
#endif /* POSATTN_PLAN_H */
