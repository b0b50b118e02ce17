"""The arithmetic of posattn-sass --anchor-tiles (bench/sass/visible_tiles.py) on made-up tile
parts: what a full and a masked tile cost and how the ratio follows."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import posattn_sass  # noqa: E402
import visible_tiles as vt  # noqa: E402

DEV = posattn_sass.DEVICES["H100-SXM"]
# per warp: a full tile tensor-bound at 256 clocks (issue 200), a masked one issue-bound at 300
PARTS = {"full": {"mma_flops": 256 * 2048, "total": 800},
         "masked": {"mma_flops": 256 * 2048, "total": 1200}}


def counts(visible, full, masked):
    return {"visible": visible, "full": full, "masked": masked}


class Model(unittest.TestCase):
    def test_all_full_is_proportional(self):
        m = vt.model(PARTS, counts(10, 10, 0), DEV)
        self.assertAlmostEqual(m["ratio"], 1.0)
        self.assertAlmostEqual(m["ideal"], 10 * 4 * 256)

    def test_masked_tile_costs_its_issue_time(self):
        m = vt.model(PARTS, counts(2, 1, 1), DEV)
        self.assertAlmostEqual(m["predicted"], 4 * 256 + 4 * 300)
        self.assertAlmostEqual(m["ratio"], 2 * 256 / (256 + 300))

    def test_invisible_visited_tiles_lower_the_ratio(self):
        # 3 visible tiles, 4 visited (one without a visible element), all full
        m = vt.model(PARTS, counts(3, 4, 0), DEV)
        self.assertAlmostEqual(m["ratio"], 3 / 4)


if __name__ == "__main__":
    unittest.main()
