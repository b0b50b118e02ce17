"""Writes tests/data/acts-small: a small synthetic set of activations in the layout that
posattn-drift --activations reads (docs/precision.md, "Real activations"):

  q.npy          [T, Hq, D]  float32   queries before RoPE
  k.npy          [T, Hkv, D] float16   keys before RoPE (float16 to exercise that path)
  v.npy          [T, Hkv, D] float32
  positions.npy  [T]         int64     position ids (here 0..T-2, then a jump to 1000)

T = 96, Hq = 2, Hkv = 1 (GQA), D = 32. Token 0 is an attention sink: its key is large along the
slowest RoPE pairs and every query carries that direction. A few elements are sentinels that the
tests check to pin the layout: q[0,0,0] = 0.5, q[T-1,1,D-1] = -1.25, k[3,0,1] = 2.0,
v[1,0,2] = 3.0. Run from the repository root: python3 tests/data/make_acts_small.py
"""
import os

import numpy as np

T, HQ, HKV, D = 96, 2, 1, 32
rng = np.random.default_rng(20241118)
q = rng.standard_normal((T, HQ, D))
k = rng.standard_normal((T, HKV, D))
v = rng.standard_normal((T, HKV, D))
u = np.zeros(D)
u[D // 2 - 2:D // 2] = u[D - 2:] = 0.5  # the two slowest pairs (NeoX layout)
k[0, :, :] = 12.0 * u + 0.1 * k[0, :, :]
q += 2.0 * u
q[0, 0, 0], q[T - 1, 1, D - 1], k[3, 0, 1], v[1, 0, 2] = 0.5, -1.25, 2.0, 3.0
pos = np.arange(T, dtype=np.int64)
pos[-1] = 1000
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "acts-small")
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "q.npy"), q.astype(np.float32))
np.save(os.path.join(out, "k.npy"), k.astype(np.float16))
np.save(os.path.join(out, "v.npy"), v.astype(np.float32))
np.save(os.path.join(out, "positions.npy"), pos)
