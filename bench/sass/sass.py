"""SASS parsing, loop finding and per-iteration counters of posattn-sass (no nvcc needed here).

Input: the text `cuobjdump -sass` prints. A kernel's main loop is the smallest loop (a backward
branch and its target) that holds the most tensor-core instructions (HMMA/HGMMA): for an attention
forward kernel that is the loop over KV tiles. Per iteration it reports two counts:
  body    every instruction between the loop head and its back edge once (inner loops once);
  path    the instructions of the shortest path from head to back edge that still executes every
          tensor-core instruction and every global/async load of the body (the steady-state
          iteration: tiles that need no mask, no softcap, no bias slow path), with each inner loop
          counted `trips` times over its body (see estimate_trips).
"""
import re
from collections import Counter, defaultdict

_FUNC = re.compile(r"^\s*Function\s*:\s*(\S+)")
_ARCH = re.compile(r"^\s*\.target\s+(sm_\w+)|code for (sm_\w+)")
_INSN = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Za-z0-9_.]*)([^;]*);")
_TARGET = re.compile(r"(?:^|\s|,)(0x[0-9a-f]+)\s*$")


class Insn:
    __slots__ = ("addr", "pred", "op", "args")

    def __init__(self, addr, pred, op, args):
        self.addr, self.pred, self.op, self.args = addr, pred, op, args

    @property
    def base(self):
        return self.op.split(".")[0]

    def branch_target(self):
        """Target address of a direct branch (BRA), else None."""
        if self.base != "BRA":
            return None
        m = _TARGET.search(self.args.strip())
        return int(m.group(1), 16) if m else None

    def __repr__(self):
        return f"{self.addr:#06x} {self.pred or ''}{self.op}{self.args}"


def parse(text):
    """{(arch, function name): [Insn]} from cuobjdump -sass output (one or more cubins)."""
    funcs, arch, cur = {}, None, None
    for line in text.splitlines():
        m = _ARCH.search(line)
        if m:
            arch = m.group(1) or m.group(2)
            continue
        m = _FUNC.match(line)
        if m:
            cur = funcs.setdefault((arch, m.group(1)), [])
            continue
        m = _INSN.match(line)
        if m and cur is not None:
            pred = (m.group(2) or "").strip()
            cur.append(Insn(int(m.group(1), 16), pred, m.group(3), m.group(4).strip()))
    return funcs


# ---- instruction classes -------------------------------------------------------------------------
def _width_bytes(op, default=4):
    for w in (128, 64, 32, 16, 8):
        if f".{w}" in op or f".U{w}" in op or f".S{w}" in op:
            return w // 8
    return default


def ldsm_bytes(op):
    """Bytes one warp-wide LDSM moves: 8x8 16-bit matrices (128 B each), .2 / .4 of them."""
    n = 4 if op.endswith(".4") else 2 if op.endswith(".2") else 1
    return 128 * n


def mma_flops(op):
    """FLOPs of one warp's share of a tensor-core instruction: HMMA.16816 is m16n8k16 (2*16*8*16),
    HMMA.1688 m16n8k8; HGMMA.64xNxK is a warpgroup (4 warps) instruction of 2*64*N*K."""
    m = re.match(r"HMMA\.16(8)(8|16)\b", op)
    if m:
        return 2 * 16 * 8 * int(m.group(2))
    m = re.search(r"\.(\d+)x(\d+)x(\d+)", op)
    if op.startswith("HGMMA") and m:
        return 2 * int(m.group(1)) * int(m.group(2)) * int(m.group(3)) // 4
    return 0


def hgmma_smem_bytes(x):
    """Shared-memory bytes one warp's share of an HGMMA reads: B (N x K) always from shared
    memory, A (64 x K) too when its operand is a descriptor rather than registers (16-bit types)."""
    m = re.search(r"\.(\d+)x(\d+)x(\d+)", x.op)
    if not m:
        return 0
    mm, nn, kk = (int(g) for g in m.groups())
    ops = [o.strip() for o in x.args.split(",")]
    a_in_smem = len(ops) > 1 and ops[1].startswith("gdesc")  # RS form: A is a register
    return (nn * kk * 2 + (mm * kk * 2 if a_in_smem else 0)) // 4


