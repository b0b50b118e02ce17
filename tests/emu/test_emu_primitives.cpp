// Self-tests of the device layer under the emulator: every primitive against its PTX ISA / CUDA
// definition, and planted-bug kernels that pass only when the emulator reports the bug.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emu_kernels.cu"

namespace {

using pa::make_gptr;

// Runs each test with the default emulator options, restored afterwards.
class Emu : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = pa_emu::options(); }
  void TearDown() override { pa_emu::options() = saved_; }
  pa_emu::Options saved_;
};

void expect_ok(const pa::launch_status &st) { EXPECT_TRUE(st.ok) << st.msg; }
// The launch must fail with a message containing every one of `parts`.
void expect_fault(const pa::launch_status &st, std::initializer_list<const char *> parts) {
  ASSERT_FALSE(st.ok) << "the planted bug was not reported";
  for (const char *p : parts) EXPECT_NE(std::string(st.msg).find(p), std::string::npos)
      << "message lacks '" << p << "': " << st.msg;
}

double f16_value(uint16_t h) { return pa::to_float(pa::f16{h}); }
double bf16_value(uint16_t h) { return pa::to_float(pa::bf16{h}); }

// ---- mma ------------------------------------------------------------------------------------------
template <bool BF16>
void check_mma_against_matmul(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint16_t> A(256), B(128);
  std::vector<float> C(128), D(128, NAN);
  auto enc = [](float x) { return BF16 ? pa::bf16_from_float(x).bits : pa::f16_from_float(x).bits; };
  for (auto &a : A) a = enc(nd(rng));
  for (auto &b : B) b = enc(nd(rng));
  for (auto &c : C) c = nd(rng);
  auto st = pa::launch("mma_frag", emu_test::mma_frag<BF16>, dim3(1), dim3(32), 0, nullptr,
                       make_gptr<const uint16_t>(A.data(), 256, "A"),
                       make_gptr<const uint16_t>(B.data(), 128, "B"),
                       make_gptr<const float>(C.data(), 128, "C"), make_gptr(D.data(), 128, "D"));
  ASSERT_TRUE(st.ok) << st.msg;
  auto val = [](uint16_t h) { return BF16 ? bf16_value(h) : f16_value(h); };
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double ref = C[i * 8 + j], mag = std::fabs(ref);
      for (int k = 0; k < 16; ++k) {
        ref += val(A[i * 16 + k]) * val(B[k * 8 + j]);
        mag += std::fabs(val(A[i * 16 + k]) * val(B[k * 8 + j]));
      }
      EXPECT_NEAR(D[i * 8 + j], ref, 1e-6 * mag + 1e-30) << "D[" << i << "][" << j << "]";
    }
}
TEST_F(Emu, mma_bf16_every_fragment_element) { check_mma_against_matmul<true>(1); }
TEST_F(Emu, mma_f16_every_fragment_element) { check_mma_against_matmul<false>(2); }

TEST_F(Emu, mma_ldmatrix_cp_async_pipeline) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> ud(-2.f, 2.f);
  std::vector<pa::bf16> A(256), B(128);
  for (auto &a : A) a = pa::bf16_from_float(ud(rng));
  for (auto &b : B) b = pa::bf16_from_float(ud(rng));
  std::vector<float> D(128, NAN);
  expect_ok(pa::launch("ldsm_mma", emu_test::ldsm_mma, dim3(1), dim3(32), 0, nullptr,
                       make_gptr<const pa::bf16>(A.data(), 256, "A"),
                       make_gptr<const pa::bf16>(B.data(), 128, "B"), make_gptr(D.data(), 128, "D")));
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double ref = 0, mag = 0;
      for (int k = 0; k < 16; ++k) {
        double p = double(pa::to_float(A[i * 16 + k])) * pa::to_float(B[k * 8 + j]);
        ref += p;
        mag += std::fabs(p);
      }
      EXPECT_NEAR(D[i * 8 + j], ref, 1e-6 * mag + 1e-30) << "D[" << i << "][" << j << "]";
    }
}

