"""``kl-fast score``: chunked file scoring against the in-memory call and the naive oracle.

Most runs go through ``cli.main`` in process (fast, and Ctrl-C can be staged);
a few run ``python -m kl_fast`` in a subprocess: the traceback-free error
path, the progress bar on a pseudo-terminal, and the bounded-memory check.
"""

import dataclasses
import fcntl
import math
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import zipfile
from pathlib import Path

import numpy as np
import pytest

import kl_fast
from kl_fast import _score, cli
from tests import reference as ref
from tests.binary_reference import binary_kl as mp_binary_kl

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def score(*argv):
    """cli.main in process: the exit status."""
    return cli.main(["score", *map(str, argv)])


def run_cli(*argv, **kwargs):
    """``python -m kl_fast score ...`` in a subprocess (this worktree's package)."""
    return subprocess.run([sys.executable, "-m", "kl_fast", "score", *map(str, argv)],
                          env=ENV, capture_output=True, text=True, timeout=120, **kwargs)


def dirichlet(rng, n, k, dtype=np.float64):
    return rng.dirichlet(np.ones(k), size=n).astype(dtype)


def leftovers(directory):
    """Temporary files a run may have left beside the output."""
    return [f for f in os.listdir(directory) if f.endswith(".tmp")]


def test_runs_this_worktree():
    assert Path(kl_fast.__file__).resolve().parent == ROOT / "kl_fast"
    out = subprocess.run([sys.executable, "-c", "import kl_fast; print(kl_fast.__file__)"],
                         env=ENV, capture_output=True, text=True, check=True).stdout
    assert Path(out.strip()).resolve().parent == ROOT / "kl_fast"


# -- every metric: bit-identical to the in-memory call, close to the oracle ----------------

ORACLES = {
    "kl": lambda p, q: ref.kl(p, q),
    "entropy": lambda p, q: ref.entropy(p),
    "cross-entropy": lambda p, q: ref.cross_entropy(p, q),
    "js": lambda p, q: ref.js(p, q),
    "binary-kl": lambda p, q: np.vectorize(lambda a, b: float(mp_binary_kl(a, b)))(p, q),
}
API = {"kl": kl_fast.kl_divergence, "entropy": kl_fast.entropy,
       "cross-entropy": kl_fast.cross_entropy, "js": kl_fast.js_divergence,
       "binary-kl": kl_fast.binary_kl}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("metric", list(_score.METRICS))
def test_metric_matches_in_memory_call(tmp_path, rng, metric, dtype):
    n, k = 53, 6
    if metric == "binary-kl":
        p, q = (rng.uniform(0.01, 0.99, (n, k)).astype(dtype) for _ in range(2))
    else:
        p, q = dirichlet(rng, n, k, dtype), dirichlet(rng, n, k, dtype)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    inputs = [tmp_path / "p.npy"] + ([] if metric == "entropy" else [tmp_path / "q.npy"])
    assert score(*inputs, "--metric", metric, "-o", tmp_path / "out.npy",
                 "--chunk-rows", 7, "--quiet") == 0
    got = np.load(tmp_path / "out.npy")
    expected = API[metric](p) if metric == "entropy" else API[metric](p, q)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    oracle = ORACLES[metric](p.astype(np.float64), q.astype(np.float64))
    rtol = 2e-7 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, oracle, rtol=rtol, atol=1e-15)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("chunk", [1, 7, 40, 41, 1000, None])
def test_chunk_sizes_and_broadcast_q(tmp_path, rng, chunk):
    """Chunks that do not divide N, one row, more rows than N, automatic; Q of shape (K,)."""
    p, q = dirichlet(rng, 41, 5), dirichlet(rng, 1, 5)[0]
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    extra = [] if chunk is None else ["--chunk-rows", chunk]
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o",
                 tmp_path / "o.npy", "--quiet", *extra) == 0
    got = np.load(tmp_path / "o.npy")
    np.testing.assert_array_equal(got, kl_fast.kl_divergence(p, q))
    np.testing.assert_allclose(got, ref.kl(p, q), rtol=1e-13)


