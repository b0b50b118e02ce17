"""Tests of posattn-sass (bench/sass): the parser, the loop finder and the counters on a kernel
written for the purpose (known_loop.cu: 3 ldmatrix.x4, 6 mma.sync, 1 barrier per iteration),
the steady-state path on a synthetic listing, and the model's arithmetic. No GPU needed; the
rebuild test needs nvcc and cuobjdump and skips without them."""
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import posattn_sass as ps  # noqa: E402
import sass  # noqa: E402

KNOWN = {"HMMA": 6, "LDSM": 3, "ldsm_bytes": 3 * 512, "BAR": 1, "mma_flops": 6 * 2 * 16 * 8 * 16}

# A loop (0x100 .. 0x1f0) hand-written in cuobjdump's format (the parser reads address,
# predicate, opcode, operands): a slow path with a CALL (cold: skipped), an integer-only test
# (cold: skipped), a float `if` without else (hot: a bias, kept), an inner copy loop and two HMMAs.
SYNTH = """
\tcode for sm_90a
\t\tFunction : synth
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0100*/                   HMMA.16816.F32.BF16 R4, R8, R12, R4 ;
        /*0110*/                   LDSM.16.M88.4 R8, [R2] ;
        /*0120*/               @P0 BRA 0x160 ;
        /*0130*/                   FCHK P1, R5, R6 ;
        /*0140*/                   CALL.REL.NOINC 0x400 ;
        /*0150*/                   FMUL R5, R5, R6 ;
        /*0160*/               @P3 BRA 0x190 ;
        /*0170*/                   ISETP.GE.AND P4, PT, R7, R9, PT ;
        /*0180*/                   SEL R7, R7, RZ, P4 ;
        /*0190*/               @P5 BRA 0x1b0 ;
        /*01a0*/                   FFMA R5, R10, R11, R5 ;
        /*01b0*/                   LDGSTS.E.BYPASS.128 [R3], desc[UR4][R6.64] ;
        /*01c0*/              @!P1 BRA 0x1b0 ;
        /*01d0*/              @!PT LDS RZ, [RZ] ;
        /*01e0*/                   HMMA.16816.F32.BF16 R4, R8, R12, R4 ;
        /*01f0*/              @!P2 BRA 0x100 ;
        /*0200*/                   EXIT ;
"""


def known():
    with open(os.path.join(HERE, "known_loop_sm80.sass")) as f:
        return sass.parse(f.read())