def classify(insn):
    """The counter an instruction adds to (None for the rest)."""
    op, base = insn.op, insn.base
    if base in ("HMMA", "HGMMA", "IMMA", "DMMA"):
        return base
    if base == "LDSM":
        return "LDSM"
    if base in ("LDS", "STS", "LDG", "STG", "LDGSTS", "LDL", "STL", "SHFL", "BAR", "LDC"):
        return base
    if base in ("UTMALDG", "UBLKCP", "UTMAPF"):
        return "UTMALDG"
    if base == "MUFU":
        return "MUFU." + op.split(".")[1] if "." in op else "MUFU"
    if base in ("BRA", "BRX", "JMP", "CALL", "RET", "EXIT"):
        return "BRANCH"
    return None


def never(x):
    """An instruction that never executes (predicated on !PT: padding ptxas leaves in)."""
    return x.pred == "@!PT"


def count(insns, weights=None):
    """(counters, tensor-core shapes) over insns, optionally weighted per instruction."""
    c, shapes = Counter(), Counter()
    for i, x in enumerate(insns):
        w = 1 if weights is None else weights[i]
        if w == 0 or never(x) or x.base == "NOP":
            continue
        c["total"] += w
        k = classify(x)
        if k:
            c[k] += w
        if k in ("HMMA", "HGMMA"):
            shapes[x.op] += w
            c["mma_flops"] += w * mma_flops(x.op)
            if k == "HGMMA":
                c["hgmma_smem_bytes"] += w * hgmma_smem_bytes(x)
        elif k == "LDSM":
            c["ldsm_bytes"] += w * ldsm_bytes(x.op)
        elif k in ("LDS", "STS", "LDGSTS", "LDG"):
            c[k.lower() + "_bytes"] += w * 32 * _width_bytes(x.op)
    return c, shapes


# ---- control flow ---------------------------------------------------------------------------------
def loops(insns):
    """Every backward branch as (head index, latch index)."""
    index = {x.addr: i for i, x in enumerate(insns)}
    out = []
    for i, x in enumerate(insns):
        t = x.branch_target()
        if t is not None and t <= x.addr and t in index:
            out.append((index[t], i))
    return out


def is_tc(x):
    return x.base in ("HMMA", "HGMMA")


def main_loop(insns):
    """(head, latch) of the smallest loop holding the most tensor-core instructions, or None."""
    best = None
    for h, l in loops(insns):
        n = sum(1 for x in insns[h:l + 1] if is_tc(x))
        if n == 0:
            continue
        key = (n, -(l - h))
        if best is None or key > best[0]:
            best = (key, (h, l))
    return best[1] if best else None


def blocks(insns, h, l):
    """Basic blocks of insns[h..l] as [start, end) index pairs (leaders: head, branch targets,
    instructions after a branch)."""
    index = {x.addr: i for i, x in enumerate(insns)}
    leaders = {h, l + 1}
    for i in range(h, l + 1):
        t = insns[i].branch_target()
        if t is not None or insns[i].base in ("EXIT", "RET", "BRX", "JMP"):
            leaders.add(i + 1)
            if t is not None and t in index and h <= index[t] <= l:
                leaders.add(index[t])
    ls = sorted(x for x in leaders if h <= x <= l + 1)
    return [(a, b) for a, b in zip(ls, ls[1:])]


def inner_loops(insns, h, l):
    """Loops strictly inside (h, l) (backward branches other than the main latch), outermost
    first dropped of duplicates."""
    return [(a, b) for a, b in loops(insns) if h <= a and b < l and (a, b) != (h, l)]


