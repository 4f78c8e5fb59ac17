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
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kl_fast
from kl_fast._cli import score as _score
from kl_fast._cli import main as cli
from tests import mp_reference as mpr
from tests import reference as ref
from tests.binary_reference import bce as mp_bce
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
    "binary-cross-entropy": lambda y, q: np.vectorize(lambda a, b: float(mp_bce(a, b)))(y, q),
    "renyi": lambda p, q: np.array(mpr.rows(mpr.renyi, p, q, alpha=0.5), dtype=float),
    "hellinger": lambda p, q: np.array(mpr.rows(mpr.hellinger, p, q), dtype=float),
    "total-variation": lambda p, q: np.array(mpr.rows(mpr.total_variation, p, q), dtype=float),
    "chi2": lambda p, q: np.array(mpr.rows(mpr.chi2, p, q), dtype=float),
}
ELEMENTWISE = ("binary-kl", "binary-cross-entropy")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("metric", list(_score.METRICS))
def test_metric_matches_in_memory_call(tmp_path, rng, metric, dtype):
    n, k = 53, 6
    if metric in ELEMENTWISE:
        p, q = (rng.uniform(0.01, 0.99, (n, k)).astype(dtype) for _ in range(2))
    else:
        p, q = dirichlet(rng, n, k, dtype), dirichlet(rng, n, k, dtype)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    inputs = [tmp_path / "p.npy"] + ([] if metric == "entropy" else [tmp_path / "q.npy"])
    # a metric with an order (renyi) gets one: the registry says which do
    order = ["--alpha", "0.5"] if "alpha" in _score.METRICS[metric].options else []
    assert score(*inputs, "--metric", metric, "-o", tmp_path / "out.npy",
                 "--chunk-rows", 7, "--quiet", *order) == 0
    got = np.load(tmp_path / "out.npy")
    fn = _score.METRICS[metric].fn
    kw = {"alpha": 0.5} if order else {}
    expected = fn(p, **kw) if metric == "entropy" else fn(p, q, **kw)
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


def test_sum_tol_and_float32_csv(tmp_path, rng, capsys):
    """A CSV of float32 probabilities (8 significant digits, as pandas writes them) is
    accepted by the default tolerance; --sum-tol sets it, as sum_tol= does."""
    p32 = dirichlet(rng, 40, 10, np.float32)
    path = tmp_path / "p32.csv"
    np.savetxt(path, p32, fmt="%.8g", delimiter=",")
    assert score(path, "--metric", "entropy", "-o", tmp_path / "h.npy", "--quiet") == 0
    loaded = np.loadtxt(path, delimiter=",")
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), ref.entropy(loaded), rtol=1e-13)
    off = np.tile([0.5, 0.505], (5, 1))
    np.save(tmp_path / "off.npy", off)
    assert score(tmp_path / "off.npy", "--metric", "entropy", "-o", tmp_path / "o.npy") == 2
    err = capsys.readouterr().err
    assert "larger --sum-tol" in err and "larger sum_tol" not in err
    assert score(tmp_path / "off.npy", "--metric", "entropy", "--sum-tol", 0.01,
                 "-o", tmp_path / "o.npy", "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"),
                                  kl_fast.entropy(off, sum_tol=0.01))
    assert score(tmp_path / "off.npy", tmp_path / "off.npy", "--metric", "binary-kl",
                 "--sum-tol", 0.1, "-o", tmp_path / "b.npy") == 2
    assert "--sum-tol does not apply to --metric binary-kl" in capsys.readouterr().err


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
        return [path, good], [str(path), "not a .npy, .npz or .parquet", ".csv"]
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
        return [good, good, "-o", tmp_path / "out.txt"], ["out.txt", ".npy", ".csv"]
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

def test_summary_on_stderr_value_on_stdout(tmp_path, rng, capsys):
    """The summary is a message (stderr, in MB below 0.01 GB); stdout carries only a
    requested sum/mean, also with --quiet, so pipes and $(...) get a number."""
    p = dirichlet(rng, 1234, 8)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", p[::-1].copy())
    out = tmp_path / "o.npy"
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--chunk-rows", 100) == 0
    captured = capsys.readouterr()
    assert captured.out == ""                    # per-row results: nothing on stdout
    line = captured.err.strip()                  # stderr is no TTY here: no bar, one line
    pattern = (r"kl-fast score: 1,234 rows x 8 \(0\.16 MB\) in \d+\.\d\d s: [\d,]+ rows/s, "
               r"\d+\.\d\d [MG]B/s -> " + re.escape(str(out)))
    assert re.fullmatch(pattern, line), line
    value = kl_fast.kl_divergence(p, p[::-1], reduction="mean")
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--reduction", "mean", "--quiet") == 0
    captured = capsys.readouterr()
    assert captured.err == ""                    # --quiet: no summary
    assert float(captured.out) == float(np.load(out))
    assert captured.out == f"{np.load(out)[()]}\n"
    assert math.isclose(float(captured.out), float(value), rel_tol=1e-15)
    assert math.isclose(float(captured.out), ref.reduce(ref.kl(p, p[::-1]), "mean"),
                        rel_tol=1e-13)
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o", out,
                 "--reduction", "sum") == 0
    captured = capsys.readouterr()
    total = float(np.load(out))
    assert captured.err.strip().endswith(f"-> {out} (sum = {total!r})")
    assert float(captured.out) == total
    assert math.isclose(total, float(kl_fast.kl_divergence(p, p[::-1], reduction="sum")),
                        rel_tol=1e-15)


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
                "from kl_fast._cli.main import main\n"
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


