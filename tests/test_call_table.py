"""The call table (tests/call_table.py) is one table per public function: its inputs, its
plain call, its error and valid variants and its oracle.  Here: the plain call of every
entry against its oracle on every backend, and the table covers every computing public
function of the registry (kl_fast/_registry.py) with an oracle."""

import numpy as np
import pytest

import kl_fast
from kl_fast._registry import REGISTRY
from tests.call_table import CALLS


@pytest.mark.parametrize("name", list(CALLS))
def test_plain_call_matches_its_oracle(name, backend, rng):
    entry = CALLS[name]
    inputs = entry.make(rng)
    got = np.asarray(entry.run(inputs, backend), dtype=np.float64)
    want = np.asarray(entry.oracle(*inputs), dtype=np.float64)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_every_registered_function_has_an_entry_with_an_oracle():
    functions = {q.function for q in REGISTRY}
    assert functions <= {c.function for c in CALLS.values()}
    assert all(c.oracle is not None for c in CALLS.values())
    assert functions <= set(kl_fast.__all__)