FP_MATH = ("FADD", "FFMA", "FMUL", "MUFU")
# 2 log2(e): tanhf (CUDA's libdevice, no fast math) starts from exp2(|x| * 2 log2(e)), i.e. e^2|x|,
# for tanh|x| = 1 - 2 / (e^2|x| + 1): an FMUL of an absolute value by this immediate.
TANH_EXP2_SCALE = 2.8853900432586670  # fp32, as cuobjdump prints it


def is_tanh(x):
    """Whether x marks a tanh: MUFU.TANH (tanh.approx) or tanhf's FMUL |r| by 2 log2(e)."""
    if x.op.startswith("MUFU.TANH"):
        return True
    if x.base != "FMUL":
        return False
    ops = [o.strip() for o in x.args.split(",")]
    if not any(o.startswith("|") or o.startswith("-|") for o in ops):
        return False
    try:
        return abs(float(ops[-1]) / TANH_EXP2_SCALE - 1) < 1e-6
    except ValueError:
        return False


def forward_skips(insns, h, l, in_inner):
    """(i, j, else_arm) for each conditional forward branch at i of loop (h, l), outside its inner
    loops, to index j <= l: insns[i+1:j] run only when it is not taken. else_arm: the region ends
    with an unconditional jump past j (the first arm of an if/else)."""
    index = {x.addr: i for i, x in enumerate(insns)}
    for i in range(h, l):
        x = insns[i]
        t = x.branch_target()
        if t is None or x.pred in ("", "@PT") or in_inner(i) or t not in index:
            continue
        j = index[t]
        if not (i < j <= l):
            continue
        tail = insns[j - 1] if j - 1 > i else None
        yield i, j, (tail is not None and tail.base == "BRA" and tail.pred == "" and
                     (tail.branch_target() or 0) > t)


def hot_regions(insns, h, l, in_inner, loads=True):
    """Instructions of the loop that the steady path must run although a forward branch can skip
    them: a region skipped by a conditional branch (an `if` without `else`) that does float
    arithmetic, calls nothing and computes no tanh. In posattn's kernels that is the
    position-dependent bias (ALiBi, FIRE, T5, KERPLE) behind its per-element `key < Lk` test; the
    regions it leaves out are the mask (integer tests only), slow paths (a CALL: a division's,
    sinf/cosf's), the softcap c tanh(s / c) (by its tanh, is_tanh: the division's CALL is gone
    where s / c is s * (1 / c)) and if/else arms (the shortest arm is kept)."""
    hot = set()
    for i, j, else_arm in forward_skips(insns, h, l, in_inner):
        region = insns[i + 1:j]
        if else_arm or any(y.base in ("CALL", "FCHK") or is_tanh(y) for y in region):
            continue
        if not loads and any(y.base in ("LDG", "LDC") for y in region):
            continue
        if any(y.base in FP_MATH for y in region):
            hot.update(range(i + 1, j))
    return hot


VOTES = ("VOTE", "VOTEU")
_PRED = re.compile(r"U?P[T0-6]")


def pred_dests(x):
    """The predicates an instruction writes: its leading predicate operands (xSETP, PLOP3,
    VOTE.ALL/ANY P, P; a ballot VOTE.ANY R, PT, P writes a register first and no predicate here)."""
    out = []
    for o in x.args.split(","):
        o = o.strip()
        if not _PRED.fullmatch(o):
            break
        out.append(o)
    return out


def vote_regions(insns, h, l, in_inner):
    """[(i, j)]: the regions of loop (h, l) entered only when a warp vote says so. A forward
    conditional branch at i (outside inner loops) to index j whose predicate was last written by
    a VOTE (scanning back from the branch to the loop head, in address order) skips insns[i+1:j]
    on the vote's verdict: a warp-uniform choice the kernel makes for a whole tile (FIRE's exact
    tiles, kernels/prefill/mma.cuh). The arm of an if/else (the region ends with an unconditional
    jump past the target) is left to the shortest path, as in hot_regions."""
    out = []
    for i, j, else_arm in forward_skips(insns, h, l, in_inner):
        p = insns[i].pred.lstrip("@").lstrip("!")
        writer = next((insns[k] for k in range(i - 1, h - 1, -1) if p in pred_dests(insns[k])),
                      None)
        if writer is not None and writer.base in VOTES and not else_arm:
            out.append((i, j))
    return out


