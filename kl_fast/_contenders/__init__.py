"""One registry of contenders, shared by the tests, the benchmark suite and ``kl-fast bench``.

For each quantity, ``contenders(quantity, data)`` maps a name to a zero-argument
callable computing that quantity per row of the same arrays: kl_fast on each
backend, the plain numpy expression a user would write, the scipy function
people call, torch/JAX when installed, and the *floor* -- numpy reading every
input once (``x.sum(axis=-1)``), the time no reduction can beat.  The tests
check that every contender returns the same numbers, so the benchmarks
compare like with like (numbagg's COMPARISONS pattern).

Each group of the registry (``_registry.Quantity.group``) is the module
``kl_fast._contenders.<group>`` with ``make_data(quantity, n_rows, n_cat, dtype,
seed)`` and ``contenders(quantity, data, backends, peers, have)``: a new group is
a module and its registry rows, with nothing to change here.
"""

import importlib
import importlib.util

from .._registry import by_name, names

__all__ = ["QUANTITIES", "make_data", "contenders", "FLOOR", "YARDSTICKS", "LLM_QUANTITIES"]

QUANTITIES = names()   # every benchmarked quantity, in registry order (_registry.py)
LLM_QUANTITIES = names("llm")
FLOOR = "floor"
# contenders that time a part of the work, not the quantity: the read floor and
# the bare gather of the labelled probabilities; never a "peer"
YARDSTICKS = (FLOOR, "numpy q[arange(N), y]")


def _group(quantity):
    """The contenders module of `quantity`'s registry group."""
    return importlib.import_module(f"{__name__}.{by_name(quantity).group}")


def make_data(quantity, n_rows, n_cat, dtype, seed=0):
    """Synthetic inputs for `quantity` (its group's ``make_data``)."""
    return _group(quantity).make_data(quantity, n_rows, n_cat, dtype, seed)


def have(module):
    """Whether `module` is installed (without importing it)."""
    return importlib.util.find_spec(module) is not None


def _floor(d):
    arrays = [v for v in d.values() if v.ndim >= 2]
    return lambda: [a.sum(axis=-1) for a in arrays]


def contenders(quantity, data, backends=None, peers=True):
    """name -> zero-argument callable, on the arrays of `data` (see make_data): the
    read floor, then the group's contenders (kl_fast on each of `backends`, default
    every available one, then the peers unless `peers` is False)."""
    from .._engine.backends import available_backends

    found = {FLOOR: _floor(data)}
    found.update(_group(quantity).contenders(quantity, data, backends or available_backends(),
                                             peers, have))
    return found
