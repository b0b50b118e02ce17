"""Tests of posattn-sass's Hopper model (sass.analyse_wgmma, posattn_sass.wgmma_model) on a
hand-written listing in cuobjdump's format, shaped like a warp-specialised attention kernel as
nvcc 13 compiles it: a consumer main loop with a ping-pong turn (named barrier wait .. arrive)
holding two RS and two SS HGMMA 64x128x16 that ptxas serialised (a full WARPGROUP.DEPBAR after
each), the softmax outside the turn, an S GEMM before the loop, a producer loop of TMA loads with
a NaN-rule pass, and the out-of-line mbarrier retry stubs after EXIT whose `BRA` back makes a
false loop around more HGMMAs than the real one. No GPU, no nvcc."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import posattn_sass as ps  # noqa: E402
import sass  # noqa: E402

WS = """
\tcode for sm_90a
\t\tFunction : ws
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   ISETP.GE.AND P0, PT, R0, 0x80, PT ;
        /*0020*/               @P0 BRA 0x300 ;
        /*0030*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [UR4+0x8], R3 ;
        /*0040*/              @!P1 BRA 0x400 ;
        /*0050*/                   WARPGROUP.ARRIVE ;
        /*0060*/                   HGMMA.64x128x16.F32.BF16 R88, gdesc[UR8], RZ, !UPT, gsb0 ;
        /*0070*/                   WARPGROUP.DEPBAR.LE gsb0, 0x0 ;
        /*0080*/                   FMNMX R2, R88, R89, !PT ;
        /*0090*/                   SHFL.BFLY PT, R3, R2, 0x1, 0x1f ;
        /*00a0*/                   FFMA R4, R88, UR6, -R2 ;
        /*00b0*/                   MUFU.EX2 R4, R4 ;
        /*00c0*/                   FFMA R5, R89, UR6, -R2 ;
        /*00d0*/                   MUFU.EX2 R5, R5 ;
        /*00e0*/                   F2FP.BF16.F32.PACK_AB R24, R5, R4 ;
        /*00f0*/                   BAR.SYNC.DEFER_BLOCKING R6, 0x100 ;
        /*0100*/                   FMUL R28, R28, R4 ;
        /*0110*/                   WARPGROUP.ARRIVE ;
        /*0120*/                   HGMMA.64x128x16.F32.BF16 R28, R24, gdesc[UR12].tnspB, R28, gsb0 ;
        /*0130*/                   WARPGROUP.DEPBAR.LE gsb0, 0x0 ;
        /*0140*/                   WARPGROUP.ARRIVE ;
        /*0150*/                   HGMMA.64x128x16.F32.BF16 R28, R26, gdesc[UR12].tnspB, R28, gsb0 ;
        /*0160*/                   WARPGROUP.DEPBAR.LE gsb0, 0x0 ;
        /*0170*/                   WARPGROUP.ARRIVE ;
        /*0180*/                   HGMMA.64x128x16.F32.BF16 R88, gdesc[UR8], RZ, !UPT, gsb0 ;
        /*0190*/                   WARPGROUP.DEPBAR.LE gsb0, 0x0 ;
        /*01a0*/                   WARPGROUP.ARRIVE ;
        /*01b0*/                   HGMMA.64x128x16.F32.BF16 R88, gdesc[UR8], R88, gsb0 ;
        /*01c0*/                   WARPGROUP.DEPBAR.LE gsb0, 0x0 ;
        /*01d0*/                   BAR.ARV R7, 0x100 ;
        /*01e0*/                   SYNCS.ARRIVE.TRANS64.A1T0 RZ, [UR4+0x18], RZ ;
        /*01f0*/              @!P2 BRA 0x80 ;
        /*0200*/                   EXIT ;
        /*0300*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR4+0x18], R5 ;
        /*0310*/              @!P0 BRA 0x430 ;
        /*0320*/                   UTMALDG.4D [UR8], [UR14] ;
        /*0330*/                   UTMALDG.4D [UR16], [UR14] ;
        /*0340*/               @P3 BRA 0x380 ;
        /*0350*/                   LDS R8, [R9] ;
        /*0360*/                   STS [R9], RZ ;
        /*0370*/               @P4 BRA 0x350 ;
        /*0380*/                   UIADD3 UR5, UR5, 0x1, URZ ;
        /*0390*/               @P5 BRA 0x300 ;
        /*03a0*/                   EXIT ;
        /*0400*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [UR4+0x8], R3 ;
        /*0410*/              @!P1 BRA 0x400 ;
        /*0420*/                   BRA 0x50 ;
        /*0430*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR4+0x18], R5 ;
        /*0440*/              @!P0 BRA 0x430 ;
        /*0450*/                   BRA 0x320 ;