RESCALE_OPS = ("FMUL", "FADD", "FFMA", "MUFU", "FSEL", "FSETP", "MOV", "IMAD", "SEL", "PLOP3",
               "NOP")


def rescale_region(insns, i, j):
    """Whether the vote-guarded region insns[i+1:j] is register arithmetic only (RESCALE_OPS: no
    memory, branch, shuffle or barrier) that multiplies (FMUL): the tensor-core prefill kernel's
    lazy rescale of a row's O and l (kernels/prefill/mma.cuh), run by a warp only when one of its
    rows moved its reference maximum. Its weight per tile is the fraction of tiles that rescale
    (rescale_tiles), not the vote's fast/fallback choice. (FIRE's fallback loads and stores.)"""
    body = insns[i + 1:j]
    return (any(x.base == "FMUL" for x in body) and
            all(x.base in RESCALE_OPS for x in body))


def steady_path(insns, h, l, trips=None, top=True, force_tc=True, force_loop=None, force=(),
                vote="fast", vote_trips=None, inner_hot=False, rescale=1.0):
    """Weights (per instruction index; 0 off the path) of the steady-state iteration of loop
    (h, l): the shortest head -> latch path over forward edges that still runs
      - every block holding a tensor-core instruction,
      - the tile copies (LDGSTS/UTMALDG): those inside an inner loop (the unrolled body of a copy
        loop) when there are any, else all of them,
      - every inner loop that stores to shared memory on every trip (a tile transform, e.g.
        xPos of K; not a store that a forward branch inside the loop can skip).
    An inner loop on the path is weighted by trips(counters of its body) (default 1): the caller
    knows how many times a loop runs per tile, the SASS does not. force_tc=False: tensor-core
    blocks are not forced (a decode chunk's no-RoPE path); force_loop(counters): which inner loops
    are forced instead of the shared-memory storing ones; force: instruction indices whose blocks
    the path must also run (a masked tile's extra work: bench/sass/visible_tiles.py).
    vote (top level only): the regions entered on a warp vote (vote_regions) are left to the
    shortest path ("fast": nothing in them is forced, the tiles the vote lets through) or run
    whole ("fallback": the tiles the vote sends there); a loop in one is weighted by
    vote_trips(counters) instead of trips when given. inner_hot: an inner loop's own steady path
    keeps its float if-regions too (hot_regions), as the loop's does at the top (the wgmma
    kernel's band fill: a rolled loop evaluating a bias whose special-case branch, e.g. KERPLE
    power's distance 0, would otherwise skip the evaluation). rescale (top level only): the weight
    of the vote-guarded regions that only multiply (rescale_region: the lazy O rescale), the
    fraction of tiles that run them; they are neither forced nor left out by `vote`."""
    bl = blocks(insns, h, l)
    start_of = {b[0]: k for k, b in enumerate(bl)}
    index = {x.addr: i for i, x in enumerate(insns)}
    inner = inner_loops(insns, h, l)
    in_inner = lambda i: any(a <= i <= b for a, b in inner)
    copies = [i for i in range(h, l + 1) if insns[i].base in ("LDGSTS", "UTMALDG")]
    copies = set(i for i in copies if in_inner(i)) or set(copies)
    # an inner loop is a tile transform when a store to shared memory runs on every trip: one
    # that a forward branch inside the loop can skip (the masked tiles' non-finite V scan, which
    # writes only where it finds an infinity or a NaN) does not force the loop onto the path
    def skippable(i, a, b):
        return any(insns[k].pred not in ("", "@PT") and insns[k].branch_target() is not None and
                   insns[k].branch_target() in index and k < i < index[insns[k].branch_target()] <= b
                   for k in range(a, i))
    sts_loops = [(a, b) for a, b in inner if any(insns[i].base == "STS" and not never(insns[i])
                                                 and not skippable(i, a, b)
                                                 for i in range(a, b + 1))]
    if force_loop is not None:  # the caller's rule instead (decode: see posattn_sass.decode_counts)
        sts_loops = [(a, b) for a, b in inner if force_loop(count(insns[a:b + 1])[0])]
    forced = set(copies) | set(force) | (hot_regions(insns, h, l, in_inner) if top else set())
    for a, b in sts_loops:
        forced.update(range(a, b + 1))
    voted, rescaled = set(), set()
    for i, j in vote_regions(insns, h, l, in_inner) if top else ():
        (rescaled if rescale_region(insns, i, j) else voted).update(range(i + 1, j))
    forced = (forced | voted if vote == "fallback" else forced - voted) - rescaled
    must = sorted({k for k, (a, b) in enumerate(bl)
                   if any((force_tc and is_tc(insns[i])) or i in forced for i in range(a, b))})
    n = len(bl)
    succ = defaultdict(list)
    for k, (a, b) in enumerate(bl):
        last = insns[b - 1]
        t = last.branch_target()
        if t is not None and t in index and index[t] in start_of and index[t] > a:
            succ[k].append(start_of[index[t]])
        if not (t is not None and last.pred == "") and last.base not in ("EXIT", "RET") and k + 1 < n:
            succ[k].append(k + 1)
    cost = [b - a for a, b in bl]
    waypoints = [0] + [m for m in must if m != 0]
    if waypoints[-1] != n - 1:
        waypoints.append(n - 1)
    chosen = {0}
    for src, dst in zip(waypoints, waypoints[1:]):
        dist, prev = {src: cost[src]}, {}
        for k in range(src, dst + 1):
            for s in succ[k] if k in dist else ():
                if s <= dst and dist[k] + cost[s] < dist.get(s, float("inf")):
                    dist[s], prev[s] = dist[k] + cost[s], k
        if dst not in dist:  # no forward path between the two: keep the whole span
            chosen.update(range(src, dst + 1))
            continue
        k = dst
        while k != src:
            chosen.add(k)
            k = prev[k]
        chosen.add(src)
    w = [0] * len(insns)
    for k in chosen:
        for i in range(*bl[k]):
            w[i] = 1
    for i in rescaled:  # skipped by the path above; run on a fraction of the tiles
        w[i] = rescale
    # an inner loop on the path: its own steady path (a transform's common case, not its slow
    # path), times its trips per tile; loops nested in it are handled by the recursion
    for a, b in outermost(inner):
        if w[a]:
            sub = steady_path(insns, a, b, trips, top=inner_hot, force_tc=force_tc,
                              force_loop=force_loop, inner_hot=inner_hot)
            tf = vote_trips if vote_trips and a in voted else trips
            t = tf(count(insns[a:b + 1])[0]) if tf else 1
            for i in range(a, b + 1):
                w[i] = sub[i] * t
    return w


