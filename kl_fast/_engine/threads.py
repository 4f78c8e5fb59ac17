"""Thread-count policy: what ``num_threads`` means, and the defaults behind it.

Semantics follow scikit-learn's ``_openmp_effective_n_threads``: ``None``
means the default (all usable cores unless ``set_num_threads``,
``threads()`` or ``KL_FAST_NUM_THREADS`` say otherwise), a positive ``n``
means ``n`` threads, ``-1`` all usable cores, ``-k`` all but ``k - 1``;
``0`` is an error.  The default is process-wide; ``threads()`` overrides it
for the current thread (or asyncio task) only, so concurrent callers do not
race on it.
"""

import contextlib
import contextvars
import numbers
import os
import warnings

__all__ = ["set_num_threads", "get_num_threads", "threads", "usable_cpu_count", "threads_for",
           "chunk_count", "resolve_num_threads", "MIN_WORK_PER_THREAD"]

_override = contextvars.ContextVar("kl_fast_num_threads", default=None)
_default = None  # None: all usable cores


def usable_cpu_count():
    """Number of CPUs this process may run on (affinity- and cgroup-aware where possible)."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def check_num_threads(n, name="num_threads"):
    """Turn a user thread count (positive, or negative counting back from all cores) into >= 1."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(
            f"{name} must be an int or None, got {type(n).__name__}; "
            "pass e.g. num_threads=4, or -1 for all cores"
        )
    n = int(n)
    if n == 0:
        raise ValueError(f"{name}=0 is not a thread count; pass a positive int, -1 for all cores, "
                         "or None for the default")
    if n < 0:
        return max(1, usable_cpu_count() + 1 + n)
    return n


def _default_from_env():
    raw = os.environ.get("KL_FAST_NUM_THREADS")
    if raw is None or raw.strip() == "":
        return None
    try:
        return check_num_threads(int(raw), "KL_FAST_NUM_THREADS")
    except (TypeError, ValueError):
        warnings.warn(
            f"ignoring KL_FAST_NUM_THREADS={raw!r}: expected a non-zero integer",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


_default = _default_from_env()


def set_num_threads(n):
    """Set the process-wide default number of threads used by the compiled kernels.

    Parameters
    ----------
    n : int or None
        Positive count, ``-1`` for all usable cores (``-k``: all but ``k - 1``),
        or ``None`` to go back to all usable cores.

    Raises
    ------
    TypeError
        If `n` is not an int or None.
    ValueError
        If `n` is 0.

    See Also
    --------
    get_num_threads, threads, numba.set_num_threads
    """
    global _default
    _default = None if n is None else check_num_threads(n, "n")


def get_num_threads():
    """Return the number of threads a call with ``num_threads=None`` uses here and now.

    Returns
    -------
    int
        The ``threads()`` override of the current thread if one is active,
        else the process default (``set_num_threads`` / ``KL_FAST_NUM_THREADS``),
        else the number of usable cores.
    """
    n = _override.get()
    if n is None:
        n = _default
    return usable_cpu_count() if n is None else n


@contextlib.contextmanager
def threads(n):
    """Context manager: use `n` threads for kl_fast calls in this thread (or task).

    Examples
    --------
    >>> import kl_fast
    >>> with kl_fast.threads(1):
    ...     kl_fast.get_num_threads()
    1
    """
    token = _override.set(None if n is None else check_num_threads(n, "n"))
    try:
        yield
    finally:
        _override.reset(token)


def resolve_num_threads(num_threads):
    """The thread count for one call: the argument if given, else the current default."""
    if num_threads is None:
        return get_num_threads()
    return check_num_threads(num_threads)


# Chunks per thread of a parallel call.  The kernels hand chunks out dynamically:
# with one core busy elsewhere (a DataLoader worker, another process), a thread
# that the OS deschedules holds back one small chunk, not its static half of the
# call -- which made a default 2-thread call 2x slower than a 1-thread call.
# Results do not depend on it (each row is summed in a fixed order).
CHUNKS_PER_THREAD = 8


# Below this many elements (or a family's unit of work) per thread, starting
# threads costs more than it saves (an OpenMP fork/join is ~10 us, and far more
# on a busy machine); the thread count never changes a result, only the speed.
MIN_WORK_PER_THREAD = 1 << 15


def threads_for(n_threads, work, min_work=MIN_WORK_PER_THREAD):
    """Threads for `work` units of one kernel call, at most `n_threads` (the caller's
    resolved count) and at least one: one thread per `min_work` units.  The one place
    every family decides it (results never depend on it)."""
    return max(1, min(n_threads, work // min_work))


def chunk_count(n_threads, n_items):
    """How many chunks a call over `n_items` rows (or work units) is cut into."""
    if n_threads <= 1:
        return 1
    return max(1, min(n_items, n_threads * CHUNKS_PER_THREAD))
