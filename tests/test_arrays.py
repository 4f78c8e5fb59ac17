"""Array types in and out: array-likes give numpy, CPU torch gives torch, JAX CPU gives JAX,
GPU (and traced) arrays raise."""

import dask.array as da
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import xarray as xr

import kl_fast

from . import reference as ref
from .layouts import make_layout
from .public_calls import CALLS

SCALES = ("var", "std", "logvar", "logstd")
PAIR_FUNCS = {
    "kl": (kl_fast.kl_divergence, ref.kl),
    "js": (kl_fast.js_divergence, ref.js),
    "cross_entropy": (kl_fast.cross_entropy, ref.cross_entropy),
}


def probabilities(rng, shape):
    return rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])


def assert_close(result, expected, dtype=np.float64):
    np.testing.assert_allclose(np.asarray(result, dtype=np.float64), expected,
                               rtol=2 * np.finfo(dtype).eps if dtype == np.float32 else 1e-12)


# -- array-likes -> numpy -----------------------------------------------------------------------

@pytest.mark.parametrize("name", PAIR_FUNCS)
def test_nested_lists_and_tuples_give_numpy(backend, name, rng):
    fn, oracle = PAIR_FUNCS[name]
    p, q = probabilities(rng, (3, 4)), probabilities(rng, (3, 4))
    for convert in (lambda a: a.tolist(), lambda a: tuple(map(tuple, a))):
        result = fn(convert(p), convert(q), backend=backend)
        assert type(result) is np.ndarray and result.dtype == np.float64
        assert_close(result, oracle(p, q))


def test_flat_list_gives_numpy_scalar(backend):
    result = kl_fast.entropy([0.25, 0.25, 0.5], backend=backend)
    assert type(result) is np.float64
    assert_close(result, ref.entropy([0.25, 0.25, 0.5]))


def test_list_of_integer_counts_gives_float64(backend):
    result = kl_fast.entropy([[1, 1, 2], [0, 0, 4]], normalize=True, backend=backend)
    assert result.dtype == np.float64
    assert_close(result, ref.entropy([[1, 1, 2], [0, 0, 4]], normalize=True))


def test_list_of_labels_against_a_list_of_rows(backend, rng):
    q = probabilities(rng, (3, 4))
    result = kl_fast.cross_entropy([0, 3, 1], q.tolist(), backend=backend)
    assert_close(result, ref.cross_entropy_labels([0, 3, 1], q))


def test_gaussian_kl_accepts_lists_and_tuples(backend):
    result = kl_fast.gaussian_kl([[0.0, 1.0]], ((1.0, 2.0),), [0.5, 0.5], (1.5, 0.5),
                                 backend=backend)
    assert type(result) is np.ndarray and result.shape == (1,)
    assert_close(result, ref.gaussian_kl([[0.0, 1.0]], [[1.0, 2.0]], [0.5, 0.5], [1.5, 0.5]))


@pytest.mark.parametrize("layout", ["memmap", "readonly"])
def test_memmap_and_read_only_inputs_give_numpy(backend, dtype, layout, rng, tmp_path):
    p = make_layout(layout, probabilities(rng, (5, 6)).astype(dtype), tmp_path)
    q = make_layout(layout, probabilities(rng, (5, 6)).astype(dtype), tmp_path)
    result = kl_fast.kl_divergence(p.data, q.data, backend=backend)
    assert type(result) is np.ndarray and result.dtype == dtype
    assert_close(result, ref.kl(p.values, q.values), dtype)
    summed = kl_fast.js_divergence(p.data, q.data, reduction="sum", backend=backend)
    assert isinstance(summed, np.floating) and not isinstance(summed, np.memmap)


def test_memmap_of_labels_and_probabilities(backend, rng, tmp_path):
    q = make_layout("memmap", probabilities(rng, (5, 3)), tmp_path)
    labels = make_layout("memmap", rng.integers(0, 3, size=5), tmp_path)
    result = kl_fast.cross_entropy(labels.data, q.data, backend=backend)
    assert type(result) is np.ndarray
    assert_close(result, ref.cross_entropy_labels(np.asarray(labels.data), q.values))


# -- CPU torch tensors -> torch -----------------------------------------------------------------

TORCH_DTYPES = [torch.float32, torch.float64]


def _np_dtype(torch_dtype):
    return np.float32 if torch_dtype == torch.float32 else np.float64


