"""KL divergence between diagonal Gaussians, the VAE prior term included."""

import numpy as np

from . import _autograd
from ._dask import dispatch as _dask_dispatch
from ._dask import other as _dask_other
from ._engine.report import note_out, raise_for_values
from ._engine.run import Options, deliver, finish, run_kernel
from ._engine.scale import SCALES
from ._inputs import array_types as _arrays
from ._inputs.prepare import prepare_inputs
from ._inputs.shapes import make_rows
from ._inputs.validation import check_base

__all__ = ["gaussian_kl"]

_REQUIREMENT = {
    "var": "means must be finite and variances finite and > 0",
    "std": "means must be finite and standard deviations finite and > 0",
    "logvar": "means and log-variances must be finite",
    "logstd": "means and log-standard-deviations must be finite",
}


def gaussian_kl(mu1, s1, mu2=None, s2=None, *, scale="var", axis=-1, base=None,
                reduction="none", keepdims=False, out=None, backend="auto", num_threads=None,
                validate=True, where=None):
    r"""KL(N(mu1, diag s1) || N(mu2, diag s2)), summed over `axis`.

    Parameters
    ----------
    mu1, s1 : array_like
        Mean and scale parameter of the first Gaussian (broadcasting).
        Python scalars or 0-d arrays give one univariate Gaussian.  torch
        tensors that require grad give a result that carries the gradient.
    mu2, s2 : array_like, optional
        Those of the second.  Both None: the standard normal N(0, 1), in
        whatever `scale` -- the VAE prior term.
    scale : {"var", "logvar", "std", "logstd"}, default "var"
        What `s1` and `s2` hold: variances, log-variances (the VAE encoder
        convention), standard deviations or their logs.
    axis : int or None, default -1
        The axis summed over (the latent dimensions); None gives the
        elementwise KL of each coordinate.
    base, reduction, keepdims, out, backend, num_threads, validate
        As in :func:`kl_divergence`.  With `validate`, means must be finite,
        variances and standard deviations finite and > 0.
    where : array_like of bool, optional
        With ``axis=None`` (the elementwise KL): numpy's mask, True where a
        coordinate counts (broadcasting against the parameters).  Masked
        coordinates may hold anything (padding, NaN) and are not checked:
        they are 0.0 under ``reduction="none"`` and left out of "sum" and
        "mean" ("mean" divides by the number of included coordinates).
        Gradients flow to the included coordinates only.

    Returns
    -------
    ndarray or scalar
        The KL divergence per batch element (per coordinate with
        ``axis=None``), never negative; a numpy scalar for scalar inputs.
        With a torch tensor that requires grad (and autograd recording), a
        tensor with the gradient of the KL (``loss.backward()`` works).

    Raises
    ------
    ValueError
        Invalid values (with `validate`), shapes that do not broadcast, a bad
        `axis` or `scale`, or only one of `mu2`, `s2` given.
    TypeError
        Non-real data, a GPU array, or `out` given with an input that
        requires grad (a numpy `out` cannot carry the gradient).

    See Also
    --------
    torch.distributions.kl_divergence : for two ``Normal`` distributions.

    Notes
    -----
    Per coordinate, with u = v1 / v2,

    .. math::

        KL = \tfrac12 \left( u - 1 - \log u + \frac{(\mu_1 - \mu_2)^2}{v_2} \right),
        \qquad KL(\mathcal N(\mu, v) \| \mathcal N(0, 1))
            = \tfrac12 (\mu^2 + v - \log v - 1).

    u - 1 - log u is evaluated as -log1pmx(u - 1) with u - 1 formed exactly,
    or as expm1(d) - d with d = log u for the log scales, so the result stays
    accurate (and >= 0) when the two Gaussians nearly coincide, where the
    textbook formula loses every digit.

    Gradients (torch): a ``torch.autograd.Function`` runs this kernel
    forward and the closed-form derivatives backward, e.g. for "logvar"
    dKL/dmu1 = (mu1 - mu2) / v2 and dKL/ds1 = expm1(s1 - s2) / 2, in every
    scale, axis and reduction; checked with ``torch.autograd.gradcheck``
    (second derivatives too) and against ``torch.distributions``.

    dask arrays give a lazy dask array; an `axis` split across chunks is
    summed over its chunks in float64.

    Examples
    --------
    >>> import kl_fast
    >>> float(kl_fast.gaussian_kl([0.0], [1.0]))   # N(0, 1) against itself
    0.0
    >>> float(kl_fast.gaussian_kl([1.0, 0.0], [0.0, 0.0], scale="logvar"))
    0.5
    >>> round(float(kl_fast.gaussian_kl(0.0, 1.0, 1.0, 2.0)), 6)   # scalars: univariate
    0.346574

    A VAE's KL term, with its gradient:

    >>> import torch
    >>> mu = torch.zeros(2, 3, requires_grad=True)
    >>> logvar = torch.zeros(2, 3, requires_grad=True)
    >>> loss = kl_fast.gaussian_kl(mu + 1.0, logvar, scale="logvar").mean()
    >>> loss.backward()
    >>> mu.grad
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    """
    try:
        if _dask_dispatch.has_dask(mu1, s1, mu2, s2, where):
            return _dask_other.dispatch("gaussian_kl", locals())
        if where is not None:
            return _masked(gaussian_kl, (mu1, s1, mu2, s2), where, scale, axis,
                           dict(base=base, reduction=reduction, keepdims=keepdims, out=out,
                                backend=backend, num_threads=num_threads, validate=validate))
        if _autograd.wants_grad(mu1, s1, mu2, s2):
            options = dict(scale=scale, axis=axis, base=base, reduction=reduction,
                           keepdims=keepdims, out=out, backend=backend, num_threads=num_threads,
                           validate=validate)
            params = (mu1, s1) if mu2 is None and s2 is None else (mu1, s1, mu2, s2)
            return _autograd.gaussian_kl(gaussian_kl, params, options)
        opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                             num_threads=num_threads, validate=validate)
        if not isinstance(scale, str) or scale not in SCALES:
            raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
        log_base = check_base(base)
        if (mu2 is None) != (s2 is None):
            raise ValueError("give both mu2 and s2, or neither (for the standard normal N(0, 1))")
        prior = mu2 is None
        named = [("mu1", mu1), ("s1", s1)] + ([] if prior else [("mu2", mu2), ("s2", s2)])
        arrays, dtype, out_kind, _ = prepare_inputs(named, what="Gaussian parameters")
        names = [name for name, _ in named]
        # one univariate Gaussian from scalars has no axis to sum over
        elementwise = axis is None or (axis == -1 and max(a.ndim for a in arrays) == 0)
        if elementwise:
            # every coordinate is its own "row" of length one
            arrays = [a[..., np.newaxis] for a in arrays]
            axis = -1
            out_kind = _arrays.add_trailing_axis(out_kind)
        rows = make_rows(arrays, names, axis, fixed=())
        check = 1 if opts.validate else 0
        kernel = "gaussian_kl_prior_rows" if prior else "gaussian_kl_rows"
        result, report = run_kernel(kernel, rows, dtype, (check, SCALES[scale], log_base), opts)
        if check:
            raise_for_values(report, rows, names, arrays, _REQUIREMENT[scale])
        if elementwise:
            opts.keepdims = False
        return finish(result, rows, opts, out_kind)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def _masked(fn, params, where, scale, axis, options):
    """gaussian_kl(axis=None, where=mask): masked coordinates get the stand-in N(0, 1)
    against N(0, 1) (KL exactly 0, and nothing of what they hold reaches a check),
    then 0.0 in the result and no count in "mean".  Written with the result's own
    array type, so a torch result keeps its gradient (masked coordinates get none)."""
    from ._elementwise import check_where

    if axis is not None:
        raise ValueError(
            f"where= applies to the elementwise KL (axis=None), got axis={axis!r}: pass "
            "axis=None, where=mask and sum the per-coordinate values (masked ones are 0) "
            "along the axis")
    reduction, out = options.pop("reduction"), options.pop("out")
    Options.check(reduction=reduction, out=out, keepdims=options.pop("keepdims"),
                  backend=options["backend"], num_threads=options["num_threads"],
                  validate=options["validate"])
    mask = check_where(where)
    stand_in = 1.0 if scale in ("var", "std") else 0.0       # var = std = 1: N(0, 1)
    fills = (0.0, stand_in, 0.0, stand_in)
    present = [(x, f) for x, f in zip(params, fills, strict=True) if x is not None]
    if len(present) == 3:
        raise ValueError("give both mu2 and s2, or neither (for the standard normal N(0, 1))")
    if any(type(x).__module__.split(".")[0] == "torch" for x, _ in present):
        import torch

        keep = torch.from_numpy(np.ascontiguousarray(mask))
        masked = [torch.where(keep, x if isinstance(x, torch.Tensor) else torch.tensor(x), f)
                  for x, f in present]
        values = fn(*masked, scale=scale, axis=None, reduction="none", **options)
        values = torch.where(keep, values, torch.zeros((), dtype=values.dtype))
        count = int(torch.broadcast_to(keep, values.shape).sum())
    else:
        masked = [np.where(mask, np.asarray(_arrays.to_numpy(x, _arrays.input_kind(x, "p"))),
                           f) for x, f in present]
        values = np.asarray(fn(*masked, scale=scale, axis=None, reduction="none", **options))
        keep = np.broadcast_to(mask, values.shape)
        values = np.where(keep, values, values.dtype.type(0.0))
        count = int(np.count_nonzero(keep))
    if reduction == "none":
        if out is None and not isinstance(values, np.ndarray):
            return values                     # a torch tensor (with its gradient)
        return deliver(np.asarray(values), out, "numpy")
    if isinstance(values, np.ndarray):
        total = float(values.sum(dtype=np.float64))
        if reduction == "mean":
            total = total / count if count else np.nan
        return values.dtype.type(total)
    total = values.sum()
    return total / count if reduction == "mean" and count else \
        (total * float("nan") if reduction == "mean" else total)
