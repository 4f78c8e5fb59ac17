"""pandas in, pandas out: inputs paired by their labels, never by position alone.

pandas is not a dependency: it is imported only once a pandas object comes in
(detected by its type's module, like dask).

Every axis of a pandas input has a *slot*, the axis of the broadcast shape it
stands for: by default its position from the right (-1 for a Series's index
and a DataFrame's columns, -2 for a DataFrame's index), as numpy broadcasting
pairs axes.  Functions whose inputs line up otherwise name the slots
themselves (``pairwise_kl``: P's rows "n", Q's rows "m", both columns "k").
Inputs that share a slot must hold the same labels: the same set in another
order is reordered to the first input's order; different sets raise a
``ValueError`` (filling a missing category with 0, or pairing by position,
is the caller's decision).  A numpy array or list has no labels and pairs
by position.

The result is labelled from the slots it keeps: a DataFrame reduced along
its columns gives a Series indexed like the DataFrame, a Series gives a
numpy scalar, elementwise functions give the shape they got.  Results with
more than two axes (pandas mixed with 3-d numpy input) stay numpy.
"""

import numpy as np

__all__ = ["is_pandas", "align", "values", "Labels"]

_SHOWN = 5


def is_pandas(x):
    return type(x).__module__.split(".", 1)[0] == "pandas"


def _axes(x):
    """[(axis word, Index)] of a Series or DataFrame."""
    if x.ndim == 1:
        return [("index", x.index)]
    return [("index", x.index), ("columns", x.columns)]


def _preview(labels):
    shown = ", ".join(repr(v) for v in list(labels[:_SHOWN]))
    return f"[{shown}{', ...' if len(labels) > _SHOWN else ''}]"


def _same_set(a, b):
    return (len(a) == len(b) and a.is_unique and b.is_unique
            and len(a.difference(b)) == 0 and len(b.difference(a)) == 0)


def _mismatch(name, word, idx, ref_name, ref_word, ref):
    """The ValueError for two label sets that cannot be paired."""
    where, ref_where = f"{name}'s {word}", f"{ref_name}'s {ref_word}"
    if not (idx.is_unique and ref.is_unique):
        reason = "hold duplicate labels, so they cannot be paired by label"
    else:
        only = _preview(idx.difference(ref, sort=False))
        ref_only = _preview(ref.difference(idx, sort=False))
        reason = (f"hold different labels (only in {where}: {only}; only in {ref_where}: "
                  f"{ref_only})")
    return ValueError(
        f"{where} and {ref_where} {reason}; kl_fast pairs pandas inputs by label, never "
        f"silently by position. Align them first, e.g. "
        f"{name} = {name}.reindex({ref_word}={ref_name}.{ref_word}, fill_value=0) when a "
        f"missing category has probability 0, or pass {name}.to_numpy() to pair by position"
    )


def align(named, slots=None, out_slots=None):
    """The named inputs with pandas ones reordered to agree, and the Labels of the result.

    `slots[i]` (optional) names the slot of each axis of input i; `out_slots`
    (optional) the slots of the result's axes when they are not the broadcast
    shape's (with the reduced axis removed).
    """
    first = {}     # slot -> (name, "index" or "columns", Index)
    aligned = []
    for i, (name, x) in enumerate(named):
        if not is_pandas(x) or x.ndim not in (1, 2):
            aligned.append((name, x))
            continue
        own = slots[i] if slots is not None and slots[i] is not None else ()
        if len(own) != x.ndim:
            own = range(-x.ndim, 0)
        for ax, (slot, (word, idx)) in enumerate(zip(own, _axes(x), strict=True)):
            if slot not in first:
                first[slot] = (name, word, idx)
                continue
            ref_name, ref_word, ref = first[slot]
            if idx.equals(ref):
                continue
            if not _same_set(idx, ref):
                raise _mismatch(name, word, idx, ref_name, ref_word, ref)
            x = x.reindex(ref, axis=ax)
        aligned.append((name, x))
    return aligned, Labels({slot: idx for slot, (_, _, idx) in first.items()}, out_slots)


def values(x):
    """The numpy values of a Series or DataFrame (nullable numbers: NA becomes NaN)."""
    arr = x.to_numpy()
    if arr.dtype == object:
        import pandas as pd

        dtypes = [x.dtype] if x.ndim == 1 else list(x.dtypes)
        if dtypes and all(pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d)
                          for d in dtypes):
            arr = x.to_numpy(dtype=np.float64, na_value=np.nan)
    return arr


class Labels:
    """The output kind for pandas input: the labels of each slot."""

    def __init__(self, labels, out_slots=None):
        self.labels = labels
        self.out_slots = out_slots

    def shifted(self, by):
        """The same labels for inputs given `by` extra trailing axes."""
        moved = {s - by if isinstance(s, int) else s: idx for s, idx in self.labels.items()}
        return Labels(moved, self.out_slots)

    def wrap(self, result, shape=None, axis=None):
        """`result` as a Series/DataFrame labelled from its slots (numpy if 0-d or > 2-d).

        `shape` and `axis` (a row reduction): the broadcast shape of the inputs
        and the reduced axis in it; a result with as many axes kept it (keepdims).
        """
        if np.ndim(result) == 0 or np.ndim(result) > 2:
            return result
        if self.out_slots is not None:
            slots = list(self.out_slots)
        elif shape is not None:
            slots = list(range(-len(shape), 0))
            if result.ndim == len(shape):
                slots[axis] = None          # keepdims: the reduced axis has no labels
            else:
                del slots[axis]
        else:
            slots = list(range(-result.ndim, 0))
        index = [self._index(s, n) for s, n in zip(slots, result.shape, strict=True)]
        import pandas as pd

        if result.ndim == 1:
            return pd.Series(result, index=index[0])
        return pd.DataFrame(result, index=index[0], columns=index[1])

    def _index(self, slot, n):
        idx = self.labels.get(slot)
        return idx if idx is not None and len(idx) == n else None
