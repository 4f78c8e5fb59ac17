"""The accuracy table (docs/accuracy.md, tests/accuracy_table.py), reduced for CI.

* Every cell of the table -- function x regime x dtype -- on ``POINTS_CI``
  seeded points (25) on the cython and numpy backends: each error within the
  cell's contract bound (DESIGN.md), except the documented misses in
  ``KNOWN_MISSES`` (held to their measured ceiling instead, and listed in
  docs/accuracy.md).
* numba gives cython's bits on a few cells (each numba kernel family
  compiles ~10 s per dtype); ``--run-slow`` checks every cell on numba.
* docs/accuracy.md is the script's output: the same cells in the same order
  with their units and bounds, 500 points each, the recorded maxima within
  bound (or marked **!** and known), cython = numba everywhere.

Regenerate the document with ``python -m tests.accuracy_table`` (~10 min).
"""

import pathlib

import numpy as np
import pytest

import kl_fast

from . import accuracy_table as table

POINTS_CI = 25
DOC = pathlib.Path(__file__).resolve().parent.parent / table.OUTPUT

# Cells over their DESIGN bound in docs/accuracy.md (500 points): name -> (the worst error
# measured there, in the cell's unit; why).  They are held to that measured ceiling (+5%) so
# that they cannot get worse unnoticed; a fix should remove the entry and regenerate the
# document (whose check then requires the cell within its bound again).
KNOWN_MISSES = {}   # none since the logits and binary-logits fixes

# The numpy reference backend, same format.
KNOWN_NUMPY_MISSES = {}   # none since the numpy backend's error-free products


def _ceiling(name, bound, known):
    return max(bound, 1.05 * known[name][0]) if name in known else bound


@pytest.mark.parametrize("cell", table.CELLS, ids=lambda c: c.name)
def test_cell_within_contract(cell):
    r = table.measure(cell, POINTS_CI, backends=("cython", "numpy"))
    worst = int(np.argmax(r.compiled))
    assert r.compiled.max() <= _ceiling(cell.name, cell.bound, KNOWN_MISSES), (
        f"{cell.name}: {r.compiled[worst]:.3g} {cell.unit} > {cell.bound}; worst input "
        f"{table._fmt_inputs(r.worst_input)}")
    assert r.numpy.max() <= _ceiling(cell.name, cell.bound, KNOWN_NUMPY_MISSES), (
        f"{cell.name} (numpy): {r.numpy.max():.3g} {cell.unit} > {cell.bound}")


NUMBA_CI = {"kl_divergence/dirichlet/float64", "kl_divergence/near1e-6/float64",
            "kl_divergence/peaked/float64"}


@pytest.mark.parametrize("cell", [pytest.param(c, marks=() if c.name in NUMBA_CI else
                                               pytest.mark.slow) for c in table.CELLS],
                         ids=lambda c: c.name)
def test_numba_gives_cython_bits(cell):
    r = table.measure(cell, POINTS_CI, backends=("cython", "numba"))
    assert r.same_bits, cell.name


def test_document_is_the_script_output():
    text = DOC.read_text()
    assert "Command: `python -m tests.accuracy_table` (" in text, "not a full 500-point run"
    rows = table.parse_table(text)
    cells = table.CELLS
    assert [(r["function"], r["regime"], r["dtype"]) for r in rows] == \
        [(c.function, c.regime, c.dtype) for c in cells], "stale: regenerate docs/accuracy.md"
    for r, c in zip(rows, cells, strict=True):
        assert (r["unit"], float(r["bound"])) == (c.unit, c.bound), c.name
        assert int(r["points"]) == table.POINTS, c.name
        assert r["cython = numba"] == "yes", c.name
        for col, known in (("max", KNOWN_MISSES), ("numpy max", KNOWN_NUMPY_MISSES)):
            value = float(r[col].replace("**!**", ""))
            flagged = "**!**" in r[col]
            assert flagged == (value > c.bound), (c.name, col, r[col])
            assert value <= _ceiling(c.name, c.bound, known), (c.name, col, r[col])
            assert float(r[col.replace("max", "median").strip()]) <= value, (c.name, col)


def test_table_row_round_trips():
    """The row format the document test parses is the one the script writes."""
    cell = table.CELLS[0]
    r = table.measure(cell, 5, backends=("cython", "numpy"))
    text = "\n".join([table.HEADER, table.RULE, table.table_row(r), ""])
    (row,) = table.parse_table(text)
    assert (row["function"], row["regime"], row["dtype"]) == (cell.function, cell.regime,
                                                              cell.dtype)
    assert row["points"] == "5"


def test_numpy_k3_puts_back_the_rounding_of_the_log_ratio():
    """The worst point of kl_estimate[k3]/generic/float64 on the numpy reference before it
    took the TwoSum residual of log q - log p into account (7.7 eps; compiled: 1.5 eps)."""
    from . import binary_reference as bref

    lp, lq = np.array([-14.046525883851523]), np.array([3.5506821690486046])
    for backend in ("numpy", "cython"):
        got = kl_fast.kl_estimate(lp, lq, kind="k3", backend=backend)
        assert bref.err_eps(got[0], bref.estimate(lp[0], lq[0], "k3")) <= 2.0, backend
