"""Gradients for ``kl_divergence``, ``cross_entropy`` and ``entropy`` (distillation, soft
and hard targets): a ``torch.autograd.Function`` whose forward is the public function
(the kernels) and whose backward is the closed form below.

Each input row x is first mapped to its distribution, as the kernels do:
probabilities (``(x + eps) / (sum x + K eps)`` with `eps` or `normalize`),
log-probabilities (``x - logsumexp x`` with `normalize`, which makes them
logits), or logits (``log_softmax(x / T)``).  With p, q those distributions
and lp, lq their logs,

    KL = sum p (lp - lq):  dKL/dp = lp - lq + 1,  dKL/dlp = p (lp - lq + 1),
                           dKL/dq = -p / q,        dKL/dlq = -p,
    H(p, q) = -sum p lq:   dH/dp = -lq,            dH/dlp = -p lq,   (q as for KL)
    H(p) = -sum p lp:      dH/dp = -(lp + 1),      dH/dlp = -p (lp + 1),
    labels y:              dH/dq_y = -1 / q_y,     dH/dlq_y = -1,

(a term with p = 0 has a zero log-space derivative), and the map back to x is
the Jacobian of the normalization: g_x = (g - sum(g p)) / (sum x + K eps) for
probabilities, g_x = (g - p sum g) / T for logits.  Probabilities taken as
they are (no `normalize`) get the derivative of the formula itself, not one
projected onto the simplex: what torch's autograd gives for
``(p * (p.log() - q.log())).sum()``.  The backward is made of
differentiable torch operations (second derivatives work).  Keywords without a
derivative here (``js_divergence``, or any keyword added later) are refused
with a TypeError rather than differentiated wrongly.
"""

import functools
import inspect
import math

__all__ = ["differentiate"]

_COMMON = {"axis", "base", "eps", "normalize", "reduction", "keepdims", "out", "backend",
           "num_threads", "validate", "sum_tol", "temperature"}
_SUPPORTED = {
    "kl": _COMMON | {"p", "q", "p_space", "q_space"},
    "ce": _COMMON | {"p", "q", "q_space", "ignore_index"},
    "h": _COMMON | {"p", "space"},
}
_CODES = {"prob": 0, "log": 1, "logits": 2}
PROB, LOG, LOGITS = 0, 1, 2


def differentiate(kind, fn, options):
    """``fn(**options)`` ("kl", "ce" or "h") as a tensor that carries its gradient."""
    import numpy as np
    import torch

    _refuse_unsupported(kind, fn, options)
    if options["out"] is not None:
        raise TypeError("out= is a numpy array and cannot carry the gradient of a torch input "
                        "that requires grad; leave out=None (the result is a torch tensor "
                        "with its gradient), or pass detached tensors")
    names = ("p",) if kind == "h" else ("p", "q")
    tensors = [options[n] if isinstance(options[n], torch.Tensor)
               else torch.from_numpy(np.asarray(options[n])) for n in names]
    rest = {k: v for k, v in options.items() if k not in names}
    return _function().apply(fn, kind, rest, *tensors)


def _refuse_unsupported(kind, fn, options):
    for name, param in inspect.signature(fn).parameters.items():
        if name in _SUPPORTED[kind] or name not in options:
            continue
        value = options[name]
        try:
            same = value is param.default or bool(value == param.default)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise TypeError(
                f"{fn.__name__} carries a gradient for torch inputs that require grad, but not "
                f"with {name}={value!r}: pass detached tensors (x.detach()) to monitor the "
                "value, or use torch's own function to train through it"
            )


def _upstream(grad, batch, axis, options, n_rows):
    """The incoming gradient as (*batch, 1): the category axis moved last."""
    if options["reduction"] != "none":
        grad = grad.reshape(())
        if options["reduction"] == "mean":
            grad = grad / n_rows if n_rows else grad * math.nan
        return grad.expand(batch).unsqueeze(-1)
    if options["keepdims"]:
        return grad.movedim(axis, -1).expand(*batch, 1)
    return grad.expand(batch).unsqueeze(-1)


def _distribution(x, code, options):
    """(p, log p) of rows `x` (category axis last) given in space `code`."""
    import torch

    if code == PROB:
        eps = float(options["eps"])
        if options["normalize"] or eps > 0:
            x = (x + eps) / (x.sum(-1, keepdim=True) + x.shape[-1] * eps)
        return x, torch.log(x)
    if code == LOG:
        return torch.exp(x), x
    log_p = torch.log_softmax(x / float(options["temperature"]), dim=-1)
    return torch.exp(log_p), log_p