@pytest.mark.parametrize("backend", kl_fast.available_backends())
def test_every_backend(tmp_path, rng, backend):
    p, q = dirichlet(rng, 45, 6), dirichlet(rng, 45, 6)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "--backend", backend,
                 "-o", tmp_path / "o.npy", "--chunk-rows", 8, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    np.testing.assert_array_equal(got, kl_fast.kl_divergence(p, q, backend=backend))
    np.testing.assert_allclose(got, ref.kl(p, q), rtol=1e-13)


def test_three_dimensional_batch_and_broadcast_p(tmp_path, rng):
    """(A, B, K) against (B, K): Q has no chunked axis and is passed whole."""
    p, q = dirichlet(rng, 24, 4).reshape(6, 4, 4), dirichlet(rng, 4, 4)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "js", "-o",
                 tmp_path / "o.npy", "--chunk-rows", 4, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    assert got.shape == (6, 4)
    np.testing.assert_array_equal(got, kl_fast.js_divergence(p, q))
    np.testing.assert_allclose(got, ref.js(p, np.broadcast_to(q, p.shape)), rtol=1e-13)


def test_category_axis_first_and_fortran_order(tmp_path, rng):
    """axis=0 files (strided slabs) and a Fortran-order file give the in-memory result."""
    p, q = dirichlet(rng, 37, 5), dirichlet(rng, 37, 5)
    np.save(tmp_path / "pt.npy", np.ascontiguousarray(p.T))
    np.save(tmp_path / "qt.npy", np.ascontiguousarray(q.T))
    np.save(tmp_path / "pf.npy", np.asfortranarray(p))
    np.save(tmp_path / "q.npy", q)
    expected = kl_fast.kl_divergence(p, q)
    assert score(tmp_path / "pt.npy", tmp_path / "qt.npy", "--metric", "kl", "--axis", 0,
                 "-o", tmp_path / "o0.npy", "--chunk-rows", 10, "--quiet") == 0
    assert score(tmp_path / "pf.npy", tmp_path / "q.npy", "--metric", "kl",
                 "-o", tmp_path / "of.npy", "--chunk-rows", 10, "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o0.npy"), expected)
    np.testing.assert_array_equal(np.load(tmp_path / "of.npy"), expected)
    np.testing.assert_allclose(expected, ref.kl(p, q), rtol=1e-13)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_members(tmp_path, rng, compressed):
    p, q = dirichlet(rng, 29, 5, np.float32), dirichlet(rng, 29, 5, np.float32)
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "pq.npz", p=p, q=q)
    save(tmp_path / "single.npz", q)
    info = zipfile.ZipFile(tmp_path / "pq.npz").getinfo("p.npy")
    assert (info.compress_type == zipfile.ZIP_STORED) is not compressed
    # --key picks the member in every .npz input; a one-array .npz needs no key
    assert score(tmp_path / "pq.npz", tmp_path / "single.npz", "--metric", "kl", "--key", "p",
                 "-o", tmp_path / "o.npy", "--chunk-rows", 6, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, kl_fast.kl_divergence(p, q))
    np.testing.assert_allclose(got, ref.kl(p, q), rtol=2e-7)


def test_labels_with_ignore_index_every_reduction(tmp_path, rng):
    n, k = 61, 7
    q = dirichlet(rng, n, k)
    labels = rng.integers(0, k, n)
    labels[::5] = -100
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "q.npy", q)
    oracle = ref.cross_entropy_labels(labels, q, ignore_index=-100)
    for reduction in ("none", "sum", "mean"):
        out = tmp_path / f"{reduction}.npy"
        assert score(tmp_path / "y.npy", tmp_path / "q.npy", "--metric", "cross-entropy",
                     "--ignore-index", -100, "--reduction", reduction, "-o", out,
                     "--chunk-rows", 8, "--quiet") == 0
        got = np.load(out)
        api = kl_fast.cross_entropy(labels, q, ignore_index=-100, reduction=reduction)
        if reduction == "none":
            np.testing.assert_array_equal(got, api)
            np.testing.assert_allclose(got, oracle, rtol=1e-13)
        else:
            assert got.shape == ()
            assert math.isclose(float(got), float(api), rel_tol=1e-15)
            expected = ref.reduce(oracle, reduction, ignored=labels == -100)
            assert math.isclose(float(got), expected, rel_tol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_merge_exactly(tmp_path, rng, reduction, dtype):
    p, q = dirichlet(rng, 203, 9, dtype), dirichlet(rng, 203, 9, dtype)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "--reduction",
                 reduction, "-o", tmp_path / "r.npy", "--chunk-rows", 17, "--quiet") == 0
    got = np.load(tmp_path / "r.npy")
    assert got.shape == () and got.dtype == dtype
    api = kl_fast.kl_divergence(p, q, reduction=reduction)
    expected = ref.reduce(kl_fast.kl_divergence(p, q), reduction)
    tol = 1e-15 if dtype == np.float64 else 1e-7
    assert math.isclose(float(got), float(api), rel_tol=tol)
    assert math.isclose(float(got), expected, rel_tol=tol)