@pytest.mark.parametrize("torch_dtype", TORCH_DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", PAIR_FUNCS)
def test_torch_in_gives_torch_out_with_its_dtype(backend, name, torch_dtype, rng):
    fn, oracle = PAIR_FUNCS[name]
    p = torch.from_numpy(probabilities(rng, (4, 6))).to(torch_dtype)
    q = torch.from_numpy(probabilities(rng, (4, 6))).to(torch_dtype)
    result = fn(p, q, backend=backend)
    assert isinstance(result, torch.Tensor)
    assert result.dtype == torch_dtype and result.device.type == "cpu"
    assert tuple(result.shape) == (4,)
    expected = oracle(p.double().numpy(), q.double().numpy())
    assert_close(result.numpy(), expected, _np_dtype(torch_dtype))


@pytest.mark.parametrize("torch_dtype", TORCH_DTYPES, ids=["float32", "float64"])
def test_torch_entropy_and_reductions_give_torch(backend, torch_dtype, rng):
    p = torch.from_numpy(probabilities(rng, (2, 3, 5))).to(torch_dtype)
    result = kl_fast.entropy(p, backend=backend)
    assert isinstance(result, torch.Tensor) and result.dtype == torch_dtype
    assert tuple(result.shape) == (2, 3)
    assert_close(result.numpy(), ref.entropy(p.double().numpy()), _np_dtype(torch_dtype))
    kept = kl_fast.entropy(p, keepdims=True, backend=backend)
    assert isinstance(kept, torch.Tensor) and tuple(kept.shape) == (2, 3, 1)
    mean = kl_fast.entropy(p, reduction="mean", backend=backend)
    assert isinstance(mean, torch.Tensor) and mean.dim() == 0 and mean.dtype == torch_dtype
    assert_close(mean.numpy(), ref.reduce(ref.entropy(p.double().numpy()), "mean"),
                 _np_dtype(torch_dtype))


def test_torch_single_distribution_gives_zero_dim_tensor(backend):
    result = kl_fast.kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75]),
                                   backend=backend)
    assert isinstance(result, torch.Tensor) and result.dim() == 0
    assert result.dtype == torch.float32
    assert_close(result.numpy(), ref.kl([0.5, 0.5], [0.25, 0.75]), np.float32)


def test_torch_integer_counts_and_half_precision(backend, rng):
    counts = torch.from_numpy(rng.integers(1, 9, size=(3, 4)))
    result = kl_fast.entropy(counts, normalize=True, backend=backend)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float64
    assert_close(result.numpy(), ref.entropy(counts.numpy(), normalize=True))
    half = counts.to(torch.float16)
    result = kl_fast.entropy(half, normalize=True, backend=backend)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32


def test_torch_with_requires_grad_raises_or_carries_the_gradient(backend, rng):
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    q = torch.softmax(logits, dim=-1)            # part of an autograd graph
    p = torch.from_numpy(probabilities(rng, (4, 5)))
    with pytest.raises(TypeError, match=r"^q is a torch tensor that requires grad.*q\.detach"):
        kl_fast.js_divergence(p, q, backend=backend)
    result = kl_fast.js_divergence(p, q.detach(), backend=backend)
    assert isinstance(result, torch.Tensor) and not result.requires_grad
    assert_close(result.numpy(), ref.js(p.numpy(), q.detach().numpy()))
    carried = kl_fast.kl_divergence(p, q, backend=backend)
    assert carried.requires_grad
    assert_close(carried.detach().numpy(), ref.kl(p.numpy(), q.detach().numpy()))


def test_torch_labels_and_probabilities(backend, rng):
    q = torch.from_numpy(probabilities(rng, (6, 4))).float()
    labels = torch.tensor([0, 3, 1, -100, 2, 2])
    result = kl_fast.cross_entropy(labels, q, ignore_index=-100, backend=backend)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    expected = ref.cross_entropy_labels(labels.numpy(), q.double().numpy(), ignore_index=-100)
    np.testing.assert_array_equal(torch.isnan(result).numpy(), np.isnan(expected))
    keep = ~np.isnan(expected)
    assert_close(result.numpy()[keep], expected[keep], np.float32)


def test_torch_mean_of_labels_matches_torch_cross_entropy(backend, rng):
    logits = torch.from_numpy(rng.normal(size=(7, 5)))
    labels = torch.from_numpy(rng.integers(0, 5, size=7))
    labels[2] = -100
    ours = kl_fast.cross_entropy(labels, torch.softmax(logits, dim=-1), ignore_index=-100,
                                 reduction="mean", backend=backend)
    theirs = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100)
    assert isinstance(ours, torch.Tensor)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_torch_non_contiguous_tensor(backend, rng):
    p = torch.from_numpy(probabilities(rng, (6, 4))).T      # (4, 6), categories on axis 0
    q = torch.from_numpy(probabilities(rng, (6, 4))).T
    assert not p.is_contiguous()
    result = kl_fast.js_divergence(p, q, axis=0, backend=backend)
    assert isinstance(result, torch.Tensor) and tuple(result.shape) == (6,)
    assert_close(result.numpy(), ref.js(p.T.numpy(), q.T.numpy()))


