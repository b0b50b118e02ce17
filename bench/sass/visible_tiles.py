"""AnchorAttention proportionality in the static model (issue 12; docs/performance-model.md,
"Masked problems: visible tiles against predicted time").

For a packed-documents problem with anchors the kernel visits some (query block, KV tile) pairs,
each either full (the steady-state iteration posattn-sass already counts) or masked (the steady
iteration plus the masked path: the non-finite V scan, visible_words' bit ranges from the row
table, the per-element mask). The kernel's walk (TileWalk) jumps from the anchor tiles to the
block's documents without testing the tiles between. Which tiles, and which of them are masked,
come from bench/sass/tile_walk.cpp, compiled from the kernel's headers; what each costs comes
from the SASS of the prefill hd128 bf16 none instance. Then, per device (the model's roofline
per tile):

  ideal      = visible tiles x cost(full tile)
  predicted  = sum over visited tiles of cost(full or masked tile)
  proportionality = ideal / predicted
"""
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sass  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WARPS = 4  # Traits<128>::kWarps (tile_walk prints per-warp figures for the same Traits)


# ---- the tile enumeration: bench/sass/tile_walk.cpp ----------------------------------------
def build_tool(out_dir):
    """Compiles tile_walk (host C++, the kernel headers; ~5 s) into out_dir; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, "tile_walk")
    src = os.path.join(REPO, "bench", "sass", "tile_walk.cpp")
    deps = [src, os.path.join(REPO, "kernels/prefill/mma.cuh"), os.path.join(REPO, "kernels/pe/mask.cuh")]
    if not os.path.exists(exe) or os.path.getmtime(exe) < max(os.path.getmtime(d) for d in deps):
        cxx = os.environ.get("CXX", "c++")
        subprocess.run([cxx, "-std=c++17", "-O2", "-I" + os.path.join(REPO, "include"),
                        "-I" + os.path.join(REPO, "kernels"), "-I" + os.path.join(REPO, "host"),
                        src, "-o", exe], check=True)
    return exe


def packed_docs(total, rng, lo=128, hi=4096, equal=None, anchors=1):
    """Document lengths of one packed sequence of `total` tokens: `anchors` anchor tokens (their
    own document, id 0, as AnchorContext's flex engine packs them), then documents of random
    lengths in [lo, hi] (or all `equal`), the last one cut to fit."""
    out, left = [anchors], total - anchors
    while left > 0:
        d = min(left, equal or rng.randint(lo, hi))
        out.append(d)
        left -= d
    return out


def scenarios(seed=12):
    """[(name, tokens, causal, window_left, window_right, anchors, [doc lengths] or None)]: 8k and 32k
    tokens packed with documents of 128..4096 tokens (random) and of 1024 (equal), one anchor at
    the start; a dense causal control (no documents) of each length."""
    rng = random.Random(seed)
    out = []
    for total in (8192, 32768):
        k = total // 1024
        out.append((f"docs {k}k random 128..4096", total, 1, -1, -1, 1, packed_docs(total, rng)))
        out.append((f"docs {k}k equal 1024", total, 1, -1, -1, 1,
                    packed_docs(total, rng, equal=1024)))
        out.append((f"dense causal {k}k (control)", total, 1, -1, -1, 0, None))
    return out


def walk(exe, scen):
    """{name: counts} from tile_walk for scenarios scen."""
    text = []
    for name, total, causal, wl, wr, anchors, docs in scen:
        text.append(f"problem {name.replace(' ', '_')} {causal} {wl} {wr} {anchors}")
        text.append("seq " + (" ".join(map(str, docs)) if docs else f"- {total}"))
        text.append("end")
    out = subprocess.run([exe], input="\n".join(text) + "\n", capture_output=True, text=True,
                         check=True).stdout
    res, cur = {}, None
    for line in out.splitlines():
        f = line.split()
        if f[0] == "problem":
            cur = {"notes": []}
            cur.update({f[i]: int(f[i + 1]) for i in range(2, len(f), 2)})
            res[f[1].replace("_", " ")] = cur
        elif f[0] == "note":
            cur["notes"].append(line[5:])
    return res


# ---- what a tile costs: the SASS of the main loop ---------------------------------------------
def tile_parts(insns, tile_flops, geom):
    """Per-warp counters of the main loop's parts (prefill_mma, no-PE instance; tile_flops: one
    warp's tensor FLOPs per tile, posattn_sass.targets(); geom: {"bc", "d", "threads"}):
      full       the steady-state iteration (sass.analyse's path; what the ceilings use; it
                 counts one trip of the V scan below, which a full tile does not run)
      masked     the shortest iteration through the masked path (the V scan at its trips per
                 tile): the visibility-word store (the one STS outside every inner loop) and
                 the mask arm (LDS of the words and of the row table, outside inner loops, off
                 the steady path)
    Raises when the markers are not found (another kernel shape: extend the rules)."""
    ml = sass.main_loop(insns)
    h, l = ml
    inner = sass.inner_loops(insns, h, l)
    in_inner = lambda i: any(a <= i <= b for a, b in inner)
    steady = sass.steady_path(insns, h, l)
    sts = [i for i in range(h, l + 1) if insns[i].base == "STS" and not in_inner(i)
           and not sass.never(insns[i])]
    lds = [i for i in range(h, l + 1) if insns[i].base == "LDS" and not in_inner(i)
           and not steady[i]]
    if len(sts) != 1 or not lds:
        raise SystemExit(f"visible_tiles: masked-path markers not found (STS {sts}, LDS {lds})")
    store = sts[0]
    # the non-finite V scan (isolate_nonfinite_v: an inner loop loading V chunks, storing only
    # on its slow path) runs Bc x d / 8 chunks / threads loads per thread per masked tile
    chunks = geom["bc"] * geom["d"] // 8 // geom["threads"]
    mw = sass.steady_path(insns, h, l, force=[store] + lds)
    for a, b in sass.outermost(inner):
        ops = [insns[i] for i in range(a, b + 1)]
        n128 = sum(1 for x in ops if x.base == "LDS" and ".128" in x.op)
        if n128 and any(x.base == "STS" for x in ops):
            for i in range(a, b + 1):
                mw[i] *= chunks / n128
    ldg_loops = [(a, b) for a, b in inner if any(insns[i].base == "LDG" for i in range(a, b + 1))]
    # the masked iteration = the full one (with the tensor-core k-loop weighted to the tile's
    # FLOPs, as posattn-sass does) + what the masked path adds to the unweighted steady path
    full = sass.analyse(insns, tile_flops=tile_flops)["path"]
    masked = add(full, sass.count(insns, mw)[0], sass.count(insns, steady)[0], scale=[1, 1, -1])
    return {"full": full, "masked": masked, "ldg_loops": len(ldg_loops)}


def add(*cs, scale=None):
    out = {}
    for n, c in enumerate(cs):
        s = 1 if scale is None else scale[n]
        for k, v in c.items():
            out[k] = out.get(k, 0) + s * v
    return out


def clocks(dev, warps):
    """The model's roofline for one CTA's tile (counters per warp, a list): SM clocks of the
    slowest of tensor, shared memory and issue (perfect overlap, docs/performance-model.md)."""
    f = sum(c.get("mma_flops", 0) for c in warps)
    s = sum(sum(c.get(k, 0) for k in ("ldsm_bytes", "lds_bytes", "sts_bytes", "ldgsts_bytes"))
            for c in warps)
    i = sum(c.get("total", 0) for c in warps)
    return max(f / dev["tc"]["HMMA"], s / dev["smem_bpc"], i / dev["issue"])


def model(parts, counts, dev):
    """ideal, predicted (and its parts) in SM clocks for one head of one problem on one SM."""
    c_full = clocks(dev, [parts["full"]] * WARPS)
    c_masked = clocks(dev, [parts["masked"]] * WARPS)
    ideal = counts["visible"] * c_full
    pred = counts["full"] * c_full + counts["masked"] * c_masked
    return {"ideal": ideal, "predicted": pred, "tiles_full": counts["full"] * c_full,
            "tiles_masked": counts["masked"] * c_masked, "ratio": ideal / pred,
            "clocks_full": c_full, "clocks_masked": c_masked}


def prefill_target():
    """posattn_sass.targets()'s "prefill hd128 bf16 none" entry, built here from the same parts
    (targets() also reads the decode kernels' geometry, which this tool does not need)."""
    import posattn_sass
    w, br, bc, st, smem = posattn_sass.prefill_traits(128)
    return ("prefill hd128 bf16 none", f"{posattn_sass.OBJ}/prefill/instances/mma_hd128_bf16_none.cu.o",
            "prefill_mma", {"threads": 32 * w, "smem": smem, "d": 128, "bc": bc,
                            "tile_flops": 4 * br * bc * 128 // w, "transform": False})


def analyse(instances, exe, scen=None):
    """Rows for the table: instances = {arch: insns} of the hd128 bf16 none prefill kernel."""
    import posattn_sass
    launch = prefill_target()[3]
    tile_flops = launch["tile_flops"]
    scen = scen or scenarios()
    counts = walk(exe, scen)
    rows = []
    for dev_name in ("H100-SXM", "A100-SXM"):
        dev = posattn_sass.DEVICES[dev_name]
        insns = instances.get(dev["arch"])
        if insns is None:
            continue
        parts = tile_parts(insns, tile_flops, launch)
        for name, total, causal, wl, wr, anchors, docs in scen:
            c = counts[name]
            m = model(parts, c, dev)
            rows.append({"device": dev_name, "scenario": name, "counts": c, "model": m,
                         "parts": {k: parts[k].get("total") if isinstance(parts[k], dict) else
                                   parts[k] for k in parts}})
    return rows


def table(rows, out=sys.stdout):
    print("\nAnchorAttention proportionality (prefill hd128 bf16 none, Br x Bc = 128 x 32; "
          "predicted (static), per query head):", file=out)
    fmt = "%-9s %-28s %7s %7s %7s %7s %6s %8s %8s %6s"
    print(fmt % ("device", "scenario", "visible", "visited", "masked", "inv.vis", "full%",
                 "ideal Mc", "pred Mc", "ratio"), file=out)
    for r in rows:
        c, m = r["counts"], r["model"]
        print(fmt % (r["device"], r["scenario"], c["visible"], c["visited"], c["masked"],
                     c["invisible_visited"], "%.0f" % (100 * c["full"] / max(c["visited"], 1)),
                     "%.2f" % (m["ideal"] / 1e6), "%.2f" % (m["predicted"] / 1e6),
                     "%.3f" % m["ratio"]), file=out)
    p = rows[0]["parts"] if rows else {}
    print("(per warp per tile: full %s, masked %s instructions; ideal = visible x full-tile cost; "
          "ratio = ideal / predicted; Mc = million SM clocks; main-loop inner loops with global "
          "loads (a per-tile document search would be one): %s)" %
          (p.get("full"), p.get("masked"), p.get("ldg_loops")), file=out)


def main(build, json_out=None):
    """posattn-sass --anchor-tiles: builds the hd128 bf16 none instance through the cuda-check
    build (posattn_sass.build_objects) and tile_walk, prints the table; 0 (an exit status)."""
    import json
    import posattn_sass
    tg = prefill_target()
    posattn_sass.build_objects(build, [tg[1]])
    funcs, _ = posattn_sass.functions(os.path.join(build, tg[1]))
    insns = {arch: ins for (arch, fn), ins in funcs.items() if tg[2] in fn}
    rows = analyse(insns, build_tool(os.path.join(build, "tile_walk")))
    table(rows)
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"tool": "posattn-sass --anchor-tiles", "kind": "predicted (static)",
                       "rows": [{**r, "counts": {k: v for k, v in r["counts"].items()
                                                 if k != "warps"}} for r in rows]},
                      f, indent=1, sort_keys=True)
    return 0