def test_options_reach_the_function(tmp_path, rng):
    """--p-space/--q-space/--temperature/--base/--eps/--normalize/--backend/--threads."""
    a, b = rng.normal(size=(30, 6)), rng.normal(size=(30, 6))
    counts = rng.integers(0, 5, (30, 6))
    counts[:, 0] += 1
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "c.npy", counts)
    assert score(tmp_path / "a.npy", tmp_path / "b.npy", "--metric", "kl", "--p-space",
                 "logits", "--q-space", "logits", "--temperature", 2.0, "--base", 2,
                 "--backend", "numpy", "--threads", 1, "-o", tmp_path / "o1.npy",
                 "--chunk-rows", 7, "--quiet") == 0
    np.testing.assert_array_equal(
        np.load(tmp_path / "o1.npy"),
        kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", temperature=2.0,
                              base=2, backend="numpy"))
    assert score(tmp_path / "c.npy", "--metric", "entropy", "--normalize", "--eps", 1e-3,
                 "-o", tmp_path / "o2.npy", "--chunk-rows", 7, "--quiet") == 0
    got = np.load(tmp_path / "o2.npy")
    np.testing.assert_array_equal(got, kl_fast.entropy(counts, normalize=True, eps=1e-3))
    np.testing.assert_allclose(got, ref.entropy(counts, eps=1e-3, normalize=True),
                               rtol=1e-13)
    assert score(tmp_path / "a.npy", "--metric", "entropy", "--p-space", "logits",
                 "-o", tmp_path / "o3.npy", "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o3.npy"),
                                  kl_fast.entropy(a, space="logits"))