class Parser(unittest.TestCase):
    def test_snippet_functions_and_branches(self):
        funcs = known()
        self.assertEqual(list(funcs), [("sm_80", "_Z10known_loopPfi")])
        insns = funcs[("sm_80", "_Z10known_loopPfi")]
        self.assertGreater(len(insns), 20)
        back = [x for x in insns if x.branch_target() is not None and x.branch_target() <= x.addr]
        self.assertGreaterEqual(len(back), 1)  # the it-loop (and the fill loop)

    def test_instruction_fields(self):
        x = sass.parse(SYNTH)[("sm_90a", "synth")][3]
        self.assertEqual((x.addr, x.pred, x.op, x.branch_target()), (0x120, "@P0", "BRA", 0x160))
        self.assertEqual(sass.parse(SYNTH)[("sm_90a", "synth")][5].branch_target(), None)  # CALL
        self.assertEqual(sass.ldsm_bytes("LDSM.16.M88.4"), 512)
        self.assertEqual(sass.ldsm_bytes("LDSM.16.MT88.2"), 256)
        self.assertEqual(sass.mma_flops("HMMA.16816.F32.BF16"), 4096)
        self.assertEqual(sass.mma_flops("HMMA.1688.F32.TF32"), 2048)
        self.assertEqual(sass.mma_flops("HGMMA.64x128x16.F32.BF16"), 2 * 64 * 128 * 16 // 4)


class KnownLoop(unittest.TestCase):
    def check(self, funcs):
        r = sass.analyse(funcs[("sm_80", "_Z10known_loopPfi")])
        for k, v in KNOWN.items():
            self.assertEqual(r["path"].get(k), v, k)
            self.assertEqual(r["body"].get(k), v, k)
        self.assertEqual(r["shapes"], {"HMMA.16816.F32.BF16": 6})

    def test_committed_sass(self):
        self.check(known())

    @unittest.skipUnless(shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc"),
                         "no nvcc")
    def test_rebuilt_with_nvcc(self):
        nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
        try:
            cuobjdump = ps.tool("cuobjdump")
        except SystemExit:
            self.skipTest("no cuobjdump")
        with tempfile.TemporaryDirectory() as d:
            obj = os.path.join(d, "k.o")
            subprocess.run([nvcc, "-O3", "-arch=sm_80", "-c", os.path.join(HERE, "known_loop.cu"),
                            "-o", obj], check=True)
            text = subprocess.run([cuobjdump, "-sass", obj], check=True, capture_output=True,
                                  text=True).stdout
        self.check(sass.parse(text))


class SteadyPath(unittest.TestCase):
    def test_cold_blocks_skipped_hot_bias_kept_inner_loop_weighted(self):
        insns = sass.parse(SYNTH)[("sm_90a", "synth")]
        self.assertEqual(sass.main_loop(insns), (1, 16))
        r = sass.analyse(insns)
        self.assertEqual(r["body"]["total"], 15)  # 16 instructions minus the @!PT padding
        # 0x100-0x120 (3), 0x160 (1), 0x190-0x1a0 (2: the FFMA region is hot), copy loop (2),
        # 0x1e0-0x1f0 (2); the CALL region and the integer-only region are off the path
        self.assertEqual(r["path"]["total"], 10)
        self.assertEqual(r["path"]["LDGSTS"], 1)
        self.assertNotIn("CALL", str(r["path"]))
        r3 = sass.analyse(insns, trips=lambda c: 3)
        self.assertEqual(r3["path"]["LDGSTS"], 3)
        self.assertEqual(r3["path"]["total"], 10 + 2 * 2)


# The softcap without a division (c tanh(s * (1 / c)): no CALL marks it): a region with tanhf's
# exp2(|x| 2 log2(e)) and one with MUFU.TANH are off the path; a float region that scales an
# absolute value by another constant (the bias) and the plain FFMA region stay hot. Written as
# (address, predicate, instruction) and printed in cuobjdump's format by listing().
def listing(arch, name, rows):
    head = ["", f"\tcode for {arch}", f"\t\tFunction : {name}"]
    return "\n".join(head + [f"        /*{a:04x}*/ {p:>21} {x} ;" for a, p, x in rows]) + "\n"


TANH = listing("sm_80", "tanh", [
    (0x000, "", "MOV R1, c[0x0][0x28]"),
    (0x100, "", "HMMA.16816.F32.BF16 R4, R8, R12, R4"),
    (0x110, "@!P0", "BRA 0x170"),  # the softcap, reciprocal form
    (0x120, "", "FMUL R5, R5, R6"),
    (0x130, "", "FMUL R7, |R5|.reuse, 2.8853900432586669922"),
    (0x140, "", "MUFU.EX2 R7, R7"),
    (0x150, "", "MUFU.RCP R7, R7"),
    (0x160, "", "FMUL R5, R7, c[0x0][0x260]"),
    (0x170, "@!P1", "BRA 0x1a0"),  # the softcap through tanh.approx
    (0x180, "", "MUFU.TANH R5, R5"),
    (0x190, "", "FMUL R5, R5, R9"),
    (0x1a0, "@P5", "BRA 0x1c0"),  # hot: |x| times another constant
    (0x1b0, "", "FMUL R13, |R12|, 1.4426950216293334961"),
    (0x1c0, "@P6", "BRA 0x1e0"),  # hot: a bias
    (0x1d0, "", "FFMA R5, R10, R11, R5"),
    (0x1e0, "", "HMMA.16816.F32.BF16 R4, R8, R12, R4"),
    (0x1f0, "@!P2", "BRA 0x100"),
    (0x200, "", "EXIT"),
])


class Softcap(unittest.TestCase):
    def test_tanh_regions_off_the_path_other_float_regions_kept(self):
        insns = sass.parse(TANH)[("sm_80", "tanh")]
        self.assertEqual([sass.is_tanh(x) for x in insns].count(True), 2)
        r = sass.analyse(insns)
        # 0x100-0x110 (2), 0x170 (1), 0x1a0-0x1b0 (2), 0x1c0-0x1d0 (2), 0x1e0-0x1f0 (2)
        self.assertEqual(r["path"]["total"], 9)
        self.assertNotIn("MUFU", str(r["path"]))


# A loop with a region entered on a warp vote (0x140 .. 0x1b0: a float fill loop storing to shared
# memory, FIRE's exact tiles), and the same region behind an ordinary predicate (P2 from an FSETP):
# the vote's region is off the fast path and whole on the fallback; the other is forced as before.
VOTED = """
\tcode for sm_80
\t\tFunction : voted
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0100*/                   HMMA.16816.F32.BF16 R4, R8, R12, R4 ;
        /*0110*/                   FSETP.NEU.AND P0, PT, R20, RZ, PT ;
        /*0120*/                   VOTE.ALL P0, P0 ;
        /*0130*/                   ISETP.NE.AND P3, PT, R21, RZ, PT ;
        /*0140*/               @P0 BRA 0x1c0 ;
        /*0150*/                   FMUL R22, R23, R24 ;
        /*0160*/                   FFMA R25, R22, R26, R27 ;
        /*0170*/                   STS [R28], R25 ;
        /*0180*/                   IADD3 R28, R28, 0x80, RZ ;
        /*0190*/                   ISETP.GE.AND P1, PT, R28, R29, PT ;
        /*01a0*/              @!P1 BRA 0x150 ;
        /*01b0*/                   FMUL R5, R5, R6 ;
        /*01c0*/                   FSETP.GT.AND P2, PT, R30, RZ, PT ;
        /*01d0*/               @P2 BRA 0x220 ;
        /*01e0*/                   FMUL R22, R23, R24 ;
        /*01f0*/                   STS [R31], R22 ;
        /*0200*/              @!P3 BRA 0x1e0 ;
        /*0210*/                   FADD R5, R5, R6 ;
        /*0220*/                   HMMA.16816.F32.BF16 R4, R8, R12, R4 ;
        /*0230*/              @!P4 BRA 0x100 ;
        /*0240*/                   EXIT ;
"""


# A loop with the lazy O rescale behind a vote (0x140 .. 0x180: FMULs only) and a second vote
# guarding a region that loads (not a rescale): the first is weighted, the second a fallback.
RESCALED = """
\tcode for sm_80
\t\tFunction : rescaled
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0100*/                   HMMA.16816.F32.BF16 R4, R8, R12, R4 ;
        /*0110*/                   FSETP.GT.AND P0, PT, R20, 8, PT ;
        /*0120*/                   VOTE.ANY P0, P0 ;
        /*0130*/                   ISETP.NE.AND P3, PT, R21, RZ, PT ;
        /*0140*/              @!P0 BRA 0x180 ;
        /*0150*/                   FMUL R4, R4, R22 ;
        /*0160*/                   FMUL R5, R5, R22 ;
        /*0170*/                   FMUL R6, R6, R22 ;
        /*0180*/                   VOTE.ALL P1, P3 ;
        /*0190*/               @P1 BRA 0x1b0 ;
        /*01a0*/                   LDS R23, [R24] ;
        /*01b0*/                   FSETP.GT.AND P2, PT, R30, RZ, PT ;
        /*01c0*/               @P2 BRA 0x1e0 ;
        /*01d0*/                   FMUL R7, R7, R22 ;
        /*01e0*/                   HMMA.16816.F32.BF16 R4, R8, R12, R4 ;
        /*01f0*/              @!P4 BRA 0x100 ;
        /*0200*/                   EXIT ;
"""


class VoteGuarded(unittest.TestCase):
    def test_fast_path_skips_the_vote_region_fallback_runs_it(self):
        insns = sass.parse(VOTED)[("sm_80", "voted")]
        h, l = sass.main_loop(insns)
        inner = sass.inner_loops(insns, h, l)
        in_inner = lambda i: any(a <= i <= b for a, b in inner)
        self.assertEqual([(insns[i].addr, insns[j].addr)
                          for i, j in sass.vote_regions(insns, h, l, in_inner)], [(0x140, 0x1c0)])
        r = sass.analyse(insns, vote_trips=lambda c: 4)
        # fast: 0x100-0x140 (5), 0x1c0-0x1d0 (2), the FSETP region forced (0x1e0-0x210: loop 3 +
        # FADD 1), 0x220-0x230 (2)
        self.assertEqual(r["path"]["total"], 13)
        self.assertEqual(r["path"]["STS"], 1)
        fb = r["fallback"]["path"]
        # fallback: + the vote region, its loop (6 instructions) 4 times, the FMUL after it once
        self.assertEqual(fb["total"], 13 + 4 * 6 + 1)
        self.assertEqual(fb["STS"], 1 + 4)
        self.assertEqual(r["fallback"]["regions"], [[0x140, 0x1c0]])

    def test_rescale_region_weighted_by_its_fraction(self):
        # the lazy O rescale (mma.cuh): a vote-guarded region of FMULs only, counted with the
        # fraction of tiles that rescale on both paths, not as a fallback
        insns = sass.parse(RESCALED)[("sm_80", "rescaled")]
        h, l = sass.main_loop(insns)
        self.assertEqual(len(sass.loop_vote_regions(insns, h, l)), 2)
        r = sass.analyse(insns, rescale=0.25)
        # 0x100-0x140 (5), the rescale's 3 FMUL x 0.25, 0x180-0x190 (2), 0x1b0-0x1c0 (2), the FMUL
        # region behind an FSETP predicate forced (1), 0x1e0-0x1f0 (2)
        self.assertEqual(r["path"]["total"], 5 + 0.75 + 2 + 2 + 1 + 2)
        self.assertEqual(r["rescale"], {"regions": 1, "weight": 0.25, "fmul": 3})
        # the loading region is the fallback; the rescale keeps its weight there too
        self.assertEqual(r["fallback"]["regions"], [[0x190, 0x1b0]])
        self.assertEqual(r["fallback"]["path"]["total"], 12.75 + 1)
        self.assertEqual(sass.analyse(insns)["path"]["total"], 12 + 3)  # unmeasured: every tile

    def test_predicate_writers(self):
        x = sass.parse(VOTED)[("sm_80", "voted")]
        self.assertEqual(sass.pred_dests(x[3]), ["P0", "P0"])  # VOTE.ALL P0, P0
        self.assertEqual(sass.pred_dests(x[2]), ["P0", "PT"])  # FSETP P0, PT, ...
        ballot = sass.Insn(0, "", "VOTE.ANY", "R5, PT, P0")
        self.assertEqual(sass.pred_dests(ballot), [])

    def test_mixed_counters(self):
        m = ps.mix({"total": 100, "STS": 0}, {"total": 300, "STS": 8}, 0.25)
        self.assertEqual(m["total"], 150)
        self.assertEqual(m["STS"], 2)
        self.assertEqual(ps.vote_trips({"vote_loop_trips": 2.5})({"STS": 1}), 2.5)
        self.assertIsNone(ps.vote_trips({}))  # unmeasured: the analysis' default, once


class Model(unittest.TestCase):
    def test_ceilings(self):
        dev = ps.DEVICES["H100-SXM"]
        c = {"mma_flops": 128 * 4096, "HMMA": 128, "total": 1024, "ldsm_bytes": 36864,
             "ldgsts_bytes": 4096}
        ce = ps.ceilings(dev, c)
        hz = dev["ghz"] * 1e9 * dev["sms"] / 1e12
        self.assertAlmostEqual(ce["tensor"], 2048 * hz)
        self.assertAlmostEqual(ce["smem"], 128 * 4096 / ((36864 + 4096) / 128) * hz)
        self.assertAlmostEqual(ce["issue"], 128 * 4096 / (1024 / 4) * hz)
        self.assertEqual(ce["bound"], "smem")
        self.assertEqual(ce["predicted"], ce["smem"])

    def test_ctas_per_sm(self):
        h100, a100 = ps.DEVICES["H100-SXM"], ps.DEVICES["A100-SXM"]
        self.assertEqual(ps.ctas_per_sm(h100, 209, 256, 96 * 1024), 1)  # registers
        self.assertEqual(ps.ctas_per_sm(h100, 128, 256, 96 * 1024), 2)  # registers and smem
        self.assertEqual(ps.ctas_per_sm(a100, 128, 256, 96 * 1024), 1)  # smem (164 KiB)
        self.assertEqual(ps.ctas_per_sm(h100, 32, 128, None), 16)       # threads

    def test_compare_flags_regressions(self):
        row = {"label": "k", "arch": "sm_90a", "stack": 0, "local_insns": 0,
               "devices": {"H100-SXM": {"ctas_per_sm": 1,
                                        "ceilings": {"predicted": 100.0, "bound": "smem"}}}}
        base = {"kernels": [copy.deepcopy(row)]}
        self.assertEqual(ps.compare([row], base), [])
        worse = copy.deepcopy(row)
        worse["devices"]["H100-SXM"]["ceilings"]["predicted"] = 96.9
        self.assertEqual(len(ps.compare([worse], base)), 1)
        ok = copy.deepcopy(row)
        ok["devices"]["H100-SXM"]["ceilings"]["predicted"] = 97.1
        self.assertEqual(ps.compare([ok], base), [])
        lost = copy.deepcopy(row)
        lost["warning"] = "k sm_90a: loop finder lost"
        self.assertEqual(ps.compare([lost], base), ["k sm_90a: loop finder lost"])
        spill = copy.deepcopy(row)
        spill["stack"] = 16
        self.assertIn("spills", ps.compare([spill], base)[0])
        self.assertIn("not analysed", ps.compare([], base)[0])

    def test_decode_model(self):
        """A KV tile's time is the slowest of HBM, issue, shared memory and tensor; the fraction
        of HBM bandwidth is HBM time over it."""
        dev = ps.DEVICES["H100-SXM"]
        dec = {"kernel": "mma", "keys": 64, "esz": 2, "d": 128}
        hbm = 2 * 64 * 128 * 2 / (dev["hbm"] / (dev["sms"] * dev["ghz"] * 1e9))
        m = ps.decode_model(dev, {"total": 4 * 100, "mma_flops": 0}, dec)
        self.assertEqual(m["bound"], "hbm")
        self.assertEqual(m["hbm_fraction"], 1.0)
        self.assertAlmostEqual(m["clk"]["hbm"], round(hbm, 1))
        m = ps.decode_model(dev, {"total": 4 * 2 * hbm, "mma_flops": 0}, dec)  # issue: 2x HBM
        self.assertEqual(m["bound"], "issue")
        self.assertAlmostEqual(m["hbm_fraction"], 0.5, places=3)
        fp8 = ps.decode_model(dev, {"total": 0, "lds_bytes": 128 * 4 * hbm}, dict(dec, esz=1))
        self.assertEqual(fp8["bound"], "smem")
        self.assertAlmostEqual(fp8["hbm_fraction"], 0.125, places=3)  # half the bytes, 4x smem

    def test_compare_flags_decode_fraction(self):
        d = {"ctas_per_sm": 1, "ceilings": None, "decode": {"hbm_fraction": 0.9, "bound": "hbm"}}
        row = {"label": "decode x", "arch": "sm_90a", "stack": 0, "local_insns": 0,
               "devices": {"H100-SXM": d}}
        base = {"kernels": [copy.deepcopy(row)]}
        worse = copy.deepcopy(row)
        worse["devices"]["H100-SXM"]["decode"]["hbm_fraction"] = 0.87
        self.assertIn("fraction of HBM", ps.compare([worse], base)[0])
        ok = copy.deepcopy(row)
        ok["devices"]["H100-SXM"]["decode"]["hbm_fraction"] = 0.875
        self.assertEqual(ps.compare([ok], base), [])
        other = {"kernels": base["kernels"] + [dict(row, label="prefill y")]}
        self.assertEqual(ps.compare([row], other, only="decode"), [])  # --only: not missing
        self.assertIn("not analysed", ps.compare([row], other)[0])


if __name__ == "__main__":
    unittest.main()