def outermost(spans):
    """The spans not inside another span of the list."""
    return [s for s in spans if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in spans)]


def inner_loop_rows(insns, h, l):
    """The inner loops of loop (h, l) as analysis rows: addresses, size, counters."""
    return [{"at": [insns[a].addr, insns[b].addr], "insns": b - a + 1,
             "counters": dict(count(insns[a:b + 1])[0])} for a, b in inner_loops(insns, h, l)]


def loop_vote_regions(insns, h, l):
    """vote_regions of loop (h, l), its inner loops left out."""
    inner = inner_loops(insns, h, l)
    return vote_regions(insns, h, l, lambda i: any(a <= i <= b for a, b in inner))


def analyse(insns, trips=None, tile_flops=None, vote_trips=None, rescale=1.0):
    """Main loop and its per-warp, per-iteration counters; None when the kernel has no loop.
    tile_flops (one warp's tensor-core FLOPs per iteration, when known): inner loops holding
    tensor-core instructions (a GEMM's k-loop that is not unrolled) are weighted so that the
    iteration does exactly that work. A loop with regions entered on a warp vote (vote_regions)
    gets "fallback": the counters of the iteration that runs them (their loops weighted by
    vote_trips), beside "path", the iteration the vote lets through. The lazy O rescale's regions
    (rescale_region) are not such a fallback: both count them with weight rescale, and "rescale"
    reports them (regions, FMUL per full run)."""
    ml = main_loop(insns)
    if ml is None:
        ml = max(loops(insns), key=lambda hl: hl[1] - hl[0], default=None)
        if ml is None:
            return None
    h, l = ml
    body, shapes = count(insns[h:l + 1])

    def weights(vote):
        w = steady_path(insns, h, l, trips, vote=vote, vote_trips=vote_trips, rescale=rescale)
        tc_loops = [(a, b) for a, b in outermost(inner_loops(insns, h, l))
                    if w[a] and any(is_tc(x) for x in insns[a:b + 1])]
        if tile_flops and tc_loops:
            inside = set(i for a, b in tc_loops for i in range(a, b + 1))
            f_in = count(insns, [w[i] if i in inside else 0 for i in range(len(insns))])[0]["mma_flops"]
            f_out = count(insns, [0 if i in inside else w[i] for i in range(len(insns))])[0]["mma_flops"]
            t = max(tile_flops - f_out, 0) / f_in
            w = [w[i] * t if i in inside else w[i] for i in range(len(insns))]
        return w
    path, _ = count(insns, weights("fast"))
    out = {"loop": [insns[h].addr, insns[l].addr], "body": dict(body), "path": dict(path),
           "shapes": dict(shapes), "inner_loops": inner_loop_rows(insns, h, l)}
    voted = [(i, j) for i, j in loop_vote_regions(insns, h, l) if not rescale_region(insns, i, j)]
    lazy = [(i, j) for i, j in loop_vote_regions(insns, h, l) if rescale_region(insns, i, j)]
    if voted:
        out["fallback"] = {"path": dict(count(insns, weights("fallback"))[0]),
                           "regions": [[insns[i].addr, insns[j].addr] for i, j in voted]}
    if lazy:
        out["rescale"] = {"regions": len(lazy), "weight": rescale,
                          "fmul": sum(x.base == "FMUL" for i, j in lazy for x in insns[i + 1:j])}
    return out


