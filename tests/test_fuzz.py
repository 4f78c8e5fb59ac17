"""The atheris fuzz harness (fuzz/fuzz_kl_fast.py): a short CI run and the defects it found.

CI run: the Cython kernels are built with bounds checks on (``fuzz/build_debug.py``,
``KL_FAST_CYTHON_DEBUG=1``: boundscheck, initializedcheck, -O0 -g; ~30 s on a 2-core
machine) into a temporary directory, and the harness runs against that build in a
subprocess for a fixed number of executions with a fixed seed (``-runs``/``-seed``),
drawing the cython and numpy backends (Numba's lazy compiles, seconds per kernel
family and dtype, do not fit a short run; the long run draws numba too).

Environment:

``KL_FAST_FUZZ_RUNS``
    Executions of the short run (default 20000, inputs up to 256 bytes from the start).
``KL_FAST_FUZZ_TIME``
    Seconds: run the harness that long instead (every backend), e.g. 3600; the test
    then also takes that long.  See fuzz/README.md for running it directly.

The regression tests below replay, in process on every backend, the calls the fuzzer
found failing.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("atheris")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import build_debug  # noqa: E402

HARNESS = os.path.join(ROOT, "fuzz", "fuzz_kl_fast.py")
RUNS = int(os.environ.get("KL_FAST_FUZZ_RUNS", "20000"))
LONG = os.environ.get("KL_FAST_FUZZ_TIME")


@pytest.fixture(scope="module")
def debug_ext(tmp_path_factory):
    # the build needs Cython and setuptools in the test environment (the `test` extra
    # lists them: `pip install -e .[test]` builds in an isolated environment)
    pytest.importorskip("Cython")
    out = tmp_path_factory.mktemp("debug-ext")
    seconds = build_debug.build(str(out))
    print(f"debug build: {seconds:.1f} s")
    return str(out)


def _run(args, env_extra, cwd, timeout):
    env = dict(os.environ, **env_extra)
    env.pop("KL_FAST_BACKEND", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_debug_build_has_bounds_checks(debug_ext, tmp_path):
    """The harness imports the debug .so, and those really check bounds."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.join(ROOT, "fuzz")!r})
        from fuzz_kl_fast import _LOADED
        import numpy as np
        import kl_fast
        from kl_fast._cython import rows as k
        assert k.__file__.startswith({debug_ext!r}), k.__file__
        assert kl_fast.__file__.startswith({ROOT!r}), kl_fast.__file__
        try:
            k.rel_entr_1d(np.ones(5), np.ones(3), np.ones(5), 1)  # y too short
        except IndexError as exc:
            print("bounds checked:", exc)
        else:
            raise SystemExit("no IndexError: bounds checks are off")
    """)
    proc = _run(["-c", script], {"KL_FAST_FUZZ_EXT": debug_ext}, tmp_path, 300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bounds checked" in proc.stdout


def test_fuzz_short_run(debug_ext, tmp_path):
    """N fixed-seed executions against the bounds-checked build: no defect."""
    if LONG:
        args = [f"-max_total_time={int(LONG)}"]
        env = {}
        timeout = int(LONG) + 600
    else:
        args = [f"-runs={RUNS}", "-seed=1", "-len_control=0", "-max_len=256"]
        env = {"KL_FAST_FUZZ_BACKENDS": "cython,numpy"}
        timeout = 600
    env["KL_FAST_FUZZ_EXT"] = debug_ext
    # -timeout: a first Numba compile (long run) takes up to ~30 s of CPU, more when loaded
    proc = _run([HARNESS, *args, "-timeout=300", "-rss_limit_mb=4096",
                 f"-artifact_prefix={tmp_path}{os.sep}", "-print_final_stats=1"],
                env, tmp_path, timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert f"{debug_ext}{os.sep}kl_fast{os.sep}_cython{os.sep}rows" in out  # the debug .so ran
    done = [line for line in out.splitlines() if line.startswith("Done ")]
    assert done, out[-3000:]
    print(done[-1])
    if not LONG:
        assert done[-1].startswith(f"Done {RUNS} runs")


# ---- regressions: calls the fuzzer found failing ----------------------------------------


def _npy_with_header(path, header):
    import struct

    with open(path, "wb") as fh:
        fh.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)


def test_score_damaged_header_unclosed_bracket(tmp_path):
    """An unclosed bracket in a .npy header raised tokenize.TokenError, not ValueError."""
    from kl_fast._cli.score import score_files

    p = tmp_path / "p.npy"
    _npy_with_header(p, b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,\n")
    out = tmp_path / "out.npy"
    with pytest.raises(ValueError, match="not a readable .npy array"):
        score_files(str(p), str(p), metric="kl", out=str(out))
    assert sorted(os.listdir(tmp_path)) == ["p.npy"]  # no partial output