def test_torch_mixed_with_numpy_gives_torch(backend, rng):
    p = torch.from_numpy(probabilities(rng, (3, 4)))
    q = probabilities(rng, (3, 4))
    for args in [(p, q), (q, p)]:
        result = kl_fast.kl_divergence(*args, backend=backend)
        assert isinstance(result, torch.Tensor)
        assert_close(result.numpy(), ref.kl(*(np.asarray(a) for a in args)))


@pytest.mark.parametrize("scale", SCALES)
def test_torch_gaussian_kl_gives_torch(backend, scale, rng):
    mu = torch.randn(3, 4, dtype=torch.float32)
    s = torch.from_numpy(rng.uniform(0.5, 2.0, size=(3, 4))).float()
    result = kl_fast.gaussian_kl(mu, s, scale=scale, backend=backend)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    expected = ref.gaussian_kl(mu.double().numpy(), s.double().numpy(), scale=scale)
    assert_close(result.numpy(), expected, np.float32)


def test_torch_gaussian_prior_matches_torch_distributions(backend):
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    ours = kl_fast.gaussian_kl(mu, logvar, scale="logvar", backend=backend)
    normal = torch.distributions.Normal
    theirs = torch.distributions.kl_divergence(
        normal(mu, torch.exp(0.5 * logvar)), normal(torch.zeros(()), torch.ones(()))
    ).sum(-1)
    assert isinstance(ours, torch.Tensor)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


# -- arrays on a device raise ------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["p", "q"])
def test_torch_tensor_off_the_cpu_raises_type_error(backend, arg):
    meta = torch.empty(3, device="meta")
    x = {"p": torch.full((3,), 1 / 3), "q": torch.full((3,), 1 / 3)}
    x[arg] = meta
    pattern = rf"^{arg} is a torch tensor on meta; .* pass {arg}\.cpu\(\)"
    with pytest.raises(TypeError, match=pattern):
        kl_fast.kl_divergence(x["p"], x["q"], backend=backend)


def test_torch_tensor_off_the_cpu_raises_for_every_function(backend):
    meta = torch.empty(2, 3, device="meta")
    cpu = torch.full((2, 3), 1 / 3)
    calls = [
        lambda: kl_fast.entropy(meta, backend=backend),
        lambda: kl_fast.js_divergence(cpu, meta, backend=backend),
        lambda: kl_fast.cross_entropy(meta, cpu, backend=backend),
        lambda: kl_fast.cross_entropy(torch.zeros(2, dtype=torch.int64, device="meta"), cpu,
                                      backend=backend),
        lambda: kl_fast.cross_entropy(torch.zeros(2, dtype=torch.int64), meta, backend=backend),
        lambda: kl_fast.gaussian_kl(meta, cpu, backend=backend),
        lambda: kl_fast.gaussian_kl(cpu, cpu, cpu, meta, backend=backend),
    ]
    for run in calls:
        with pytest.raises(TypeError, match="is a torch tensor on meta"):
            run()


class _FakeCupyArray:
    """Stands in for a cupy.ndarray: only its type's module is looked at."""

    shape = (3,)
    dtype = np.dtype(np.float64)


_FakeCupyArray.__module__ = "cupy._core.core"


@pytest.mark.parametrize("arg", ["p", "q"])
def test_cupy_array_raises_type_error(backend, arg):
    x = {"p": [0.5, 0.5, 0.0], "q": [0.25, 0.25, 0.5]}
    x[arg] = _FakeCupyArray()
    with pytest.raises(TypeError, match=rf"^{arg} is a CuPy array on the GPU.*cupy\.asnumpy"):
        kl_fast.kl_divergence(x["p"], x["q"], backend=backend)


def test_cupy_array_raises_for_labels_and_gaussians(backend):
    with pytest.raises(TypeError, match="CuPy array on the GPU"):
        kl_fast.cross_entropy(_FakeCupyArray(), [[0.5, 0.5]], backend=backend)
    with pytest.raises(TypeError, match="CuPy array on the GPU"):
        kl_fast.gaussian_kl([0.0, 1.0, 2.0], _FakeCupyArray(), backend=backend)


# -- every public function: torch and JAX in -> their own type out -----------------------------

def _numpy_result(call, inputs):
    return np.asarray(call(*inputs))


def _every_function_inputs(name, seed=7):
    make_inputs, call = CALLS[name]
    return make_inputs(np.random.default_rng(seed)), call