def test_float16_big_endian_and_no_validate(tmp_path, rng):
    """float16 is computed as float32 (float32 out); byte order is the file's business;
    --no-validate passes validate=False (a NaN row comes back NaN, not an error)."""
    p, q = dirichlet(rng, 25, 5), dirichlet(rng, 25, 5)
    p[3, 1] = np.nan
    np.save(tmp_path / "p16.npy", p.astype(np.float16))
    np.save(tmp_path / "qbe.npy", q.astype(">f8"))
    assert score(tmp_path / "p16.npy", tmp_path / "qbe.npy", "--metric", "kl", "-o",
                 tmp_path / "o.npy", "--chunk-rows", 4, "--no-validate", "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    expected = kl_fast.kl_divergence(p.astype(np.float16), q.astype(">f8"), validate=False)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[3]) and np.isfinite(np.delete(got, 3)).all()


def test_single_distribution_gives_a_0d_output(tmp_path):
    np.save(tmp_path / "p.npy", np.array([0.8, 0.2]))
    np.save(tmp_path / "q.npy", np.array([0.6, 0.4]))
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "--base", 2,
                 "-o", tmp_path / "o.npy", "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    assert got.shape == ()
    assert float(got) == float(kl_fast.kl_divergence([0.8, 0.2], [0.6, 0.4], base=2))
    assert round(float(got), 5) == 0.13203     # the coin example of the seeds


# -- bad inputs: exit 2, one line naming the file and the problem, nothing written --------

def _bad_case(name, tmp_path, rng):
    """(argv, words the error must contain) for one bad input."""
    good = tmp_path / "good.npy"
    np.save(good, dirichlet(rng, 20, 4))
    path = tmp_path / f"{name}.npy"
    if name == "missing":
        return [path, good], [str(path), "no such file"]
    if name == "not-npy":
        path.write_text("p,q\n0.5,0.5\n")
        return [path, good], [str(path), "not a .npy or .npz"]
    if name == "truncated":
        np.save(path, dirichlet(rng, 20, 4))
        data = path.read_bytes()
        path.write_bytes(data[:-40])
        return [path, good], [str(path), "truncated"]
    if name == "header-lies":
        with open(path, "wb") as fp:          # promises 2 TB, holds 64 bytes
            np.lib.format.write_array_header_1_0(
                fp, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 256)})
            fp.write(bytes(64))
        return [path, good], [str(path), "truncated", "(1000000000000, 256)"]
    if name == "object":
        np.save(path, np.array([[0.5, 0.5]] * 20, dtype=object), allow_pickle=True)
        return [path, good], [str(path), "objects"]
    if name == "complex":
        np.save(path, np.full((20, 4), 0.25 + 0j))
        return [path, good], [str(path), "complex"]
    if name == "bool":
        np.save(path, np.zeros((20, 4), dtype=bool))
        return [good, path], [str(path), "booleans"]
    if name == "ints-without-normalize":
        np.save(path, np.ones((20, 4), dtype=np.int64))
        return [path, good], [str(path), "--normalize"]
    if name == "mismatched":
        np.save(path, dirichlet(rng, 19, 4))
        return [path, good], [str(path), str(good), "do not broadcast"]
    if name == "npz-needs-key":
        path = tmp_path / "two.npz"
        np.savez(path, a=np.ones(4) / 4, b=np.ones(4) / 4)
        return [path, good], [str(path), "--key", "'a'", "'b'"]
    if name == "npz-truncated":
        path = tmp_path / "cut.npz"
        np.savez(path, a=dirichlet(rng, 20, 4))
        path.write_bytes(path.read_bytes()[:200])
        return [path, good], [str(path), ".npz"]
    if name == "npz-compressed-damaged":
        path = tmp_path / "cutc.npz"
        np.savez_compressed(path, a=dirichlet(rng, 20, 4))
        data = path.read_bytes()
        # keep the archive's directory intact but zero the member's deflate data
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("a.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        broken = bytearray(data)
        broken[start + 60:start + info.compress_size] = b"\0" * (info.compress_size - 60)
        path.write_bytes(bytes(broken))
        return [path, good], [str(path), "damaged"]
    if name == "npz-compressed-axis0":
        path = tmp_path / "t.npz"
        np.savez_compressed(path, a=np.ascontiguousarray(dirichlet(rng, 20, 4).T))
        return [path, path, "--axis", 0], [str(path), "uncompressed"]
    if name == "nan-late-chunk":
        p = dirichlet(rng, 20, 4)
        p[17, 2] = np.nan
        np.save(path, p)
        return [path, good], [str(path), "rows 15-19", "invalid value"]
    if name == "out-dir-missing":
        return [good, good, "-o", tmp_path / "nowhere" / "o.npy"], ["nowhere", "does not exist"]
    if name == "wrong-suffix":
        return [good, good, "-o", tmp_path / "out.csv"], ["out.csv", ".npy"]
    if name == "out-is-input":
        return [good, good, "-o", good], [str(good), "input"]
    raise AssertionError(name)


BAD = ["missing", "not-npy", "truncated", "header-lies", "object", "complex", "bool",
       "ints-without-normalize", "mismatched", "npz-needs-key", "npz-truncated",
       "npz-compressed-damaged", "npz-compressed-axis0", "nan-late-chunk", "out-dir-missing",
       "wrong-suffix", "out-is-input"]


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, rng, capsys, name):
    argv, words = _bad_case(name, tmp_path, rng)
    out = tmp_path / "out.npy"
    if "-o" not in map(str, argv):
        argv = [*argv, "-o", out]
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}
    assert score(*argv, "--metric", "kl", "--chunk-rows", 5) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kl-fast score: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()
    assert leftovers(tmp_path) == []
    # nothing that was there changed (inputs included)
    assert {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)} == before


