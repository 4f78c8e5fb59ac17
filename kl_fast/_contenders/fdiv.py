"""Contenders for the f-divergence family (Renyi divergence of order 1/2, Hellinger
distance, total variation, Pearson's chi^2).  Part of the registry of
``_contenders.py`` (same protocol: name -> zero-argument callable on one pair of
probability arrays ``p``, ``q`` of rows).  The peers are the formulas their users
write in numpy, torch and JAX (scipy has only Pearson's chi^2, as a test statistic).
"""

import contextlib

import numpy as np

from .._registry import by_name, names

__all__ = ["QUANTITIES", "RENYI_ALPHA", "make_data", "contenders"]

QUANTITIES = names("fdiv")
RENYI_ALPHA = 0.5     # the order benchmarked: -2 log of the Bhattacharyya coefficient


def make_data(quantity, n_rows, n_cat, dtype, seed=0):
    """Dirichlet(1) rows (normalized gamma draws), as the other probability rows."""
    rng = np.random.default_rng(seed)

    def rows():
        x = rng.gamma(1.0, size=(n_rows, n_cat)).astype(dtype)
        x /= x.sum(axis=-1, keepdims=True, dtype=dtype)
        return x

    return {"p": rows(), "q": rows()}


def _kl_fast(quantity, p, q, backend):
    import kl_fast

    if quantity == "renyi":
        return lambda: kl_fast.renyi_divergence(p, q, alpha=RENYI_ALPHA, backend=backend)
    function = getattr(kl_fast, by_name(quantity).function)
    return lambda: function(p, q, backend=backend)


def _formulas(xp, quantity, p, q):
    """The textbook formula in the array library `xp` (numpy, torch or jax.numpy)."""
    if quantity == "renyi":
        a = RENYI_ALPHA
        return lambda: xp.log((p ** a * q ** (1 - a)).sum(-1)) / (a - 1)
    if quantity == "hellinger":
        return lambda: xp.sqrt(0.5 * ((xp.sqrt(p) - xp.sqrt(q)) ** 2).sum(-1))
    if quantity == "total_variation":
        return lambda: 0.5 * xp.abs(p - q).sum(-1)
    return lambda: ((p - q) ** 2 / q).sum(-1)


def _jax(quantity, p, q):
    import jax
    import jax.numpy as jnp

    # float64 data stays float64 (JAX computes in float32 unless x64 is on)
    x64 = p.dtype == np.float64

    def precision():
        return jax.enable_x64(True) if x64 else contextlib.nullcontext()

    with precision():
        jp, jq = jnp.asarray(p), jnp.asarray(q)
        f = jax.jit(lambda a, b: _formulas(jnp, quantity, a, b)())

    def run():
        with precision():
            return f(jp, jq).block_until_ready()
    return run


def contenders(quantity, data, backends, peers, have):
    """The kl_fast and peer contenders of an f-divergence (the floor is the caller's)."""
    p, q = data["p"], data["q"]
    found = {f"kl_fast[{backend}]": _kl_fast(quantity, p, q, backend) for backend in backends}
    if not peers:
        return found
    found["numpy"] = _formulas(np, quantity, p, q)
    if quantity == "chi2":
        from scipy import stats

        found["scipy.stats.chisquare"] = lambda: stats.chisquare(p, q, axis=-1).statistic
    if have("torch"):
        import torch

        found["torch"] = _formulas(torch, quantity, torch.from_numpy(p), torch.from_numpy(q))
    if have("jax"):
        found["jax"] = _jax(quantity, p, q)
    return found
