"""Every contender of the benchmark registry computes the same numbers, so the
benchmarks compare like with like."""

import numpy as np
import pytest

from kl_fast._contenders import FLOOR, QUANTITIES, YARDSTICKS, contenders, make_data

# the read floor and the bare gather of the picked probability: parts of the work,
# not the quantity itself
NOT_THE_QUANTITY = set(YARDSTICKS)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("quantity", QUANTITIES)
def test_contenders_agree(quantity, dtype):
    data = make_data(quantity, 64, 33, dtype, seed=3)
    found = contenders(quantity, data)
    results = {name: np.asarray(fn(), dtype=np.float64) for name, fn in found.items()
               if name not in NOT_THE_QUANTITY}
    reference = results.pop("kl_fast[numpy]")
    # float32 peers compute in float32: their own rounding, not ours, sets the
    # tolerance -- relative, and absolute where terms of size ~1 cancel (a naive
    # binary KL or expm1(x) - x of nearly equal inputs)
    rtol, atol = (1e-4, 1e-6) if dtype == "float32" else (1e-10, 1e-12)
    assert len(results) >= 3
    for name, values in results.items():
        np.testing.assert_allclose(values, reference, rtol=rtol, atol=atol, err_msg=name)


def test_floor_reads_every_input():
    data = make_data("kl", 8, 5, "float64")
    sums = contenders("kl", data)[FLOOR]()
    np.testing.assert_allclose(sums, [np.ones(8), np.ones(8)], rtol=1e-12)
