#!/usr/bin/env python3
"""PyTorch contenders for posattn-bench, merged into the same report (docs/benchmarks.md).

    python3 bench/compare_torch.py --merge report.json [--out merged.json] [--max-time 1.0]

For every prefill configuration in the report (written by `posattn-bench --json`) it times
  torch-sdpa-flash  F.scaled_dot_product_attention under the FLASH_ATTENTION backend (RoPE, when
                    the configuration has it, as separate ops before it, as users write it);
                    pe none/rope, mask none/causal, q_len == kv_len only (torch's is_causal is
                    top-left aligned, ours bottom-right: they agree only for square masks);
  torch-flex        FlexAttention (torch.compile'd) with an ALiBi score_mod (relative form
                    -slope*|i-j|) and mask_mods for causal, sliding window and documents with
                    anchor tokens; pe none/rope/alibi.
Timing is the bench's: CUDA events around one call, a 2x-L2 buffer zeroed before every
repetition, warm-up first, repetitions until (p80-p20)/median < 1% after 10 samples or the time
bound, median reported. FLOPs and bytes are copied from the report's row for that configuration,
so every contender is counted by the same rule. Exits 0 with a message when PyTorch or a GPU is
absent (nothing is merged then).
"""
import argparse
import json
import math
import sys
import time


def stats(ts, target, min_samples):
    s = sorted(ts)
    n = len(s)

    def q(p):
        pos = p * (n - 1)
        i = int(pos)
        return s[-1] if i + 1 >= n else s[i] + (pos - i) * (s[i + 1] - s[i])

    med = q(0.5)
    spread = (q(0.8) - q(0.2)) / med if med > 0 else 0.0
    return {"samples": n, "median_ms": med, "min_ms": s[0], "p20_ms": q(0.2), "p80_ms": q(0.8),
            "spread": spread, "converged": n >= min_samples and spread < target}


def time_fn(torch, fn, flush, max_time, target=0.01, min_samples=10, max_samples=2000):
    t0 = time.monotonic()
    for i in range(1000):  # warm-up: compile, autotune, caches; at least 3 calls and 25 ms
        flush.zero_()
        fn()
        torch.cuda.synchronize()
        if i >= 2 and time.monotonic() - t0 > 0.025:
            break
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    t0 = time.monotonic()
    while True:
        flush.zero_()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        ts.append(start.elapsed_time(stop))
        st = stats(ts, target, min_samples)
        if st["converged"] or len(ts) >= max_samples or (
                time.monotonic() - t0 > max_time and len(ts) >= min_samples):
            return st


