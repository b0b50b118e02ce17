"""Anchors of posattn-sass: CUTLASS's attention forward kernels, compiled here from the PyPI
nvidia-cutlass package's sources and analysed like posattn's own (posattn-sass --anchors).
Slow (minutes of nvcc), so not in CI; its output is committed as bench/sass/anchors.json.

  ex41: examples/41_fused_multi_head_attention, the sm80 mma.sync FMHA (bench/sass/anchors/
        ex41_fwd.cu instantiates it for bf16 hd128 (32 x 128 tiles) and hd64 (64 x 64)), built
        for sm_80 and sm_90a;
  ex88: examples/88_hopper_fmha (warp-specialised: a TMA producer warp, HGMMA consumer
        warpgroups): bench/sass/anchors/ex88_fwd.cu instantiates its forward kernel for bf16 (the
        example builds f16) with the example's hd128 configurations (128 x 128 x 128 ping-pong,
        the one closest to posattn's wgmma.cuh, and cooperative) and hd64 (128 x 64 ping-pong),
        built for sm_90a (~1.5 min of nvcc) and analysed with posattn's wgmma model
        (posattn_sass.summarise_wgmma);
  FA2:  FlashAttention-2's forward (bench/sass/anchors/fa2_fwd.cu: bf16 hd128 128 x 64, hd64
        128 x 128, 4 warps) for sm_80 and sm_90a, when POSATTN_SASS_FA2 names a flash-attention
        source tree (the folder holding csrc/flash_attn/src, e.g. its PyPI sdist unpacked).
"""
import os
import re
import subprocess

import posattn_sass as ps

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ps.REPO, "build", "sass-anchors")


def cutlass_source():
    try:
        import cutlass_library
    except ImportError:
        raise SystemExit("posattn-sass --anchors: pip install nvidia-cutlass (CUTLASS sources)")
    return os.path.join(os.path.dirname(cutlass_library.__file__), "source")


def nvcc(src, obj, archs, incs):
    """Compiles src to obj for archs (skipped when obj is newer than src)."""
    if os.path.exists(obj) and os.path.getmtime(obj) > os.path.getmtime(src):
        return obj
    cmd = ["nvcc", "-std=c++17", "-O3", "--use_fast_math", "--expt-relaxed-constexpr"]
    for a in archs:
        cmd += ["-gencode", f"arch=compute_{a[3:]},code={a}"]
    cmd += [f"-I{i}" for i in incs] + ["-c", src, "-o", obj]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"posattn-sass --anchors: nvcc failed on {src}:\n{r.stderr[-3000:]}")
    return obj


def max_threads(obj):
    """{function: threads} from the cubins' EIATTR_MAX_THREADS (the kernels' launch bounds)."""
    out, fn, want = {}, None, False
    for line in ps.run([ps.tool("cuobjdump"), "-elf", obj]).splitlines():
        m = re.search(r"\.nv\.info\.(\S+)", line)
        if m:
            fn = m.group(1)
        if "EIATTR_MAX_THREADS" in line:
            want = True
        m = re.search(r"Value:\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)", line)
        if m and want and fn:
            out[fn] = int(m.group(1), 16) * int(m.group(2), 16) * int(m.group(3), 16)
            want = False
    return out


def ex41_shape(fn):
    """(queries, keys, head dim) of an example-41 instance from its mangled name."""
    m = re.search(r"Sm80ELb1ELi(\d+)ELi(\d+)ELi(\d+)E", fn)
    return tuple(int(g) for g in m.groups()) if m else None


def analyse(only=None):
    """Rows of the anchors whose name starts with `only` (default: all; FA2 only with
    POSATTN_SASS_FA2)."""
    src = cutlass_source()
    os.makedirs(OUT, exist_ok=True)
    want = lambda name: only is None or name.startswith(only) or only.startswith(name)
    objs = []
    if want("CUTLASS ex41"):
        objs.append(("CUTLASS ex41", nvcc(
            os.path.join(HERE, "anchors", "ex41_fwd.cu"), os.path.join(OUT, "ex41.o"),
            ["sm_80", "sm_90a"], [f"{src}/include", f"{src}/examples/41_fused_multi_head_attention",
                                  f"{src}/tools/util/include"])))
    if want("CUTLASS ex88"):
        objs.append(("CUTLASS ex88", nvcc(
            os.path.join(HERE, "anchors", "ex88_fwd.cu"), os.path.join(OUT, "ex88.o"), ["sm_90a"],
            [f"{src}/include", f"{src}/tools/util/include", f"{src}/examples/common",
             f"{src}/examples/88_hopper_fmha"])))
    fa2 = os.environ.get("POSATTN_SASS_FA2")
    if fa2 and want("FA2"):
        objs.append(("FA2", nvcc(os.path.join(HERE, "anchors", "fa2_fwd.cu"),
                                 os.path.join(OUT, "fa2.o"), ["sm_80", "sm_90a"],
                                 [os.path.join(HERE, "anchors", "fa2_stub"),
                                  os.path.join(fa2, "csrc", "flash_attn", "src"),
                                  f"{src}/include"])))
    rows = []
    for name, obj in objs:
        funcs, usage = ps.functions(obj)
        threads = max_threads(obj)
        names = demangle(sorted({fn for _, fn in funcs}))
        for (arch, fn), insns in sorted(funcs.items()):
            t = threads.get(fn, 128)
            launch = {"threads": t, "smem": None}
            if name.endswith("41"):
                shape = ex41_shape(fn)
                if not shape:
                    continue
                q, k, d = shape
                tile = 4 * q * k * d / (t // 32)  # QK^T and PV of one KV tile, per warp
                label = f"{name} hd{d} bf16 {q}x{k}"
            elif name == "FA2":
                if "fa2_fwd_hd" not in fn:
                    continue
                d = int(re.search(r"fa2_fwd_hd(\d+)", fn).group(1))
                q, k = FA2_TILES[d]
                launch["smem"] = (q + 2 * k) * d * 2  # Q tile + K and V tiles, 16-bit
                tile = 4 * q * k * d / (t // 32)
                label = f"{name} hd{d} bf16 {q}x{k}"
            else:
                m = EX88_FWD.search(names[fn])
                if not m or "DefaultFusion" not in names[fn] or arch != "sm_90a":
                    continue
                sched = "coop" if "IndividualTileScheduler" in names[fn] else "pingpong"
                q, k, d = (int(m.group(i)) for i in (2, 3, 4))
                label = f"{name} hd{d} {m.group(1)} {q}x{k} {sched}"
                # two consumer warpgroups of 64 rows; ping-pong: their GEMMs take turns (the
                # kernel's MathWarpGroupOrderBarrier around each GEMM), cooperative: they do not
                launch.update(consumers=2, pingpong=sched == "pingpong", tile_flops=4 * q * k * d)
                rows.append(ps.summarise_wgmma(label, arch, fn, insns, usage, launch))
                continue
            rows.append(ps.summarise(label, arch, fn, insns, usage, launch, tile_flops=tile))
    return rows


FA2_TILES = {128: (128, 64), 64: (128, 128)}  # fa2_fwd.cu's kernel traits
EX88_FWD = re.compile(r"FmhaMainloopTmaWarpSpecialized<cutlass::(\w+), float, float, "
                      r"cute::tuple<cute::C<(\d+)>, cute::C<(\d+)>, cute::C<(\d+)> >")


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return dict(zip(names, out))
