#!/usr/bin/env python3
"""posattn-sass: a static SASS performance model of posattn's kernels (no GPU needed).

Builds the chosen kernel objects exactly as the library does (the targets of the cuda-check build,
through its own ninja: objects CI already built are reused), disassembles them with cuobjdump,
finds each kernel's main loop and its steady-state iteration (bench/sass/sass.py), and turns the
per-warp counters into predicted ceilings per device (constants and sources: DEVICES below and
docs/performance-model.md). Prints a table, writes JSON, and compares with a baseline.

  posattn-sass [--build DIR] [--json OUT] [--baseline FILE] [--update-baseline] [--only PREFIX]
               [--fire-tiles EXE]
  posattn-sass --sass FILE.sass ...        analyse SASS text (cuobjdump -sass output) directly
  posattn-sass --anchors                   build CUTLASS's FMHA examples and analyse them (slow)
  posattn-sass --anchor-tiles [--json OUT] AnchorAttention: visible vs visited tiles, proportionality
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sass  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Per-SM rates and sizes; every number's source is in docs/performance-model.md ("constants").
# tc: dense tensor FLOP per clock per SM for the instruction family the kernel uses; hbm: HBM
# bandwidth in bytes per second (datasheets: H100 SXM 3.35 TB/s, H200 4.8 TB/s, A100 SXM 80GB
# 2.039 TB/s).
DEVICES = {
    "H100-SXM": {"arch": "sm_90a", "sms": 132, "ghz": 1.83, "tc": {"HGMMA": 4096, "HMMA": 2048},
                 "hbm": 3.35e12, "smem_bpc": 128, "issue": 4, "regs": 65536, "smem": 228 * 1024,
                 "smem_block_max": 227 * 1024, "threads": 2048, "ctas": 32},
    "H200": {"arch": "sm_90a", "sms": 132, "ghz": 1.83, "tc": {"HGMMA": 4096, "HMMA": 2048},
             "hbm": 4.8e12, "smem_bpc": 128, "issue": 4, "regs": 65536, "smem": 228 * 1024,
             "smem_block_max": 227 * 1024, "threads": 2048, "ctas": 32},
    "A100-SXM": {"arch": "sm_80", "sms": 108, "ghz": 1.41, "tc": {"HMMA": 2048},
                 "hbm": 2.039e12, "smem_bpc": 128, "issue": 4, "regs": 65536, "smem": 164 * 1024,
                 "smem_block_max": 163 * 1024, "threads": 2048, "ctas": 32},
}
RESERVED_SMEM = 1024  # per CTA, reserved by the driver on sm_80/sm_90

# The main instances (CI guards these): hd128 bf16 per PE kind, plus the decode kernel. Masks
# (causal, window, documents) are run-time fields of the same instance: the steady-state path is
# the unmasked tile, the masked tile's extra work is in "body" (see docs/performance-model.md).
MAIN = ["none", "rope", "alibi", "fire", "t5", "kerple_log", "kerple_power"]
OBJ = "CMakeFiles/posattn_cuda_backend.dir/kernels"


def prefill_traits(d, element=False):
    """(warps, Br, Bc, stages, dynamic smem bytes) of the tensor-core prefill kernel for head dim
    d, read from kernels/prefill/mma.cuh (its Traits<D> and Check::kSmemBytes formula);
    element: the per-element bias kernel's shape (ElementTraits<D>, where it differs)."""
    src = open(os.path.join(REPO, "kernels/prefill/mma.cuh")).read()
    # struct Traits<d> : TileShape<d, warps, Br, Bc, stages, kM> {}
    pat = r"struct %s<%d>\s*:\s*TileShape<%d, (\d+), (\d+), (\d+), (\d+), (\d+)>"
    m = ((element and re.search(pat % ("ElementTraits", d, d), src)) or
         re.search(pat % ("Traits", d, d), src))
    if not m:
        raise SystemExit(f"posattn-sass: no Traits<{d}> in kernels/prefill/mma.cuh")
    w, br, bc, st, km = (int(g) for g in m.groups())
    pitch = d if d % 64 == 0 else d + 8  # Smem<D>::kPitch: swizzled or padded rows
    # + the masked tiles' visibility words (Br x Bc / 32), the row table (4 Br + 4 + 12 words:
    # Check::kRowWords, kBlockWords) (Check::kSmemBytes) and the bias kinds' per-warp distance
    # bands (warps x (16 kM + Bc) words; region_bytes: the kinds without a band launch with
    # 1-1.5 KiB less)
    return w, br, bc, st, ((br + 2 * st * bc) * pitch * 2 +
                           (br * (bc // 32) + 4 * br + 4 + 12 + w * (16 * km + bc)) * 4)


def prefill_launch(d, element, pe):
    """The launch info of a prefill_mma kernel of head dim d (element: its per-element shape)."""
    w, br, bc, st, smem = prefill_traits(d, element)
    return {"threads": 32 * w, "smem": smem, "d": d, "bc": bc,
            "tile_flops": 4 * br * bc * d // w, "transform": pe in ("rope", "xpos")}


def prefill_path(fn):
    """The Path template argument of a mangled prefill_mma<D, Tin, PeKind, Path> (kernels/
    prefill/mma.cuh: 0 both loops, 1 the distance band's, 2 the per-element bias's), or None."""
    m = re.search(r"prefill_mmaILi\d+E.*ELi(\d+)ELi(\d+)EEEv", fn)
    return int(m.group(2)) if m else None


def targets():
    """[(label, object, kernel-name filter, launch info)] of the main instances."""
    out = []
    for pe in MAIN:
        launch = prefill_launch(128, False, pe)  # FIRE: its kink trips, analyse_targets
        out.append((f"prefill hd128 bf16 {pe}", f"{OBJ}/prefill/instances/mma_hd128_bf16_{pe}.cu.o",
                    "prefill_mma", launch))
    # The decode kernels (kernels/decode/cuda_decode.cu instantiates both for every cache dtype):
    # bf16 q with a bf16 and an FP8 E4M3 cache (E5M2 compiles to the same loop), launched for
    # DECODE_REF (GQA 8:1, one query token: 8 query rows per kv head).
    src = open(os.path.join(REPO, "kernels/decode/simt_geometry.h")).read()  # decode.cu's geometry
    threads = int(re.search(r"constexpr int kThreads = (\d+);", src).group(1))
    keys = int(re.search(r"kKeysPerTile = DMAX > 128 \? \d+ : (\d+);", src).group(1))
    for cache, io, esz in (("bf16", "IN8pa_cache7CacheIOIN2pa4bf16EEELi128E", 2),
                           ("fp8", "IN8pa_cache5Fp8IOILi0EEELi128E", 1)):
        out.append((f"decode hd128 {cache}", f"{OBJ}/decode/cuda_decode.cu.o", "decode_split" + io,
                    {"threads": threads, "smem": None,
                     "decode": {"kernel": "split", "keys": keys, "esz": esz, "d": 128}}))
    # decode_mma (kernels/decode/decode_mma.cuh; geometry in mma_geometry.h): 16 padded query rows, a 2-stage ring of 64-key
    # K/V tiles in the cache dtype, FP8: K and V work tiles in bf16, the statistics (MmaSmem).
    src = open(os.path.join(REPO, "kernels/decode/mma_geometry.h")).read()
    warps = int(re.search(r"constexpr int kMmaWarps = (\d+)", src).group(1))
    bc = int(re.search(r"kMmaTile = D > 128 \? \d+ : (\d+);", src).group(1))
    for cache, io, esz in (("bf16", "IN8pa_cache7CacheIOIN2pa4bf16EEES4_Li128E", 2),
                           ("fp8", "IN8pa_cache5Fp8IOILi0EEEN2pa4bf16ELi128E", 1)):
        smem = (16 * 128 * 2 + 2 * 2 * bc * 128 * esz + (2 * bc * 128 * 2 if esz == 1 else 0) +
                (3 * warps * 16 + 2 * 16 * warps) * 4)
        out.append((f"decode mma hd128 {cache}", f"{OBJ}/decode/cuda_decode.cu.o",
                    "decode_mma" + io,
                    {"threads": 32 * warps, "smem": smem,
                     "decode": {"kernel": "mma", "keys": bc, "esz": esz, "d": 128}}))
    return out


# ---- tools ------------------------------------------------------------------------------------
def tool(name):
    """cuobjdump / nvdisasm: on PATH, in the toolkit, or from the PyPI nvidia-cuda-* packages."""
    found = shutil.which(name) or (os.path.exists(f"/usr/local/cuda/bin/{name}") and
                                   f"/usr/local/cuda/bin/{name}")
    if found:
        return found
    try:
        import nvidia  # the namespace package of nvidia-cuda-cuobjdump / -nvdisasm
        for base in nvidia.__path__:
            for sub in sorted(os.listdir(base)):
                p = os.path.join(base, sub, "bin", name)
                if os.path.exists(p):
                    return p
    except ImportError:
        pass
    raise SystemExit(f"posattn-sass: no {name}; pip install nvidia-cuda-cuobjdump "
                     "nvidia-cuda-nvdisasm (scripts/lib.sh ensure_sass_deps installs both)")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def build_objects(build, objs):
    """Builds the objects through the build's own rules (no-op when up to date). A folder with no
    build yet is configured from the cuda-check preset; a non-ninja build (scripts/gpu-check.sh's)
    must have built them already."""
    if os.path.exists(os.path.join(build, "build.ninja")):
        subprocess.run(["ninja", "-C", build] + objs, check=True, stdout=subprocess.DEVNULL)
        return
    if os.path.exists(os.path.join(build, "CMakeCache.txt")):
        missing = [o for o in objs if not os.path.exists(os.path.join(build, o))]
        if missing:
            raise SystemExit(f"posattn-sass: {build} is not a ninja build and lacks {missing[0]}")
        return
    run(["cmake", "--preset", "cuda-check", "-S", REPO, "-B", build])
    subprocess.run(["ninja", "-C", build] + objs, check=True, stdout=subprocess.DEVNULL)


def res_usage(obj):
    """{(arch, function): {REG, STACK, SHARED, LOCAL}} from cuobjdump -res-usage."""
    out, fn = {}, None
    arch = None
    for line in run([tool("cuobjdump"), "-res-usage", obj]).splitlines():
        m = re.search(r"arch = (sm_\w+)", line)
        if m:
            arch = m.group(1)
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            fn = m.group(1)
            continue
        if fn and "REG:" in line:
            out[(arch, fn)] = {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", line)}
            fn = None
    return out


def functions(obj):
    """({(arch, function): [Insn]}, {(arch, function): resource usage}) of an object file."""
    return sass.parse(run([tool("cuobjdump"), "-sass", obj])), res_usage(obj)


# ---- the model --------------------------------------------------------------------------------
def ctas_per_sm(dev, regs, threads, smem):
    """Resident CTAs per SM from registers (allocated per warp in units of 256), threads and
    shared memory (dynamic + static + the driver's reserved 1 KiB)."""
    warps = (threads + 31) // 32
    per_warp = ((max(regs, 1) * 32 + 255) // 256) * 256
    by_regs = dev["regs"] // (per_warp * warps)
    by_threads = dev["threads"] // threads
    lim = [by_regs, by_threads, dev["ctas"]]
    if smem is not None:
        need = smem + RESERVED_SMEM
        lim.append(dev["smem"] // need if smem <= dev["smem_block_max"] else 0)
    return min(lim)


def ceilings(dev, c):
    """Predicted TFLOP/s bounds from one warp's steady-state iteration counters c (all warps of
    an SM share the SM's tensor, shared-memory and issue rates, so per-warp ratios suffice)."""
    flops = c.get("mma_flops", 0)
    if not flops:
        return None
    fam = "HGMMA" if c.get("HGMMA") else "HMMA"
    smem_bytes = sum(c.get(k, 0) for k in ("ldsm_bytes", "lds_bytes", "sts_bytes",
                                           "ldgsts_bytes", "hgmma_smem_bytes"))
    clk = {"tensor": flops / dev["tc"][fam],
           "smem": smem_bytes / dev["smem_bpc"],
           "issue": c.get("total", 0) / dev["issue"]}
    tflops = {k: flops / v * dev["ghz"] * 1e9 * dev["sms"] / 1e12 for k, v in clk.items() if v}
    bound = min(tflops, key=tflops.get)
    return {"tensor": tflops["tensor"], "smem": tflops.get("smem"), "issue": tflops["issue"],
            "predicted": tflops[bound], "bound": bound}


# ---- decode: a memory-bound kernel ------------------------------------------------------------
# The reference problem (issue 14): Llama-3-70B-like GQA 8:1 (64 q heads, 8 kv heads),
# head_dim 128, batch 64, 8192 cached tokens, one query token, no PE applied in the kernel.
DECODE_REF = {"batch": 64, "kv_heads": 8, "group": 8, "tokens": 1, "context": 8192, "d": 128}


def decode_counts(insns, dec, threads):
    """Counters of one CTA (all its warps) per KV tile of decode kernel dec["kernel"] on
    DECODE_REF, and how they were obtained (a note for the report), or None.

    mma: the tile loop is the loop around the main (16-key chunk) loop. Its steady path is the
    shortest head -> latch path (no branch of a run-time feature the reference problem leaves off:
    RoPE, bias, softcap, non-finite V, masking) that runs the tile copies; every warp runs it, and
    the chunk loop's shortest path (the no-RoPE Q K^T and P V mma) runs once per 16-key chunk of
    each m-tile, over the warps that hold one. The cp.async copy loop counts kBc x d x bytes / 16
    units / threads over the K/V pairs of its unrolled body (a fraction when the body holds more
    than a thread's share: FP8), the FP8 widening loop (straight-line, stores to shared memory,
    forced) kBc x d codes / threads over the codes its stores write per trip (one per 16-bit
    element).
    split (SIMT decode_split): analyse()'s steady path of the tile loop, inner loops once; its
    inner loops run several trips per tile, so the issue time is a LOWER bound (the fraction of
    HBM bandwidth an upper bound)."""
    warps = threads // 32
    if dec["kernel"] == "split":
        a = sass.analyse(insns)
        if not a:
            return None
        c = {k: v * warps for k, v in a["path"].items()}
        return c, "tile loop steady path x warps, inner loops once (issue time: lower bound)"
    ml = sass.main_loop(insns)
    if ml is None:
        return None
    h0, l0 = ml
    outer = [(a, b) for a, b in sass.loops(insns) if a <= h0 and l0 <= b and (a, b) != ml]
    if not outer:
        return None
    h, l = min(outer, key=lambda ab: ab[1] - ab[0])
    units = dec["keys"] * dec["d"] * dec["esz"] // 16  # 16-byte copies per K (or V) tile

    def widening(c):  # a straight-line loop (one branch: its latch) storing to shared memory
        return bool(c.get("STS")) and not c.get("LDG") and c.get("BRANCH", 0) == 1

    def trips(c):
        k = c.get("LDGSTS", 0) / 2
        if k:  # an unrolled copy loop: its body's K/V pairs against the thread's share
            return units / threads / k
        if widening(c):  # FP8 widening: a code per 16-bit element stored (sts_bytes: per warp)
            return dec["keys"] * dec["d"] / threads / (c["sts_bytes"] / 32 / 2)
        return 1
    w = sass.steady_path(insns, h, l, trips, top=False, force_tc=False, force_loop=widening)
    for i in range(h0, l0 + 1):
        w[i] = 0
    tile, _ = sass.count(insns, w)
    cw = sass.steady_path(insns, h0, l0, None, top=False, force_tc=False)
    chunk, _ = sass.count(insns, cw)
    r = DECODE_REF
    chunks = ((r["group"] * r["tokens"] + 15) // 16) * (dec["keys"] // 16)
    c = {k: tile.get(k, 0) * warps + chunk.get(k, 0) * chunks for k in set(tile) | set(chunk)}
    return c, (f"tile path x {warps} warps + chunk path x {chunks} chunks "
               f"({tile.get('total', 0):.0f} + {chunk.get('total', 0):.0f} per warp)")


def decode_model(dev, c, dec):
    """Predicted (static) time per KV tile of one CTA on one SM's share of the device, per ceiling,
    in SM clocks: HBM (the tile's K and V bytes at the SM's share of the HBM bandwidth), issue,
    shared memory, tensor; the slowest binds. Fraction of HBM bandwidth = HBM time / that."""
    r = DECODE_REF
    tile_bytes = 2 * dec["keys"] * dec["d"] * dec["esz"]
    hbm_bpc = dev["hbm"] / (dev["sms"] * dev["ghz"] * 1e9)  # bytes per SM clock
    smem_bytes = sum(c.get(k, 0) for k in ("ldsm_bytes", "lds_bytes", "sts_bytes", "ldgsts_bytes"))
    clk = {"hbm": tile_bytes / hbm_bpc, "issue": c.get("total", 0) / dev["issue"],
           "smem": smem_bytes / dev["smem_bpc"],
           "tensor": c.get("mma_flops", 0) / dev["tc"]["HMMA"]}
    bound = max(clk, key=clk.get)
    frac = clk["hbm"] / clk[bound]
    total = 2.0 * r["batch"] * r["kv_heads"] * r["context"] * r["d"] * dec["esz"]
    return {"tile_keys": dec["keys"], "tile_bytes": tile_bytes, "cta_insns": c.get("total", 0),
            "clk": {k: round(v, 1) for k, v in clk.items()}, "bound": bound,
            "hbm_fraction": round(frac, 4), "kv_bytes": total,
            "predicted_us": round(total / (dev["hbm"] * frac) * 1e6, 2)}


def vote_trips(launch):
    """Trips per KV tile of a loop inside a vote-guarded region (the fallback): FIRE's kink trips
    per fallback tile (launch["vote_loop_trips"], measured by fire_tiles), else once."""
    trips = launch.get("vote_loop_trips")
    return (lambda c: trips) if trips else None


def mix(fast, fallback, f):
    """Counters of the average tile: a fraction f of the tiles takes the fallback."""
    return {k: (1 - f) * fast.get(k, 0) + f * fallback.get(k, 0) for k in set(fast) | set(fallback)}


def summarise(label, arch, fn, insns, usage, launch, tile_flops=None):
    r = launch.get("rescale_fraction")
    a = sass.analyse(insns, trips=transform_trips(launch), tile_flops=tile_flops,
                     vote_trips=vote_trips(launch), rescale=1.0 if r is None else r)
    u = usage.get((arch, fn), {})
    vote = None
    if a and a.get("fallback"):
        # a vote-guarded path (docs/performance-model.md): the fast path, the fallback, and the
        # tile average with the fallback fraction measured by fire_tiles (or 1 when unmeasured)
        f = launch.get("fallback_fraction")
        fast, fb = a["path"], a["fallback"]["path"]
        vote = {"fast": fast, "fallback": fb, "fraction": f if f is not None else 1.0,
                "measured": f is not None, "source": launch.get("fallback_source", "unmeasured")}
        a["fast_path"] = fast
        a["path"] = mix(fast, fb, vote["fraction"])
    c = a["path"] if a else {}
    stl = sum(1 for x in insns if x.base in ("STL", "LDL") and not sass.never(x))
    row = {"label": label, "arch": arch, "function": fn, "regs": u.get("REG"),
           "stack": u.get("STACK", 0), "local_insns": stl, "threads": launch["threads"],
           "smem": launch["smem"], "sass_insns": len(insns), "main_loop": a}
    if a and tile_flops and abs(c.get("mma_flops", 0) - tile_flops) > 0.01 * tile_flops:
        row["warning"] = (f'{label} {arch}: the main loop found does {c.get("mma_flops", 0):.0f} '
                          f'tensor FLOPs per warp, the tile needs {tile_flops:.0f}: loop finder lost')
        print("WARNING: " + row["warning"], file=sys.stderr)
    if a:
        h = c.get("HMMA", 0) + c.get("HGMMA", 0)
        row["per_mma"] = {"insns": c["total"] / h, "ldsm_bytes": c.get("ldsm_bytes", 0) / h} if h else None
    dec = launch.get("decode")
    dc = decode_counts(insns, dec, launch["threads"]) if dec else None
    if dc:
        row["decode_counts"] = {"cta_per_tile": dc[0], "how": dc[1], "ref": DECODE_REF}
    row["devices"] = {}
    if a and a.get("rescale"):  # the lazy O rescale (sass.rescale_region)
        row["rescale"] = dict(a["rescale"], measured=r is not None,
                              source=launch.get("rescale_source", "unmeasured"))
    if vote:
        row["vote"] = {k: vote[k] for k in ("fraction", "measured", "source")}
        row["vote"]["insns"] = {k: vote[k].get("total", 0) for k in ("fast", "fallback")}
        row["vote"]["regions"] = len(a["fallback"]["regions"])
    for name, dev in DEVICES.items():
        if dev["arch"] != arch:
            continue
        row["devices"][name] = {"ctas_per_sm": ctas_per_sm(dev, u.get("REG", 0), launch["threads"],
                                                           launch["smem"]),
                                "ceilings": ceilings(dev, c) if a and not dec else None}
        if vote:
            row["devices"][name]["vote"] = {k: ceilings(dev, vote[k])["predicted"]
                                            for k in ("fast", "fallback")}
        if dc:
            row["devices"][name]["decode"] = decode_model(dev, dc[0], dec)
    return row


def transform_trips(launch):
    """Trips per KV tile of an inner loop that writes shared memory in a transforming instance:
    the K-tile rotation stores Bc x d 16-bit elements per CTA (full rotary dim), i.e.
    Bc*d/threads per thread, and one trip stores what its body's STS store."""
    def trips(c):
        if not launch.get("transform") or not c.get("STS"):
            return 1
        return max(1, launch["bc"] * launch["d"] // launch["threads"] // c["STS"])
    return trips


def tool_problems(build, exe, tool, args, pattern):
    """(the pattern's matches in the output of the host tool `tool` (posattn_fire_tiles,
    posattn_rescale_tiles) for args, None) or ([], why). exe: the tool already built, else built
    in build (tests/python; fire_tiles links posattn_internal: in a CUDA build, every
    instance)."""
    built = exe is None
    target = f"tests/python/{tool}"
    exe = exe or os.path.join(build, target)
    try:
        if built and os.path.exists(os.path.join(build, "build.ninja")):
            subprocess.run(["ninja", "-C", build, target], check=True, stdout=subprocess.DEVNULL)
        out = run([exe] + args)
    except (OSError, subprocess.CalledProcessError) as e:
        return [], f"{tool} not run ({e})"
    probs = re.findall(pattern, out)
    return probs, None if probs else f"{tool} printed no such problem"


def fire_trips(build, exe=None, wgmma=False):
    """(fraction, trips, source) of a kernel's FIRE kink trips (fire_tiles [--wgmma]: hd128, 8k
    tokens, causal and not, posattn-bench's and nn.Linear's MLP initialisations, 4 MLPs each): of
    the problem with the most trips per tile (fraction x trips per fallback tile), the fraction of
    warp tiles with a trip and their mean trips; or (None, None, why). exe: a posattn_fire_tiles
    already built (any build of the same sources), else built in build (it links
    posattn_internal: in a CUDA build, every instance)."""
    args = (["--wgmma"] if wgmma else []) + ["128", "8192", "4"]
    probs, why = tool_problems(build, exe, "posattn_fire_tiles", args,
                               r"problem (\S+) tiles \d+ fallback \d+ fraction ([0-9.]+) .*?"
                               r"trips_per_fallback ([0-9.]+)")
    if why:
        return None, None, why
    name, f, trips = max(probs, key=lambda x: float(x[1]) * float(x[2]))
    return float(f), float(trips), (f"fire_tiles{' --wgmma' if wgmma else ''}: the most trips "
                                    f"per tile of {len(probs)} problems ({name}): "
                                    f"{float(trips):.2f} per fallback tile")


def rescale_fraction(build, exe=None):
    """(fraction, source) of the lazy O rescale (kernels/prefill/mma.cuh): the largest fraction of
    warp tiles that rescale over bench/sass/rescale_tiles.cpp's problems (hd128, 8k tokens,
    causal and not, iid Gaussian q and k with scaled-logit deviation 1, 2, 4), or (None, why).
    exe: a posattn_rescale_tiles already built, else built in build."""
    probs, why = tool_problems(build, exe, "posattn_rescale_tiles", ["128", "8192"],
                               r"problem (\S+) tiles \d+ rescaled \d+ fraction ([0-9.]+)")
    if why:
        return None, why
    name, f = max(probs, key=lambda x: float(x[1]))
    return float(f), (f"rescale_tiles: largest of {len(probs)} problems ({name}; no bias: "
                      "none, rope)")


# kinds whose logits carry no bias: rescale_tiles' problems stand for them (RoPE keeps iid
# Gaussian q and k Gaussian); a bias raises a causal row's maximum tile after tile
RESCALE_MEASURED = ("none", "rope")


def analyse_targets(build, only=None, fire_tiles=None, rescale_tiles=None):
    tg = [t for t in targets() + wgmma_targets() if only is None or t[0].startswith(only)]
    build_objects(build, sorted({t[1] for t in tg}))
    plain = [t for t in tg if t[2] == "prefill_mma" and t[0].split()[-1] in RESCALE_MEASURED]
    if plain:
        f, why = rescale_fraction(build, rescale_tiles)
        if f is None:
            print(f"WARNING: lazy rescale fraction not measured ({why}): the prediction assumes "
                  "every tile rescales", file=sys.stderr)
        for t in plain:
            t[3]["rescale_fraction"], t[3]["rescale_source"] = f, why
    for wgmma in (False, True):  # FIRE's kink trips, measured per kernel
        fire = [t for t in tg if t[0].endswith(" fire") and bool(t[3].get("wgmma")) == wgmma]
        if not fire:
            continue
        f, trips, why = fire_trips(build, fire_tiles, wgmma)
        if f is None:
            print(f"WARNING: FIRE kink trips not measured ({why}): the prediction assumes every "
                  "tile runs one", file=sys.stderr)
        for t in fire:
            t[3]["fallback_fraction"], t[3]["fallback_source"] = f, why
            t[3]["vote_loop_trips"] = trips
    rows, objs = [], {}
    for label, obj, filt, launch in tg:
        if obj not in objs:  # cuda_backend.cu.o holds several targets: disassemble it once
            objs[obj] = functions(os.path.join(build, obj))
        funcs, usage = objs[obj]
        for (arch, fn), insns in sorted(funcs.items()):
            if filt in fn and launch.get("wgmma"):
                if arch == "sm_90a":
                    rows.append(summarise_wgmma(label, arch, fn, insns, usage, launch))
            elif filt in fn:
                # hd128 splits the loops of the band kinds into two kernels (Path 1: the band,
                # the main row; Path 2: per element, explicit positions): each row gets its own
                # kernel's shape
                lab, lau = label, launch
                if filt == "prefill_mma" and prefill_path(fn) == 2:
                    pe = label.split()[-1]
                    lau = prefill_launch(launch["d"], True, pe)
                    if any(prefill_path(f) == 1 for (a2, f) in funcs if a2 == arch):
                        lab = label + " explicit positions"
                rows.append(summarise(lab, arch, fn, insns, usage, lau,
                                      tile_flops=lau.get("tile_flops")))
    return rows


# ---- Hopper: the wgmma kernel (kernels/prefill/wgmma.cuh) -------------------------------------
# The model's rules and their sources: docs/performance-model.md, "Hopper: wgmma kernel".
WGMMA = {
    # MUFU (ex2, lg2, rcp, ...) results per clock per SM on sm_90: CUDA C++ Programming Guide,
    # arithmetic instruction throughput table (16 for compute capability 9.0); FlashAttention-3
    # (arXiv 2407.08608): H100 SXM5 has 3.9 TFLOP/s of special functions = 132 x 16 x 1.83 GHz.
    "mufu_per_clk": 16,
    # ASSUMPTION (no published figure found): SM clocks an HGMMA that is waited for before the
    # next one is issued costs beyond its tensor-core time (operand fetch, accumulate, write-back
    # of a pipeline that drains instead of overlapping). The report gives the X = 0 figure too.
    "serial_clk": 32,
}
# PE kinds of the wgmma instances (posattn.h enum values, as in the mangled names' third
# template argument), in the order of wgmma.cuh's serves_pe()
WGMMA_PE = {"none": 0, "rope": 1, "alibi": 2, "t5": 5, "kerple_log": 6, "kerple_power": 7,
            "fire": 3, "xpos": 4}


def wgmma_traits(d):
    """(Br, Bc, stages, threads, dynamic smem bytes) of wgmma.cuh's Traits<D> / smem_bytes<D>()
    (the T5/FIRE tables come on top at run time; not counted)."""
    src = open(os.path.join(REPO, "kernels/prefill/wgmma.cuh")).read()
    m = re.search(r"kD = D, kBr = (\d+), kBc = D == 256 \? (\d+) : (\d+), kStages = (\d+);", src)
    t = re.search(r"kThreads = (\d+);", src)
    if not (m and t):
        raise SystemExit("posattn-sass: no Traits in kernels/prefill/wgmma.cuh")
    br, bc256, bc, st = (int(g) for g in m.groups())
    bc = bc256 if d == 256 else bc
    return br, bc, st, int(t.group(1)), 1024 + (br + 2 * st * bc) * d * 2


def producer_trips(launch):
    """Trips per KV tile of a producer inner loop that stores to shared memory on every trip:
    xPos's K transform (wgmma.cuh xpos_k_row), thread r of the 128-thread producer warpgroup
    transforming the rotary pairs of key row r (full rotary dim: Bc x d elements per tile, one
    trip storing what its body's STS store); None for the other kinds."""
    if not launch.get("producer_transform"):
        return None
    return lambda c: max(1, launch["bc"] * launch["d"] // 128 // c["STS"]) if c.get("STS") else 1


def wgmma_targets():
    """The wgmma instances (cuda_backend.cu compiles them for sm_90a, POSATTN_PREFILL_WGMMA):
    hd128 bf16 for every PE kind the kernel serves, hd64 bf16 without PE. xPos twice: with K
    from the key pre-pass (bf16 while its call-centred factors fit, pa_prefill_prerotates_k: no
    producer transform on the path) and with the producer's in-tile K transform (f16, longer
    contexts: the transform loop on the path, producer_trips)."""
    out = []
    for d, pes in ((128, list(WGMMA_PE) + ["xpos in-tile"]), (64, ["none"])):
        br, bc, st, threads, smem = wgmma_traits(d)
        for pe in pes:
            out.append((f"prefill wgmma hd{d} bf16 {pe}",
                        f"{OBJ}/cuda_backend.cu.o",
                        f"prefill_wgmmaILi{d}EN2pa4bf16ELi{WGMMA_PE[pe.split()[0]]}E",
                        {"threads": threads, "smem": smem, "d": d, "bc": bc, "wgmma": True,
                         "consumers": 2, "pingpong": True,
                         "producer_transform": pe == "xpos in-tile",
                         "tile_flops": 4 * br * bc * d}))
    return out


def wgmma_model(dev, a, launch, serial_clk=None):
    """Predicted (static) TFLOP/s of a warp-specialised wgmma kernel from analyse_wgmma()'s
    per-warp counters a, per KV tile of one CTA (one CTA per SM), in SM clocks:
      tensor  both consumers' HGMMA FLOPs at the HGMMA rate;
      smem    wgmma operand reads (SS: A and B, RS: B; once per warpgroup) + LDS/STS/LDSM bytes;
      issue   per scheduler: one warp of each consumer warpgroup and the producer warp;
      mufu    per scheduler: its two consumer warps' and its producer warp's MUFU instructions,
              32 lanes at a quarter of the SM's MUFU rate;
      turns   ping-pong: a consumer's GEMMs (its HGMMA FLOPs at the full rate, plus serial_clk
              per serialised HGMMA, at least its turn's instructions) alternate with the other's;
              a tile takes T_gemm + max(T_gemm, T_soft), T_soft = its warp's instructions
              outside the turn (or its MUFU time, if longer). Without ping-pong (cooperative):
              both consumers' GEMMs, then the softmax: T_gemm(both) + T_soft.
    The slowest binds; predicted = the tensor ceiling x tensor time / that."""
    x = WGMMA["serial_clk"] if serial_clk is None else serial_clk
    c, turn, nwg = a["path"], a["turn"], launch.get("consumers", 2)
    rate = dev["tc"]["HGMMA"]
    mufu_clk = 32 / (WGMMA["mufu_per_clk"] / dev["issue"])  # one warp instruction, one scheduler
    mufu = sum(v for k, v in c.items() if k.startswith("MUFU"))
    f_wg = a["warpgroup_flops"]
    i_warp, i_turn = c.get("total", 0), turn.get("total", 0)
    prod = a.get("producer") or {}
    i_prod = prod.get("total", 0)
    mufu_prod = sum(v for k, v in prod.items() if k.startswith("MUFU"))
    t_soft = max(i_warp - i_turn, mufu * mufu_clk)
    smem = sum(c.get(k, 0) for k in ("hgmma_smem_bytes", "lds_bytes", "sts_bytes", "ldsm_bytes"))
    clk = {"tensor": nwg * f_wg / rate,
           "smem": nwg * 4 * smem / dev["smem_bpc"],
           "issue": nwg * i_warp + i_prod,
           "mufu": (nwg * mufu + mufu_prod) * mufu_clk}
    if launch.get("pingpong"):
        t_gemm = max(f_wg / rate + a["serialized"] * x, i_turn)
        clk["turns"] = t_gemm + max(t_gemm, t_soft)
    else:
        t_gemm = max(nwg * f_wg / rate, f_wg / rate + a["serialized"] * x)
        clk["turns"] = t_gemm + t_soft
    peak = dev["sms"] * dev["ghz"] * 1e9 * rate / 1e12
    tflops = {k: peak * clk["tensor"] / v for k, v in clk.items() if v}
    bound = min(tflops, key=tflops.get)
    return {"tensor": tflops["tensor"], "smem": tflops.get("smem"), "issue": tflops["issue"],
            "mufu": tflops.get("mufu"), "turns": tflops["turns"], "predicted": tflops[bound],
            "bound": bound, "clk": {k: round(v, 1) for k, v in clk.items()},
            "t_gemm": round(t_gemm, 1), "t_soft": round(t_soft, 1)}


def rescale_table(rows, out=sys.stdout):
    """The rows with the lazy O rescale (kernels/prefill/mma.cuh): its FMULs and the fraction of
    tiles that run them (counted in the main table with that weight)."""
    v = [r for r in rows if r.get("rescale")]
    if not v:
        return
    print("\nlazy O rescale (a warp multiplies O only when one of its rows moved its reference "
          "maximum): per warp per KV tile", file=out)
    fmt = "%-30s %-6s %7s %5s %9s  %s"
    print(fmt % ("kernel", "arch", "regions", "FMUL", "fraction", "fraction from"), file=out)
    for r in v:
        z = r["rescale"]
        print(fmt % (r["label"], r["arch"], z["regions"], z["fmul"], "%.4f" % z["weight"],
                     z["source"] if z["measured"] else "UNMEASURED or a bias kind: 1 assumed"),
              file=out)


def vote_table(rows, out=sys.stdout):
    """The rows with a vote-guarded path (FIRE's band): per warp per KV tile, the fast path's and
    the fallback's instructions, the fallback fraction and the predicted TFLOP/s of each and of
    the mix (the main table's figure)."""
    v = [r for r in rows if r.get("vote")]
    if not v:
        return
    print("\nvote-guarded paths (a warp vote sends a tile to the fallback): per warp per KV tile",
          file=out)
    fmt = "%-30s %-6s %-9s %6s %8s %9s %6s %8s %6s  %s"
    print(fmt % ("kernel", "arch", "device", "fast", "fallback", "fraction", "fast", "fallback",
                 "mixed", "fraction from"), file=out)
    for r in v:
        vt = r["vote"]
        for name, d in r["devices"].items():
            print(fmt % (r["label"], r["arch"], name, "%.0f" % vt["insns"]["fast"],
                         "%.0f" % vt["insns"]["fallback"], "%.4f" % vt["fraction"],
                         "%.0f" % d["vote"]["fast"], "%.0f" % d["vote"]["fallback"],
                         "%.0f" % d["ceilings"]["predicted"],
                         vt["source"] if vt["measured"] else "UNMEASURED: 1 assumed"), file=out)
    print("(instructions, then TFLOP/s predicted (static); mixed: the counters of "
          "(1 - fraction) fast + fraction fallback tiles; docs/performance-model.md, "
          "vote-guarded paths)", file=out)


def wgmma_table(rows, out=sys.stdout):
    """The wgmma rows' model in detail (SM clocks per KV tile of one CTA, first sm_90a device)."""
    w = [r for r in rows if r.get("main_loop") and "warpgroup_flops" in r["main_loop"]]
    if not w:
        return
    print("\nwgmma kernels (warp-specialised, sm_90a): SM clocks per KV tile of one CTA; "
          "per warp: instructions, in the GEMM turn, MUFU, serialised HGMMAs", file=out)
    fmt = "%-44s %-9s %5s %5s %4s %4s %6s %6s %6s %6s %6s %6s %6s %-6s %9s %9s"
    print(fmt % ("kernel", "device", "insn", "turn", "MUFU", "ser", "tensor", "smem", "issue",
                 "mufu", "T_gemm", "T_soft", "turns", "bound", "predicted", "pipelined"), file=out)
    for r in w:
        a = r["main_loop"]
        for name, d in list(r["devices"].items())[:1]:
            ce = d["ceilings"]
            k = ce["clk"]
            print(fmt % (r["label"][:44], name, "%.0f" % a["path"]["total"],
                         "%.0f" % a["turn"].get("total", 0),
                         "%.0f" % sum(v for x, v in a["path"].items() if x.startswith("MUFU")),
                         a["serialized"], "%.0f" % k["tensor"], "%.0f" % k["smem"],
                         "%.0f" % k["issue"], "%.0f" % k["mufu"], "%.0f" % ce["t_gemm"],
                         "%.0f" % ce["t_soft"], "%.0f" % k["turns"], ce["bound"],
                         "%.0f" % ce["predicted"], "%.0f" % ce["pipelined"]), file=out)
    print("(predicted (static): serialised HGMMAs cost %d SM clocks each beyond their tensor "
          "time (an assumption); pipelined: the same at 0)" % WGMMA["serial_clk"], file=out)


def summarise_wgmma(label, arch, fn, insns, usage, launch):
    """A table/JSON row of a wgmma kernel (the fields summarise() gives, the ceilings from
    wgmma_model(); 'pipelined': the prediction with serialised HGMMAs costing nothing extra).
    A vote-guarded path (FIRE's kink trips): its loop weighted by launch["vote_loop_trips"] (the
    mean trips of a fallback tile, measured by fire_tiles --wgmma), path and turn mixed with
    launch["fallback_fraction"] (1 when unmeasured), as summarise() does."""
    a = sass.analyse_wgmma(insns, vote_trips=vote_trips(launch),
                           producer_trips=producer_trips(launch))
    u = usage.get((arch, fn), {})
    vote = None
    if a and a.get("fallback"):
        f = launch.get("fallback_fraction")
        fb = a["fallback"]
        vote = {"fraction": f if f is not None else 1.0, "measured": f is not None,
                "source": launch.get("fallback_source", "unmeasured"),
                "insns": {"fast": a["path"].get("total", 0), "fallback": fb["path"].get("total", 0)},
                "regions": len(fb["regions"])}
        fast = dict(a, fallback=None)
        slow = dict(a, path=fb["path"], turn=fb["turn"], fallback=None)
        a["fast_path"], a["fast_turn"] = a["path"], a["turn"]
        a["path"] = mix(a["path"], fb["path"], vote["fraction"])
        a["turn"] = mix(a["turn"], fb["turn"], vote["fraction"])
    stl = sum(1 for x in insns if x.base in ("STL", "LDL") and not sass.never(x))
    row = {"label": label, "arch": arch, "function": fn, "regs": u.get("REG"),
           "stack": u.get("STACK", 0), "local_insns": stl, "threads": launch["threads"],
           "smem": launch["smem"], "sass_insns": len(insns), "main_loop": a, "devices": {}}
    if a:
        c = a["path"]
        h = c.get("HGMMA", 0)
        row["per_mma"] = {"insns": c["total"] / h, "ldsm_bytes": c.get("ldsm_bytes", 0) / h} if h else None
        want = launch.get("tile_flops")
        got = a["warpgroup_flops"] * launch.get("consumers", 2)
        if want and abs(got - want) > 0.01 * want:
            row["warning"] = (f"{label} {arch}: the consumer loop found does {got} HGMMA FLOPs "
                              f"per CTA, the tile needs {want}: loop finder lost")
            print("WARNING: " + row["warning"], file=sys.stderr)
    if vote:
        row["vote"] = vote
    for name, dev in DEVICES.items():
        if dev["arch"] != arch or "HGMMA" not in dev["tc"]:
            continue
        d = {"ctas_per_sm": ctas_per_sm(dev, u.get("REG", 0), launch["threads"], launch["smem"]),
             "ceilings": wgmma_model(dev, a, launch) if a else None}
        if a:
            d["ceilings"]["pipelined"] = wgmma_model(dev, a, launch, serial_clk=0)["predicted"]
        if vote:
            d["vote"] = {"fast": wgmma_model(dev, fast, launch)["predicted"],
                         "fallback": wgmma_model(dev, slow, launch)["predicted"]}
        row["devices"][name] = d
    return row


# ---- output -----------------------------------------------------------------------------------
def table(rows, out=sys.stdout):
    hdr = ("kernel", "arch", "regs", "stk", "CTA/SM", "insn/it", "HMMA", "LDSM B", "insn/mma",
           "B/mma", "device", "tensor", "smem", "issue", "predicted")
    fmt = "%-30s %-6s %4s %4s %6s %7s %5s %7s %8s %6s %-9s %6s %6s %6s %9s"
    print(fmt % hdr, file=out)
    for r in rows:
        a = r["main_loop"] or {"path": {}}
        c = a["path"]
        pm = r.get("per_mma") or {}
        devs = r["devices"] or {"-": {"ctas_per_sm": "-", "ceilings": None}}
        for name, d in devs.items():
            ce = d["ceilings"]
            f = (lambda k: "%.0f" % ce[k] if ce and ce.get(k) else "-")
            print(fmt % (r["label"], r["arch"], r["regs"], r["stack"], d["ctas_per_sm"],
                         "%.0f" % c["total"] if c else "-", "%.0f" % (c.get("HMMA", 0) + c.get("HGMMA", 0)),
                         "%.0f" % c.get("ldsm_bytes", 0), "%.2f" % pm["insns"] if pm else "-",
                         "%.0f" % pm["ldsm_bytes"] if pm else "-", name, f("tensor"), f("smem"),
                         f("issue"), (f("predicted") + " " + ce["bound"][:2]) if ce else "-"),
                  file=out)
    print("(per warp per KV tile, steady-state path; TFLOP/s predicted (static): min of the "
          "tensor, shared-memory and issue ceilings; docs/performance-model.md)", file=out)
    rescale_table(rows, out)
    vote_table(rows, out)
    wgmma_table(rows, out)
    dec = [r for r in rows if r.get("decode_counts")]
    if not dec:
        return
    r0 = dec[0]["decode_counts"]["ref"]
    print(f'\ndecode, memory-bound: batch {r0["batch"]}, {r0["kv_heads"]} kv heads x GQA '
          f'{r0["group"]}:1, hd{r0["d"]}, {r0["context"]} cached tokens, {r0["tokens"]} query '
          'token; SM clocks per KV tile of one CTA', file=out)
    fmt = "%-24s %-6s %-9s %5s %7s %8s %7s %7s %7s %7s %-6s %9s %8s"
    print(fmt % ("kernel", "arch", "device", "keys", "bytes", "CTA insn", "hbm", "issue", "smem",
                 "tensor", "bound", "HBM frac.", "us"), file=out)
    for r in dec:
        for name, d in r["devices"].items():
            m = d["decode"]
            k = m["clk"]
            print(fmt % (r["label"], r["arch"], name, m["tile_keys"], m["tile_bytes"],
                         "%.0f" % m["cta_insns"], "%.0f" % k["hbm"], "%.0f" % k["issue"],
                         "%.0f" % k["smem"], "%.0f" % k["tensor"], m["bound"],
                         "%.1f %%" % (100 * m["hbm_fraction"]), "%.0f" % m["predicted_us"]),
                  file=out)
    print("(predicted (static) fraction of HBM bandwidth = HBM time / the slowest ceiling; "
          "decode split: issue and smem are lower bounds, inner loops counted once)", file=out)


def key(r):
    return f'{r["label"]} {r["arch"]}'


def compare(rows, baseline, tol=0.03, only=None):
    """Failures against a baseline: a predicted ceiling (decode: predicted fraction of HBM
    bandwidth) more than tol below it, a spill (stack frame or local-memory instructions above
    the baseline), fewer CTAs per SM."""
    base = {key(r): r for r in baseline["kernels"]}
    bad = []
    for r in rows:
        b = base.get(key(r))
        if b is None:
            continue
        if r.get("warning"):
            bad.append(r["warning"])
        if r["stack"] > b["stack"] or r["local_insns"] > b["local_insns"]:
            bad.append(f'{key(r)}: stack {b["stack"]} -> {r["stack"]} bytes, local-memory '
                       f'instructions {b["local_insns"]} -> {r["local_insns"]} (spills?)')
        for dev, d in r["devices"].items():
            bd = b["devices"].get(dev)
            if not bd:
                continue
            if d["ctas_per_sm"] < bd["ctas_per_sm"]:
                bad.append(f'{key(r)} {dev}: CTAs per SM {bd["ctas_per_sm"]} -> {d["ctas_per_sm"]}')
            dm, bm = d.get("decode"), bd.get("decode")
            if dm and bm and dm["hbm_fraction"] < bm["hbm_fraction"] * (1 - tol):
                bad.append(f'{key(r)} {dev}: predicted fraction of HBM bandwidth '
                           f'{bm["hbm_fraction"] * 100:.1f} -> {dm["hbm_fraction"] * 100:.1f} % '
                           f'(limit -{tol * 100:.0f} % of it; {dm["bound"]}-bound)')
            if d["ceilings"] and bd["ceilings"]:
                p, q = d["ceilings"]["predicted"], bd["ceilings"]["predicted"]
                if p < q * (1 - tol):
                    bad.append(f'{key(r)} {dev}: predicted {q:.0f} -> {p:.0f} TFLOP/s '
                               f'({(p / q - 1) * 100:+.1f} %, limit -{tol * 100:.0f} %; '
                               f'{d["ceilings"]["bound"]}-bound)')
    missing = sorted(set(base) - {key(r) for r in rows} -
                     {k for k in base if only and not base[k]["label"].startswith(only)})
    bad += [f"{k}: in the baseline but not analysed" for k in missing]
    return bad


def strip(rows):
    """The JSON form: drop the per-function SASS noise that changes without meaning."""
    for r in rows:
        if r["main_loop"]:
            r["main_loop"].pop("loop", None)
            for il in r["main_loop"]["inner_loops"]:
                il.pop("at", None)
    return rows


def write_tsv(rows, path):
    """op pe dtype hd device tflops per line: what posattn-bench --predicted reads. On a device
    where the wgmma kernel serves an instance (sm_90a: the chooser prefers it), its row is the
    prediction."""
    out = {}
    for r in sorted(rows, key=lambda r: " wgmma " in r["label"]):  # wgmma rows last: they win
        m = re.match(r"prefill (?:wgmma )?hd(\d+) (\w+) (\w+)$", r["label"])
        for dev, d in r["devices"].items():
            if m and d["ceilings"]:
                out[(m.group(3), m.group(2), m.group(1), dev)] = d["ceilings"]["predicted"]
    with open(path, "w") as f:
        for (pe, dt, hd, dev), v in out.items():
            f.write(f"prefill {pe} {dt} {hd} {dev} {v:.1f}\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="posattn-sass", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build", "cuda-check"),
                    help="the cuda-check build folder (configured and built as needed)")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--tsv", help="write the prefill predictions for posattn-bench --predicted")
    ap.add_argument("--baseline", help="compare with this report; fail on a regression")
    ap.add_argument("--update-baseline", action="store_true",
                    help="write the report to --baseline instead of comparing")
    ap.add_argument("--only", metavar="PREFIX",
                    help="analyse only the main instances whose label starts with PREFIX (e.g. "
                         "'decode'); the baseline's other rows are neither compared nor replaced; "
                         "with --anchors: only that anchor ('CUTLASS ex88'), its rows replaced "
                         "in --json")
    ap.add_argument("--sass", nargs="+", help="analyse cuobjdump -sass text files instead")
    ap.add_argument("--fire-tiles", metavar="EXE",
                    help="posattn_fire_tiles of a build of the same sources (default: built in "
                         "--build) for FIRE's fallback fraction")
    ap.add_argument("--rescale-tiles", metavar="EXE",
                    help="posattn_rescale_tiles of a build of the same sources (default: built in "
                         "--build) for the lazy rescale's fraction")
    ap.add_argument("--anchor-tiles", action="store_true",
                    help="AnchorAttention: visible vs visited tiles and proportionality "
                         "(bench/sass/visible_tiles.py)")
    ap.add_argument("--anchors", action="store_true",
                    help="build CUTLASS's FMHA examples and analyse them (bench/sass/anchors.py)")
    args = ap.parse_args(argv)
    if args.anchor_tiles:
        import visible_tiles
        return visible_tiles.main(args.build, args.json)
    if args.anchors:
        import anchors
        rows = anchors.analyse(args.only)
    elif args.sass:
        rows = []
        for f in args.sass:
            for (arch, fn), insns in sass.parse(open(f).read()).items():
                rows.append(summarise(os.path.basename(f), arch, fn, insns, {},
                                      {"threads": 256, "smem": None}))
    else:
        rows = analyse_targets(args.build, args.only, args.fire_tiles, args.rescale_tiles)
    rows = strip(rows)
    table(rows)
    report = {"tool": "posattn-sass", "kind": "predicted (static)", "devices": DEVICES,
              "kernels": rows}
    if args.json and args.anchors and args.only and os.path.exists(args.json):
        # --anchors --only NAME: replace that anchor's rows, keep the others (FA2 needs a tree)
        old = json.load(open(args.json))["kernels"]
        report["kernels"] = [r for r in old if not r["label"].startswith(args.only)] + rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
    if args.tsv:
        write_tsv(rows, args.tsv)
    if args.baseline and args.update_baseline:
        if args.only and os.path.exists(args.baseline):  # keep the rows not analysed, in order
            old = json.load(open(args.baseline))["kernels"]
            new = {key(r): r for r in rows}
            kept = [new.pop(key(r), r) if r["label"].startswith(args.only) else r for r in old]
            report["kernels"] = [r for r in kept if not (r["label"].startswith(args.only) and
                                                         key(r) not in {key(x) for x in rows})]
            report["kernels"] += list(new.values())
        with open(args.baseline, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
        print(f"baseline written: {args.baseline}")
    elif args.baseline:
        bad = compare(rows, json.load(open(args.baseline)), only=args.only)
        for b in bad:
            print("REGRESSION: " + b, file=sys.stderr)
        if bad:
            print("(a deliberate change: bench/sass/posattn_sass.py --baseline "
                  "bench/sass/baseline.json --update-baseline, committed with it)", file=sys.stderr)
            return 1
        print(f"baseline {args.baseline}: no main instance regressed (limit -3 %, no new spill)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