// ---- ldmatrix -------------------------------------------------------------------------------------
void check_ldmatrix(int nmat, bool trans) {
  std::vector<uint16_t> src(256);
  for (int i = 0; i < 256; ++i) src[i] = uint16_t(1000 + i);  // element (m, r, c) = 1000 + 64m + 8r + c
  std::vector<uint32_t> out(128, 0xdeadbeefu);
  expect_ok(pa::launch("ldsm", emu_test::ldsm, dim3(1), dim3(32), 0, nullptr,
                       make_gptr<const uint16_t>(src.data(), 256, "src"),
                       make_gptr(out.data(), 128, "out"), nmat, int(trans)));
  for (unsigned lane = 0; lane < 32; ++lane)
    for (int m = 0; m < nmat; ++m) {
      // PTX ISA ldmatrix: lane holds row lane/4, columns 2(lane%4), +1 (transposed with .trans)
      unsigned r0 = lane / 4, c0 = 2 * (lane % 4);
      auto el = [&](unsigned r, unsigned c) { return uint32_t(1000 + 64 * m + 8 * r + c); };
      uint32_t lo = trans ? el(c0, r0) : el(r0, c0), hi = trans ? el(c0 + 1, r0) : el(r0, c0 + 1);
      EXPECT_EQ(out[lane * 4 + m], lo | (hi << 16)) << "lane " << lane << " matrix " << m;
    }
}
TEST_F(Emu, ldmatrix_x1) { check_ldmatrix(1, false); }
TEST_F(Emu, ldmatrix_x2) { check_ldmatrix(2, false); }
TEST_F(Emu, ldmatrix_x4) { check_ldmatrix(4, false); }
TEST_F(Emu, ldmatrix_x1_trans) { check_ldmatrix(1, true); }
TEST_F(Emu, ldmatrix_x2_trans) { check_ldmatrix(2, true); }
TEST_F(Emu, ldmatrix_x4_trans) { check_ldmatrix(4, true); }

// ---- shuffles and votes ---------------------------------------------------------------------------
// Source lane per the CUDA programming guide (warp shuffle functions), written independently of the
// emulator: segments of `width` lanes; idx wraps inside the segment; up/down keep their own value
// when the source leaves the segment; xor keeps it when the source is in a later segment.
unsigned expected_src(int mode, unsigned lane, int arg, int width) {
  unsigned base = lane / width * width;
  switch (mode) {
    case 0: return base + unsigned(arg) % width;
    case 1: return lane - base >= unsigned(arg) ? lane - arg : lane;
    case 2: return lane - base + arg < unsigned(width) ? lane + arg : lane;
    default: {
      unsigned s = lane ^ unsigned(arg);
      return s >= base + width ? lane : s;
    }
  }
}
TEST_F(Emu, shfl_every_mode_and_width) {
  const char *names[] = {"idx", "up", "down", "xor"};
  for (int mode = 0; mode < 4; ++mode)
    for (int width : {32, 16, 8, 4, 2, 1})
      for (int arg : {0, 1, 3, 5, 17}) {
        std::vector<float> f(64, NAN);
        std::vector<double> d(64, NAN);
        expect_ok(pa::launch("shfl", emu_test::shfl, dim3(1), dim3(64), 0, nullptr,
                             make_gptr(f.data(), 64, "f"), make_gptr(d.data(), 64, "d"), mode, arg,
                             width));
        for (unsigned t = 0; t < 64; ++t) {
          unsigned src = expected_src(mode, t % 32, arg, width);
          ASSERT_EQ(f[t], 100.f * float(t / 32) + float(src) + 0.5f)
              << names[mode] << " width " << width << " arg " << arg << " thread " << t;
          ASSERT_EQ(d[t], -1e10 * double(src + 1)) << names[mode] << " (double) thread " << t;
        }
      }
}
TEST_F(Emu, shfl_bad_width_is_reported) {
  std::vector<float> f(32);
  std::vector<double> d(32);
  expect_fault(pa::launch("shfl", emu_test::shfl, dim3(1), dim3(32), 0, nullptr,
                          make_gptr(f.data(), 32, "f"), make_gptr(d.data(), 32, "d"), 0, 1, 12),
               {"width 12"});
}
TEST_F(Emu, shfl_votes) {
  for (int pattern = 0; pattern < 4; ++pattern) {
    std::vector<int> pred(32);
    for (int l = 0; l < 32; ++l)
      pred[l] = pattern == 0 ? 1 : pattern == 1 ? 0 : pattern == 2 ? (l % 3 == 0) * (l + 1) : l != 7;
    uint32_t ballot = 0, low = 0;
    for (int l = 0; l < 32; ++l) ballot |= uint32_t(pred[l] != 0) << l;
    low = ballot & 0xffffu;
    std::vector<unsigned> out(128, 12345u);
    expect_ok(pa::launch("votes", emu_test::votes, dim3(1), dim3(32), 0, nullptr,
                         make_gptr<const int>(pred.data(), 32, "pred"),
                         make_gptr(out.data(), 128, "out")));
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(out[l * 4 + 0], unsigned(ballot == 0xffffffffu)) << "all, pattern " << pattern;
      EXPECT_EQ(out[l * 4 + 1], unsigned(ballot != 0)) << "any, pattern " << pattern;
      EXPECT_EQ(out[l * 4 + 2], ballot) << "ballot, pattern " << pattern;
      EXPECT_EQ(out[l * 4 + 3], l < 16 ? low : 0u) << "half-warp ballot, pattern " << pattern;
    }
  }
}
TEST_F(Emu, shfl_warp_divergence_is_reported) {
  std::vector<float> out(32);
  expect_fault(pa::launch("bug_warp_divergence", emu_test::bug_warp_divergence, dim3(1), dim3(32),
                          0, nullptr, make_gptr(out.data(), 32, "out")),
               {"warp divergence"});
}

