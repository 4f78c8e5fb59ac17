"""The comparison behind ``kl-fast bench``: kl_fast against the read floor and its peers.

Every contender runs on the same arrays in the same process; each is timed
as the median of several repeats after a warm-up call (so Numba's compile
time is reported separately, never mixed into steady state).  Ratios, not
absolute times, are the result: the floor is numpy reading each input once
(``x.sum(axis=-1)``).
"""

import json
import platform
import time

import numpy as np

__all__ = ["contenders", "run_comparison", "format_table"]


def _peers(p, q):
    """name -> zero-argument callable computing KL(p || q) per row (plus the floor)."""
    from scipy import special, stats

    def naive_numpy():
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.where(p > 0, p * np.log(p / q), 0.0), axis=-1)

    return {
        "floor (read inputs)": lambda: (p.sum(axis=-1), q.sum(axis=-1)),
        "numpy naive": naive_numpy,
        "scipy.special.rel_entr": lambda: special.rel_entr(p, q).sum(axis=-1),
        "scipy.stats.entropy": lambda: stats.entropy(p, q, axis=-1),
    }


def contenders(p, q, backends):
    """The peers plus kl_fast on each requested backend."""
    import kl_fast

    found = _peers(p, q)
    for name in backends:
        found[f"kl_fast[{name}]"] = (
            lambda name=name: kl_fast.kl_divergence(p, q, backend=name)
        )
    return found


def _time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_comparison(n_rows=200_000, n_cat=256, dtypes=("float64", "float32"),
                   backends=("cython", "numba"), repeats=5, seed=0, progress=print):
    """Time every contender per dtype; return a list of result dicts."""
    rng = np.random.default_rng(seed)
    results = []
    for dtype in dtypes:
        p = rng.dirichlet(np.ones(n_cat), size=n_rows).astype(dtype)
        q = rng.dirichlet(np.ones(n_cat), size=n_rows).astype(dtype)
        p /= p.sum(axis=-1, keepdims=True)
        q /= q.sum(axis=-1, keepdims=True)
        for name, fn in contenders(p, q, backends).items():
            progress(f"  {dtype:8s} {name} ...")
            t0 = time.perf_counter()
            fn()  # warm-up: compile (numba) and first touch
            first = time.perf_counter() - t0
            results.append({"dtype": dtype, "name": name, "first_call_s": first,
                            "median_s": _time(fn, repeats)})
    floor = {r["dtype"]: r["median_s"] for r in results if r["name"].startswith("floor")}
    for r in results:
        r["x_floor"] = r["median_s"] / floor[r["dtype"]]
    return results


def format_table(results):
    """Markdown table: time, multiple of the floor, and kl_fast's speed-up over each peer."""
    lines = ["| dtype | contender | median | x floor | kl_fast speed-up |",
             "| --- | --- | ---: | ---: | ---: |"]
    for dtype in dict.fromkeys(r["dtype"] for r in results):
        rows = [r for r in results if r["dtype"] == dtype]
        ours = [r for r in rows if r["name"].startswith("kl_fast")]
        best = min((r["median_s"] for r in ours), default=None)
        for r in rows:
            speedup = ("" if best is None or r["name"].startswith(("kl_fast", "floor"))
                       else f"{r['median_s'] / best:.1f}x")
            lines.append(f"| {dtype} | {r['name']} | {r['median_s'] * 1e3:.1f} ms | "
                         f"{r['x_floor']:.2f} | {speedup} |")
    return "\n".join(lines)


def machine_info():
    from ._config import config

    info = config()
    return {"cpu": info["cpu"], "cores": info["usable cores"],
            "threads": info["default threads"], "python": platform.python_version(),
            "numpy": np.__version__}


def write_json(path, results, params):
    with open(path, "w") as fh:
        json.dump({"machine": machine_info(), "params": params, "results": results}, fh,
                  indent=2)
