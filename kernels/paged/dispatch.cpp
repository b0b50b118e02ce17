// dispatch.cpp -- the EMU backend of a plan (host/plan.h hooks pa_plan_emu_*): the paged kernels
// (kernels/paged/paged.cu, paged_mma.cuh) run by the SIMT emulator.
//
// prepare builds the geometry, the PE tables (host memory owned by the plan's backend_state) and
// the parameter templates once; run and append patch the call's pointers into a template and
// launch. The kernels never write a row of a sequence they rejected, so the run writes the
// caller's out/lse directly (no staging): after an emulator finding (bounds, race, barrier) the
// call reports KERNEL_FAULT and the outputs of that call are unspecified.
#include <cstdint>
#include <new>
#include <vector>

#include "paged/host.h"
#include "paged/paged_mma.cuh"

namespace {

struct EmuPlanState {
  PagedPlan P;
  std::vector<unsigned char> tables;  // the PE tables the templates point into
};

const EmuPlanState &emu_state(const posattn_plan *plan) {
  return *static_cast<const EmuPlanState *>(plan->backend_state);
}

posattn_status emu_fault(posattn_context *ctx, const pa::launch_status &st, const char *what) {
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU %s: %s", what, st.msg);
}

}  // namespace

extern "C" posattn_status pa_plan_emu_prepare(posattn_plan *plan, char *msg, size_t msg_size) {
  EmuPlanState *s = nullptr;
  try {
    s = new EmuPlanState();
    plan->backend_state = s;
    PA_TRY(paged_geometry(plan, PA_DECODE_NOMINAL_SMS, s->P, msg, msg_size));
    s->tables.assign(s->P.pe_layout.total, 0);
    PA_TRY(paged_tables_build(plan, s->P, s->tables.data(), msg, msg_size));
    paged_templates_fill(plan, s->P, s->tables.data());
  } catch (const std::bad_alloc &) {
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED,
                   "EMU backend: out of host memory for the plan's PE tables");
  }
  plan->num_splits = s->P.splits;
  plan->workspace_bytes = s->P.total;
  return POSATTN_STATUS_SUCCESS;
}

extern "C" void pa_plan_emu_release(posattn_plan *plan) {
  if (plan == nullptr) return;
  delete static_cast<EmuPlanState *>(plan->backend_state);
  plan->backend_state = nullptr;
}

extern "C" posattn_status pa_plan_emu_run(posattn_context *ctx, const posattn_plan *plan,
                                          const posattn_run_args *a) {
  PA_CHECK_INTERNAL(ctx, plan && plan->backend_state && a);
  const PagedPlan &P = emu_state(plan).P;
  try {
    pa_paged_params k;
    paged_run_fill(k, plan, P, a);
    pa::launch_status st = pa::launch("paged_check", pa_paged::paged_check, dim3(unsigned(a->batch)),
                                      dim3(pa_paged::kThreads), 0, nullptr, k.sq);
    if (!st.ok) return emu_fault(ctx, st, "paged_check kernel");
    if (k.mma_rows > 0) {  // paged_run_fill chose the tensor-core kernel
      st = pa::launch("paged_split_mma", pa_paged::split_mma_kernel(P.cache_index, P.q_f16, P.dim_cls),
                      dim3(unsigned(k.chunk_slots), unsigned(plan->hkv), unsigned(P.splits)),
                      dim3(pa_decode::kMmaThreads), P.mma_smem, nullptr, k);
      if (!st.ok) return emu_fault(ctx, st, "paged_split_mma kernel");
    } else {
      st = pa::launch("paged_split", pa_paged::split_kernel(P.cache_index, P.dim_cls),
                      dim3(unsigned(k.chunk_slots), unsigned(plan->hkv), unsigned(P.splits)),
                      dim3(pa_paged::kThreads), P.split_smem, nullptr, k);
      if (!st.ok) return emu_fault(ctx, st, "paged_split kernel");
    }
    st = pa::launch("paged_combine", pa_paged::paged_combine, dim3(unsigned(P.combine_blocks)),
                    dim3(pa_paged::kThreads), 0, nullptr, k);
    if (!st.ok) return emu_fault(ctx, st, "paged_combine kernel");
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_plan_emu_append(posattn_context *ctx, const posattn_plan *plan,
                                             const posattn_append_args *a) {
  PA_CHECK_INTERNAL(ctx, plan && plan->backend_state && a);
  const PagedPlan &P = emu_state(plan).P;
  try {
    pa_paged_append_params k;
    paged_append_fill(k, plan, P, a);
    pa::launch_status st = pa::launch("paged_check", pa_paged::paged_check, dim3(unsigned(a->batch)),
                                      dim3(pa_paged::kThreads), 0, nullptr, k.sq);
    if (!st.ok) return emu_fault(ctx, st, "paged_check kernel (append)");
    st = pa::launch("paged_append", pa_paged::append_kernel(P.cache_index),
                    dim3(unsigned(P.append_blocks)), dim3(pa_paged::kThreads), 0, nullptr, k);
    if (!st.ok) return emu_fault(ctx, st, "paged_append kernel");
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  return POSATTN_STATUS_SUCCESS;
}
