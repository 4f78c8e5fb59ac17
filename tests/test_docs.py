"""The README's example and the docstring examples run and say what they claim."""

import doctest
import pathlib
import re

import numpy as np
import pytest

import kl_fast
from kl_fast import (
    _api,
    _binary,
    _estimate,
    _fdivergences,
    _gaussian,
    _gaussian_full,
    _mutual_information,
    _pairwise,
)
from kl_fast._engine import config as _config
from kl_fast._engine import threads as _threading
from kl_fast._cli import score as _score
from kl_fast._dask import dispatch as _dask_dispatch
from kl_fast import scipy as kl_scipy

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    # the coin example as the README states it, in bits
    assert round(float(namespace["kl_fast"].kl_divergence([0.8, 0.2], [0.6, 0.4], base=2)),
                 5) == 0.13203
    np.testing.assert_allclose(namespace["kl"], kl_fast.kl_divergence(namespace["p"],
                                                                      namespace["q"]))


@pytest.mark.parametrize("module", [kl_fast, _api, _gaussian, kl_scipy, _threading, _config,
                                    _gaussian_full, _mutual_information,
                                    _pairwise, _binary, _estimate, _score, _dask_dispatch,
                                    _fdivergences])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_readme_dask_cluster_example_runs_and_matches_numpy(capsys):
    """The LocalCluster example, run as a script would run it (``__main__``)."""
    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
                 if "LocalCluster" in b)
    namespace = {"__name__": "__main__"}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    printed = capsys.readouterr().out.split("\n")
    logits = namespace["logits"].compute(scheduler="sync")
    labels = namespace["labels"].compute(scheduler="sync")
    expected = kl_fast.cross_entropy(labels, logits, q_space="logits", reduction="mean")
    np.testing.assert_allclose(float(printed[0]), expected, rtol=1e-14)
    assert abs(expected - (np.log(1000) + 0.5)) < 0.02
    assert printed[1].startswith("dask.array<entropy, shape=(40000,)")
