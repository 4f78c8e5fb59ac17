"""The comparison behind ``kl-fast bench``: kl_fast against the read floor and its peers.

Every contender (``_contenders.py``, the registry the tests also use) runs on
the same arrays in the same process.  Each is timed as the median of several
repeats after a first call, whose time is kept separately: for Numba it
includes the compile, which is never mixed into the steady state.  Ratios,
not absolute times, are the result: the floor is numpy reading each input
once (``x.sum(axis=-1)``).
"""

import json
import platform
import time

import numpy as np

from ._contenders import FLOOR, contenders, make_data

__all__ = ["run_comparison", "format_table", "write_json", "plot"]

# quantity -> (n_rows, n_cat): the performance contract's sizes (--full), the
# default run (a quarter of the rows: inputs of 50-100 MB, still far beyond the
# caches, so the floor is still memory) and --quick (a fortieth)
FULL_SIZES = {
    "kl": (200_000, 256), "entropy": (200_000, 256), "cross_entropy": (200_000, 256),
    "js": (200_000, 256), "cross_entropy_labels": (1_000_000, 1000),
    "gaussian_kl_prior": (1_000_000, 64), "kl_logits": (200_000, 256),
    "cross_entropy_logits": (200_000, 256), "gaussian_kl": (1_000_000, 64),
    "mutual_information": (100_000, 16), "gaussian_kl_full": (100_000, 8),
    "pairwise_kl": (2_000, 256), "pairwise_js": (2_000, 256),
    "binary_kl": (200_000, 256), "binary_cross_entropy": (200_000, 256),
    "binary_cross_entropy_logits": (200_000, 256), "kl_estimate_k3": (200_000, 256),
}
SIZES = {k: (n // 4, m) for k, (n, m) in FULL_SIZES.items()}
QUICK_SIZES = {k: (n // 40, m) for k, (n, m) in FULL_SIZES.items()}


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
                   progress=None):
    """Time every contender per quantity and dtype; return a list of result dicts."""
    sizes = sizes or SIZES
    results = []
    for quantity in quantities:
        n_rows, n_cat = sizes[quantity]
        for dtype in dtypes:
            data = make_data(quantity, n_rows, n_cat, dtype)
            for name, fn in contenders(quantity, data, backends, peers).items():
                if progress:
                    progress(f"{quantity} {n_rows}x{n_cat} {dtype}: {name}")
                t0 = time.perf_counter()
                fn()
                first = time.perf_counter() - t0
                results.append({"quantity": quantity, "shape": [n_rows, n_cat],
                                "dtype": dtype, "name": name, "first_call_s": first,
                                "median_s": _time(fn, repeats, first_s=None if
                                                  name.startswith("kl_fast") else first)})
            del data
    floors = {(r["quantity"], r["dtype"]): r["median_s"] for r in results if r["name"] == FLOOR}
    for r in results:
        r["x_floor"] = r["median_s"] / floors[(r["quantity"], r["dtype"])]
    return results


def format_table(results):
    """Markdown table: median, multiple of the floor, and the best kl_fast's speed-up."""
    lines = ["| quantity | shape | dtype | contender | median | x floor | kl_fast is faster by |",
             "| --- | --- | --- | --- | ---: | ---: | ---: |"]
    groups = dict.fromkeys((r["quantity"], r["dtype"]) for r in results)
    for quantity, dtype in groups:
        rows = [r for r in results if r["quantity"] == quantity and r["dtype"] == dtype]
        ours = [r["median_s"] for r in rows if r["name"].startswith("kl_fast[")
                and r["name"] != "kl_fast[numpy]"]
        best = min(ours) if ours else None
        for r in rows:
            peer = not r["name"].startswith("kl_fast") and r["name"] != FLOOR
            speedup = f"{r['median_s'] / best:.1f}x" if peer and best else ""
            shape = "x".join(str(s) for s in r["shape"])
            lines.append(f"| {quantity} | {shape} | {dtype} | {r['name']} | "
                         f"{r['median_s'] * 1e3:.2f} ms | {r['x_floor']:.2f} | {speedup} |")
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


def machine_info():
    from ._config import config

    info = config()
    return {"cpu": info["cpu"], "cores": info["usable cores"],
            "threads": info["default threads"], "python": platform.python_version(),
            "numpy": np.__version__, "backends": info["backends available"],
            "cython kernels": info["cython kernels"]}


def write_json(path, results, params):
    with open(path, "w") as fh:
        json.dump({"machine": machine_info(), "params": params, "results": results}, fh,
                  indent=2)


def plot(results, path):
    """Bar chart of x floor per quantity/dtype and contender; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = list(dict.fromkeys(f"{r['quantity']}\n{r['dtype']}" for r in results))
    names = list(dict.fromkeys(r["name"] for r in results))
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(groups)), 5))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        xs, ys = [], []
        for g, group in enumerate(groups):
            for r in results:
                if r["name"] == name and f"{r['quantity']}\n{r['dtype']}" == group:
                    xs.append(g + k * width)
                    ys.append(r["x_floor"])
        ax.bar(xs, ys, width, label=name)
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, fontsize=8)
    ax.set_ylabel("time / read-the-inputs floor (log scale, lower is better)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
