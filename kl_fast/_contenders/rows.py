"""Contenders of the ``rows`` group: probability rows, class labels, logits rows and
diagonal Gaussians (``kl``, ``entropy``, ``cross_entropy``, ``js``,
``cross_entropy_labels``, ``kl_logits``, ``cross_entropy_logits``, ``gaussian_kl``,
``gaussian_kl_prior``): kl_fast on each backend, the numpy expression a user would
write, scipy, torch and JAX."""

import contextlib

import numpy as np

from .._registry import names

__all__ = ["QUANTITIES", "make_data", "contenders"]

QUANTITIES = names("rows")


def make_data(quantity, n_rows, n_cat, dtype, seed=0):
    """Normalized Dirichlet rows (or labels, logits rows, Gaussians) for `quantity`."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)

    def normal(scale=1.0):
        return (scale * rng.standard_normal((n_rows, n_cat))).astype(dtype)

    if quantity == "gaussian_kl_prior":
        return {"mu": normal(), "logvar": normal(0.5)}
    if quantity == "gaussian_kl":
        return {"mu1": normal(), "logvar1": normal(0.5), "mu2": normal(), "logvar2": normal(0.5)}
    if quantity == "kl_logits":   # teacher and student logits
        teacher = normal(2.0)
        return {"a": teacher, "b": (teacher + normal(0.5)).astype(dtype)}
    if quantity == "cross_entropy_logits":
        return {"labels": rng.integers(0, n_cat, size=n_rows), "logits": normal(2.0)}

    def rows():
        x = rng.gamma(1.0, size=(n_rows, n_cat)).astype(dtype)
        x /= x.sum(axis=-1, keepdims=True, dtype=dtype)
        return x

    if quantity == "cross_entropy_labels":
        return {"labels": rng.integers(0, n_cat, size=n_rows), "q": rows()}
    return {"p": rows(), "q": rows()}


def _kl_fast(quantity, d, backend):
    import kl_fast

    if quantity == "kl":
        return lambda: kl_fast.kl_divergence(d["p"], d["q"], backend=backend)
    if quantity == "entropy":
        return lambda: kl_fast.entropy(d["p"], backend=backend)
    if quantity == "cross_entropy":
        return lambda: kl_fast.cross_entropy(d["p"], d["q"], backend=backend)
    if quantity == "js":
        return lambda: kl_fast.js_divergence(d["p"], d["q"], backend=backend)
    if quantity == "cross_entropy_labels":
        return lambda: kl_fast.cross_entropy(d["labels"], d["q"], backend=backend)
    if quantity == "kl_logits":
        return lambda: kl_fast.kl_divergence(d["a"], d["b"], p_space="logits", q_space="logits",
                                             backend=backend)
    if quantity == "cross_entropy_logits":
        return lambda: kl_fast.cross_entropy(d["labels"], d["logits"], q_space="logits",
                                             backend=backend)
    if quantity == "gaussian_kl":
        return lambda: kl_fast.gaussian_kl(d["mu1"], d["logvar1"], d["mu2"], d["logvar2"],
                                           scale="logvar", backend=backend)
    return lambda: kl_fast.gaussian_kl(d["mu"], d["logvar"], scale="logvar", backend=backend)


def _numpy(quantity, d):
    """The expression a numpy user writes (no edge-case care beyond np.where)."""
    def kl():
        p, q = d["p"], d["q"]
        return np.sum(np.where(p > 0, p * np.log(p / q), 0.0), axis=-1)

    def entropy():
        p = d["p"]
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)

    def cross_entropy():
        return -np.sum(d["p"] * np.log(d["q"]), axis=-1)

    def js():
        p, q = d["p"], d["q"]
        m = 0.5 * (p + q)
        return 0.5 * (np.sum(np.where(p > 0, p * np.log(p / m), 0.0), axis=-1)
                      + np.sum(np.where(q > 0, q * np.log(q / m), 0.0), axis=-1))

    def labels():
        q = d["q"]
        return -np.log(q[np.arange(q.shape[0]), d["labels"]])

    def gauss():
        mu, lv = d["mu"], d["logvar"]
        return 0.5 * np.sum(mu * mu + np.exp(lv) - lv - 1.0, axis=-1)

    def gauss2():
        dm, dv = d["mu1"] - d["mu2"], d["logvar1"] - d["logvar2"]
        return 0.5 * np.sum(np.exp(dv) - dv - 1.0 + dm * dm * np.exp(-d["logvar2"]), axis=-1)

    def log_softmax(x):
        z = x - x.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def kl_logits():
        la, lb = log_softmax(d["a"]), log_softmax(d["b"])
        return np.sum(np.exp(la) * (la - lb), axis=-1)

    def ce_logits():
        x = d["logits"]
        return -log_softmax(x)[np.arange(x.shape[0]), d["labels"]]

    return {"kl": kl, "entropy": entropy, "cross_entropy": cross_entropy, "js": js,
            "cross_entropy_labels": labels, "gaussian_kl_prior": gauss, "gaussian_kl": gauss2,
            "kl_logits": kl_logits, "cross_entropy_logits": ce_logits}[quantity]


def _scipy(quantity, d):
    from scipy import special, stats
    from scipy.spatial import distance

    if quantity == "kl":
        return {"scipy.special.rel_entr": lambda: special.rel_entr(d["p"], d["q"]).sum(axis=-1),
                "scipy.stats.entropy": lambda: stats.entropy(d["p"], d["q"], axis=-1)}
    if quantity == "entropy":
        return {"scipy.special.entr": lambda: special.entr(d["p"]).sum(axis=-1),
                "scipy.stats.entropy": lambda: stats.entropy(d["p"], axis=-1)}
    if quantity == "cross_entropy":
        return {"scipy.special.xlogy": lambda: -special.xlogy(d["p"], d["q"]).sum(axis=-1)}
    if quantity == "js":
        return {"scipy jensenshannon**2":
                lambda: distance.jensenshannon(d["p"], d["q"], axis=-1) ** 2}
    if quantity == "kl_logits":
        def kl_logits():
            la = special.log_softmax(d["a"], axis=-1)
            lb = special.log_softmax(d["b"], axis=-1)
            return special.rel_entr(np.exp(la), np.exp(lb)).sum(axis=-1)
        return {"scipy log_softmax + rel_entr": kl_logits}
    if quantity == "cross_entropy_logits":
        def ce_logits():
            x = d["logits"]
            return -special.log_softmax(x, axis=-1)[np.arange(x.shape[0]), d["labels"]]
        return {"scipy log_softmax": ce_logits}
    return {}


def _torch(quantity, d):
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in d.items()}
    if quantity == "kl":
        # kl_div takes log q and p (reverse order), reduction per row by sum
        return lambda: F.kl_div(t["q"].log(), t["p"], reduction="none").sum(-1)
    if quantity == "entropy":
        return lambda: torch.special.entr(t["p"]).sum(-1)
    if quantity == "cross_entropy":
        return lambda: -(torch.special.xlogy(t["p"], t["q"])).sum(-1)
    if quantity == "cross_entropy_labels":
        return lambda: F.nll_loss(t["q"].log(), t["labels"], reduction="none")
    if quantity == "gaussian_kl_prior":
        return lambda: 0.5 * (t["mu"] ** 2 + t["logvar"].exp() - t["logvar"] - 1).sum(-1)
    if quantity == "kl_logits":
        # kl_div(input=log q, target=log p, log_target=True): the distillation idiom
        return lambda: F.kl_div(F.log_softmax(t["b"], -1), F.log_softmax(t["a"], -1),
                                log_target=True, reduction="none").sum(-1)
    if quantity == "cross_entropy_logits":
        return lambda: F.cross_entropy(t["logits"], t["labels"], reduction="none")
    if quantity == "gaussian_kl":
        from torch.distributions import Normal, kl_divergence

        def gauss():
            p = Normal(t["mu1"], (0.5 * t["logvar1"]).exp())
            q = Normal(t["mu2"], (0.5 * t["logvar2"]).exp())
            return kl_divergence(p, q).sum(-1)
        return gauss
    return None


def _jax(quantity, d):
    import jax
    import jax.numpy as jnp
    from jax.scipy import special as jspecial

    # JAX computes in float32 unless x64 is on: float64 data must stay float64
    # (same data, same precision as every other contender)
    x64 = any(v.dtype == np.float64 for v in d.values())

    def precision():
        return jax.enable_x64(True) if x64 else contextlib.nullcontext()

    with precision():
        j = {k: jnp.asarray(v) for k, v in d.items()}
    fns = {
        "kl": lambda p, q: jspecial.rel_entr(p, q).sum(-1),
        "entropy": lambda p: jspecial.entr(p).sum(-1),
        "cross_entropy": lambda p, q: -jspecial.xlogy(p, q).sum(-1),
    }
    if quantity not in fns:
        return None
    f = jax.jit(fns[quantity])
    args = [j["p"], j["q"]] if quantity != "entropy" else [j["p"]]

    def run():
        with precision():
            return f(*args).block_until_ready()
    return run


def contenders(quantity, data, backends, peers, have):
    """name -> zero-argument callable: kl_fast on `backends`, then (if `peers`) the
    numpy expression, the labels' gather yardstick, scipy, torch and JAX."""
    found = {f"kl_fast[{backend}]": _kl_fast(quantity, data, backend) for backend in backends}
    if not peers:
        return found
    found["numpy"] = _numpy(quantity, data)
    if quantity == "cross_entropy_labels":
        # the bare gather, no log: the yardstick of the label target (<= 2x of it)
        q, labels = data["q"], data["labels"]
        found["numpy q[arange(N), y]"] = lambda: q[np.arange(q.shape[0]), labels]
    found.update(_scipy(quantity, data))
    if have("torch"):
        fn = _torch(quantity, data)
        if fn is not None:
            found["torch"] = fn
    if have("jax"):
        fn = _jax(quantity, data)
        if fn is not None:
            found["jax"] = fn
    return found
