"""Array types in and out: numpy in -> numpy out, CPU torch in -> torch out.

Following SciPy's array-API policy, inputs are turned into numpy arrays with
``np.asarray`` just before the kernels (zero-copy for CPU arrays) and the
result is turned back into the caller's array type.  Arrays on a GPU raise a
``TypeError``: a silent device copy would hide a transfer of the whole input.
"""

import numpy as np

__all__ = ["input_kind", "to_numpy", "wrap_result"]


def _top_module(x):
    return type(x).__module__.split(".", 1)[0]


def input_kind(x, name):
    """'numpy', 'torch' or 'jax' for a CPU array-like; TypeError for a GPU array."""
    mod = _top_module(x)
    if mod == "torch":
        device = getattr(x, "device", None)
        if device is not None and device.type != "cpu":
            raise TypeError(
                f"{name} is a torch tensor on {device}; kl_fast computes on the CPU and does "
                f"not copy between devices silently: pass {name}.cpu(), or keep the "
                "computation on the GPU with torch"
            )
        return "torch"
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
        return x.detach().numpy()
    return np.asarray(x)


def output_kind(kinds):
    """The array type of the result: the first non-numpy input type, else numpy."""
    for kind in kinds:
        if kind != "numpy":
            return kind
    return "numpy"


def wrap_result(result, kind):
    """Return `result` (numpy array or scalar) as the caller's array type."""
    if kind == "torch":
        import torch

        return torch.from_numpy(np.asarray(result))
    if kind == "jax":
        import jax.numpy as jnp

        return jnp.asarray(result)
    return result
