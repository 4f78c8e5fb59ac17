"""Gradients for ``gaussian_kl`` (the VAE prior term): a ``torch.autograd.Function``
whose forward is the kl_fast kernel and whose backward is the closed form.

Every other function refuses a tensor that requires grad while autograd
records (``_inputs.array_types.input_kind``): its result would carry no gradient.

Per coordinate, with d = mu1 - mu2 and variances v1, v2,
KL = (v1/v2 - 1 - log(v1/v2) + d^2/v2) / 2, so

    dKL/dmu1 = d / v2 = -dKL/dmu2,
    dKL/dv1  = (1/v2 - 1/v1) / 2,
    dKL/dv2  = (v2 - v1 - d^2) / (2 v2^2),

and for the other scales the chain rule through v = s, s^2, exp(s),
exp(2 s); the log scales use expm1(s1 - s2) so the gradient keeps its
digits where the two Gaussians nearly coincide (where it tends to 0).
The backward is made of differentiable torch operations, so second
derivatives (``create_graph=True``) are right too.  torch is imported only
when a tensor that requires grad comes in.
"""

import functools
import math

import numpy as np

__all__ = ["wants_grad", "gaussian_kl"]


def wants_grad(*xs):
    """True if a torch tensor among `xs` requires grad while autograd records."""
    for x in xs:
        if type(x).__module__.startswith("torch") and getattr(x, "requires_grad", False):
            import torch

            return torch.is_grad_enabled()
    return False


def gaussian_kl(compute, params, options):
    """``compute(*params, **options)`` (kl_fast's gaussian_kl) with its gradient.

    `params` is (mu1, s1) or (mu1, s1, mu2, s2).
    """
    import torch

    if options["out"] is not None:
        raise TypeError("out= is a numpy array and cannot carry the gradient of a torch input "
                        "that requires grad; leave out=None (the result is a torch tensor "
                        "with its gradient), or pass detached tensors")
    tensors = [x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
               for x in params]
    return _function().apply(compute, options, *tensors)


def _partials(mu1, s1, mu2, s2, scale):
    """dKL/d(mu1, s1, mu2, s2) per coordinate, broadcast, for `scale`."""
    import torch

    d = mu1 - mu2
    if scale == "var":
        g_mu = d / s2
        g_s1 = 0.5 * (1.0 / s2 - 1.0 / s1)
        g_s2 = 0.5 * (s2 - s1 - d * d) / (s2 * s2)
    elif scale == "std":
        v2 = s2 * s2
        g_mu = d / v2
        g_s1 = s1 / v2 - 1.0 / s1
        g_s2 = (v2 - s1 * s1 - d * d) / (v2 * s2)
    else:
        k = 1.0 if scale == "logvar" else 2.0      # v = exp(k s)
        inv_v2 = torch.exp(-k * s2)
        ratio_m1 = torch.expm1(k * (s1 - s2))      # v1/v2 - 1
        g_mu = d * inv_v2
        g_s1 = 0.5 * k * ratio_m1
        g_s2 = -0.5 * k * (ratio_m1 + d * d * inv_v2)
    return g_mu, g_s1, -g_mu, g_s2


def _upstream(grad, shape, options):
    """The incoming gradient broadcast to the coordinates' shape `shape`."""
    axis = options["axis"]
    elementwise = axis is None or len(shape) == 0
    n_cat = 1 if elementwise else shape[axis % len(shape)]
    if options["reduction"] != "none":
        grad = grad.reshape(())
        if options["reduction"] == "mean":
            n_results = math.prod(shape) // n_cat if n_cat else 0
            grad = grad / n_results if n_results else grad * math.nan
    elif not elementwise and not options["keepdims"]:
        grad = grad.unsqueeze(axis % len(shape))
    return grad.expand(shape)


@functools.cache
def _function():
    import torch

    class GaussianKL(torch.autograd.Function):
        """kl_fast's gaussian_kl forward, closed-form backward."""

        @staticmethod
        def forward(ctx, compute, options, *params):
            # autograd is off in here, so the kernel's input check lets the tensors in
            ctx.save_for_backward(*params)
            ctx.options = options
            full = params if len(params) == 4 else params + (None, None)
            return compute(*full, **options)

        @staticmethod
        def backward(ctx, grad):
            params = ctx.saved_tensors
            options = ctx.options
            work = torch.promote_types(grad.dtype, torch.float64)
            mu1, s1 = (p.to(work) for p in params[:2])
            if len(params) == 4:
                mu2, s2 = (p.to(work) for p in params[2:])
            else:        # the standard normal: mean 0, variance 1 in the given scale
                mu2 = torch.zeros((), dtype=work)
                s2 = torch.full((), 1.0 if options["scale"] in ("var", "std") else 0.0,
                                dtype=work)
            parts = _partials(mu1, s1, mu2, s2, options["scale"])
            shape = torch.broadcast_shapes(*(p.shape for p in params))
            upstream = _upstream(grad.to(work), shape, options)
            base = options["base"]
            if base is not None:
                upstream = upstream / math.log(base)
            grads = []
            for param, part, needed in zip(params, parts, ctx.needs_input_grad[2:],
                                           strict=False):
                if not needed:
                    grads.append(None)
                    continue
                full = (upstream * part).expand(shape)
                grads.append(full.sum_to_size(param.shape).to(param.dtype))
            return (None, None, *grads)

    return GaussianKL