# ---- Hopper: warp-specialised wgmma kernels (posattn_sass.wgmma_*) --------------------------------
def wait_stub(insns, l):
    """Whether the backward branch at l only returns from an out-of-line mbarrier wait: ptxas puts
    the retry loop of a `try_wait` after the kernel's EXIT (SYNCS.PHASECHK, a conditional branch
    to itself, then `BRA` back to the code after the wait). Such a `BRA` is no loop of the kernel."""
    x = insns[l]
    return (x.base == "BRA" and x.pred == "" and l >= 2 and insns[l - 1].base == "BRA" and
            insns[l - 1].pred != "" and
            any(y.op.startswith("SYNCS.PHASECHK") for y in insns[max(0, l - 3):l]))


def kernel_loops(insns):
    """loops() without the out-of-line wait stubs."""
    return [(h, l) for h, l in loops(insns) if not wait_stub(insns, l)]


def consumer_loop(insns):
    """(head, latch) of a wgmma kernel's consumer main loop (wait stubs left out): the smallest
    loop whose HGMMAs include both forms an attention tile needs (S = Q K^T with A from shared
    memory, O += P V with A from registers); without one, the smallest loop holding the most
    HGMMAs. The smallest, not the one with the most HGMMAs: a persistent kernel's outer loop
    holds the first tile's S GEMM and the epilogue besides the KV loop. None without HGMMA."""
    spans = kernel_loops(insns)
    both = [(h, l) for h, l in spans
            if {hgmma_form(x) for x in insns[h:l + 1] if x.base == "HGMMA"} == {"SS", "RS"}]
    if both:
        return min(both, key=lambda hl: hl[1] - hl[0])
    best = None
    for h, l in spans:
        n = sum(1 for x in insns[h:l + 1] if x.base == "HGMMA")
        if n and (best is None or (n, -(l - h)) > best[0]):
            best = ((n, -(l - h)), (h, l))
    return best[1] if best else None


