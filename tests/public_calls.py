"""One call of every public function on small valid inputs, for array-type tests.

Each entry maps a name to ``(make_inputs, call)``: ``make_inputs(rng)`` gives the
numpy inputs and ``call(*inputs)`` runs the function on them, whatever their array
type, so a test can convert the inputs (torch, JAX, ...) and compare with the
numpy call.
"""

import numpy as np

import kl_fast


def _rows(rng, n=4, k=5):
    return rng.dirichlet(np.ones(k), size=n)


def _two_rows(rng):
    return _rows(rng), _rows(rng)


def _bernoulli(rng):
    return rng.uniform(0.05, 0.95, size=6), rng.uniform(0.05, 0.95, size=6)


def _gaussians(rng):
    a = rng.normal(size=(4, 3, 3))
    cov1 = a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)
    cov2 = np.eye(3) * rng.uniform(1, 2, size=(4, 1, 1))
    return rng.normal(size=(4, 3)), cov1, rng.normal(size=(4, 3)), cov2


CALLS = {
    "kl_divergence": (_two_rows, lambda p, q: kl_fast.kl_divergence(p, q)),
    "kl_divergence_logits": (
        lambda rng: (rng.normal(size=(4, 5)), rng.normal(size=(4, 5))),
        lambda a, b: kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits")),
    "entropy": (lambda rng: (_rows(rng),), lambda p: kl_fast.entropy(p)),
    "cross_entropy": (_two_rows, lambda p, q: kl_fast.cross_entropy(p, q)),
    "cross_entropy_labels": (
        lambda rng: (rng.integers(0, 5, size=4), rng.normal(size=(4, 5))),
        lambda y, q: kl_fast.cross_entropy(y, q, q_space="logits")),
    "js_divergence": (_two_rows, lambda p, q: kl_fast.js_divergence(p, q, reduction="sum")),
    "gaussian_kl": (lambda rng: (rng.normal(size=(4, 5)), rng.uniform(0.5, 2, size=(4, 5))),
                    lambda mu, var: kl_fast.gaussian_kl(mu, var)),
    "gaussian_kl_full": (_gaussians, lambda *a: kl_fast.gaussian_kl_full(*a)),
    "mutual_information": (lambda rng: (_rows(rng, 2, 12).reshape(2, 3, 4),),
                           lambda joint: kl_fast.mutual_information(joint)),
    "pairwise_kl": (_two_rows, lambda p, q: kl_fast.pairwise_kl(p, q)),
    "pairwise_js": (_two_rows, lambda p, q: kl_fast.pairwise_js(p, q)),
    "binary_kl": (_bernoulli, lambda p, q: kl_fast.binary_kl(p, q)),
    "binary_cross_entropy": (_bernoulli,
                             lambda y, q: kl_fast.binary_cross_entropy(y, q, reduction="mean")),
    "kl_estimate": (lambda rng: tuple(np.log(x) for x in _bernoulli(rng)),
                    lambda lp, lq: kl_fast.kl_estimate(lp, lq, kind="k3")),
    "renyi_divergence": (_two_rows, lambda p, q: kl_fast.renyi_divergence(p, q, alpha=0.5)),
    "hellinger_distance": (_two_rows, lambda p, q: kl_fast.hellinger_distance(p, q)),
    "total_variation": (_two_rows, lambda p, q: kl_fast.total_variation(p, q)),
    "chi2_divergence": (_two_rows, lambda p, q: kl_fast.chi2_divergence(p, q)),
}
