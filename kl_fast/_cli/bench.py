"""The comparison behind ``kl-fast bench``: kl_fast against the read floor and its peers.

Every contender (``_contenders.py``, the registry the tests also use) runs on
the same arrays in the same process.  Each is timed as the median of several
repeats after a first call, whose time is kept separately: for Numba it
includes the compile, which is never mixed into the steady state.  Then one
more call measures its extra peak memory (``_cli/bench_memory.py``).  Ratios,
not absolute times, are the result: the floor is numpy reading each input
once (``x.sum(axis=-1)``), and each peer's row says, in words, how kl_fast
compares with it ("2.3x faster", "1.4x slower").
"""

import json
import os
import platform
import time

import numpy as np

from .._contenders import LLM_QUANTITIES, contenders, make_data
from .._registry import REGISTRY, by_name
from .bench_chart import plot
from .bench_memory import format_bytes, measure_extra_peak
from .bench_verdict import annotate, best_ours, is_ours, speed_words, summarize

__all__ = ["run_comparison", "format_table", "format_summary", "summarize", "speed_words",
           "write_json", "plot", "dtypes_of", "annotate", "best_ours",
           "load_average", "load_note"]

# quantity -> (n_rows, n_cat): the performance contract's sizes (--full), the
# default run (a quarter of the rows: inputs of 50-100 MB, still far beyond the
# caches, so the floor is still memory) and --quick (a fortieth)
FULL_SIZES = {q.name: q.full_size for q in REGISTRY}
SIZES = {k: (n // 4, m) for k, (n, m) in FULL_SIZES.items()}
QUICK_SIZES = {k: (n // 40, m) for k, (n, m) in FULL_SIZES.items()}
# the LLM case keeps its batch of 2048 sequences' positions x 32,000 tokens in the
# default run (it is the size the claim is about); --quick keeps the vocabulary
for _q in LLM_QUANTITIES:
    SIZES[_q] = FULL_SIZES[_q]
    QUICK_SIZES[_q] = (256, FULL_SIZES[_q][1])


def dtypes_of(quantity, dtypes):
    """The requested dtypes that `quantity` runs in (its registry row's; the LLM case:
    float32 only, as model outputs are)."""
    allowed = by_name(quantity).dtypes
    return [d for d in dtypes if d in allowed]


def _time(fn, repeats, budget_s=1.5, first_s=None):
    """Median of `repeats` runs; slow peers stop after 3 runs once past `budget_s`.  A
    peer's `first_s` over 5 budgets stands as its time, without repeats (the numpy
    pairwise peers take tens of seconds); kl_fast's first call is never used (it
    holds Numba's compile)."""
    if first_s is not None and first_s > 5 * budget_s:
        return first_s
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 and sum(times) > budget_s:
            break
    return float(np.median(times))


def run_comparison(quantities, dtypes, backends, repeats=5, sizes=None, peers=True,
                   progress=None, memory=True):
    """Time every contender per quantity and dtype; return a list of result dicts.

    With `memory`, each contender is called once more, after its timed runs,
    to measure its extra peak memory; the fields are None without it.
    """
    sizes = sizes or SIZES
    results = []
    for quantity in quantities:
        n_rows, n_cat = sizes[quantity]
        for dtype in dtypes_of(quantity, dtypes):
            data = make_data(quantity, n_rows, n_cat, dtype)
            for name, fn in contenders(quantity, data, backends, peers).items():
                if progress:
                    progress(f"{quantity} {n_rows}x{n_cat} {dtype}: {name}")
                t0 = time.perf_counter()
                fn()
                first = time.perf_counter() - t0
                row = {"quantity": quantity, "shape": [n_rows, n_cat], "dtype": dtype,
                       "name": name, "first_call_s": first,
                       "median_s": _time(fn, repeats,
                                         first_s=None if is_ours(name) else first)}
                row.update(measure_extra_peak(fn, name) if memory else
                           {"extra_peak_bytes": None, "extra_peak_rss_bytes": None,
                            "extra_peak_traced_bytes": None, "memory_method": "not measured"})
                results.append(row)
            del data
    annotate(results)
    return results


def _ms(seconds):
    """'12.3 us', '45.67 ms', '12.3 s'."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"


def format_summary(results):
    """Markdown table, one line per quantity and dtype: the verdict against the fastest peer."""
    lines = ["| quantity | shape | dtype | kl_fast | kl_fast extra peak memory | fastest peer | "
             "peer | peer extra peak memory | kl_fast is |",
             "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | --- |"]
    for s in summarize(results):
        shape = "x".join(str(n) for n in s["shape"])
        ours = _ms(s["kl_fast_s"]) if s["kl_fast"] else "not timed"
        peer_time = _ms(s["fastest_peer_s"]) if s["fastest_peer"] else ""
        lines.append(f"| {s['quantity']} | {shape} | {s['dtype']} | {ours} | "
                     f"{format_bytes(s['kl_fast_extra_peak_bytes'])} | "
                     f"{s['fastest_peer'] or 'no peer'} | {peer_time} | "
                     f"{format_bytes(s['fastest_peer_extra_peak_bytes'])} | "
                     f"{s['kl_fast_is'] or ''} |")
    return "\n".join(lines)


def format_table(results):
    """Markdown table of every contender: median, multiple of the floor, extra peak
    memory, and how the best kl_fast compares with it in words."""
    lines = ["| quantity | shape | dtype | contender | median | x floor | extra peak memory "
             "| kl_fast is |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        shape = "x".join(str(s) for s in r["shape"])
        x_floor = f"{r['x_floor']:.2f}" if r["x_floor"] is not None else ""
        lines.append(f"| {r['quantity']} | {shape} | {r['dtype']} | {r['name']} | "
                     f"{_ms(r['median_s'])} | {x_floor} | "
                     f"{format_bytes(r['extra_peak_bytes'])} | {r['kl_fast_is'] or ''} |")
    return "\n".join(lines)


def compile_notes(results):
    """Numba's first call (compile included) against its steady state."""
    notes = []
    for r in results:
        if r["name"] == "kl_fast[numba]":
            notes.append(f"numba first call {r['quantity']} {r['dtype']}: "
                         f"{r['first_call_s']:.2f} s (compile), "
                         f"steady {r['median_s'] * 1e3:.2f} ms")
    return notes


def load_average():
    """The 1-minute load average, or None where the system has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def load_note(load):
    """One line on how busy the machine was; a warning when other work shared the CPUs.

    Timings of threaded contenders under contention are inflated by far more than
    their share of a core (a thread waits for a descheduled one at each barrier), so
    a busy machine is said next to the numbers, not left to be guessed.
    """
    from .._engine.threads import usable_cpu_count

    values = [v for v in (load["before"], load["after"]) if v is not None]
    if not values:
        return "load average: not available on this system"
    def text(v):
        return "n/a" if v is None else f"{v:.2f}"

    line = (f"load average (1 min): {text(load['before'])} before, {text(load['after'])} "
            f"after, on {usable_cpu_count()} usable cores")
    # the run itself adds about one to the load by its end; before it, anything
    # above half a core is someone else's work
    if load["before"] is not None and load["before"] > 0.5:
        line += ("; WARNING: other processes were using the CPUs when the run started, so "
                 "the times (kl_fast's threaded ones most) are inflated: rerun on an idle "
                 "machine")
    return line


def machine_info():
    from .._engine.config import config

    info = config()
    return {"cpu": info["cpu"], "cores": info["usable cores"],
            "threads": info["default threads"], "python": platform.python_version(),
            "numpy": np.__version__, "backends": info["backends available"],
            "cython kernels": info["cython kernels"]}


def write_json(path, results, params):
    """bench.json: machine, parameters, the per-quantity verdicts and every row."""
    with open(path, "w") as fh:
        json.dump({"machine": machine_info(), "params": params,
                   "summary": summarize(results), "results": results}, fh, indent=2)
