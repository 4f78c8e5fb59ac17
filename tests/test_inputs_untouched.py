"""No input is ever modified, and a failed call leaves a user's ``out=`` as it was.

Every public function x backend (tests/call_table.py), the scipy drop-ins,
``kl-fast score`` on files and the dask path: the inputs' bytes are hashed
before and after a valid call and a failing one (a bad value found during the
kernel's pass); read-only inputs (flag cleared, and read-only memmaps) are
accepted and give the same bits.

``out=`` contract (docstrings, ``_engine.report.OUT_UNTOUCHED``): every check runs
before a result reaches ``out``, so a call that raises leaves ``out`` byte for
byte as it was, and says so: every error of a call given ``out=`` -- each error
variant of every function in tests/call_table.py, on every backend -- ends
with ``OUT_UNTOUCHED``; the same call without ``out=`` gives the same message
without it.  ``out`` sharing memory with an input (``pairwise_kl(P, P, out=P)``)
gives the same result as a fresh array.
"""

import hashlib

import numpy as np
import pytest

import kl_fast
from kl_fast._engine import report as _report
from kl_fast._cli import main as cli
from tests.call_table import CALLS, SCIPY_CALLS


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(repr((a.shape, a.dtype.str, a.strides)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.fixture(params=sorted(CALLS))
def call(request):
    return request.param, CALLS[request.param]


def test_valid_and_failing_calls_leave_inputs_unchanged(call, backend, rng):
    name, c = call
    inputs = c.make(rng)
    before = _digest(inputs)
    c.run(inputs, backend)
    assert _digest(inputs) == before
    bad = c.breaks(inputs)
    before_bad = _digest(bad)
    with pytest.raises(ValueError):
        c.run(bad, backend)
    assert _digest(bad) == before_bad
    # the validate=False pass over the same garbage writes nothing either (a label out
    # of range is still refused: it would index outside q)
    try:
        c.run(bad, backend, validate=False)
    except ValueError:
        assert name == "cross_entropy_labels"
    assert _digest(bad) == before_bad


def test_read_only_inputs_are_read_in_place(call, backend, rng, tmp_path):
    name, c = call
    inputs = c.make(rng)
    expected = np.asarray(c.run(inputs, backend))
    frozen = []
    for x in inputs:
        x = np.array(x, copy=True)
        x.flags.writeable = False
        frozen.append(x)
    got = np.asarray(c.run(tuple(frozen), backend))
    assert got.tobytes() == expected.tobytes()
    maps = []
    for i, x in enumerate(inputs):
        x = np.ascontiguousarray(x)
        np.save(tmp_path / f"{i}.npy", x)
        maps.append(np.load(tmp_path / f"{i}.npy", mmap_mode="r"))
    got = np.asarray(c.run(tuple(maps), backend))
    assert got.tobytes() == expected.tobytes()
    with pytest.raises(ValueError):
        c.run(c.breaks(maps), backend)


def test_out_is_untouched_when_the_call_fails(call, backend, rng):
    name, c = call
    inputs = c.make(rng)
    shape = np.shape(c.run(inputs, backend))
    for dtype in (np.float64, np.float32):
        out = np.full(shape, 7.0, dtype=dtype)
        with pytest.raises(ValueError) as err:
            c.run(c.breaks(inputs), backend, out=out)
        assert str(err.value).endswith(_report.OUT_UNTOUCHED)
        assert np.all(out == 7.0), "a failed call wrote into out="
        # and a valid call fills it completely
        got = c.run(inputs, backend, out=out)
        assert got is out
        np.testing.assert_array_equal(out, np.asarray(c.run(inputs, backend)).astype(dtype))


def test_out_with_a_wrong_shape_is_untouched(call, backend, rng):
    name, c = call
    inputs = c.make(rng)
    shape = np.shape(c.run(inputs, backend))
    out = np.full((shape[0] + 1,) + shape[1:], 7.0)
    with pytest.raises(ValueError, match="out has shape") as err:
        c.run(inputs, backend, out=out)
    assert str(err.value).endswith(_report.OUT_UNTOUCHED)
    assert np.all(out == 7.0)


def _without_note(message):
    """`message` less the out= note (note_out joins them with " " or ". ")."""
    assert message.endswith(_report.OUT_UNTOUCHED), message
    return message[:-len(_report.OUT_UNTOUCHED)].rstrip()


def test_every_error_says_out_was_untouched_exactly_when_out_was_given(call, backend, rng):
    """Each error variant (a bad value, a bad row sum, a label out of range, a matrix that is
    not positive definite, a bad keyword, ...): without out= the message does not mention
    out=; with out= it is the same message plus the note, and out is byte for byte as it
    was."""
    name, c = call
    inputs = c.make(rng)
    shape = np.shape(c.run(inputs, backend))
    for label, make_error in c.all_errors().items():
        bad, keywords = make_error(inputs)
        with pytest.raises((ValueError, TypeError)) as plain:
            c.run(bad, **{"backend": backend, **keywords})
        message = str(plain.value)
        assert "out=" not in message, (label, message)
        out = np.full(shape, 7.0)
        with pytest.raises(type(plain.value)) as noted:
            c.run(bad, **{"backend": backend, "out": out, **keywords})
        assert _without_note(str(noted.value)) in (message, message + "."), label
        assert np.all(out == 7.0), f"{label}: a failed call wrote into out="


@pytest.mark.parametrize("fn", [kl_fast.pairwise_kl, kl_fast.pairwise_js],
                         ids=lambda f: f.__name__)
def test_out_sharing_memory_with_an_input(fn, backend, rng):
    """The compiled pairwise kernel writes out while it reads P and Q: an out= that is
    P or Q itself used to be overwritten mid-pass (NaN and wrong values)."""
    P = rng.dirichlet(np.ones(96), size=96)
    expected = fn(P, P, backend=backend)
    for args in ("PP", "PQ", "QP", "P"):
        x = P.copy()
        y = P.copy()
        a, b = {"PP": (x, x), "PQ": (x, y), "QP": (y, x), "P": (x, None)}[args]
        got = fn(a, b, out=x, backend=backend)
        assert got is x
        assert got.tobytes() == expected.tobytes(), args


@pytest.mark.parametrize("name", sorted(SCIPY_CALLS))
def test_scipy_dropins_leave_inputs_unchanged(name, rng):
    make, run = SCIPY_CALLS[name]
    inputs = make(rng)
    before = _digest(inputs)
    run(*inputs)
    assert _digest(inputs) == before
    bad = [np.array(x, copy=True) for x in inputs]
    bad[0].reshape(-1)[-1] = -1.0      # scipy semantics: a result (nan/inf), no error
    before = _digest(bad)
    run(*bad)
    assert _digest(bad) == before


def _file_digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("metric", ["kl", "js", "entropy"])
def test_score_leaves_its_input_files_unchanged(metric, tmp_path, rng):
    p = rng.dirichlet(np.ones(7), size=50)
    q = rng.dirichlet(np.ones(7), size=50)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    inputs = [tmp_path / "p.npy"] + ([] if metric == "entropy" else [tmp_path / "q.npy"])
    before = [_file_digest(f) for f in inputs]
    argv = ["score", *map(str, inputs), "--metric", metric, "--chunk-rows", "16"]
    assert cli.main([*argv, "-o", str(tmp_path / "out.npy")]) == 0
    assert [_file_digest(f) for f in inputs] == before
    # a bad value in the last chunk: the run fails, the inputs stay, no output is left
    p[-1, -1] = np.nan
    np.save(tmp_path / "p.npy", p)
    before = [_file_digest(f) for f in inputs]
    assert cli.main([*argv, "-o", str(tmp_path / "bad.npy")]) == 2
    assert [_file_digest(f) for f in inputs] == before
    assert not (tmp_path / "bad.npy").exists()
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_dask_path_leaves_its_numpy_source_unchanged(rng):
    da = pytest.importorskip("dask.array")
    p = rng.dirichlet(np.ones(6), size=40)
    q = rng.dirichlet(np.ones(6), size=40)
    before = _digest([p, q])
    # one chunk along the categories (bitwise the numpy call) and split (partial sums)
    for chunks in ((10, 6), (10, 3)):
        dp, dq = da.from_array(p, chunks=chunks), da.from_array(q, chunks=chunks)
        for fn in (kl_fast.kl_divergence, kl_fast.js_divergence, kl_fast.pairwise_kl):
            got = fn(dp, dq).compute(scheduler="sync")
            np.testing.assert_allclose(got, fn(p, q), rtol=1e-14, atol=1e-15)
    assert _digest([p, q]) == before
    bad = p.copy()
    bad[-1, -1] = np.nan
    before = _digest([bad])
    with pytest.raises(ValueError):
        kl_fast.kl_divergence(da.from_array(bad, chunks=(10, 3)),
                              da.from_array(q, chunks=(10, 3))).compute(scheduler="sync")
    assert _digest([bad]) == before