"""
HG = 2 * 64 * 128 * 16  # FLOPs of one HGMMA.64x128x16 (a warpgroup's)


def listing(text=WS):
    return sass.parse(text)[("sm_90a", "ws")]


def pipelined():
    """The same kernel with the waits between the HGMMAs gone (only the last one's stays)."""
    out = []
    for line in WS.splitlines():
        if any(f"/*0{a}*/" in line for a in ("130", "160", "190")):
            line = line.replace("WARPGROUP.DEPBAR.LE gsb0, 0x0", "NOP")
        out.append(line)
    return "\n".join(out)


def at(insns, addr):
    return next(i for i, x in enumerate(insns) if x.addr == addr)


class Loops(unittest.TestCase):
    def test_wait_stubs_are_no_loops(self):
        insns = listing()
        self.assertTrue(sass.wait_stub(insns, at(insns, 0x420)))
        self.assertTrue(sass.wait_stub(insns, at(insns, 0x450)))
        self.assertFalse(sass.wait_stub(insns, at(insns, 0x1f0)))  # the real latch
        # the generic finder takes the stub's false loop (it holds the prologue's HGMMA too)
        h, l = sass.main_loop(insns)
        self.assertEqual((insns[h].addr, insns[l].addr), (0x50, 0x420))
        h, l = sass.consumer_loop(insns)
        self.assertEqual((insns[h].addr, insns[l].addr), (0x80, 0x1f0))
        h, l = sass.producer_loop(insns)
        self.assertEqual((insns[h].addr, insns[l].addr), (0x300, 0x390))
        # a GEMM-only loop (SS forms only): the loop with the most HGMMAs, stubs left out
        ss = listing(WS.replace("R24, gdesc", "gdesc[UR10], gdesc").replace("R26, gdesc",
                                                                           "gdesc[UR11], gdesc"))
        h, l = sass.consumer_loop(ss)
        self.assertEqual((ss[h].addr, ss[l].addr), (0x80, 0x1f0))


class Counting(unittest.TestCase):
    def test_consumer_tile(self):
        a = sass.analyse_wgmma(listing())
        p = a["path"]
        self.assertEqual(p["total"], 24)  # 0x80 .. 0x1f0
        self.assertEqual(p["HGMMA"], 4)
        self.assertEqual(p["MUFU.EX2"], 2)
        self.assertEqual(a["hgmma_forms"], {"SS": 2, "RS": 2})
        self.assertEqual(a["warpgroup_flops"], 4 * HG)
        self.assertEqual(p["mma_flops"], 4 * HG // 4)  # one warp's quarter
        # per warp: SS reads A (64x16) and B (128x16), RS only B; 2 bytes each, a quarter
        self.assertEqual(p["hgmma_smem_bytes"], (2 * (128 + 64) * 16 * 2 + 2 * 128 * 16 * 2) // 4)
        self.assertEqual(a["turn_rule"], "named barriers")
        self.assertEqual(a["turn"]["total"], 15)  # BAR.SYNC 0xf0 .. BAR.ARV 0x1d0
        self.assertEqual(a["serialized"], 3)      # three waits between four HGMMAs
        self.assertEqual(a["producer"]["total"], 7)  # no NaN-rule pass on the steady tile
        self.assertEqual(a["producer"]["UTMALDG"], 2)

    def test_transforming_producer(self):
        # with producer_trips (xPos: the producer warpgroup transforms K), the inner loop that
        # stores to shared memory on every trip is on the producer's path, times its trips
        a = sass.analyse_wgmma(listing(), producer_trips=lambda c: 8 if c.get("STS") else 1)
        self.assertEqual(a["producer"]["total"], 7 + 3 * 8)
        self.assertEqual(a["producer"]["STS"], 8)
        # a retry loop around the TMA issue (elect.sync, no mbarrier) is not the tile loop
        retry = listing(WS.replace("@P3 BRA 0x380 ;", "@P3 BRA 0x320 ;"))
        h, l = sass.producer_loop(retry)
        self.assertEqual((retry[h].addr, retry[l].addr), (0x300, 0x390))

    def test_pipelined_and_chain_turns(self):
        a = sass.analyse_wgmma(listing(pipelined()))
        self.assertEqual(a["serialized"], 0)
        self.assertEqual(a["path"]["total"], 21)  # NOP not counted
        no_turns = pipelined().replace("BAR.SYNC.DEFER_BLOCKING R6, 0x100", "NOP") \
                              .replace("BAR.ARV R7, 0x100", "NOP")
        a = sass.analyse_wgmma(listing(no_turns))
        self.assertEqual(a["turn_rule"], "HGMMA chains")
        # the WARPGROUP.ARRIVE at 0x110 .. the wait at 0x1c0: 4 ARRIVE, 4 HGMMA, 1 wait (NOPs out)
        self.assertEqual(a["turn"]["total"], 9)


class Model(unittest.TestCase):
    dev = ps.DEVICES["H100-SXM"]
    peak = 132 * 1.83e9 * 4096 / 1e12

    def check(self, ce, clk, bound):
        for k, v in clk.items():
            self.assertAlmostEqual(ce["clk"][k], v, places=1, msg=k)
        self.assertEqual(ce["bound"], bound)
        self.assertAlmostEqual(ce["predicted"], self.peak * ce["clk"]["tensor"] / clk[bound])

    def test_serialised_pingpong_binds_on_turns(self):
        a = sass.analyse_wgmma(listing())
        ce = ps.wgmma_model(self.dev, a, {"consumers": 2, "pingpong": True}, serial_clk=32)
        # tensor 2 x 4 HG / 4096; smem 2 warpgroups x 4 warps x 5120 B / 128; issue 2 x 24 + 7;
        # mufu 2 warps x 2 x 8 clk; T_gemm 256 + 3 x 32, T_soft max(24 - 15, 2 x 8)
        self.check(ce, {"tensor": 512, "smem": 320, "issue": 55, "mufu": 32,
                        "turns": 352 + 352}, "turns")
        self.assertEqual((ce["t_gemm"], ce["t_soft"]), (352, 16))
        free = ps.wgmma_model(self.dev, a, {"consumers": 2, "pingpong": True}, serial_clk=0)
        self.assertEqual(free["clk"]["turns"], 512)
        self.assertAlmostEqual(free["predicted"], self.peak)

    def test_cooperative_and_issue_bound(self):
        a = sass.analyse_wgmma(listing())
        ce = ps.wgmma_model(self.dev, a, {"consumers": 2, "pingpong": False}, serial_clk=32)
        self.assertEqual(ce["clk"]["turns"], 512 + 16)  # both GEMMs, then the softmax
        heavy = dict(a, path=dict(a["path"], total=2000))  # a per-element bias, say
        ce = ps.wgmma_model(self.dev, heavy, {"consumers": 2, "pingpong": True}, serial_clk=32)
        self.check(ce, {"issue": 4007, "turns": 352 + 2000 - 15}, "issue")

    def test_rows_and_tsv(self):
        insns = listing()
        launch = {"threads": 384, "smem": 164864, "consumers": 2, "pingpong": True,
                  "tile_flops": 2 * 4 * HG}
        row = ps.summarise_wgmma("prefill wgmma hd128 bf16 none", "sm_90a", "ws", insns,
                                 {("sm_90a", "ws"): {"REG": 168}}, launch)
        self.assertNotIn("warning", row)
        self.assertEqual(row["devices"]["H100-SXM"]["ctas_per_sm"], 1)
        self.assertEqual(set(row["devices"]), {"H100-SXM", "H200"})
        lost = ps.summarise_wgmma("x", "sm_90a", "ws", insns, {}, dict(launch, tile_flops=HG))
        self.assertIn("loop finder lost", lost["warning"])
        mma = {"label": "prefill hd128 bf16 none", "devices": {
            "H100-SXM": {"ceilings": {"predicted": 1.0}}, "A100-SXM": {"ceilings": {"predicted": 2.0}}}}
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "posattn_sass_wgmma_test.tsv")
        ps.write_tsv([row, mma], path)
        with open(path) as f:
            lines = set(f.read().splitlines())
        os.remove(path)
        want = row["devices"]["H100-SXM"]["ceilings"]["predicted"]
        self.assertIn(f"prefill none bf16 128 H100-SXM {want:.1f}", lines)  # wgmma wins on sm_90a
        self.assertIn("prefill none bf16 128 A100-SXM 2.0", lines)
        self.assertEqual(len(lines), 3)


if __name__ == "__main__":
    unittest.main()
