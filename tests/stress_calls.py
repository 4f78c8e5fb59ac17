"""Every public function as ``call(backend, num_threads)`` on fixed small inputs, plus the
error paths (a bad value, a bad row sum, a bad keyword) -- for the thread-stress and leak
tests, which need many cheap calls that pick the backend.

``valid_calls(rng, n_rows, k)`` and ``error_calls(rng)`` return ``{name: call}``; a valid
call returns its result, an error call raises ValueError or TypeError.  ``n_rows * k``
sets the work per call: at >= 2 * 2**15 elements the compiled kernels take their
parallel paths (see ``kl_fast._engine.MIN_ELEMENTS_PER_THREAD``).
"""

import numpy as np

import kl_fast
import kl_fast.scipy


def _rows(rng, n, k):
    return rng.dirichlet(np.ones(k), size=n)


def valid_calls(rng, n_rows=4, k=6):
    """name -> call(backend, num_threads): one valid call of every public function."""
    p, q = _rows(rng, n_rows, k), _rows(rng, n_rows, k)
    logits = rng.normal(size=(n_rows, k))
    labels = rng.integers(0, k, size=n_rows)
    labels[0] = -100
    mu, var = rng.normal(size=(n_rows, k)), rng.uniform(0.5, 2, size=(n_rows, k))
    a = rng.normal(size=(n_rows, 3, 3))
    cov1 = a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)
    cov2 = np.eye(3) * rng.uniform(1, 2, size=(n_rows, 1, 1))
    mu3 = rng.normal(size=(n_rows, 3))
    joint = _rows(rng, n_rows, 12).reshape(n_rows, 3, 4)
    pw_p, pw_q = p[:8, :64], q[:8, :64]
    bern_p = rng.uniform(0.05, 0.95, size=n_rows * k)
    bern_q = rng.uniform(0.05, 0.95, size=n_rows * k)
    return {
        "kl_divergence": lambda b, n: kl_fast.kl_divergence(p, q, backend=b, num_threads=n),
        "kl_divergence_logits": lambda b, n: kl_fast.kl_divergence(
            logits, logits[::-1], p_space="logits", q_space="logits", backend=b, num_threads=n),
        "entropy": lambda b, n: kl_fast.entropy(p, backend=b, num_threads=n),
        "cross_entropy": lambda b, n: kl_fast.cross_entropy(p, q, backend=b, num_threads=n),
        "cross_entropy_labels": lambda b, n: kl_fast.cross_entropy(
            labels, q, ignore_index=-100, backend=b, num_threads=n),
        "js_divergence": lambda b, n: kl_fast.js_divergence(p, q, backend=b, num_threads=n),
        "gaussian_kl": lambda b, n: kl_fast.gaussian_kl(mu, var, mu[::-1], var[::-1],
                                                        backend=b, num_threads=n),
        "gaussian_kl_full": lambda b, n: kl_fast.gaussian_kl_full(mu3, cov1, -mu3, cov2,
                                                                  backend=b, num_threads=n),
        "mutual_information": lambda b, n: kl_fast.mutual_information(joint, backend=b,
                                                                      num_threads=n),
        "pairwise_kl": lambda b, n: kl_fast.pairwise_kl(pw_p, pw_q, normalize=True, eps=1e-9,
                                                        backend=b, num_threads=n),
        "pairwise_js": lambda b, n: kl_fast.pairwise_js(pw_p, pw_q, normalize=True,
                                                        backend=b, num_threads=n),
        "binary_kl": lambda b, n: kl_fast.binary_kl(bern_p, bern_q, backend=b, num_threads=n),
        "binary_cross_entropy": lambda b, n: kl_fast.binary_cross_entropy(
            bern_p, bern_q, backend=b, num_threads=n),
        "kl_estimate": lambda b, n: kl_fast.kl_estimate(np.log(bern_p), np.log(bern_q),
                                                        backend=b, num_threads=n),
        # the scipy drop-ins pick the backend themselves: the same call for every `b`
        "scipy.rel_entr": lambda b, n: kl_fast.scipy.rel_entr(p, q),
        "scipy.entropy": lambda b, n: kl_fast.scipy.entropy(p, q, axis=-1),
        "scipy.jensenshannon": lambda b, n: kl_fast.scipy.jensenshannon(p, q, axis=-1),
    }


def error_calls(rng):
    """name -> call(backend, num_threads) that must raise ValueError or TypeError."""
    p, q = _rows(rng, 4, 6), _rows(rng, 4, 6)
    bad_value = p.copy()
    bad_value[2, 3] = -0.25
    bad_sum = p * 1.5
    nan_mu = rng.normal(size=(4, 6))
    nan_mu[1, 1] = np.nan
    bern = rng.uniform(0.05, 0.95, size=8)
    return {
        "kl-bad-value": lambda b, n: kl_fast.kl_divergence(bad_value, q, backend=b,
                                                           num_threads=n),
        "kl-bad-sum": lambda b, n: kl_fast.kl_divergence(bad_sum, q, backend=b, num_threads=n),
        "kl-bad-keyword": lambda b, n: kl_fast.kl_divergence(p, q, reduction="median",
                                                             backend=b, num_threads=n),
        "entropy-bad-value": lambda b, n: kl_fast.entropy(bad_value, backend=b, num_threads=n),
        "js-bad-sum": lambda b, n: kl_fast.js_divergence(p, bad_sum, backend=b, num_threads=n),
        "labels-out-of-range": lambda b, n: kl_fast.cross_entropy(
            np.array([0, 1, 9, 2]), q, backend=b, num_threads=n),
        "gaussian-nan": lambda b, n: kl_fast.gaussian_kl(nan_mu, np.ones((4, 6)), backend=b,
                                                         num_threads=n),
        "gaussian-bad-scale": lambda b, n: kl_fast.gaussian_kl(nan_mu, p, scale="sigma",
                                                               backend=b, num_threads=n),
        "binary-bad-value": lambda b, n: kl_fast.binary_kl(bern * 2, bern, backend=b,
                                                           num_threads=n),
        "pairwise-bad-sum": lambda b, n: kl_fast.pairwise_kl(bad_sum, q, backend=b,
                                                             num_threads=n),
        "bad-backend": lambda b, n: kl_fast.entropy(p, backend="fortran", num_threads=n),
        "bad-num-threads": lambda b, n: kl_fast.entropy(p, backend=b, num_threads=0),
    }
