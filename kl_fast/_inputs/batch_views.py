"""Batches of small matrices: broadcast inputs of shape ``batch + tail`` walked as
views of shape ``(n_items,) + tail`` -- without copying the data.

The matrix families (full-covariance Gaussians, joint tables) hand their
kernels one batch axis.  The batch axes are merged from the innermost outwards
while the strides of every input allow it (always for C-ordered and for
broadcast one-against-many inputs); an outer axis that cannot be merged is
walked in Python, one block per index, rather than copied.
"""

import itertools

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["batch_blocks"]


def batch_blocks(views, batch):
    """Yield (first_item, [views of shape (n,) + tail]) covering the batch in C order.

    `views` are arrays of shape ``batch + tail`` (each its own tail), e.g.
    the results of ``np.broadcast_to``.
    """
    nb = len(batch)
    if int(np.prod(batch, dtype=np.int64)) == 0:
        return
    dims = [d for d in range(nb) if batch[d] != 1]
    if not dims:
        yield 0, [_flat(v, (0,) * nb, 1, 0, nb) for v in views]
        return
    inner = [dims[-1]]
    for d in reversed(dims[:-1]):
        if all(v.strides[d] == v.strides[inner[0]] * batch[inner[0]] for v in views):
            inner.insert(0, d)
        else:
            break
    outer = [d for d in dims if d not in inner]
    n_inner = int(np.prod([batch[d] for d in inner]))
    for b, index in enumerate(itertools.product(*(range(batch[d]) for d in outer))):
        at = dict(zip(outer, index, strict=True))
        key = tuple(at.get(d, 0) for d in range(nb))
        yield b * n_inner, [_flat(v, key, n_inner, v.strides[inner[-1]], nb) for v in views]


def _flat(view, key, n, stride, nb):
    sub = view[key]
    return as_strided(sub, shape=(n,) + view.shape[nb:], strides=(stride,) + view.strides[nb:],
                      writeable=False)
