// cute_tables.h -- what CuTe (CUTLASS's layout library, headers from the PyPI package
// nvidia-cutlass) says about the fragments, swizzles and descriptors posattn's kernels use, as
// plain tables. cute_tables.cpp is the only file that includes CuTe (its headers and ours both
// define CUDA's vector types on the host); test_sm90_cute.cpp compares the tables with the
// emulator.
#ifndef POSATTN_CUTE_TABLES_H
#define POSATTN_CUTE_TABLES_H

#include <cstdint>
#include <string>
#include <vector>

namespace cute_tables {

// (thread, value) -> (row, col) of a thread-value layout into a rows x cols matrix.
struct TV {
  int threads = 0, values = 0;
  std::vector<int> row, col;  // index t * values + v
};

// SM80 mma.sync m16n8k16 (MMA_Traits<SM80_16x8x16_F32BF16BF16F32_TN>): A 16x16 (m, k), B as
// (n, k) 8x16, C 16x8 (m, n); values are 16-bit elements (A, B) or fp32 (C).
TV sm80_mma_a();
TV sm80_mma_b();
TV sm80_mma_c();
// SM90 GMMA m64nNk16 (MMA_Traits<SM90::GMMA::MMA_64xNx16_F32BF16BF16_RS>): A 64x16 (m, k) from
// registers, C 64xN (m, n). N = 8..256 in steps of 8.
TV sm90_gmma_a(int n);
TV sm90_gmma_c(int n);

// ldmatrix (Copy_Traits<SM75_U32x{1,2,4}_LDSM_N> / <SM75_U16x{2,4,8}_LDSM_T>): for destination
// lane t, register j, half h (index (t * nmat + j) * 2 + h): the lane whose row address provides
// the element and the element's index in that 8-element row.
struct Ldsm {
  std::vector<int> src_lane, src_elem;
};
Ldsm ldsm(int nmat, bool trans);

// CuTe's Swizzle<b,4,3> (b = 1, 2, 3 for 32-, 64-, 128-byte swizzle) of byte addresses 0..n-1.
std::vector<uint32_t> swizzle(int bytes, uint32_t n);

// A 16-bit GMMA operand tile in shared memory built from CuTe's GMMA::Layout_{K,MN}_{INTER,SW32,
// SW64,SW128}_Atom<bfloat16_t> with tile_to_shape: mn x kt elements (mn = 64, 128 or 256 rows of
// M or N; kt = 64 for K-major tiles, 32 for MN-major ones),
// K-major tiles atoms-along-mn first, MN-major tiles atoms-along-k first (the layouts a TMA box
// [chunk][row][element] writes). For k-block kb (16 elements of k): CuTe's make_gmma_desc with
// the start address replaced by the block's byte offset in the tile (CuTe cannot take a shared
// address on the host), and the byte offset of element (mn, k) of the block (index mn * 16 + k)
// as a swizzled shared-memory pointer addresses it (the tile 1024-byte aligned).
struct GmmaTile {
  std::vector<uint64_t> desc;                   // per k-block
  std::vector<std::vector<uint32_t>> offset;    // per k-block, mn * 16 + k
};
GmmaTile gmma_tile(bool k_major, int swizzle, int mn);
// The same with 128-byte swizzle at the (mn, kt) shapes of the sm_90a prefill kernel's operands
// (kernels/prefill/wgmma.cuh, 64-row Q slices and Bc-key K/V tiles at D = 64, 128, 256):
// K-major (Q, K): (64, 64), (128, 64), (64, 128), (128, 128), (64, 256); MN-major (V, mn = D,
// kt = Bc): (64, 128), (128, 128), (256, 64). Other shapes throw.
GmmaTile gmma_tile_sw128(bool k_major, int mn, int kt);

}  // namespace cute_tables
#endif