// ---- cp.async -------------------------------------------------------------------------------------
TEST_F(Emu, cp_async_commit_wait_group_order) {
  std::vector<unsigned> src(512), seen(128, 0);
  for (unsigned i = 0; i < 512; ++i) src[i] = 0x10000u + i;
  expect_ok(pa::launch("cp_async_order", emu_test::cp_async_order, dim3(1), dim3(32), 0, nullptr,
                       make_gptr<const unsigned>(src.data(), 512, "src"),
                       make_gptr(seen.data(), 128, "seen")));
  for (unsigned t = 0; t < 32; ++t) {
    EXPECT_EQ(seen[t * 4 + 0], src[t * 4]) << "group 0 must have landed after wait_group 1";
    // The emulator lands a group only at the wait that retires it: the still pending group shows
    // the shared-memory poison (0xff bytes), which is what exposes a missing wait.
    EXPECT_EQ(seen[t * 4 + 1], 0xffffffffu) << "group 1 is still in flight after wait_group 1";
    EXPECT_EQ(seen[t * 4 + 2], src[256 + t * 4]) << "group 1 after wait_group 0";
    EXPECT_EQ(seen[t * 4 + 3], 0u) << "zero fill";
  }
}

// ---- barriers ---------------------------------------------------------------------------------------
TEST_F(Emu, barrier_tree_reduction_2d_blocks) {
  for (bool shuffle : {false, true}) {
    pa_emu::options().shuffle = shuffle;
    const int blocks = 3;
    std::vector<float> in(256 * blocks), out(blocks, NAN);
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 17) - 8.f;
    expect_ok(pa::launch("block_sum", emu_test::block_sum, dim3(blocks), dim3(16, 16), 0, nullptr,
                         make_gptr<const float>(in.data(), in.size(), "in"),
                         make_gptr(out.data(), out.size(), "out")));
    for (int b = 0; b < blocks; ++b) {
      double ref = 0;
      for (int i = 0; i < 256; ++i) ref += in[b * 256 + i];
      EXPECT_EQ(out[b], float(ref)) << "block " << b << (shuffle ? " (shuffled)" : "");
    }
  }
}
TEST_F(Emu, barrier_shuffled_order_differs_from_thread_order) {
  auto order = [&](bool shuffle, uint64_t seed) {
    pa_emu::options().shuffle = shuffle;
    pa_emu::options().seed = seed;
    unsigned counter = 0;
    std::vector<unsigned> ticket(128, 0);
    expect_ok(pa::launch("ticket_order", emu_test::ticket_order, dim3(1), dim3(128), 0, nullptr,
                         make_gptr(&counter, 1, "counter"), make_gptr(ticket.data(), 128, "ticket")));
    EXPECT_EQ(counter, 128u);
    return ticket;
  };
  std::vector<unsigned> in_order = order(false, 1);
  for (unsigned t = 0; t < 128; ++t) EXPECT_EQ(in_order[t], t);
  std::vector<unsigned> a = order(true, 1), b = order(true, 2);
  EXPECT_NE(a, in_order);
  EXPECT_NE(a, b);
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, in_order) << "every thread takes exactly one ticket";
}
TEST_F(Emu, barrier_dynamic_shared_memory) {
  std::vector<float> in(96), out(96, NAN);
  for (int i = 0; i < 96; ++i) in[i] = float(i) * 0.25f;
  expect_ok(pa::launch("dyn_reverse", emu_test::dyn_reverse, dim3(1), dim3(96), 96 * sizeof(float),
                       nullptr, make_gptr<const float>(in.data(), 96, "in"),
                       make_gptr(out.data(), 96, "out")));
  for (int i = 0; i < 96; ++i) EXPECT_EQ(out[i], in[95 - i]);
}
TEST_F(Emu, barrier_skipped_by_one_thread_is_reported) {
  std::vector<float> out(64);
  expect_fault(pa::launch("bug_skip_barrier", emu_test::bug_skip_barrier, dim3(1), dim3(64), 0,
                          nullptr, make_gptr(out.data(), 64, "out")),
               {"kernel bug_skip_barrier", "block (0,0,0)", "barrier mismatch", "thread (5,0,0)"});
}
TEST_F(Emu, barrier_early_exit_is_reported) {
  std::vector<float> out(64);
  expect_fault(pa::launch("bug_exit_before_barrier", emu_test::bug_exit_before_barrier, dim3(1),
                          dim3(64), 0, nullptr, make_gptr(out.data(), 64, "out")),
               {"kernel bug_exit_before_barrier", "thread (3,0,0)", "exited without reaching"});
}

