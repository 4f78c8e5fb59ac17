"""Pairwise KL kernel written with numpy/scipy.special: the reference backend.

Same name, signature and meaning as the compiled kernels
(``src/pairwise.pyx``), computed independently of them: blocks of P
rows are broadcast against all of Q and reduced with ``scipy.special.rel_entr``
(one log of a quotient per term, not one log per row), so its temporaries are
O(block * M * K) with the block sized to about 4 Mi elements -- never N*M*K.
"""

import numpy as np
from scipy import special

__all__ = ["pairwise_kl_matrix"]

_BLOCK_ELEMENTS = 1 << 22


def pairwise_kl_matrix(P, Q, out, dP, dQ, eps, log_base, n_threads):
    """out[i, j] = sum_k rel_entr(x, y) / log_base, x = (P[i] + eps) / dP[i],
    y = (Q[j] + eps) / dQ[j] (clamped at 0).  `n_threads` is ignored."""
    N, K = P.shape
    M = Q.shape[0]
    if N == 0 or M == 0 or K == 0:
        return
    with np.errstate(all="ignore"):
        y = (Q.astype(np.float64) + eps) / np.asarray(dQ, np.float64)[:, None]
        rows = max(1, _BLOCK_ELEMENTS // (M * K))
        for start in range(0, N, rows):
            stop = min(N, start + rows)
            x = (P[start:stop].astype(np.float64) + eps) / np.asarray(dP[start:stop],
                                                                   np.float64)[:, None]
            d = special.rel_entr(x[:, None, :], y[None, :, :]).sum(axis=-1)
            np.maximum(d, 0.0, out=d, where=~np.isnan(d))   # clamp; NaN passes
            out[start:stop] = d / log_base
