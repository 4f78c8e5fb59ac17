"""The Numba backend compiles once per machine: numba's disk cache.

Two fresh processes share a fresh cache directory (``NUMBA_CACHE_DIR``).
The first compiles every kernel it calls and saves it; the second must load
every one of them from the cache (numba's own dispatcher counters, not a
timing) and give the same bits as the first process and as Cython.  A third
check: importing kl_fast imports no numba (compilation stays lazy).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small float64 inputs: serial kernels only, one dtype (each first compile costs
# seconds; the point here is the cache, the other tests cover the variants).
_SCRIPT = textwrap.dedent("""
    import json, sys
    import kl_fast
    numba_at_import = "numba" in sys.modules
    import numpy as np
    from kl_fast._engine import backends as _backends

    rng = np.random.default_rng(7)
    p = rng.random((5, 9)); p /= p.sum(-1, keepdims=True)
    q = rng.random((5, 9)); q /= q.sum(-1, keepdims=True)
    a = rng.standard_normal((5, 9)) * 3
    b = rng.standard_normal((5, 9)) * 3
    # one kernel of the row and of the space family modules: every first compile
    # costs 10-40 s (the elementwise one ~50 s), and the cache works per kernel alike
    calls = {
        "kl prob": lambda be: kl_fast.kl_divergence(p, q, backend=be),
        "kl logits": lambda be: kl_fast.kl_divergence(a, b, p_space="logits",
                                                      q_space="logits", backend=be),
    }
    out = {"numba_at_import": numba_at_import, "numba": {}, "cython": {}}
    for name, fn in calls.items():
        out["numba"][name] = np.asarray(fn("numba"), dtype=np.float64).tobytes().hex()
        if "cython" in _backends.available_backends():
            out["cython"][name] = np.asarray(fn("cython"), dtype=np.float64).tobytes().hex()
    from kl_fast._numba import rows as numba_rows
    out["stats"] = {repr(k): v for k, v in numba_rows.cache_stats().items()}
    print(json.dumps(out))
""")


def _run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=_ROOT)
    env.pop("KL_FAST_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                          text=True, timeout=1200, cwd=_ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_second_process_loads_every_kernel_from_the_disk_cache(tmp_path):
    cache = tmp_path / "numba-cache"
    first = _run(cache)
    second = _run(cache)

    assert not first["numba_at_import"], "import kl_fast imported numba"
    # the first process compiled (and saved) every kernel it used ...
    assert first["stats"], "no Numba kernel was compiled"
    assert all(misses >= 1 and hits == 0 for hits, misses in first["stats"].values()), \
        first["stats"]
    assert any(cache.rglob("*.nbi")), "nothing was written to NUMBA_CACHE_DIR"
    # ... and the second loaded every one of them instead of compiling
    assert second["stats"].keys() == first["stats"].keys()
    assert all(hits >= 1 and misses == 0 for hits, misses in second["stats"].values()), \
        second["stats"]
    # the same bits from compiled and cached code, and Cython's
    assert second["numba"] == first["numba"]
    for name, bits in first["cython"].items():
        assert first["numba"][name] == bits, name


def test_kernel_cache_key_covers_every_numba_source():
    """An edit to any kl_fast/_numba/*.py file (the math is inlined into every kernel)
    must change the cache key, or a stale kernel would load."""
    from kl_fast._numba import cache as numba_cache

    digest = numba_cache.sources_digest()
    assert len(digest) == 64
    names = {p.name for p in numba_cache._HERE.glob("*.py")}
    assert {"kl_math.py", "lanes.py", "row_loops.py", "spaces.py", "rows.py"} <= names
    # the sources are those imported (registered as each module loads), so a file
    # edited while a process runs cannot pair new code's key with old code
    for name in ("kl_math.py", "lanes.py", "row_loops.py", "spaces.py", "elementwise.py"):
        assert name in numba_cache._registered, name
    key = numba_cache._KernelCache._index_key
    assert key is not numba_cache.FunctionCache._index_key
