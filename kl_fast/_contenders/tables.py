"""Contenders for the quantities whose inputs are tables or matrices, not rows:
mutual information of joint tables, full-covariance Gaussian KL, and the
pairwise KL / JS matrices.  Part of the registry of ``_contenders.py`` (same
protocol: name -> zero-argument callable on one set of arrays).
"""

import numpy as np

from .._registry import names

__all__ = ["QUANTITIES", "make_data", "contenders"]

QUANTITIES = names("tables")

# elements of P x Q broadcast at a time by the numpy pairwise peers (32 MiB of float64)
_BLOCK_ELEMENTS = 1 << 22


def make_data(quantity, n_rows, n_cat, dtype, seed=0):
    """n_rows joint tables of n_cat x n_cat, Gaussian pairs of dimension n_cat, or
    P and Q of n_rows x n_cat for the pairwise matrices."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if quantity == "mutual_information":
        j = rng.gamma(1.0, size=(n_rows, n_cat, n_cat)).astype(dtype)
        j /= j.sum(axis=(-2, -1), keepdims=True, dtype=dtype)
        return {"joint": j}
    if quantity == "gaussian_kl_full":
        def spd():
            a = rng.standard_normal((n_rows, n_cat, n_cat)) / np.sqrt(n_cat)
            return (a @ np.swapaxes(a, -1, -2) + np.eye(n_cat)).astype(dtype)
        return {"mu1": rng.standard_normal((n_rows, n_cat)).astype(dtype), "cov1": spd(),
                "mu2": rng.standard_normal((n_rows, n_cat)).astype(dtype), "cov2": spd()}

    def rows():
        x = rng.gamma(1.0, size=(n_rows, n_cat)).astype(dtype)
        x /= x.sum(axis=-1, keepdims=True, dtype=dtype)
        return x

    return {"P": rows(), "Q": rows()}


def _blocks(n, m, k):
    rows = max(1, _BLOCK_ELEMENTS // max(1, m * k))
    return [slice(s, min(n, s + rows)) for s in range(0, n, rows)]


def numpy_pairwise_kl(P, Q):
    """What a numpy user writes: broadcast blocks of P against Q, p = 0 terms set to 0."""
    out = np.empty((P.shape[0], Q.shape[0]), dtype=P.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in _blocks(P.shape[0], Q.shape[0], P.shape[1]):
            p = P[b, None, :]
            out[b] = np.where(p > 0, p * np.log(p / Q[None]), 0.0).sum(axis=-1)
    return out


def numpy_pairwise_js(P, Q):
    out = np.empty((P.shape[0], Q.shape[0]), dtype=P.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in _blocks(P.shape[0], Q.shape[0], P.shape[1]):
            p, q = P[b, None, :], Q[None]
            m = 0.5 * (p + q)
            out[b] = 0.5 * (np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
                            + np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1))
    return out


def _numpy_mutual_information(j):
    a = j.sum(axis=-1)
    b = j.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        outer = a[..., :, None] * b[..., None, :]
        return np.where(j > 0, j * np.log(j / outer), 0.0).sum(axis=(-2, -1))


def _numpy_gaussian_kl_full(mu1, cov1, mu2, cov2):
    """The textbook formula with numpy.linalg (solve, slogdet)."""
    k = mu1.shape[-1]
    diff = (mu2 - mu1)[..., None]
    tr = np.trace(np.linalg.solve(cov2, cov1), axis1=-2, axis2=-1)
    maha = (diff * np.linalg.solve(cov2, diff)).sum(axis=(-2, -1))
    logdet = np.linalg.slogdet(cov2)[1] - np.linalg.slogdet(cov1)[1]
    return 0.5 * (tr + maha - k + logdet)


def _kl_fast(quantity, d, backend):
    import kl_fast

    if quantity == "mutual_information":
        return {f"kl_fast[{backend}]": lambda: kl_fast.mutual_information(d["joint"],
                                                                          backend=backend)}
    if quantity == "gaussian_kl_full":
        return {f"kl_fast[{backend}]": lambda: kl_fast.gaussian_kl_full(
            d["mu1"], d["cov1"], d["mu2"], d["cov2"], backend=backend)}
    if quantity == "pairwise_js":
        return {f"kl_fast[{backend}]": lambda: kl_fast.pairwise_js(d["P"], d["Q"],
                                                                   backend=backend)}
    found = {f"kl_fast[{backend}]": lambda: kl_fast.pairwise_kl(d["P"], d["Q"],
                                                                backend=backend)}
    if backend != "numpy":
        found[f"kl_fast[{backend}] precise"] = lambda: kl_fast.pairwise_kl(
            d["P"], d["Q"], precise=True, backend=backend)
    return found


def _peers(quantity, d, have):
    from scipy import special
    from scipy.spatial import distance

    if quantity == "mutual_information":
        return {"numpy": lambda: _numpy_mutual_information(d["joint"])}
    if quantity == "gaussian_kl_full":
        found = {"numpy linalg": lambda: _numpy_gaussian_kl_full(d["mu1"], d["cov1"], d["mu2"],
                                                                 d["cov2"])}
        if have("torch"):
            import torch
            from torch.distributions import MultivariateNormal, kl_divergence

            t = {k: torch.from_numpy(v) for k, v in d.items()}
            found["torch MultivariateNormal"] = lambda: kl_divergence(
                MultivariateNormal(t["mu1"], t["cov1"], validate_args=False),
                MultivariateNormal(t["mu2"], t["cov2"], validate_args=False))
        return found
    P, Q = d["P"], d["Q"]
    if quantity == "pairwise_kl":
        return {"numpy broadcast": lambda: numpy_pairwise_kl(P, Q),
                "scipy rel_entr loop": lambda: np.stack([special.rel_entr(p, Q).sum(axis=-1)
                                                         for p in P])}
    return {"numpy broadcast": lambda: numpy_pairwise_js(P, Q),
            "scipy cdist**2": lambda: distance.cdist(P, Q, "jensenshannon") ** 2}


def contenders(quantity, data, backends, peers, have):
    """The kl_fast and peer contenders of a table quantity (the floor is the caller's)."""
    found = {}
    for backend in backends:
        found.update(_kl_fast(quantity, data, backend))
    if peers:
        found.update(_peers(quantity, data, have))
    return found
