"""Shared fixtures: seeded data, the backends and dtypes to sweep, slow tests, hypothesis."""

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import kl_fast

# -- hypothesis profiles: deterministic in CI, long on demand -------------------------------
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=5000)
settings.load_profile(os.environ.get("KL_FAST_HYPOTHESIS_PROFILE", "ci"))

BACKENDS = kl_fast.available_backends()
COMPILED_BACKENDS = [b for b in BACKENDS if b in ("cython", "numba")]
FLOAT_DTYPES = [np.float32, np.float64]


# -- Numba kernels compiled on the idle core -------------------------------------------------
# On a fresh machine every Numba kernel compiles on first use (up to ~35 s for the logits
# drivers), serially, inside the one test process, while the second core idles.  A
# background process compiles them all into numba's disk cache at the same time
# (kl_fast._numba.warm), so the tests load what it reached first.  Any kernel it has not
# reached yet compiles in the test process as before: the same kernels, the same bits.
# KL_FAST_TEST_PREWARM=0 turns it off.
_prewarm = None


def pytest_sessionstart(session):
    global _prewarm
    if os.environ.get("KL_FAST_TEST_PREWARM", "1") == "0" or "numba" not in BACKENDS:
        return
    import subprocess
    import sys

    _prewarm = subprocess.Popen(
        [sys.executable, "-c", "from kl_fast._numba.warm import warmup; warmup()"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pytest_sessionfinish(session, exitstatus):
    if _prewarm is not None and _prewarm.poll() is None:
        _prewarm.terminate()
        _prewarm.wait(timeout=30)


# -- --run-slow ------------------------------------------------------------------------------
def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    """Tests marked slow (the long versions: huge arrays, every accuracy cell on every
    backend) are deselected unless --run-slow: opted out of, not skipped."""
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different per test."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every backend that can run in this installation."""
    return request.param


@pytest.fixture(params=COMPILED_BACKENDS)
def compiled_backend(request):
    """The compiled backends (cython, numba) that can run here."""
    return request.param


@pytest.fixture(params=FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    """The float dtypes the kernels are specialised for."""
    return np.dtype(request.param)
