"""The arithmetic of posattn-sass --anchor-tiles (bench/sass/visible_tiles.py) on made-up tile
parts: what a full, masked and document-masked tile cost and how the ratio follows."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import posattn_sass  # noqa: E402
import visible_tiles as vt  # noqa: E402

DEV = posattn_sass.DEVICES["H100-SXM"]
# per warp: a full tile tensor-bound at 256 clocks (issue 200), a masked one issue-bound at 300
PARTS = {"full": {"mma_flops": 256 * 2048, "total": 800},
         "masked": {"mma_flops": 256 * 2048, "total": 1200},
         "doc_setup": {"total": 40}, "doc_loop": {"total": 80, "LDG": 4}, "doc_unroll": 4,
         "check": {"total": 40}, "check_steady": {"total": 40}, "check_loops": 2}


def counts(visible, full, masked_warps, checks=0):
    return {"visible": visible, "full": full, "checks_failed": checks,
            "masked": sum(masked_warps.values()), "warps": masked_warps}


class Model(unittest.TestCase):
    def test_all_full_is_proportional(self):
        m = vt.model(PARTS, counts(10, 10, {}), DEV, docs=False)
        self.assertAlmostEqual(m["ratio"], 1.0)
        self.assertAlmostEqual(m["ideal"], 10 * 4 * 256)

    def test_masked_tile_costs_its_issue_time(self):
        m = vt.model(PARTS, counts(2, 1, {(0, 0, 0, 0): 1}), DEV, docs=False)
        self.assertAlmostEqual(m["predicted"], 4 * 256 + 4 * 300)
        self.assertAlmostEqual(m["ratio"], 2 * 256 / (256 + 300))

    def test_document_loop_per_warp_and_skipped_tests(self):
        # one warp runs 9 keys: setup + 2 unrolled trips = 200 more instructions
        m = vt.model(PARTS, counts(1, 0, {(9, 0, 0, 0): 1}, checks=3), DEV, docs=True)
        self.assertAlmostEqual(m["tiles_masked"], (4 * 1200 + 200) / 4)
        self.assertAlmostEqual(m["walk"], 3 * 4 * 40 / 4)
        self.assertLess(m["ratio"], m["ratio_tiles"])
        self.assertAlmostEqual(m["projected_ratio"], 256 / 300)


if __name__ == "__main__":
    unittest.main()
