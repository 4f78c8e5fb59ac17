"""Array types in and out: numpy in -> numpy out, CPU torch in -> torch out,
JAX in -> JAX out, pandas in -> pandas out (paired by label, ``_inputs/pandas_labels.py``).

Following SciPy's array-API policy, inputs are turned into numpy arrays with
``np.asarray`` just before the kernels (zero-copy for CPU arrays) and the
result is turned back into the caller's array type.  Arrays on a GPU raise a
``TypeError``: a silent device copy would hide a transfer of the whole input.
So does a torch tensor that requires a gradient while autograd records: the
kernels' results carry none, and a loss built from them would train with a
silently zero gradient (``gaussian_kl``, ``kl_divergence``, ``cross_entropy`` and
``entropy`` carry one instead: ``_autograd.py``, ``_autograd_rows.py``).
bfloat16 (torch, or ml_dtypes' as JAX holds it) has no numpy dtype: it is
computed as float32, like float16.
"""

import numpy as np

from . import pandas_labels as _pandas

__all__ = ["input_kind", "to_numpy", "gather", "output_kind", "wrap_result", "pair_labels",
           "add_trailing_axis"]

GRADIENT_ADVICE = (
    "{name} is a torch tensor that requires grad, but kl_fast's results carry no gradient "
    "here (only those of gaussian_kl, kl_divergence, cross_entropy and entropy do): a loss "
    "built from this call would train with a silently zero gradient from this term. To "
    "monitor the value, pass {name}.detach() (or call inside torch.no_grad()); to train "
    "through it, use torch's own function"
)


def _top_module(x):
    return type(x).__module__.split(".", 1)[0]


def input_kind(x, name):
    """'numpy', 'torch', 'jax' or 'pandas' for a CPU array-like; TypeError for a GPU
    array, a traced JAX value, or a torch tensor whose gradient would be dropped."""
    mod = _top_module(x)
    if mod == "torch":
        device = getattr(x, "device", None)
        if device is not None and device.type != "cpu":
            raise TypeError(
                f"{name} is a torch tensor on {device}; kl_fast computes on the CPU and does "
                f"not copy between devices silently: pass {name}.cpu(), or keep the "
                "computation on the GPU with torch"
            )
        if getattr(x, "requires_grad", False):
            import torch

            if torch.is_grad_enabled():
                raise TypeError(GRADIENT_ADVICE.format(name=name))
        return "torch"
    if mod == "pandas":
        return "pandas"
    if mod == "cupy":
        raise TypeError(
            f"{name} is a CuPy array on the GPU; kl_fast computes on the CPU and does not copy "
            f"between devices silently: pass cupy.asnumpy({name})"
        )
    if mod in ("jax", "jaxlib"):
        if _is_jax_tracer(x):
            raise TypeError(
                f"{name} is a traced JAX value (inside jax.jit, grad or vmap); kl_fast runs "
                "compiled CPU kernels on concrete arrays: call it outside the transformation, "
                "or wrap the call in jax.pure_callback"
            )
        devices = getattr(x, "devices", None)
        platforms = {d.platform for d in devices()} if callable(devices) else {"cpu"}
        if platforms != {"cpu"}:
            raise TypeError(
                f"{name} is a JAX array on {sorted(platforms)}; kl_fast computes on the CPU: "
                f"pass jax.device_get({name})"
            )
        return "jax"
    return "numpy"


def _is_jax_tracer(x):
    """True for an abstract value inside a JAX transformation (it has no data to read)."""
    import jax.core

    return isinstance(x, jax.core.Tracer)


def to_numpy(x, kind):
    """A numpy view of a CPU array-like (no copy where the source allows it)."""
    if kind == "torch":
        x = x.detach()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()           # numpy has no bfloat16; computed as float32
        return x.numpy()
    if kind == "pandas":
        return _pandas.values(x)
    arr = np.asarray(x)
    # ml_dtypes' bfloat16 (JAX) is a void kind to numpy; dtype.name costs ~1 us, so
    # the kind is tested first
    if arr.dtype.kind == "V" and arr.dtype.name == "bfloat16":
        arr = arr.astype(np.float32)
    return arr


def gather(named, slots=None, out_slots=None):
    """numpy arrays of the named inputs, and the result's array type.

    pandas inputs are paired by their labels first (see ``_inputs.pandas_labels.align`` for
    `slots` and `out_slots`); the kind is then their ``Labels``.
    """
    kinds = [input_kind(x, name) for name, x in named]
    labels = None
    if "pandas" in kinds:
        named, labels = _pandas.align(named, slots, out_slots)
    arrays = [to_numpy(x, kind) for (_, x), kind in zip(named, kinds, strict=True)]
    kind = output_kind(kinds)
    return arrays, labels if kind == "pandas" else kind


def pair_labels(labels, q, axis):
    """(labels, q, kind): class labels and the scores they index, paired by label
    if either is pandas (labels have q's axes without `axis`); kind is None
    unless the result should be pandas."""
    if not (_pandas.is_pandas(labels) or _pandas.is_pandas(q)):
        return labels, q, None
    ndim = np.ndim(q)
    if not (isinstance(axis, (int, np.integer)) and -ndim <= axis < ndim):
        return labels, q, None      # the usual checks word the error
    slots = [s for s in range(-ndim, 0) if s != axis % ndim - ndim]
    slots = slots[len(slots) - np.ndim(labels):] if np.ndim(labels) <= len(slots) else None
    aligned, layout = _pandas.align([("p", labels), ("q", q)], [slots, None])
    (_, labels), (_, q) = aligned
    return labels, q, layout


def output_kind(kinds):
    """The array type of the result: the first non-numpy input type, else numpy."""
    for kind in kinds:
        if kind != "numpy":
            return kind
    return "numpy"


def add_trailing_axis(kind):
    """The output kind once the inputs got one more trailing axis (pandas labels move)."""
    return kind.shifted(1) if isinstance(kind, _pandas.Labels) else kind


def wrap_result(result, kind, shape=None, axis=None):
    """Return `result` (numpy array or scalar) as the caller's array type.

    `shape`, `axis`: for a row reduction, the broadcast shape of the inputs
    and the axis reduced (pandas labels the axes that remain).
    """
    if isinstance(kind, _pandas.Labels):
        return kind.wrap(result, shape, axis)
    if kind == "torch":
        import torch

        return torch.from_numpy(np.asarray(result))
    if kind == "jax":
        import jax.numpy as jnp

        return jnp.asarray(result)
    return result