def alibi_slopes(n):
    """Press et al.: geometric slopes for the closest power of two, then the odd ones."""
    def pow2(m):
        start = 2 ** (-(2 ** -(math.log2(m) - 3)))
        return [start * start ** i for i in range(m)]
    if math.log2(n).is_integer():
        return pow2(n)
    p = 2 ** math.floor(math.log2(n))
    return pow2(p) + pow2(2 * p)[0::2][: n - p]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--merge", required=True, help="posattn-bench JSON report to extend")
    ap.add_argument("--out", help="where to write the merged report (default: --merge in place)")
    ap.add_argument("--max-time", type=float, default=1.0, help="seconds per contender and config")
    a = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("compare_torch.py: PyTorch is not importable: no torch contenders (report unchanged)")
        return 0
    if not torch.cuda.is_available():
        print("compare_torch.py: PyTorch has no usable GPU: no torch contenders (report unchanged)")
        return 0
    with open(a.merge) as f:
        rep = json.load(f)
    dev = torch.cuda.get_device_name(0)
    if rep.get("host", {}).get("gpu") not in (None, dev):
        print(f"compare_torch.py: warning: report GPU {rep['host']['gpu']!r}, torch sees {dev!r}")
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        SDPBackend = sdpa_kernel = None
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
    except ImportError:
        flex = None
    ceil = rep.get("ceilings") or {}
    l2 = torch.cuda.get_device_properties(0).L2_cache_size or (64 << 20)
    flush = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}

    seen, new_rows = set(), []
    for r in rep["results"]:
        key = tuple(r[k] for k in ("op", "pe", "mask", "dtype", "head_dim", "q_len", "kv_len",
                                   "batch", "q_heads", "kv_heads", "window", "docs", "anchors"))
        if r["op"] != "prefill" or key in seen or not r.get("flops"):
            continue
        seen.add(key)
        B, Hq, Hkv, D = r["batch"], r["q_heads"], r["kv_heads"], r["head_dim"]
        Lq, Lk, pe, mask = r["q_len"], r["kv_len"], r["pe"], r["mask"]
        dt = dtypes[r["dtype"]]
        base = {k: r[k] for k in ("op", "pe", "mask", "dtype", "head_dim", "q_len", "kv_len",
                                  "batch", "q_heads", "kv_heads", "window", "docs", "anchors",
                                  "flops", "bytes")}
        # [B, L, H, D] memory as in posattn, viewed as [B, H, L, D] for torch.
        q = (torch.rand(B, Lq, Hq, D, device="cuda") * 2 - 1).to(dt).transpose(1, 2)
        k = (torch.rand(B, Lk, Hkv, D, device="cuda") * 2 - 1).to(dt).transpose(1, 2)
        v = (torch.rand(B, Lk, Hkv, D, device="cuda") * 2 - 1).to(dt).transpose(1, 2)
        scale = 1.0 / math.sqrt(D)
        inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2, device="cuda", dtype=torch.float64) / D))
        ang = torch.arange(Lk, device="cuda", dtype=torch.float64)[:, None] * inv[None, :]
        cos, sin = ang.cos().float(), ang.sin().float()  # cache [Lk, D/2], NeoX pairs

        def rope(x, off):
            L = x.shape[2]
            c, s = cos[off:off + L], sin[off:off + L]
            x1, x2 = x[..., : D // 2].float(), x[..., D // 2:].float()
            return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1).to(dt)

        def prep():
            if pe == "rope":
                return rope(q, Lk - Lq), rope(k, 0)
            return q, k

        contenders = []
        # SDPA flash
        why = None
        if sdpa_kernel is None:
            why = "torch.nn.attention.sdpa_kernel missing (torch too old)"
        elif pe not in ("none", "rope"):
            why = f"SDPA has no {pe}"
        elif mask not in ("none", "causal"):
            why = f"SDPA flash has no {mask} mask"
        elif mask == "causal" and Lq != Lk:
            why = "SDPA is_causal is top-left aligned; posattn's is bottom-right"
        elif dt == torch.float32:
            why = "flash backend has no fp32"

        def sdpa():
            qq, kk = prep()
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(qq, kk, v, is_causal=mask == "causal",
                                                      scale=scale, enable_gqa=Hq != Hkv)
        contenders.append(("torch-sdpa-flash", sdpa, why))

        # FlexAttention
        why = None
        if flex is None:
            why = "FlexAttention missing (torch too old)"
        elif pe not in ("none", "rope", "alibi"):
            why = f"no {pe} score_mod written here"
        elif mask == "varlen":
            why = "varlen packing not written for FlexAttention here"
        fn = None
        if why is None:
            off = Lk - Lq
            W = r["window"]
            if mask == "docs":
                docs, anchors = r["docs"], r["anchors"]
                doc = (torch.arange(Lq, device="cuda") * docs) // Lq
            slopes = torch.tensor(alibi_slopes(Hq), device="cuda", dtype=torch.float32)

            def mask_mod(b, h, i, j):
                ip = i + off
                vis = j <= ip if mask != "none" else j >= 0
                if mask == "window":
                    vis = vis & (j >= ip - W)
                if mask == "docs":
                    vis = vis & ((doc[i] == doc[j]) | (j < anchors))
                return vis

            def alibi(score, b, h, i, j):
                return score - slopes[h] * (i + off - j).abs()

            bm = create_block_mask(mask_mod, None, None, Lq, Lk, device="cuda") \
                if mask != "none" else None

            def fn():
                qq, kk = prep()
                return flex(qq, kk, v, score_mod=alibi if pe == "alibi" else None,
                            block_mask=bm, scale=scale, enable_gqa=Hq != Hkv)
        contenders.append(("torch-flex", fn, why))

        for name, f, why in contenders:
            row = dict(base, contender=name)
            if why:
                row.update(status="not-supported", message=why)
            else:
                try:
                    st = time_fn(torch, f, flush, a.max_time)
                    row.update(st, status="ok", message="")
                    row["tflops"] = r["flops"] / (st["median_ms"] * 1e9)
                    row["gbps"] = r["bytes"] / (st["median_ms"] * 1e6)
                    if ceil:
                        row["frac_gemm_ceiling"] = row["tflops"] / ceil["gemm_bf16_TFLOPs"]
                        row["frac_copy_ceiling"] = row["gbps"] / ceil["copy_GBps"]
                except Exception as e:  # a contender that fails is reported, not fatal
                    row.update(status="error", message=f"{type(e).__name__}: {e}"[:240])
            new_rows.append(row)
            print(f"{name:17s} {pe:6s} {mask:7s} {r['dtype']:5s} d={D} q={Lq} kv={Lk} B={B} "
                  f"h={Hq}/{Hkv}: " + (f"{row['median_ms']:.4g} ms {row['tflops']:.1f} TFLOP/s "
                                       f"spread {100 * row['spread']:.2f}%"
                                       if row["status"] == "ok" else
                                       f"{row['status']}: {row['message']}"))
        del q, k, v
    rep["results"].extend(new_rows)
    rep["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "gpu": dev}
    out = a.out or a.merge
    with open(out, "w") as f:
        json.dump(rep, f, indent=1)
    print(f"compare_torch.py: {len(new_rows)} torch rows merged into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
