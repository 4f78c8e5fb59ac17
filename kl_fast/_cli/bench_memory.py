"""Extra peak memory of one call, for ``kl-fast bench``'s "extra peak memory" column.

A contender's *extra peak memory* is how far the process's memory rises
above where it stood before the call, at the call's highest point: its
temporaries and its output, not its inputs.  Two meters watch the same call
and the larger reading stands:

* **resident set high-water** (Linux): ``malloc_trim(0)`` first hands the
  allocator's free pages back to the system, so memory a call reuses has to
  be faulted in again and is counted; writing ``5`` to
  ``/proc/self/clear_refs`` then resets the high-water mark (``VmHWM``) to
  the current resident size, and ``VmHWM`` after the call minus ``VmRSS``
  before it is the rise.  This meter sees every allocation, whoever makes
  it: numpy, torch's CPU allocator, JAX/XLA, Numba, OpenMP threads.
* **tracemalloc**: the peak of the Python and numpy allocations (numpy
  reports its data buffers to tracemalloc), which holds even where pages
  were already resident.  tracemalloc's own bookkeeping is taken off the
  resident reading.

Readings of a few tens of KiB are the meters' resolution (4 KiB pages,
Python's own small allocations), not the contender's.

Where the resident meter is unavailable (not Linux, or ``clear_refs`` not
writable), only tracemalloc reads, and contenders that allocate outside
Python (torch, JAX) get no number rather than a wrong one.
"""

import ctypes
import ctypes.util
import gc
import tracemalloc

__all__ = ["measure_extra_peak", "rss_meter_available", "METHOD_RSS", "METHOD_TRACED",
           "format_bytes"]

METHOD_RSS = "max(RSS high-water rise after malloc_trim + clear_refs, tracemalloc peak)"
METHOD_TRACED = "tracemalloc peak (Python and numpy allocations only)"

# contenders whose memory lives outside Python's and numpy's allocators: with
# tracemalloc alone their reading would be a silent underestimate
_FOREIGN_ALLOCATORS = ("torch", "jax")


def _status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _reset_high_water():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _malloc_trim():
    """glibc's malloc_trim(0): return free heap pages to the system (no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


_RSS_OK = None


def rss_meter_available():
    """True when the resident-set high-water mark can be reset and read here (Linux)."""
    global _RSS_OK
    if _RSS_OK is None:
        try:
            _reset_high_water()
            _status_kib("VmHWM")
            _status_kib("VmRSS")
            _RSS_OK = True
        except OSError:
            _RSS_OK = False
    return _RSS_OK


def measure_extra_peak(fn, name=""):
    """Call ``fn()`` once and measure the rise of memory it causes.

    Parameters
    ----------
    fn : callable
        A warmed-up contender (called before: lazy initialisation, JIT
        compiles and thread pools are not part of its memory).
    name : str
        The contender's name; torch and JAX contenders get no tracemalloc-only
        reading (their allocations are invisible to it).

    Returns
    -------
    dict
        ``extra_peak_bytes`` (int or None), ``extra_peak_rss_bytes``,
        ``extra_peak_traced_bytes`` (int or None each) and ``memory_method``.
    """
    rss = rss_meter_available()
    gc.collect()
    # a caller's own tracing (python -X tracemalloc) is left running afterwards
    was_tracing = tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        overhead0 = tracemalloc.get_tracemalloc_memory()
        if rss:
            _malloc_trim()
            _reset_high_water()
            rss0 = _status_kib("VmRSS")
        traced0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        traced = max(0, tracemalloc.get_traced_memory()[1] - traced0)
        rss_rise = None
        if rss:
            overhead = max(0, tracemalloc.get_tracemalloc_memory() - overhead0)
            rss_rise = max(0, (_status_kib("VmHWM") - rss0) * 1024 - overhead)
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    if rss:
        extra, method = max(rss_rise, traced), METHOD_RSS
    elif any(tag in name for tag in _FOREIGN_ALLOCATORS):
        extra, method = None, METHOD_TRACED + "; not measurable for " + name
    else:
        extra, method = traced, METHOD_TRACED
    return {"extra_peak_bytes": extra, "extra_peak_rss_bytes": rss_rise,
            "extra_peak_traced_bytes": traced, "memory_method": method}


def format_bytes(n):
    """'0 B', '512 B', '12.0 KiB', '250 MiB', '1.23 GiB'; 'n/a' for None (not measured)."""
    if n is None:
        return "n/a"
    n = int(n)
    if n < 1024:
        return f"{n} B"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f} {unit}"
