#!/usr/bin/env python3
"""Independent cross-check of posattn's REF backend.

Runs the C driver (tests/crosscheck/crosscheck_dump.c), which draws random attention problems
across every feature (PE kinds with random parameters, RoPE scalings and layouts, partial rotary,
masks, GQA, varlen, documents with anchors, dtypes), runs them on REF and dumps inputs and
outputs. This script recomputes every case in fp64 from the formulas of
shared/reference/pe-spec.md and the header's conventions -- written for the test, sharing no code
with the library -- and compares: each output within one rounding step of its dtype (plus
1e-12 of max|v| for cancellation near zero), each lse within one fp32 step.

Needs numpy and ml_dtypes:  python3 -m pip install numpy ml_dtypes
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import ml_dtypes
except ImportError as exc:  # the test must fail, loudly, with the fix
    sys.stderr.write(
        "crosscheck.py: missing Python package (%s).\n"
        "Install the cross-check's dependencies with:\n"
        "    python3 -m pip install numpy ml_dtypes\n" % exc)
    sys.exit(1)

DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
# significand bits (with the implicit one) and smallest normal exponent, for ulp()
ULP_PARAMS = {"f32": (24, -126), "f16": (11, -14), "bf16": (8, -126)}

NONE, ROPE, ALIBI, FIRE, XPOS, T5, KERPLE_LOG, KERPLE_POWER = range(8)
(SC_NONE, SC_LINEAR, SC_NTK, SC_DYNAMIC, SC_YARN, SC_LLAMA3, SC_LONGROPE, SC_INV_FREQ) = range(8)
PE_NAMES = ["none", "rope", "alibi", "fire", "xpos", "t5", "kerple-log", "kerple-power"]
SCALING_NAMES = ["none", "linear", "ntk", "dynamic-ntk", "yarn", "llama3", "longrope", "inv-freq"]


def ulp(dtype, x):
    """Spacing of dtype at |x| (subnormal spacing near zero)."""
    bits, min_exp = ULP_PARAMS[dtype]
    x = np.abs(np.asarray(x, dtype=np.float64))
    _, e = np.frexp(np.where(np.isfinite(x) & (x > 0), x, 1.0))
    e = np.maximum(e - 1, min_exp)
    e = np.where(x > 0, e, min_exp)
    return np.ldexp(1.0, e - (bits - 1))


# ------------------------------------------------------------------ positional encodings
def alibi_slopes(n):
    """Press et al. geometric slopes; non-powers of two interleave the 2n set (pe-spec 3.1)."""
    def pow2(m):
        start = 2.0 ** (-(2.0 ** -(math.log2(m) - 3)))
        return [start * start ** i for i in range(m)]
    if math.log2(n).is_integer():
        return pow2(n)
    c = 2 ** math.floor(math.log2(n))
    return pow2(c) + alibi_slopes(2 * c)[0::2][: n - c]


def rope_tables(rope, head_dim, seq_len):
    """inv_freq[rd/2] and the attention factor, pe-spec 1 and 2."""
    rd = rope["rotary_dim"] or head_dim - rope.get("rotary_offset", 0)
    i = np.arange(rd // 2, dtype=np.float64)
    base, s, orig = rope["base"], rope["factor"], rope["original_max_position"]
    plain = 1.0 / base ** (2 * i / rd)
    af = 1.0
    sc = rope["scaling"]
    if sc == SC_NONE:
        inv = plain
    elif sc == SC_LINEAR:
        inv = plain / s
    elif sc == SC_NTK:
        inv = 1.0 / (base * s ** (rd / (rd - 2))) ** (2 * i / rd)
    elif sc == SC_DYNAMIC:
        length = max(rope["dynamic_seq_len"] or seq_len, orig)
        b2 = base * ((s * length / orig) - (s - 1)) ** (rd / (rd - 2))
        inv = 1.0 / b2 ** (2 * i / rd)
    elif sc == SC_YARN:
        def corr(n_rot):
            return rd * math.log(orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))
        low, high = corr(rope["beta_fast"]), corr(rope["beta_slow"])
        if rope["yarn_truncate"]:
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, rd - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((i - low) / (high - low), 0.0, 1.0)
        extrap = 1.0 - ramp
        inv = plain / s * (1 - extrap) + plain * extrap
        def mscale(m):  # transformers' get_mscale
            return 0.1 * m * math.log(s) + 1 if s > 1 else 1.0
        if rope.get("mscale") and rope.get("mscale_all_dim"):
            af = mscale(rope["mscale"]) / mscale(rope["mscale_all_dim"])
        else:
            af = mscale(1.0)
    elif sc == SC_LLAMA3:
        lo, hi = rope["low_freq_factor"], rope["high_freq_factor"]
        wavelen = 2 * math.pi / plain
        sm = (orig / wavelen - lo) / (hi - lo)
        smooth = (1 - sm) * plain / s + sm * plain
        inv = np.where(wavelen > orig / lo, plain / s,
                       np.where(wavelen < orig / hi, plain, smooth))
    elif sc == SC_LONGROPE:
        ext = np.array(rope["ext_factors"], dtype=np.float32).astype(np.float64)
        inv = 1.0 / (ext * base ** (2 * i / rd))
        f = rope.get("longrope_factor") or (rope["max_position"] or orig) / orig
        af = math.sqrt(1 + math.log(f) / math.log(orig)) if f > 1 else 1.0
    elif sc == SC_INV_FREQ:
        inv = np.array(rope["inv_freq"], dtype=np.float32).astype(np.float64)
    else:
        raise ValueError("unknown scaling %d" % sc)
    if rope.get("active_pairs"):  # Gemma's proportional RoPE: the other pairs do not turn
        inv = np.where(np.arange(rd // 2) < rope["active_pairs"], inv, 0.0)
    if rope["attention_factor"] != 0:
        af = rope["attention_factor"]
    return inv, af


def pair_dims(layout, rd, offset=0):
    k = np.arange(rd // 2)
    if layout == 1:  # GPT-J: (2k, 2k+1)
        return offset + 2 * k, offset + 2 * k + 1
    return offset + k, offset + k + rd // 2  # NeoX: (k, k + rd/2)


def rotate(x, pos, inv, af, layout, rd, offset=0):
    """x [n, d] at positions pos [n]: rotate the pairs of dims [offset, offset + rd)."""
    a, b = pair_dims(layout, rd, offset)
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    c, s = np.cos(ang) * af, np.sin(ang) * af
    y = x.copy()
    y[:, a] = x[:, a] * c - x[:, b] * s
    y[:, b] = x[:, a] * s + x[:, b] * c
    return y


def t5_bucket(rel, bidirectional, num_buckets, max_distance):
    """HF _relative_position_bucket with the log comparison done exactly in integers."""
    bucket = 0
    nb = num_buckets
    if bidirectional:
        nb //= 2
        if rel > 0:
            bucket += nb
        n = abs(rel)
    else:
        n = max(-rel, 0)
    exact = nb // 2
    if n < exact:
        return bucket + n
    r = nb - exact
    # int(log(n/exact)/log(max_distance/exact) * r) >= k  <=>  n^r * exact^k >= md^k * exact^r
    k = 0
    while k < r and n ** r * exact ** (k + 1) >= max_distance ** (k + 1) * exact ** r:
        k += 1
    return bucket + min(exact + k, nb - 1)


def bias_matrix(case, h, pq, pk):
    """Additive bias [len(pq), len(pk)] for head h (pe-spec 3, 4, 7, 8)."""
    kind = case["pe_kind"]
    dist = np.abs(pq[:, None] - pk[None, :]).astype(np.float64)
    if kind == ALIBI:
        slopes = case.get("alibi_slopes")
        m = float(np.float32(slopes[h])) if slopes else alibi_slopes(case["q_heads"])[h]
        return -m * dist
    if kind == KERPLE_LOG:
        return -float(np.float32(case["kerple_p"][h])) * np.log1p(
            float(np.float32(case["kerple_a"][h])) * dist)
    if kind == KERPLE_POWER:
        return -float(np.float32(case["kerple_a"][h])) * dist ** float(
            np.float32(case["kerple_p"][h]))
    if kind == T5:
        t5 = case["t5"]
        table = np.array(t5["table"], dtype=np.float32).astype(np.float64)
        out = np.empty(dist.shape)
        for i, a in enumerate(pq):
            for j, b in enumerate(pk):
                bk = t5_bucket(int(b) - int(a), t5["bidirectional"], t5["num_buckets"],
                               t5["max_distance"])
                out[i, j] = table[bk * case["q_heads"] + h]
        return out
    if kind == FIRE:
        f = case["fire"]
        c = abs(f["c"])
        w = f["width"]
        w1 = np.array(f["w1"], dtype=np.float32).astype(np.float64)
        b1 = np.array(f["b1"], dtype=np.float32).astype(np.float64)
        w2 = np.array(f["w2"], dtype=np.float32).astype(np.float64)[h * w:(h + 1) * w]
        b2 = float(np.float32(f["b2"][h]))
        norm = np.log(c * np.maximum(f["L"], pq.astype(np.float64)) + 1) + f["eps"]
        x = np.log(c * dist + 1) / norm[:, None]
        hidden = np.maximum(0.0, x[..., None] * w1 + b1)
        return hidden @ w2 + b2
    return np.zeros(dist.shape)


# ------------------------------------------------------------------ attention
def attention(case, q, k, v):
    """fp64 attention for the whole case: out [rows, hq, d], lse (posattn's layout)."""
    B, hq, hkv, d = case["batch"], case["q_heads"], case["kv_heads"], case["head_dim"]
    varlen = "cu_seqlens_q" in case
    kind = case["pe_kind"]
    rope = case["rope"]
    rows = case["total_q"]
    out = np.zeros((rows, hq, d))
    lse = np.full(rows * hq, -np.inf)
    cuq = case.get("cu_seqlens_q")
    cuk = case.get("cu_seqlens_kv")
    qpos_all = case.get("q_positions")
    kpos_all = case.get("kv_positions")
    # dynamic NTK's default length: the largest position id of the call, plus one
    seqs = []
    for b in range(B):
        q0, lq = (cuq[b], cuq[b + 1] - cuq[b]) if varlen else (b * case["q_len"], case["q_len"])
        k0, lk = (cuk[b], cuk[b + 1] - cuk[b]) if varlen else (b * case["kv_len"], case["kv_len"])
        pq = (np.array(qpos_all[q0:q0 + lq]) if qpos_all is not None
              else np.arange(lq) + lk - lq).astype(np.int64)
        pk = (np.array(kpos_all[k0:k0 + lk]) if kpos_all is not None
              else np.arange(lk)).astype(np.int64)
        seqs.append((q0, lq, k0, lk, pq, pk))
    maxpos = max([int(s[4].max()) for s in seqs if s[1]] + [int(s[5].max()) for s in seqs if s[3]])
    rotary = kind in (ROPE, XPOS)
    if rotary:
        off = rope.get("rotary_offset", 0)
        rd = rope["rotary_dim"] or d - off
        inv, af = rope_tables(rope, d, maxpos + 1)
        pa, pb = pair_dims(rope["layout"], rd)
    # the descriptor holds these as float: the JSON decimal must be rounded back to float32
    scale = float(np.float32(case["softmax_scale"])) or 1.0 / math.sqrt(d)
    softcap = float(np.float32(case["softcap"]))
    docs = case.get("doc_ids")
    for b, (q0, lq, k0, lk, pq, pk) in enumerate(seqs):
        if lq == 0:
            continue
        ib = np.arange(lq) + lk - lq
        j = np.arange(lk)
        vis = np.ones((lq, lk), dtype=bool)
        if case["causal"]:
            vis &= j[None, :] <= ib[:, None]
        if case["window_left"] >= 0:
            vis &= j[None, :] >= ib[:, None] - case["window_left"]
        if case["window_right"] >= 0:
            vis &= j[None, :] <= ib[:, None] + case["window_right"]
        if docs is not None:
            dq = np.array(docs[q0:q0 + lq])
            dk = np.array(docs[k0:k0 + lk])
            vis &= (dq[:, None] == dk[None, :]) | (j[None, :] < case["num_anchor_tokens"])
        for h in range(hq):
            g = h // (hq // hkv)
            qh = q[q0:q0 + lq, h, :]
            kh = k[k0:k0 + lk, g, :]
            vh = v[k0:k0 + lk, g, :]
            if rotary:
                qh = rotate(qh, pq, inv, af, rope["layout"], rd, off)
                kh = rotate(kh, pk, inv, af, rope["layout"], rd, off)
            if kind == XPOS:
                xp = case["xpos"]
                zeta = (2 * np.arange(rd // 2) / rd + xp["gamma"]) / (1 + xp["gamma"])
                delta = (pq[:, None] - pk[None, :]).astype(np.float64) / xp["scale_base"]
                dots = np.zeros((lq, lk))
                for kk in range(rd // 2):
                    pair = np.outer(qh[:, pa[kk]], kh[:, pa[kk]]) + np.outer(qh[:, pb[kk]], kh[:, pb[kk]])
                    dots += pair * zeta[kk] ** delta
                dots += qh[:, rd:] @ kh[:, rd:].T
            else:
                dots = qh @ kh.T
            s = scale * dots
            if softcap > 0:
                s = softcap * np.tanh(s / softcap)
            s = s + bias_matrix(case, h, pq, pk)
            s = np.where(vis, s, -np.inf)
            for i in range(lq):
                row = s[i]
                li = h * rows + q0 + i if varlen else (b * hq + h) * case["q_len"] + i
                if not vis[i].any():
                    continue  # out stays 0, lse -inf
                m = row[vis[i]].max()
                p = np.where(vis[i], np.exp(row - m), 0.0)
                l = p.sum()
                out[q0 + i, h] = (p @ vh) / l
                lse[li] = m + math.log(l)
    return out, lse


# ------------------------------------------------------------------ self-test against the spec
def self_test():
    """The Python side reproduces pe-spec worked values, so it is not just agreeing with REF."""
    s12 = alibi_slopes(12)
    assert all(abs(a - b) < 1e-10 for a, b in zip(s12[8:], [0.7071067812, 0.3535533906, 0.1767766953, 0.08838834765]))
    rope = dict(rotary_dim=0, base=10000.0, factor=16.0, original_max_position=4096, scaling=SC_YARN,
                beta_fast=32.0, beta_slow=1.0, yarn_truncate=1, attention_factor=0.0)
    inv, af = rope_tables(rope, 128, 1)
    assert abs(inv[25] / 2.244714089e-02 - 1) < 3e-7 and abs(af - 1.277259) < 5e-7
    rope.update(scaling=SC_LLAMA3, base=500000.0, factor=8.0, original_max_position=8192,
                low_freq_factor=1.0, high_freq_factor=4.0)
    inv, _ = rope_tables(rope, 128, 1)
    assert abs(inv[34] / 1.785077911e-4 - 1) < 3e-7
    rel = [-300, -64, -16, -9, -1, 0, 1, 8, 16, 64, 128]
    assert [t5_bucket(r, 1, 32, 128) for r in rel] == [15, 14, 10, 8, 1, 0, 17, 24, 26, 30, 31]
    assert [t5_bucket(r, 0, 32, 128) for r in rel] == [31, 26, 16, 9, 1, 0, 0, 0, 0, 0, 0]
    x = math.log(0.1 * 100 + 1) / (math.log(0.1 * 512 + 1) + 1e-6)
    assert abs(x - 0.606282) < 1e-6
    y = rotate(np.arange(1.0, 9.0)[None, :], np.array([1]), 1.0 / 10000.0 ** (np.arange(4) * 2 / 8), 1.0, 0, 8)
    assert np.allclose(y[0], [-3.667053, 1.391008, 2.929851, 3.991998, 3.542983, 6.169692, 7.029650, 8.003996], atol=1e-6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    self_test()
    os.makedirs(args.workdir, exist_ok=True)
    subprocess.run([args.driver, args.workdir, str(args.cases), str(args.seed)], check=True)
    data = np.fromfile(os.path.join(args.workdir, "data.bin"), dtype=np.float64)
    with open(os.path.join(args.workdir, "cases.jsonl")) as f:
        cases = [json.loads(line) for line in f]
    if len(cases) != args.cases:
        print("FAIL: driver dumped %d of %d cases" % (len(cases), args.cases))
        return 1

    failures = []
    worst_out = worst_lse = 0.0
    seen = {}
    for case in cases:
        hq, hkv, d = case["q_heads"], case["kv_heads"], case["head_dim"]
        nq, nk = case["total_q"] * hq * d, case["total_kv"] * hkv * d
        nl = case["total_q"] * hq
        off = case["offset"]
        q = data[off:off + nq].reshape(-1, hq, d); off += nq
        k = data[off:off + nk].reshape(-1, hkv, d); off += nk
        v = data[off:off + nk].reshape(-1, hkv, d); off += nk
        got = data[off:off + nq].reshape(-1, hq, d); off += nq
        got_lse = data[off:off + nl]
        in_dt = DTYPES[case["in_dtype"]]
        for name, x in (("q", q), ("k", k), ("v", v)):
            if not np.array_equal(x.astype(in_dt).astype(np.float64), x):
                failures.append("case %d: %s not representable in %s" % (case["case"], name, case["in_dtype"]))
        want, want_lse = attention(case, q, k, v)
        tol = ulp(case["out_dtype"], want) + 1e-12 * max(1.0, float(np.abs(v).max(initial=0)))
        err = np.abs(got - want)
        ratio = float((err / tol).max(initial=0))
        finite = np.isfinite(want_lse)
        lse_ok = np.array_equal(np.isfinite(got_lse), finite) and np.all(got_lse[~finite] == -np.inf)
        lse_ratio = float((np.abs(got_lse[finite] - want_lse[finite]) /
                           (ulp("f32", want_lse[finite]) + 1e-12 * (1 + np.abs(want_lse[finite])))).max(initial=0))
        worst_out, worst_lse = max(worst_out, ratio), max(worst_lse, lse_ratio)
        label = PE_NAMES[case["pe_kind"]]
        if case["pe_kind"] in (ROPE, XPOS):
            label += "/" + SCALING_NAMES[case["rope"]["scaling"]]
        seen[label] = seen.get(label, 0) + 1
        if ratio > 1.0 or not lse_ok or lse_ratio > 1.0 or np.isnan(got).any():
            desc = {key: case[key] for key in ("batch", "q_heads", "kv_heads", "head_dim", "q_len", "kv_len",
                                               "causal", "window_left", "window_right", "softcap",
                                               "in_dtype", "out_dtype", "num_anchor_tokens")}
            failures.append("case %d (%s, varlen=%s, positions=%s, docs=%s) %s: out err %.3g steps, "
                            "lse err %.3g steps, lse -inf pattern %s" % (
                                case["case"], label, "cu_seqlens_q" in case, "q_positions" in case,
                                "doc_ids" in case, desc, ratio, lse_ratio, "ok" if lse_ok else "WRONG"))
    print("crosscheck: %d cases in %.1f s; worst out error %.3f rounding steps, worst lse %.3f" % (
        len(cases), time.time() - t0, worst_out, worst_lse))
    print("  coverage: " + ", ".join("%s %d" % kv for kv in sorted(seen.items())))
    print("  varlen %d, explicit positions %d, documents %d, causal %d, window %d, softcap %d, GQA %d" % (
        sum("cu_seqlens_q" in c for c in cases), sum("q_positions" in c for c in cases),
        sum("doc_ids" in c for c in cases), sum(c["causal"] for c in cases),
        sum(c["window_left"] >= 0 or c["window_right"] >= 0 for c in cases),
        sum(c["softcap"] > 0 for c in cases), sum(c["q_heads"] != c["kv_heads"] for c in cases)))
    rot = [c for c in cases if c["pe_kind"] in (ROPE, XPOS)]
    print("  rotary: partial %d, GPT-J %d, explicit attention factor %d; dtypes in %s, out %s" % (
        sum(c["rope"]["rotary_dim"] > 0 for c in rot), sum(c["rope"]["layout"] == 1 for c in rot),
        sum(c["rope"]["attention_factor"] != 0 for c in rot),
        {t: sum(c["in_dtype"] == t for c in cases) for t in DTYPES},
        {t: sum(c["out_dtype"] == t for c in cases) for t in DTYPES}))
    print("  rotary fields: offset %d, active_pairs %d, YaRN mscale pair %d, LongRoPE factor %d" % (
        sum(c["rope"]["rotary_offset"] > 0 for c in rot), sum(c["rope"]["active_pairs"] > 0 for c in rot),
        sum(c["rope"]["mscale"] != 0 and c["rope"]["mscale_all_dim"] != 0 for c in rot
            if c["rope"]["scaling"] == SC_YARN),
        sum(c["rope"]["longrope_factor"] != 0 for c in rot if c["rope"]["scaling"] == SC_LONGROPE)))
    if failures:
        print("FAIL: %d case(s) disagree with REF:" % len(failures))
        for line in failures[:15]:
            print("  " + line)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