def _to_input(g, p, code, options):
    """The gradient with respect to the raw rows, from g = dF/d(the code's variable)."""
    if code == PROB:
        eps = float(options["eps"])
        if options["normalize"] or eps > 0:
            return g - (g * p).sum(-1, keepdim=True)        # divided by the sum below
        return g
    if code == LOG:
        return g
    return (g - p * g.sum(-1, keepdim=True)) / float(options["temperature"])


def _prob_divisor(x, code, options):
    eps = float(options["eps"])
    if code == PROB and (options["normalize"] or eps > 0):
        return x.sum(-1, keepdim=True) + x.shape[-1] * eps
    return 1.0


def _effective(code, options):
    # as the kernels: normalize=True turns log-probabilities into logits
    return LOGITS if options["normalize"] and code == LOG else code


def _zero_where(mask, value):
    import torch

    return torch.where(mask, torch.zeros((), dtype=value.dtype), value)


def _grads(kind, tensors, options, grad, needed):
    import torch

    work = torch.float64
    if kind == "h":
        codes = [_CODES[options["space"]]]
    elif kind == "kl":
        codes = [_CODES[options["p_space"]], _CODES[options["q_space"]]]
    else:
        codes = [PROB, _CODES[options["q_space"]]]
    codes = [_effective(c, options) for c in codes]
    labels = (kind == "ce" and not tensors[0].is_floating_point()
              and tensors[0].dim() == tensors[1].dim() - 1)
    if labels:
        return [None, _label_grads(tensors, codes[1], options, grad)]
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    axis = options["axis"] % len(shape)
    rows = [t.to(work).expand(shape).movedim(axis, -1) for t in tensors]
    batch = rows[0].shape[:-1]
    up = _upstream(grad.to(work), batch, axis, options, math.prod(batch))
    if options["base"] is not None:
        up = up / math.log(options["base"])
    p, lp = _distribution(rows[0], codes[0], options)
    parts = []
    if kind == "h":
        parts.append(-(lp + 1.0) if codes[0] == PROB else _zero_where(p == 0, -p * (lp + 1.0)))
    else:
        q, lq = _distribution(rows[1], codes[1], options)
        if kind == "kl":
            g_p = lp - lq + 1.0
            parts.append(g_p if codes[0] == PROB else _zero_where(p == 0, p * g_p))
        else:
            parts.append(-lq if codes[0] == PROB else _zero_where(p == 0, -p * lq))
        parts.append(_zero_where(p == 0, -p / q) if codes[1] == PROB else -p)
    dists = [p] if kind == "h" else [p, q]
    out = []
    for t, row, code, part, dist, need in zip(tensors, rows, codes, parts, dists, needed,
                                              strict=False):
        if not need:
            out.append(None)
            continue
        g = _to_input(up * part, dist, code, options) / _prob_divisor(row, code, options)
        out.append(g.movedim(-1, axis).sum_to_size(t.shape).to(t.dtype))
    return out


def _label_grads(tensors, code, options, grad):
    import torch

    labels, q_raw = tensors
    axis = options["axis"] % q_raw.dim()
    rows = q_raw.to(torch.float64).movedim(axis, -1)
    batch = rows.shape[:-1]
    ignore = options["ignore_index"]
    keep = torch.ones(batch, dtype=torch.bool) if ignore is None else labels != ignore
    safe = torch.where(keep, labels, torch.zeros((), dtype=labels.dtype))
    up = _upstream(grad.to(torch.float64), batch, axis, options, int(keep.sum()))
    up = _zero_where(~keep.unsqueeze(-1), up)     # an ignored row's NaN takes no part
    if options["base"] is not None:
        up = up / math.log(options["base"])
    onehot = torch.nn.functional.one_hot(safe.long(), rows.shape[-1]).to(torch.float64)
    q, _ = _distribution(rows, code, options)
    part = -onehot / q if code == PROB else -onehot
    part = _zero_where(onehot == 0, part)
    g = _to_input(up * part, q, code, options) / _prob_divisor(rows, code, options)
    return g.movedim(-1, axis).to(q_raw.dtype)


@functools.cache
def _function():
    import torch

    class RowReduction(torch.autograd.Function):
        """kl_fast's kl_divergence / cross_entropy / entropy forward, closed-form backward."""

        @staticmethod
        def forward(ctx, fn, kind, options, *tensors):
            # autograd is off in here, so the kernel's input check lets the tensors in
            ctx.save_for_backward(*tensors)
            ctx.kind, ctx.options = kind, options
            return fn(*tensors, **options)

        @staticmethod
        def backward(ctx, grad):
            grads = _grads(ctx.kind, ctx.saved_tensors, ctx.options, grad,
                           ctx.needs_input_grad[3:])
            return (None, None, None, *grads)

    return RowReduction