# -- CSV inputs ------------------------------------------------------------------------------

def write_csv(path, rows, header=None, delimiter=",", fmt="%.17g"):
    """A CSV of `rows` (2-D: one row a line; 1-D: one value a line) written by numpy."""
    np.savetxt(path, rows, delimiter=delimiter, fmt=fmt,
               header="" if header is None else delimiter.join(header), comments="")


@pytest.mark.parametrize("header", [False, True])
def test_csv_with_and_without_header(tmp_path, rng, header):
    n, k = 47, 5
    p, q = dirichlet(rng, n, k), dirichlet(rng, n, k)
    names = [f"class_{j}" for j in range(k)] if header else None
    write_csv(tmp_path / "p.csv", p, names)
    write_csv(tmp_path / "q.csv", q, names)
    if header:
        assert (tmp_path / "p.csv").read_text().startswith("class_0,class_1,")
    assert score(tmp_path / "p.csv", tmp_path / "q.csv", "--metric", "kl", "--base", 2,
                 "-o", tmp_path / "o.npy", "--chunk-rows", 6, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    # %.17g text reads back as the same float64: the same numbers as the in-memory call
    assert np.array_equal(np.loadtxt(tmp_path / "p.csv", delimiter=",",
                                     skiprows=int(header)), p)
    assert got.shape == (n,) and got.dtype == np.float64
    np.testing.assert_array_equal(got, kl_fast.kl_divergence(p, q, base=2))
    np.testing.assert_allclose(got, ref.kl(p, q, base=2), rtol=1e-13)


def test_csv_labels_against_logits(tmp_path, rng):
    """One column of integers is a labels file: cross-entropy from logits, every reduction."""
    n, k = 38, 7
    logits = rng.normal(size=(n, k)) * 3
    labels = rng.integers(0, k, n)
    labels[::6] = -100
    write_csv(tmp_path / "logits.csv", logits, [f"z{j}" for j in range(k)])
    write_csv(tmp_path / "labels.csv", labels, ["label"], fmt="%d")
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    oracle = ref.cross_entropy_labels(labels, np.exp(log_q), ignore_index=-100)
    for reduction in ("none", "mean"):
        out = tmp_path / f"{reduction}.npy"
        assert score(tmp_path / "labels.csv", tmp_path / "logits.csv", "--metric",
                     "cross-entropy", "--q-space", "logits", "--ignore-index", -100,
                     "--reduction", reduction, "-o", out, "--chunk-rows", 5, "--quiet") == 0
        got = np.load(out)
        api = kl_fast.cross_entropy(labels, logits, q_space="logits", ignore_index=-100,
                                    reduction=reduction)
        if reduction == "none":
            np.testing.assert_array_equal(got, api)
            np.testing.assert_allclose(got, oracle, rtol=1e-12)
        else:
            assert math.isclose(float(got), float(api), rel_tol=1e-15)
            expected = ref.reduce(oracle, "mean", ignored=labels == -100)
            assert math.isclose(float(got), expected, rel_tol=1e-12)


def test_csv_text_forms(tmp_path, rng):
    """Delimiters (--delimiter, .tsv), CRLF, a BOM, quoted cells, blank lines, 7 decimals."""
    p = dirichlet(rng, 12, 3)
    q = np.array([0.2, 0.3, 0.5])
    lines = [";".join(f"{v:.17g}" for v in row) for row in p]
    lines.insert(4, "")
    lines.insert(8, "   ")
    (tmp_path / "p.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n\r\n").encode())
    (tmp_path / "q.csv").write_text('"0.2";"0.3";"0.5"\n')
    assert score(tmp_path / "p.csv", tmp_path / "q.csv", "--metric", "kl", "--delimiter", ";",
                 "-o", tmp_path / "o.npy", "--chunk-rows", 5, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    assert got.shape == (12,)
    np.testing.assert_array_equal(got, kl_fast.kl_divergence(p, q))
    np.testing.assert_allclose(got, ref.kl(p, np.broadcast_to(q, p.shape)), rtol=1e-13)
    # tab-delimited: given as "\t", or told by a .tsv name
    write_csv(tmp_path / "p.txt", p, delimiter="\t")
    write_csv(tmp_path / "q.txt", q[None], delimiter="\t")
    assert score(tmp_path / "p.txt", tmp_path / "q.txt", "--metric", "kl", "--delimiter",
                 "\\t", "-o", tmp_path / "t.npy", "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), got)
    write_csv(tmp_path / "p.tsv", p, delimiter="\t")
    assert score(tmp_path / "p.tsv", tmp_path / "q.csv", "--metric", "kl", "--delimiter",
                 ";", "-o", tmp_path / "t.npy", "--quiet") == 2     # one --delimiter for all
    write_csv(tmp_path / "q.tsv", q[None], delimiter="\t")
    assert score(tmp_path / "p.tsv", tmp_path / "q.tsv", "--metric", "kl",
                 "-o", tmp_path / "t.npy", "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), got)


def test_csv_one_column_of_integers_is_float_data_unless_labels(tmp_path, rng):
    """binary-cross-entropy targets written as 0/1 integers are read as numbers."""
    y = rng.integers(0, 2, 30)
    q = rng.uniform(0.05, 0.95, 30)
    write_csv(tmp_path / "y.csv", y, fmt="%d")
    write_csv(tmp_path / "q.csv", q)
    assert score(tmp_path / "y.csv", tmp_path / "q.csv", "--metric", "binary-cross-entropy",
                 "-o", tmp_path / "o.npy", "--chunk-rows", 4, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    np.testing.assert_array_equal(got, kl_fast.binary_cross_entropy(y.astype(float), q))
    np.testing.assert_allclose(got, -(y * np.log(q) + (1 - y) * np.log1p(-q)), rtol=1e-14)


def test_csv_is_streamed_in_chunks(tmp_path, rng, monkeypatch):
    """The text is parsed in blocks of whole lines and handed out in --chunk-rows rows:
    numpy.loadtxt never sees the whole file, the metric never more than a chunk."""
    from kl_fast._cli import score_csv as _score_csv

    p = dirichlet(rng, 103, 4)
    write_csv(tmp_path / "p.csv", p, ["a", "b", "c", "d"])
    parsed, chunks = [], []
    real_loadtxt, real_entropy = np.loadtxt, _score.METRICS["entropy"].fn

    def loadtxt(fname, *args, **kwargs):
        arr = real_loadtxt(fname, *args, **kwargs)
        parsed.append(arr.shape[0])
        return arr

    def entropy(p, **kwargs):
        chunks.append(p.shape[0])
        return real_entropy(p, **kwargs)

    monkeypatch.setattr(_score_csv, "_BLOCK", 1000)       # ~12 lines a block
    monkeypatch.setattr(_score_csv.np, "loadtxt", loadtxt)
    monkeypatch.setitem(_score.METRICS, "entropy",
                        dataclasses.replace(_score.METRICS["entropy"], fn=entropy))
    assert score(tmp_path / "p.csv", "--metric", "entropy", "-o", tmp_path / "o.npy",
                 "--chunk-rows", 10, "--quiet") == 0
    monkeypatch.undo()
    assert sum(parsed) == 103 and max(parsed) <= 1000 // 70 + 1, parsed
    assert chunks == [10] * 10 + [3]
    got = np.load(tmp_path / "o.npy")
    np.testing.assert_array_equal(got, kl_fast.entropy(p))
    np.testing.assert_allclose(got, ref.entropy(p), rtol=1e-13)


def test_csv_memory_stays_bounded(tmp_path, rng):
    """A 60 MB CSV peaks at about the RSS of a tiny one: it is never read whole."""
    k = 16
    block = dirichlet(rng, 1000, k)
    text = io_text(block)
    big, tiny = tmp_path / "big.csv", tmp_path / "tiny.csv"
    with open(big, "w") as fp:
        for _ in range(200):
            fp.write(text)
    tiny.write_text(text)
    assert os.path.getsize(big) > 60e6         # parsed: 200,000 x 16 float64 = 26 MB
    argv = ["--metric", "entropy", "--chunk-rows", 2000, "--quiet"]
    tiny_rss = _peak_rss([tiny, "-o", tmp_path / "t.npy", *argv])
    big_rss = _peak_rss([big, "-o", tmp_path / "b.npy", *argv])
    growth = big_rss - tiny_rss
    print(f"\npeak RSS: tiny CSV {tiny_rss / 2**20:.1f} MiB, 60 MB CSV "
          f"{big_rss / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB")
    assert growth < 16 * 2**20
    got = np.load(tmp_path / "b.npy")
    np.testing.assert_array_equal(got, np.tile(kl_fast.entropy(block), 200))
    big.unlink()


def io_text(rows):
    """`rows` as CSV text, %.17g (reads back exactly)."""
    return "".join(",".join(f"{v:.17g}" for v in row) + "\n" for row in rows)


def _bad_csv(name, tmp_path):
    """(path, words the error must contain) for one bad CSV."""
    path = tmp_path / f"{name}.csv"
    good = "0.25,0.25,0.5\n"
    if name == "empty":
        path.write_text("\n  \n")
        return path, [str(path), "empty"]
    if name == "header-only":
        path.write_text("a,b,c\n")
        return path, [str(path), "header", "no rows"]
    if name == "ragged":
        path.write_text("a,b,c\n" + good * 3 + "0.5,0.5\n" + good)
        return path, [str(path), "line 5", "2 fields", "the header (line 1) has 3"]
    if name == "ragged-no-header":
        path.write_text(good * 2 + "0.2,0.2,0.2,0.4\n")
        return path, [str(path), "line 3", "4 fields", "line 1, the first row"]
    if name == "not-a-number":
        path.write_text(good * 7 + "0.25,abc,0.5\n")
        return path, [str(path), "line 8, column 2", "'abc' is not a number"]
    if name == "empty-cell":
        path.write_text(good * 2 + "0.5,,0.5\n")
        return path, [str(path), "line 3, column 2", "empty cell"]
    if name == "mixed-first-line":
        path.write_text("0.25,x,0.5\n" + good)
        return path, [str(path), "line 1, column 2", "'x'", "--header yes"]
    if name == "pandas-index":
        path.write_text(",a,b,c\n0," + good + "1," + good)
        return path, [str(path), "no name", "index=False"]
    if name == "pandas-names":
        path.write_text("0,1,2\n" + good)
        return path, [str(path), "line 1", "--header yes or --header no"]
    if name == "not-utf8":
        path.write_bytes(good.encode() + b"0.5,0.5,\xff\n")
        return path, [str(path), "line 2", "UTF-8"]
    raise AssertionError(name)


BAD_CSV = ["empty", "header-only", "ragged", "ragged-no-header", "not-a-number", "empty-cell",
           "mixed-first-line", "pandas-index", "pandas-names", "not-utf8"]


@pytest.mark.parametrize("name", BAD_CSV)
def test_bad_csv_is_one_line_naming_line_and_column(tmp_path, capsys, name):
    path, words = _bad_csv(name, tmp_path)
    out = tmp_path / "out.npy"
    assert score(path, "--metric", "entropy", "-o", out, "--chunk-rows", 2) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kl-fast score: error: "), err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists() and leftovers(tmp_path) == []


def test_csv_header_option_and_axis_0(tmp_path, rng, capsys):
    """--header yes/no settle pandas' 0,1,2 names; a CSV's rows cannot be the categories."""
    p = dirichlet(rng, 6, 3)
    (tmp_path / "p.csv").write_text("0,1,2\n" + io_text(p))
    assert score(tmp_path / "p.csv", "--metric", "entropy", "--header", "yes",
                 "-o", tmp_path / "o.npy", "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), kl_fast.entropy(p))
    # --header no: the first line is data, and 0,1,2 is no distribution
    assert score(tmp_path / "p.csv", "--metric", "entropy", "--header", "no",
                 "-o", tmp_path / "o.npy", "--quiet") == 2
    assert "sums to 3" in capsys.readouterr().err
    write_csv(tmp_path / "t.csv", np.ascontiguousarray(p.T))
    assert score(tmp_path / "t.csv", "--metric", "entropy", "--axis", 0,
                 "-o", tmp_path / "o.npy", "--quiet") == 2
    err = capsys.readouterr().err
    assert "read row by row" in err and "--axis -1" in err


# -- parquet inputs --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parquet_numeric_columns(tmp_path, rng, monkeypatch, dtype):
    """Columns are the categories; several row groups, chunks that straddle them."""
    n, k = 53, 4
    p, q = dirichlet(rng, n, k, dtype), dirichlet(rng, n, k, dtype)
    for name, arr in (("p", p), ("q", q)):
        table = pa.table({f"c{j}": arr[:, j] for j in range(k)})
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=10)
    assert pq.ParquetFile(tmp_path / "p.parquet").num_row_groups == 6
    batches = []
    real = pq.ParquetFile.iter_batches

    def iter_batches(self, *args, **kwargs):
        for batch in real(self, *args, **kwargs):
            batches.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    assert score(tmp_path / "p.parquet", tmp_path / "q.parquet", "--metric", "js",
                 "-o", tmp_path / "o.npy", "--chunk-rows", 7, "--quiet") == 0
    monkeypatch.undo()
    # both files streamed: batches of at most a chunk, every row read once
    assert sum(batches) == 2 * n and max(batches) <= 7, batches
    got = np.load(tmp_path / "o.npy")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, kl_fast.js_divergence(p, q))
    np.testing.assert_allclose(got, ref.js(p.astype(float), q.astype(float)),
                               rtol=2e-7 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_list_column_and_label_column_from_one_file(tmp_path, rng, fixed):
    """One file holds labels and logits: --p-key/--q-key pick the columns, Q defaults to P."""
    n, k = 41, 6
    logits = rng.normal(size=(n, k)).astype(np.float32)
    labels = rng.integers(0, k, n)
    kind = pa.list_(pa.float32(), k) if fixed else pa.list_(pa.float32())
    table = pa.table({"id": [f"row{i}" for i in range(n)], "label": labels,
                      "logits": pa.array(list(logits), type=kind)})
    pq.write_table(table, tmp_path / "batch.parquet", row_group_size=16)
    assert score(tmp_path / "batch.parquet", "--p-key", "label", "--q-key", "logits",
                 "--metric", "cross-entropy", "--q-space", "logits", "-o", tmp_path / "o.npy",
                 "--chunk-rows", 9, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    expected = kl_fast.cross_entropy(labels, logits, q_space="logits")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    lg = logits.astype(np.float64)
    log_q = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    np.testing.assert_allclose(got, -log_q[np.arange(n), labels], rtol=2e-7)


def _bad_parquet(name, tmp_path):
    path = tmp_path / f"{name}.parquet"
    if name == "null":
        pq.write_table(pa.table({"a": [0.5, None, 0.5], "b": [0.5, 0.5, 0.5]}), path)
        return [path], [str(path), "row 1", "'a'", "null"]
    if name == "text-column":
        pq.write_table(pa.table({"id": ["x", "y"], "a": [0.5, 0.5], "b": [0.5, 0.5]}), path)
        return [path], [str(path), "'id'", "not numeric", "--p-key"]
    if name == "int-beside-float":
        pq.write_table(pa.table({"id": [1, 2], "a": [0.5, 0.5], "b": [0.5, 0.5]}), path)
        return [path], [str(path), "['id']", "integer"]
    if name == "ragged-lists":
        pq.write_table(pa.table({"p": [[0.5, 0.5], [0.5, 0.5], [1.0]]}), path)
        return [path], [str(path), "row 2", "1 values", "has 2"]
    if name == "missing-key":
        pq.write_table(pa.table({"a": [0.5, 0.5], "b": [0.5, 0.5]}), path)
        return [path, "--p-key", "probs"], [str(path), "'probs'", "['a', 'b']"]
    if name == "truncated":
        pq.write_table(pa.table({"a": [0.5, 0.5], "b": [0.5, 0.5]}), path)
        path.write_bytes(path.read_bytes()[:-30])
        return [path], [str(path), "parquet"]
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["null", "text-column", "int-beside-float", "ragged-lists",
                                  "missing-key", "truncated"])
def test_bad_parquet_is_one_line(tmp_path, capsys, name):
    argv, words = _bad_parquet(name, tmp_path)
    assert score(*argv, "--metric", "entropy", "-o", tmp_path / "o.npy") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kl-fast score: error: "), err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "o.npy").exists()


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, capsys, monkeypatch):
    pq.write_table(pa.table({"a": [0.5], "b": [0.5]}), tmp_path / "p.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)      # import pyarrow now fails
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert score(tmp_path / "p.parquet", "--metric", "entropy", "-o", tmp_path / "o.npy") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "kl_fast[parquet]"' in err, err


# -- --p-key / --q-key -----------------------------------------------------------------------

@pytest.mark.parametrize("compressed", [False, True])
def test_p_key_and_q_key_from_one_npz(tmp_path, rng, compressed):
    n, k = 33, 5
    logits = rng.normal(size=(n, k))
    labels = rng.integers(0, k, n)
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "batch.npz", labels=labels, logits=logits, other=np.zeros(3))
    expected = kl_fast.cross_entropy(labels, logits, q_space="logits")
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for extra in ([], [tmp_path / "batch.npz"]):       # Q omitted: P's file
        assert score(tmp_path / "batch.npz", *extra, "--p-key", "labels", "--q-key", "logits",
                     "--metric", "cross-entropy", "--q-space", "logits",
                     "-o", tmp_path / "o.npy", "--chunk-rows", 8, "--quiet") == 0
        got = np.load(tmp_path / "o.npy")
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_allclose(got, -log_q[np.arange(n), labels], rtol=1e-13)


def test_keys_that_name_nothing(tmp_path, rng, capsys):
    np.savez(tmp_path / "one.npz", only=dirichlet(rng, 4, 3))
    np.save(tmp_path / "q.npy", dirichlet(rng, 4, 3))
    # the shared --key is ignored by a one-array .npz; --p-key must exist
    assert score(tmp_path / "one.npz", tmp_path / "q.npy", "--metric", "kl", "--key", "x",
                 "-o", tmp_path / "o.npy", "--quiet") == 0
    assert score(tmp_path / "one.npz", tmp_path / "q.npy", "--metric", "kl", "--p-key", "x",
                 "-o", tmp_path / "o.npy", "--quiet") == 2
    err = capsys.readouterr().err
    assert "has no array 'x'" in err and "['only']" in err
    write_csv(tmp_path / "p.csv", dirichlet(rng, 4, 3))
    assert score(tmp_path / "p.csv", tmp_path / "q.npy", "--metric", "kl", "--p-key", "x",
                 "-o", tmp_path / "o.npy", "--quiet") == 2
    assert "CSV" in capsys.readouterr().err
    assert score(tmp_path / "one.npz", "--q-key", "only", "--metric", "entropy",
                 "-o", tmp_path / "o.npy", "--quiet") == 2
    assert "--q-key does not apply" in capsys.readouterr().err


# -- binary-cross-entropy --------------------------------------------------------------------

def test_binary_cross_entropy_matches_torch(tmp_path, rng):
    import torch

    F = torch.nn.functional
    y = rng.uniform(0, 1, (57, 3))
    y[::4] = np.round(y[::4])                  # hard and soft targets
    logits = rng.normal(size=(57, 3)) * 4
    probs = 1 / (1 + np.exp(-logits))
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", probs)
    np.save(tmp_path / "z.npy", logits)
    ty = torch.from_numpy(y)
    assert score(tmp_path / "y.npy", tmp_path / "p.npy", "--metric", "binary-cross-entropy",
                 "-o", tmp_path / "b.npy", "--chunk-rows", 10, "--quiet") == 0
    got = np.load(tmp_path / "b.npy")
    np.testing.assert_array_equal(got, kl_fast.binary_cross_entropy(y, probs))
    torch_bce = F.binary_cross_entropy(torch.from_numpy(probs), ty, reduction="none").numpy()
    np.testing.assert_allclose(got, torch_bce, rtol=1e-12)
    assert score(tmp_path / "y.npy", tmp_path / "z.npy", "--metric", "binary-cross-entropy",
                 "--q-space", "logits", "--reduction", "mean", "-o", tmp_path / "m.npy",
                 "--chunk-rows", 10, "--quiet") == 0
    mean = float(np.load(tmp_path / "m.npy"))
    torch_mean = float(F.binary_cross_entropy_with_logits(torch.from_numpy(logits), ty))
    assert math.isclose(mean, torch_mean, rel_tol=1e-13)
    assert math.isclose(mean, float(kl_fast.binary_cross_entropy(
        y, logits, q_space="logits", reduction="mean")), rel_tol=1e-15)


def test_binary_cross_entropy_broadcast_and_refused_options(tmp_path, rng, capsys):
    y = rng.integers(0, 2, (20, 3)).astype(np.float64)
    q = np.array([0.1, 0.5, 0.8])                   # one prediction per column, broadcast
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "q.npy", q)
    assert score(tmp_path / "y.npy", tmp_path / "q.npy", "--metric", "binary-cross-entropy",
                 "-o", tmp_path / "o.npy", "--chunk-rows", 6, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    assert got.shape == (20, 3)
    np.testing.assert_allclose(got, -(y * np.log(q) + (1 - y) * np.log1p(-q)), rtol=1e-14)
    for extra, word in ((["--p-space", "logits"], "--p-space does not apply"),
                        (["--q-space", "log"], "--q-space prob or logits"),
                        (["--normalize"], "--normalize does not apply")):
        assert score(tmp_path / "y.npy", tmp_path / "q.npy", "--metric",
                     "binary-cross-entropy", *extra, "-o", tmp_path / "o.npy") == 2
        assert word in capsys.readouterr().err


# -- stdout / stderr, --quiet, sizes ---------------------------------------------------------

def test_mean_without_an_output_file_prints_only_the_value(tmp_path, rng):
    """In a subprocess, as a shell pipe sees it: stdout is the number and nothing else."""
    p = dirichlet(rng, 40, 4)
    np.save(tmp_path / "p.npy", p)
    proc = run_cli(tmp_path / "p.npy", "--metric", "entropy", "--reduction", "mean",
                   "--base", 2)
    assert proc.returncode == 0, proc.stderr
    expected = kl_fast.entropy(p, base=2, reduction="mean")
    assert proc.stdout == f"{expected}\n"
    assert math.isclose(float(proc.stdout), ref.reduce(ref.entropy(p, base=2), "mean"),
                        rel_tol=1e-13)
    assert proc.stderr.startswith("kl-fast score: 40 rows x 4 (0.00 MB)")
    assert "->" not in proc.stderr and f"(mean = {expected})" in proc.stderr
    quiet = run_cli(tmp_path / "p.npy", "--metric", "entropy", "--reduction", "mean",
                    "--base", 2, "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, proc.stdout, "")
    none = run_cli(tmp_path / "p.npy", "--metric", "entropy")
    assert none.returncode == 2 and none.stdout == "" and "-o OUT.npy" in none.stderr


def test_float32_value_printed_with_float32_digits(tmp_path, rng, capsys):
    p = dirichlet(rng, 30, 5, np.float32)
    np.save(tmp_path / "p.npy", p)
    assert score(tmp_path / "p.npy", "--metric", "entropy", "--reduction", "sum",
                 "--quiet") == 0
    printed = capsys.readouterr().out.strip()
    value = kl_fast.entropy(p, reduction="sum")
    assert value.dtype == np.float32 and np.float32(printed) == value
    assert printed == str(value) and len(printed) <= 12      # not float64's 17 digits


@pytest.mark.parametrize("nbytes, text", [(0, "0.00 MB"), (123_456, "0.12 MB"),
                                          (9_990_000, "9.99 MB"), (10_000_000, "0.01 GB"),
                                          (4_190_000_000, "4.19 GB")])
def test_sizes_below_a_hundredth_of_a_gb_are_in_mb(nbytes, text):
    summary = _score.ScoreSummary(rows=10, n_cat=4, bytes_read=nbytes, seconds=1.0,
                                  out="o.npy", reduction="none")
    assert f"({text}) in 1.00 s" in summary.line()
    assert f", {text}/s -> o.npy" in summary.line()


def test_csv_by_hand_in_a_subprocess(tmp_path, rng):
    """What a user runs: a CSV of predictions with a header against a labels CSV."""
    n, k = 250, 3
    probs = dirichlet(rng, n, k)
    labels = rng.integers(0, k, n)
    (tmp_path / "preds.csv").write_text("cat,dog,bird\n" + "".join(
        ",".join(f"{v:.7f}" for v in row) + "\n" for row in probs))
    (tmp_path / "labels.csv").write_text("label\n" + "".join(f"{v}\n" for v in labels))
    proc = run_cli(tmp_path / "labels.csv", tmp_path / "preds.csv", "--metric",
                   "cross-entropy", "-o", tmp_path / "loss.npy", "--chunk-rows", 64)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert re.fullmatch(r"kl-fast score: 250 rows x 3 \(0\.\d\d MB\) in .* -> "
                        + re.escape(str(tmp_path / "loss.npy")) + "\n", proc.stderr)
    printed = np.loadtxt(tmp_path / "preds.csv", delimiter=",", skiprows=1)
    got = np.load(tmp_path / "loss.npy")
    np.testing.assert_array_equal(got, kl_fast.cross_entropy(labels, printed))
    np.testing.assert_allclose(got, -np.log(printed[np.arange(n), labels]), rtol=1e-14)


# -- CSV output ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_csv_output_reads_back_exactly(tmp_path, rng, dtype):
    p, q = dirichlet(rng, 29, 4, dtype), dirichlet(rng, 29, 4, dtype)
    p[3] = [1.0, 0.0, 0.0, 0.0]
    q[3] = [0.0, 0.5, 0.25, 0.25]                      # KL = inf: written as inf
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "kl", "-o",
                 tmp_path / "kl.csv", "--chunk-rows", 6, "--quiet") == 0
    lines = (tmp_path / "kl.csv").read_text().splitlines()
    assert lines[0] == "kl" and len(lines) == 30 and lines[4] == "inf"
    got = np.loadtxt(tmp_path / "kl.csv", skiprows=1, dtype=np.float64).astype(dtype)
    expected = kl_fast.kl_divergence(p, q)
    np.testing.assert_array_equal(got, expected)        # the digits read back exactly
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], ref.kl(p.astype(float), q.astype(float))[finite],
                               rtol=2e-7 if dtype == np.float32 else 1e-13)
    # a (6, 4) batch: 6 lines of 4 values; a mean: one value
    np.save(tmp_path / "p3.npy", dirichlet(rng, 24, 3).reshape(6, 4, 3))
    assert score(tmp_path / "p3.npy", "--metric", "entropy", "-o", tmp_path / "h.csv",
                 "--chunk-rows", 4, "--quiet") == 0
    text = (tmp_path / "h.csv").read_text().splitlines()
    assert text[0] == "entropy_0,entropy_1,entropy_2,entropy_3" and len(text) == 7
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "h.csv", delimiter=",", skiprows=1),
                                  kl_fast.entropy(np.load(tmp_path / "p3.npy")))
    assert score(tmp_path / "p.npy", tmp_path / "q.npy", "--metric", "js", "--reduction",
                 "mean", "-o", tmp_path / "m.csv", "--quiet") == 0
    assert (tmp_path / "m.csv").read_text().splitlines() == [
        "js", str(kl_fast.js_divergence(p, q, reduction="mean"))]