@pytest.mark.parametrize("name", CALLS)
def test_torch_in_gives_torch_out_for_every_function(name):
    inputs, call = _every_function_inputs(name)
    result = call(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    assert isinstance(result, torch.Tensor) and result.device.type == "cpu"
    expected = _numpy_result(call, inputs)
    assert result.dtype == torch.float64 and tuple(result.shape) == expected.shape
    np.testing.assert_array_equal(result.numpy(), expected)


@pytest.mark.parametrize("name", CALLS)
def test_torch_off_the_cpu_raises_for_every_function(name):
    inputs, call = _every_function_inputs(name)
    on_meta = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
    on_meta[-1] = on_meta[-1].to("meta")
    with pytest.raises(TypeError, match=r"is a torch tensor on meta; .* pass \w+\.cpu\(\)"):
        call(*on_meta)


@pytest.mark.parametrize("name", CALLS)
def test_jax_in_gives_jax_out_for_every_function(name):
    inputs, call = _every_function_inputs(name)
    # JAX keeps float64 only with x64 enabled; without it its arrays are float32
    with jax.enable_x64(True):
        result = call(*(jnp.asarray(x) for x in inputs))
        assert isinstance(result, jax.Array)
        assert {d.platform for d in result.devices()} == {"cpu"}
        expected = _numpy_result(call, inputs)
        assert result.dtype == jnp.float64 and result.shape == expected.shape
        np.testing.assert_array_equal(np.asarray(result), expected)


@pytest.mark.parametrize("name", CALLS)
def test_jax_float32_stays_float32_for_every_function(name):
    inputs, call = _every_function_inputs(name)
    as_f32 = [x if x.dtype.kind == "i" else x.astype(np.float32) for x in inputs]
    result = call(*(jnp.asarray(x) for x in as_f32))
    assert isinstance(result, jax.Array) and result.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(result), _numpy_result(call, as_f32))


def test_jax_mixed_with_numpy_gives_jax(rng):
    p, q = probabilities(rng, (3, 4)).astype(np.float32), probabilities(rng, (3, 4))
    result = kl_fast.kl_divergence(p, jnp.asarray(q.astype(np.float32)))
    assert isinstance(result, jax.Array)
    assert_close(np.asarray(result), ref.kl(p, q.astype(np.float32)), np.float32)


def test_jax_traced_value_raises_type_error_naming_the_way_out(rng):
    p = jnp.asarray(probabilities(rng, (3, 4)).astype(np.float32))
    with pytest.raises(TypeError, match=r"^p is a traced JAX value .*jax\.pure_callback"):
        jax.jit(lambda a: kl_fast.entropy(a))(p)
    with pytest.raises(TypeError, match=r"^q is a traced JAX value"):
        jax.jit(lambda b: kl_fast.kl_divergence(p, b))(p)


# -- xarray: the README's apply_ufunc recipe ---------------------------------------------------

def kl_along(p, q, dim, **options):
    """The README's recipe, word for word."""
    return xr.apply_ufunc(kl_fast.kl_divergence, p, q, input_core_dims=[[dim], [dim]],
                          kwargs=options, dask="allowed")


def _labelled(values, class_first=False):
    dims = ("class", "sample") if class_first else ("sample", "class")
    coords = {"sample": [f"s{i}" for i in range(values.shape[0])]}
    data = values.T if class_first else values
    return xr.DataArray(data, dims=dims, coords=coords)


@pytest.mark.parametrize("class_first", [False, True], ids=["class-last", "class-first"])
def test_xarray_recipe_keeps_dims_and_coords(class_first, rng):
    p, q = probabilities(rng, (6, 5)), probabilities(rng, (6, 5))
    result = kl_along(_labelled(p, class_first), _labelled(q), "class", base=2)
    assert isinstance(result, xr.DataArray) and result.dims == ("sample",)
    assert list(result.coords["sample"].values) == [f"s{i}" for i in range(6)]
    np.testing.assert_array_equal(result.values, kl_fast.kl_divergence(p, q, base=2))
    assert_close(result.values, ref.kl(p, q) / np.log(2))


@pytest.mark.parametrize("class_chunks", [5, 2], ids=["class-in-one-chunk", "class-split"])
def test_xarray_recipe_on_dask_backed_arrays_stays_lazy(class_chunks, rng):
    p, q = probabilities(rng, (6, 5)), probabilities(rng, (6, 5))
    chunks = {"sample": 3, "class": class_chunks}
    lazy = kl_along(_labelled(p).chunk(chunks), _labelled(q).chunk(chunks), "class")
    assert isinstance(lazy.data, da.Array) and lazy.dims == ("sample",)
    np.testing.assert_allclose(lazy.compute().values, ref.kl(p, q), rtol=1e-13)