def hgmma_form(x):
    """'SS' (A and B shared-memory descriptors) or 'RS' (A in registers) of an HGMMA."""
    ops = [o.strip() for o in x.args.split(",")]
    return "SS" if len(ops) > 1 and ops[1].startswith("gdesc") else "RS"


def producer_loop(insns):
    """(head, latch) of the producer's tile loop: the smallest loop issuing TMA loads (UTMALDG)
    and waiting on or arriving at an mbarrier (SYNCS: the tile loop's empty/full slots; not an
    elect.sync retry loop around one TMA issue, as the xPos producer warpgroup's), no HGMMA; or
    None."""
    cand = [(h, l) for h, l in kernel_loops(insns)
            if any(x.base == "UTMALDG" for x in insns[h:l + 1]) and
            any(x.base == "SYNCS" for x in insns[h:l + 1]) and
            not any(x.base == "HGMMA" for x in insns[h:l + 1])]
    return min(cand, key=lambda hl: hl[1] - hl[0]) if cand else None


def hgmma_flops(op):
    """FLOPs of one HGMMA.MxNxK instruction (the whole warpgroup's)."""
    m = re.search(r"\.(\d+)x(\d+)x(\d+)", op)
    return 2 * int(m.group(1)) * int(m.group(2)) * int(m.group(3)) if m else 0


def full_wait(x):
    """WARPGROUP.DEPBAR.LE gsb0, 0x0: wait until every wgmma of the warpgroup has completed."""
    return x.op.startswith("WARPGROUP.DEPBAR") and x.args.replace(" ", "").endswith(",0x0")


def serialized_hgmma(insns, w):
    """HGMMAs on the path (weights w) that are waited for before the next HGMMA on the path is
    issued: a full wait between two consecutive HGMMAs. ptxas inserts one after every wgmma when
    it serialises them (its C7510 / C7515 'wgmma.mma_async instructions are serialized'); a
    pipelined kernel waits once per GEMM chain, after the chain's last HGMMA."""
    on = [i for i in range(len(insns)) if w[i] and not never(insns[i])]
    n, last_hgmma, waited = 0, None, False
    for i in on:
        x = insns[i]
        if x.base == "HGMMA":
            if last_hgmma is not None and waited:
                n += w[last_hgmma]
            last_hgmma, waited = i, False
        elif full_wait(x) and last_hgmma is not None:
            waited = True
    return n


