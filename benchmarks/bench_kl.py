"""pytest-benchmark suite: every public quantity x shape class x dtype x contender."""

import pytest

from benchmarks.conftest import FLOAT32_ONLY, HUGE, ROW_QUANTITIES, SHAPES, contender
from kl_fast._contenders import contenders, make_data


def _names(quantity):
    """The contenders the registry has for `quantity` here (installed peers only)."""
    return list(contenders(quantity, make_data(quantity, 2, 4, "float64")))


def _cases():
    for quantity in ROW_QUANTITIES + list(HUGE):
        shapes = ["huge"] if quantity in HUGE else list(SHAPES)
        for shape in shapes:
            for dtype in ("float32",) if quantity in FLOAT32_ONLY else ("float64", "float32"):
                for name in _names(quantity):
                    yield pytest.param(quantity, shape, dtype, name,
                                       id=f"{quantity}|{shape}|{dtype}|{name}")


@pytest.mark.parametrize(("quantity", "shape", "dtype", "name"), list(_cases()))
def test_bench(benchmark, quantity, shape, dtype, name):
    fn = contender(quantity, shape, dtype, name)
    benchmark.group = f"{quantity}|{shape}|{dtype}"
    benchmark.extra_info.update(quantity=quantity, shape=shape, dtype=dtype, contender=name)
    small = shape == "small"
    # the numpy pairwise peers take tens of seconds a call: one round tells
    slow_peer = quantity.startswith("pairwise") and not name.startswith("kl_fast")
    rounds = 200 if small else (1 if slow_peer else 5)
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0 if slow_peer else 1)