// ---- racecheck ------------------------------------------------------------------------------------
TEST_F(Emu, race_missing_barrier_is_reported) {
  std::vector<float> out(128);
  expect_ok(pa::launch("bug_missing_barrier", emu_test::bug_missing_barrier, dim3(1), dim3(128), 0,
                       nullptr, make_gptr(out.data(), 128, "out"), 1));
  for (unsigned t = 0; t < 128; ++t) EXPECT_EQ(out[t], float((t + 33) % 128));
  for (bool shuffle : {false, true}) {
    pa_emu::options().shuffle = shuffle;
    expect_fault(pa::launch("bug_missing_barrier", emu_test::bug_missing_barrier, dim3(1),
                            dim3(128), 0, nullptr, make_gptr(out.data(), 128, "out"), 0),
                 {"kernel bug_missing_barrier", "shared-memory race", "'s'", "thread ("});
  }
}
TEST_F(Emu, race_write_after_read_and_read_after_write) {
  std::vector<float> out(128);
  expect_fault(pa::launch("bug_write_after_read", emu_test::bug_write_after_read, dim3(1),
                          dim3(128), 0, nullptr, make_gptr(out.data(), 128, "out")),
               {"shared-memory race", "thread (64,0,0)", "reads a byte written by thread (0,0,0)"});
}
TEST_F(Emu, race_syncwarp_orders_lanes_of_a_warp) {
  std::vector<float> out(64, NAN);
  expect_ok(pa::launch("warp_exchange", emu_test::warp_exchange, dim3(1), dim3(64), 0, nullptr,
                       make_gptr(out.data(), 64, "out")));
  for (unsigned t = 0; t < 64; ++t) EXPECT_EQ(out[t], float((t / 32) * 32 + (t + 1) % 32));
}
TEST_F(Emu, race_check_can_be_turned_off) {
  pa_emu::options().racecheck = false;
  std::vector<float> out(128);
  expect_ok(pa::launch("bug_missing_barrier", emu_test::bug_missing_barrier, dim3(1), dim3(128), 0,
                       nullptr, make_gptr(out.data(), 128, "out"), 0));
}

// ---- bounds ---------------------------------------------------------------------------------------
TEST_F(Emu, bounds_global_write_past_the_end_is_reported) {
  // guard band: the buffer handed to the launch is 100 floats inside a larger allocation
  std::vector<float> mem(300, -7.f);
  float *out = mem.data() + 100;
  auto st = pa::launch("bug_oob_global_write", emu_test::bug_oob_global_write, dim3(2), dim3(64),
                       0, nullptr, make_gptr(out, 100, "out"), 100);
  expect_fault(st, {"kernel bug_oob_global_write", "block (1,0,0)", "thread (36,0,0)",
                    "global 4-byte write", "out of range", "'out'", "byte offset 400"});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(mem[i], -7.f) << "guard band before the buffer";
  for (int i = 200; i < 300; ++i) EXPECT_EQ(mem[i], -7.f) << "guard band after the buffer";
}
TEST_F(Emu, bounds_shared_read_past_the_end_is_reported) {
  std::vector<float> out(64);
  expect_fault(pa::launch("bug_oob_shared_read", emu_test::bug_oob_shared_read, dim3(1), dim3(64),
                          0, nullptr, make_gptr(out.data(), 64, "out")),
               {"kernel bug_oob_shared_read", "thread (63,0,0)", "shared 4-byte read",
                "out of range", "'s'", "byte offset 256"});
}
TEST_F(Emu, bounds_bad_launch_configuration) {
  std::vector<float> out(64);
  auto st = pa::launch("dyn_reverse", emu_test::dyn_reverse, dim3(1), dim3(2048), 0, nullptr,
                       make_gptr<const float>(out.data(), 64, "in"), make_gptr(out.data(), 64, "out"));
  expect_fault(st, {"more than 1024 threads"});
  // the emulator is usable after every fault above
  std::vector<float> in(32, 2.f), o(32, 0.f);
  expect_ok(pa::launch("dyn_reverse", emu_test::dyn_reverse, dim3(1), dim3(32), 128, nullptr,
                       make_gptr<const float>(in.data(), 32, "in"), make_gptr(o.data(), 32, "out")));
  EXPECT_EQ(o[0], 2.f);
}

}  // namespace