def test_bad_file_in_a_subprocess_has_no_traceback(tmp_path):
    (tmp_path / "p.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    proc = run_cli(tmp_path / "p.npy", "--metric", "entropy", "-o", tmp_path / "o.npy")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and str(tmp_path / "p.npy") in proc.stderr
    assert proc.stdout == ""


def test_labels_out_of_range_in_a_late_chunk_keep_the_old_output(tmp_path, rng, capsys):
    n, k = 100, 5
    q = dirichlet(rng, n, k)
    labels = rng.integers(0, k, n)
    labels[93] = k
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "q.npy", q)
    out = tmp_path / "out.npy"
    np.save(out, np.arange(3.0))
    old = out.read_bytes()
    assert score(tmp_path / "y.npy", tmp_path / "q.npy", "--metric", "cross-entropy",
                 "-o", out, "--chunk-rows", 10, "--quiet") == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line
    assert "rows 90-99" in line and "outside [0, 5)" in line and str(tmp_path / "y.npy") in line
    with pytest.raises(ValueError, match="outside"):
        kl_fast.cross_entropy(labels, q)      # the in-memory call refuses them too
    assert out.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_bad_option_and_usage_errors(tmp_path, rng, capsys):
    np.save(tmp_path / "p.npy", dirichlet(rng, 4, 3))
    cases = [(["--metric", "js", "--temperature", 2.0], "--temperature"),
             (["--metric", "kl", "--eps", -1.0], "eps"),
             (["--metric", "kl", "--axis", 3], "--axis 3"),
             (["--metric", "entropy", "--ignore-index", 0], "--ignore-index")]
    for extra, word in cases:
        inputs = [tmp_path / "p.npy"] * (1 if extra[1] == "entropy" else 2)
        assert score(*inputs, *extra, "-o", tmp_path / "o.npy") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and word in err, err
    with pytest.raises(SystemExit) as exit_info:
        score(tmp_path / "p.npy", "--metric", "nope", "-o", tmp_path / "o.npy")
    assert exit_info.value.code == 2
    assert not (tmp_path / "o.npy").exists()


