"""A deliberately naive oracle: one Python loop per row, plain floats, ``math``.

Nothing here is vectorised or clever, so it is easy to check by eye against
DESIGN.md ("Semantics at the edges"); the package never imports it.  Every
function takes array-likes with the category axis last (``axis=-1``) and
returns a float64 array of the batch shape.  Sums use ``math.fsum`` so the
oracle's own rounding stays far below the tolerances the tests use.
"""

import math

import numpy as np

INF = math.inf
NAN = math.nan


def _rows(*arrays):
    """Broadcast the inputs: (batch shape, [rows as lists of floats] for each input)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flat = [np.broadcast_to(a, shape).reshape(-1, shape[-1]) for a in arrays]
    rows = [[[float(v) for v in row] for row in f] for f in flat]
    return shape[:-1], rows


def _smooth(row, eps, normalize):
    """(x + eps) / (sum + n * eps): eps smoothing and normalize are one transform."""
    if not normalize and eps == 0.0:
        return row
    total = math.fsum(row) + len(row) * eps
    return [(x + eps) / total for x in row]


def _log_base(base):
    return 1.0 if base is None else math.log(base)


def rel_entr(p, q):
    """One KL term: 0 for p == 0, +inf for p > 0 and q == 0, else p log(p / q)."""
    if p == 0.0:
        return 0.0
    if q == 0.0:
        return INF
    return p * math.log(p / q)


def neg_xlogy(p, q):
    """One cross-entropy term -p log q, with 0 log 0 = 0 and -p log 0 = +inf."""
    if p == 0.0:
        return 0.0
    if q == 0.0:
        return INF
    return -p * math.log(q)


def entr(p):
    """One entropy term -p log p, 0 for p == 0."""
    return 0.0 if p == 0.0 else -p * math.log(p)


def js_term(p, q):
    m = 0.5 * (p + q)
    return 0.5 * (rel_entr(p, m) + rel_entr(q, m))


def _pairwise(term, p, q, base, eps, normalize, clamp):
    batch, (p_rows, q_rows) = _rows(p, q)
    out = []
    for pr, qr in zip(p_rows, q_rows, strict=True):
        pr, qr = _smooth(pr, eps, normalize), _smooth(qr, eps, normalize)
        total = math.fsum(term(a, b) for a, b in zip(pr, qr, strict=True))
        out.append(clamp(total) / _log_base(base))
    return np.array(out, dtype=np.float64).reshape(batch)


def kl(p, q, base=None, eps=0.0, normalize=False):
    """KL(p || q) = sum p log(p / q) per row; never negative."""
    return _pairwise(rel_entr, p, q, base, eps, normalize, lambda t: max(t, 0.0))


def cross_entropy(p, q, base=None, eps=0.0, normalize=False):
    """H(p, q) = -sum p log q per row."""
    return _pairwise(neg_xlogy, p, q, base, eps, normalize, lambda t: t)


def js(p, q, base=None, eps=0.0, normalize=False):
    """JS(p, q) = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2, in [0, log 2]."""
    return _pairwise(js_term, p, q, base, eps, normalize,
                     lambda t: min(max(t, 0.0), math.log(2.0)))


def entropy(p, base=None, eps=0.0, normalize=False):
    """H(p) = -sum p log p per row."""
    batch, (p_rows,) = _rows(p)
    out = [math.fsum(entr(x) for x in _smooth(r, eps, normalize)) / _log_base(base)
           for r in p_rows]
    return np.array(out, dtype=np.float64).reshape(batch)


def cross_entropy_labels(labels, q, base=None, eps=0.0, normalize=False, ignore_index=None):
    """-log q[label] per row (after smoothing); NaN where label == ignore_index."""
    labels = np.asarray(labels)
    q = np.asarray(q, dtype=np.float64)
    labels = np.broadcast_to(labels, q.shape[:-1]).reshape(-1)
    q_rows = q.reshape(-1, q.shape[-1])
    out = []
    for label, row in zip(labels.tolist(), q_rows.tolist(), strict=True):
        if ignore_index is not None and label == ignore_index:
            out.append(NAN)
            continue
        if not 0 <= label < len(row):
            raise IndexError(f"label {label} out of range for {len(row)} categories")
        out.append(neg_xlogy(1.0, _smooth(row, eps, normalize)[label]) / _log_base(base))
    return np.array(out, dtype=np.float64).reshape(q.shape[:-1])


def reduce(values, reduction, ignored=None):
    """Apply reduction "none" | "sum" | "mean" as the API does (`ignored` rows left out)."""
    if reduction == "none":
        return np.asarray(values, dtype=np.float64)
    flat = np.asarray(values, dtype=np.float64).reshape(-1).tolist()
    skip = [False] * len(flat) if ignored is None else np.asarray(ignored).reshape(-1).tolist()
    kept = [v for v, s in zip(flat, skip, strict=True) if not s]
    total = math.fsum(kept)
    if reduction == "sum":
        return total
    return total / len(kept) if kept else NAN


# -- Gaussians ---------------------------------------------------------------------------------

def to_var(s, scale):
    """The variance a scale parameter stands for."""
    if scale == "var":
        return s
    if scale == "std":
        return s * s
    if scale == "logvar":
        return math.exp(s)
    if scale == "logstd":
        return math.exp(2.0 * s)
    raise ValueError(scale)


def gaussian_term(m1, s1, m2, s2, scale):
    """KL(N(m1, v1) || N(m2, v2)) for one coordinate: (u - 1 - log u + (m1 - m2)^2 / v2) / 2."""
    v1, v2 = to_var(s1, scale), to_var(s2, scale)
    u = v1 / v2
    if scale in ("logvar", "logstd"):
        d = (s1 - s2) * (2.0 if scale == "logstd" else 1.0)   # d = log u, known exactly
        u_minus_1_minus_log_u = math.expm1(d) - d
    else:
        u_minus_1_minus_log_u = u - 1.0 - math.log(u)
    return 0.5 * (u_minus_1_minus_log_u + (m1 - m2) ** 2 / v2)


def gaussian_kl(mu1, s1, mu2=None, s2=None, scale="var", base=None, elementwise=False):
    """Diagonal Gaussian KL summed over the last axis (or per coordinate if elementwise).

    mu2 = s2 = None is the standard normal N(0, 1): mean 0 and the scale
    parameter of variance 1 (1 for var/std, 0 for logvar/logstd).
    """
    if mu2 is None:
        mu2 = 0.0
        s2 = 1.0 if scale in ("var", "std") else 0.0
    arrays = [np.asarray(a, dtype=np.float64) for a in (mu1, s1, mu2, s2)]
    if elementwise:
        arrays = [a[..., np.newaxis] for a in arrays]
    batch, rows = _rows(*arrays)
    out = []
    for r in zip(*rows, strict=True):
        terms = (gaussian_term(a, b, c, d, scale) for a, b, c, d in zip(*r, strict=True))
        total = math.fsum(terms)
        out.append(max(total, 0.0) / _log_base(base))
    return np.array(out, dtype=np.float64).reshape(batch)