def turn_indices(insns, h, l):
    """(indices, how) of loop (h, l) inside a consumer's GEMM turn. A ping-pong kernel with named
    barriers: from a named-barrier wait (BAR.SYNC with a thread count, `bar.sync id, n`) to the
    next named-barrier arrive (BAR.ARV) handing the turn to the other consumer ('named
    barriers'). Otherwise (a kernel ordering its consumers with mbarriers, or none) each HGMMA
    chain: from the WARPGROUP.ARRIVE before its first HGMMA to the wait after its last, HGMMAs
    fewer than 16 instructions apart forming one chain ('HGMMA chains')."""
    out, start = set(), None
    for i in range(h, l + 1):
        x = insns[i]
        if x.base == "BAR" and ".SYNC" in x.op and "," in x.args:
            start = i
        elif x.base == "BAR" and x.op.startswith("BAR.ARV") and start is not None:
            out.update(range(start, i + 1))
            start = None
    if out:
        return out, "named barriers"
    hg = [i for i in range(h, l + 1) if insns[i].base == "HGMMA" and not never(insns[i])]
    chains = []
    for i in hg:
        if chains and i - chains[-1][1] < 16:
            chains[-1][1] = i
        else:
            chains.append([i, i])
    for a, b in chains:
        arrive = [j for j in range(max(h, a - 8), a) if insns[j].op.startswith("WARPGROUP.ARRIVE")]
        a = arrive[0] if arrive else a
        if b + 1 <= l and full_wait(insns[b + 1]):
            b += 1
        out.update(range(a, b + 1))
    return out, "HGMMA chains"


def analyse_wgmma(insns, vote_trips=None, producer_trips=None):
    """Per-warp counters of a warp-specialised wgmma kernel's steady KV tile, or None:
      consumer  the consumer main loop's steady path (analyse()'s rules: the shortest head ->
                latch path through every HGMMA block and the float-if regions of a bias, also
                inside its inner loops: steady_path's inner_hot),
      turn      the part of it inside the ping-pong turn (named barrier wait .. arrive),
      serialized  HGMMAs of the path waited for before the next one is issued,
      warpgroup_flops  the HGMMA FLOPs of one consumer warpgroup per tile,
      producer  the producer loop's shortest path per tile (the TMA loads; no NaN-rule pass);
                with producer_trips (a transforming producer: xPos's K) also the inner loops
                that store to shared memory on every trip, weighted by producer_trips(counters
                of the loop),
      hgmma_ops   the operand forms (SS: A and B descriptors; RS: A in registers),
      fallback  with regions entered on a warp vote (vote_regions; FIRE's kink trips): "path"
                and "turn" of the tile that runs them, their loops weighted by
                vote_trips(counters) (default once), as analyse() does for the sm80 kernel."""
    cl = consumer_loop(insns)
    if cl is None:
        return None
    h, l = cl
    w = steady_path(insns, h, l, inner_hot=True)
    path, shapes = count(insns, w)
    turn, how = turn_indices(insns, h, l)
    tc, _ = count(insns, [w[i] if i in turn else 0 for i in range(len(insns))])
    wg_flops = sum(w[i] * hgmma_flops(insns[i].op) for i in range(len(insns))
                   if w[i] and insns[i].base == "HGMMA" and not never(insns[i]))
    forms = {"SS": 0, "RS": 0}
    for i in range(h, l + 1):
        if w[i] and insns[i].base == "HGMMA" and not never(insns[i]):
            forms[hgmma_form(insns[i])] += w[i]
    out = {"loop": [insns[h].addr, insns[l].addr], "path": dict(path), "shapes": dict(shapes),
           "body": dict(count(insns[h:l + 1])[0]), "turn": dict(tc), "turn_rule": how,
           "serialized": serialized_hgmma(insns, w), "warpgroup_flops": wg_flops,
           "hgmma_forms": forms, "producer": None, "inner_loops": inner_loop_rows(insns, h, l)}
    voted = loop_vote_regions(insns, h, l)
    if voted:
        wf = steady_path(insns, h, l, inner_hot=True, vote="fallback", vote_trips=vote_trips)
        out["fallback"] = {
            "path": dict(count(insns, wf)[0]),
            "turn": dict(count(insns, [wf[i] if i in turn else 0 for i in range(len(insns))])[0]),
            "regions": [[insns[i].addr, insns[j].addr] for i, j in voted]}
    pl = producer_loop(insns)
    if pl:
        pw = steady_path(insns, pl[0], pl[1], producer_trips, top=False, force_tc=False,
                         force_loop=None if producer_trips else lambda c: False)
        out["producer"] = dict(count(insns, pw)[0])
    return out