def test_keyboard_interrupt_leaves_no_partial_file(tmp_path, rng, capsys, monkeypatch):
    p, q = dirichlet(rng, 50, 4), dirichlet(rng, 50, 4)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    out = tmp_path / "out.npy"
    np.save(out, np.zeros(2))
    old = out.read_bytes()
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[0].shape)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return kl_fast.kl_divergence(*args, **kwargs)

    monkeypatch.setitem(_score.METRICS, "kl",
                        dataclasses.replace(_score.METRICS["kl"], fn=interrupted))
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--chunk-rows", 10) == 130
    assert len(calls) == 3
    err = capsys.readouterr().err.strip()
    assert err == "kl-fast score: interrupted; no output written"
    assert out.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_disk_full_mid_run_leaves_no_partial_file(tmp_path, rng, capsys, monkeypatch):
    p = dirichlet(rng, 50, 4)
    np.save(tmp_path / "p.npy", p)
    out = tmp_path / "out.npy"
    np.save(out, np.ones(3))
    old = out.read_bytes()
    real_fdopen = os.fdopen
    writes = []

    class FullDisk:
        """The temporary file, whose third write (the second chunk) hits a full disk."""

        def __init__(self, fp):
            self._fp = fp

        def write(self, data):
            writes.append(len(data))
            if len(writes) == 3:
                raise OSError(28, "No space left on device")
            return self._fp.write(data)

        def __getattr__(self, name):
            return getattr(self._fp, name)

    monkeypatch.setattr(_score.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    assert score(tmp_path / "p.npy", "--metric", "entropy", "-o", out, "--chunk-rows", 10) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "No space left on device" in line and str(out) in line
    assert out.read_bytes() == old
    assert leftovers(tmp_path) == []


# -- summary line and progress bar ---------------------------------------------------------

def test_summary_line_and_no_bar_without_a_terminal(tmp_path, rng, capsys):
    p = dirichlet(rng, 1234, 8)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", p[::-1].copy())
    out = tmp_path / "o.npy"
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--chunk-rows", 100) == 0
    captured = capsys.readouterr()
    assert captured.err == ""                    # stderr is no TTY here: no bar
    line = captured.out.strip()
    pattern = (r"kl-fast score: 1,234 rows x 8 \(0\.00 GB\) in \d+\.\d\d s: [\d,]+ rows/s, "
               r"\d+\.\d\d GB/s -> " + re.escape(str(out)))
    assert re.fullmatch(pattern, line), line
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--reduction", "mean", "--quiet") == 0
    assert capsys.readouterr() == ("", "")      # --quiet: nothing at all
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--reduction", "sum") == 0
    line = capsys.readouterr().out.strip()
    value = float(kl_fast.kl_divergence(p, p[::-1], reduction="sum"))
    assert line.endswith(f"-> {out} (sum = {float(np.load(out))!r})")
    assert math.isclose(float(np.load(out)), value, rel_tol=1e-15)


def test_no_bar_without_tqdm(monkeypatch):
    """tqdm is an optional extra: missing, there is no bar and no error."""

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert cli._progress_factory(quiet=False) is not None
    assert cli._progress_factory(quiet=True) is None
    monkeypatch.setitem(sys.modules, "tqdm", None)      # import tqdm now fails
    assert cli._progress_factory(quiet=False) is None


def _stderr_on_a_pty(argv):
    """Run the CLI with stderr on a pseudo-terminal; (exit status, what the terminal got)."""
    master, slave = pty.openpty()
    # a fresh pty is 0 x 0, and tqdm draws nothing in 0 columns: give it a size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "kl_fast", "score", *map(str, argv)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:        # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(tmp_path, rng):
    pytest.importorskip("tqdm")
    np.save(tmp_path / "p.npy", dirichlet(rng, 5000, 4))
    argv = [tmp_path / "p.npy", "--metric", "entropy", "-o", tmp_path / "o.npy",
            "--chunk-rows", 50]
    status, terminal = _stderr_on_a_pty(argv)
    assert status == 0
    assert "kl-fast score" in terminal and "row" in terminal, terminal
    status, terminal = _stderr_on_a_pty([*argv, "--quiet"])
    assert status == 0 and terminal == ""


# -- bounded memory ------------------------------------------------------------------------

def _write_npy_in_pieces(path, block, n_blocks):
    """A (len(block) * n_blocks, K) .npy written block by block (never whole in memory)."""
    with open(path, "wb") as fp:
        header = {"descr": np.lib.format.dtype_to_descr(block.dtype), "fortran_order": False,
                  "shape": (block.shape[0] * n_blocks, block.shape[1])}
        np.lib.format.write_array_header_1_0(fp, header)
        for _ in range(n_blocks):
            fp.write(block.tobytes())


# The child reports its own VmHWM (peak RSS of this process image) when main returns.
# rusage's ru_maxrss would not do: Linux carries the parent's RSS at fork into the
# child's ru_maxrss across exec, so a child of a big pytest process reads at least that.
_REPORT_PEAK = ("import sys\n"
                "from kl_fast.cli import main\n"
                "status = main(sys.argv[1:])\n"
                "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
                "print(int(hwm.split()[1]) * 1024)\n"
                "sys.exit(status)\n")


def _peak_rss(argv):
    """Peak RSS (bytes) of one ``kl-fast score`` run in a fresh child process."""
    proc = subprocess.run([sys.executable, "-c", _REPORT_PEAK, "score", *map(str, argv)],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


def test_memory_stays_bounded_on_a_400_mb_file(tmp_path, rng):
    k = 256
    block = dirichlet(rng, 1000, k)
    q = dirichlet(rng, 1, k)[0]
    np.save(tmp_path / "q.npy", q)
    big, tiny = tmp_path / "big.npy", tmp_path / "tiny.npy"
    _write_npy_in_pieces(big, block, 200)            # 200,000 x 256 float64 = 410 MB
    _write_npy_in_pieces(tiny, block[:10], 1)
    assert os.path.getsize(big) > 400e6
    chunk = ["--chunk-rows", 2048, "--quiet", "--metric", "kl"]   # 4 MiB of P per chunk
    tiny_rss = _peak_rss([tiny, tmp_path / "q.npy", "-o", tmp_path / "t.npy", *chunk])
    big_rss = _peak_rss([big, tmp_path / "q.npy", "-o", tmp_path / "b.npy", *chunk])
    growth = big_rss - tiny_rss
    print(f"\npeak RSS: tiny file {tiny_rss / 2**20:.1f} MiB, 410 MB file "
          f"{big_rss / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB")
    assert growth < 64 * 2**20
    got = np.load(tmp_path / "b.npy")
    np.testing.assert_array_equal(got, np.tile(kl_fast.kl_divergence(block, q), 200))
    big.unlink()