def test_csv_output_of_more_than_two_dimensions_is_refused(tmp_path, rng, capsys):
    np.save(tmp_path / "p.npy", dirichlet(rng, 24, 3).reshape(2, 3, 4, 3))
    assert score(tmp_path / "p.npy", "--metric", "entropy", "-o", tmp_path / "h.csv") == 2
    err = capsys.readouterr().err
    assert "(2, 3, 4)" in err and ".npy" in err
    assert not (tmp_path / "h.csv").exists() and leftovers(tmp_path) == []


def test_advice_in_errors_names_the_flags(tmp_path, rng, capsys):
    """A CSV of counts: the API's "pass normalize=True" reads "--normalize" here."""
    counts = rng.integers(1, 9, (12, 4))
    (tmp_path / "c.csv").write_text("a,b,c,d\n" + "".join(
        ",".join(map(str, row)) + "\n" for row in counts))
    assert score(tmp_path / "c.csv", "--metric", "entropy", "-o", tmp_path / "h.npy",
                 "--chunk-rows", 5) == 2
    err = capsys.readouterr().err
    assert "--normalize" in err and "normalize=True" not in err, err
    assert "rows 0-4" in err and "starting at row 0, line 2 of" in err
    # a bad row in a later chunk, after blank lines: the chunk's first line is named
    (tmp_path / "p.csv").write_text("a,b\n" + "0.5,0.5\n" * 3 + "\n \n" + "0.5,0.5\n" * 4
                                    + "0.5,0.6\n")
    assert score(tmp_path / "p.csv", "--metric", "entropy", "-o", tmp_path / "h.npy",
                 "--chunk-rows", 5) == 2
    err = capsys.readouterr().err
    assert "rows 5-7" in err and "starting at row 5, line 9 of" in err, err
    assert score(tmp_path / "c.csv", "--metric", "entropy", "--normalize", "-o",
                 tmp_path / "h.npy", "--chunk-rows", 5, "--quiet") == 0
    got = np.load(tmp_path / "h.npy")
    np.testing.assert_array_equal(got, kl_fast.entropy(counts.astype(float), normalize=True))
    np.testing.assert_allclose(got, ref.entropy(counts, normalize=True), rtol=1e-13)
    assert _score.as_flags("or pass validate=False; q_space='logits'; axis=0") == \
        "or pass --no-validate; --q-space logits; --axis 0"


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_csv_blocks_of_any_size(tmp_path, rng, monkeypatch, capsys, block):
    """Lines cut by a block boundary, lines longer than a block, blank lines at block
    starts, CRLF and no final newline: the same numbers, and errors on the right line."""
    from kl_fast._cli import score_csv as _score_csv

    monkeypatch.setattr(_score_csv, "_BLOCK", block)
    p = dirichlet(rng, 40, 3)
    lines = [",".join(f"{v:.17g}" for v in row) for row in p]
    for at in (35, 20, 10, 3):
        lines.insert(at, " " if at % 2 else "")
    (tmp_path / "p.csv").write_bytes("\r\n".join(["x,y,z", *lines]).encode())
    assert score(tmp_path / "p.csv", "--metric", "entropy", "-o", tmp_path / "o.npy",
                 "--chunk-rows", 6, "--quiet") == 0
    got = np.load(tmp_path / "o.npy")
    np.testing.assert_array_equal(got, kl_fast.entropy(p))
    np.testing.assert_allclose(got, ref.entropy(p), rtol=1e-13)
    lines[30] = lines[30].replace(",", ",oops", 1)        # file line 32 (header is line 1)
    (tmp_path / "p.csv").write_bytes("\r\n".join(["x,y,z", *lines]).encode())
    assert score(tmp_path / "p.csv", "--metric", "entropy", "-o", tmp_path / "o.npy",
                 "--chunk-rows", 6) == 2
    err = capsys.readouterr().err
    assert "line 32, column 2" in err and "'oops" in err, err
