// sm90_nvcc_check.cu -- instantiates every Hopper primitive of sm90.cuh for nvcc (target
// posattn_emu_nvcc_check: sm_90a, where the PTX must pass ptxas, and sm_80, where the kernel body
// is compiled out and no Hopper instruction may be emitted) until a kernel uses them.
#include "device/sm90.cuh"

namespace pa_sm90_check {

template <int N>
PA_DEVICE void gemms(pa::wgmma_acc<N> &acc, pa::wgmma_a &a, uint64_t ad, uint64_t bd, bool s) {
  pa::wgmma_ss<N, pa::bf16, 0, 0>(acc, ad, bd, s);
  pa::wgmma_ss<N, pa::f16, 1, 1>(acc, ad, bd, true);
  pa::wgmma_rs<N, pa::bf16, 0>(acc, a, bd, s);
  pa::wgmma_rs<N, pa::f16, 1>(acc, a, bd, true);
}

// A producer warp loads with TMA (1D..5D), a consumer warpgroup runs wgmma of every form for the N
// a FlashAttention-3 kernel uses, with mbarriers, named barriers and setmaxnreg in between, and
// stores with TMA.
__global__ void __launch_bounds__(256) every_primitive(const __grid_constant__ pa::tma_map m1,
                                                       const __grid_constant__ pa::tma_map m2,
                                                       const __grid_constant__ pa::tma_map m5,
                                                       pa::gptr<float> out) {
#if PA_SM90
  PA_SHARED(uint64_t, bar, 2);
  pa::sptr<pa::bf16> s = pa::dynamic_shared<pa::bf16>();
  const int t = int(threadIdx.x);
  if (t == 0) {
    pa::mbarrier_init(bar, 1);
    pa::mbarrier_init(bar + 1, 128);
    pa::fence_mbarrier_init();
  }
  __syncthreads();
  if (t >= 128) {  // producer warpgroup
    pa::setmaxnreg_dec<40>();
    if (t < 160 && pa::elect_one_sync()) {
      pa::mbarrier_expect_tx(bar, 1024);
      pa::mbarrier_arrive_expect_tx(bar, 16384 + 8192);
      pa::tma_load_1d(s, m1, 0, bar);
      pa::tma_load_2d(s + 512, m2, 0, 0, bar);
      pa::tma_load_5d(s + 8704, m5, 0, 0, 0, 0, 0, bar);
    }
    pa::mbarrier_wait(bar + 1, 0);
    pa::named_barrier_arrive(1, 256);
  } else {  // consumer warpgroup
    pa::setmaxnreg_inc<232>();
    pa::mbarrier_wait(bar, 0);
    const uint64_t ad = pa::wgmma_desc_k_major(s, 64, 128);
    const uint64_t bd = pa::wgmma_desc_mn_major(s + 4096, 64, 128);
    pa::wgmma_a a;
    for (int i = 0; i < 4; ++i) a[i] = uint32_t(t * 4 + i);
    pa::wgmma_acc<8> acc8;
    pa::wgmma_acc<64> acc64;
    pa::wgmma_acc<128> acc128;
    pa::wgmma_acc<256> acc256;
    pa::wgmma_fence();
    gemms(acc8, a, ad, bd, false);
    gemms(acc64, a, ad, bd, false);
    gemms(acc128, a, ad, bd, false);
    gemms(acc256, a, ad + (32 >> 4), bd, false);
    pa::wgmma_commit();
    pa::wgmma_wait<1>();
    pa::wgmma_wait<0>();
    float sum = acc8[0] + acc64[5] + acc128[63];
    for (int i = 0; i < 128; ++i) sum += acc256[i];
    s[t] = pa::bf16_from_float(sum);
    pa::fence_proxy_async();
    pa::mbarrier_arrive(bar + 1);
    pa::named_barrier_sync(1, 256);
    if (t == 0) {
      pa::tma_store_2d(m2, 0, 0, s);
      pa::tma_store_1d(m1, 0, s);
      pa::tma_store_5d(m5, 0, 0, 0, 0, 0, s);
      pa::tma_store_commit();
      pa::tma_store_wait<0>();
    }
    out[t] = sum;
  }
#endif
}

}  // namespace pa_sm90_check

// Host side: the tensor maps through the driver's encoder (not run here).
const char *pa_sm90_nvcc_check(const pa::bf16 *x, float *out) {
  pa::tma_map m[3];
  pa::tma_layout l{};
  l.rank = 2;
  l.elem_bytes = 2;
  l.dims[0] = 64;
  l.dims[1] = 64;
  l.strides[1] = 128;
  l.box[0] = 64;
  l.box[1] = 64;
  l.swizzle = 128;
  for (pa::tma_map &mm : m)
    if (const char *e = pa::make_tma_map(&mm, pa::make_gptr(x, 4096, "x"), l)) return e;
  pa::launch_status st = pa::launch("every_primitive", pa_sm90_check::every_primitive, dim3(1),
                                    dim3(256), 65536, nullptr, m[0], m[1], m[2],
                                    pa::make_gptr(out, 256, "out"));
  return st.ok ? nullptr : "launch failed";
}
