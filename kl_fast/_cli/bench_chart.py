"""The chart of ``kl-fast bench``: one small panel per quantity, readable at a glance.

Each panel is a dot plot: one line per contender, its time divided by the
fastest kl_fast's on the same data (log scale; 1 is the dashed line, right
of it is slower than kl_fast), one marker shape per dtype.  The panel's
title carries the verdict against the fastest peer in the table's words
("f64: 2.3x faster | f32: 1.4x slower").  Every contender keeps one colour in every
panel (a family hue -- blue kl_fast, grey floor, orange numpy, green scipy,
red torch, pink JAX -- and a shade per name).  Where the run measured
memory, a last panel shows the LLM case's extra peak memory.
"""

import math
import zlib

from .bench_memory import format_bytes
from .bench_verdict import best_ours, summarize

__all__ = ["plot", "colour_of", "CONTENDER_COLOURS"]

CONTENDER_COLOURS = {
    "kl_fast[cython]": "#1f4e9c", "kl_fast[cython] precise": "#6a8fd0",
    "kl_fast[numba]": "#17a2b8", "kl_fast[numba] precise": "#7fd3e0",
    "kl_fast[numpy]": "#7b68ee",
    "floor": "#555555",
    "numpy": "#ff7f0e", "numpy q[arange(N), y]": "#f5b041", "numpy broadcast": "#d2691e",
    "numpy linalg": "#8c564b",
    "scipy.special.rel_entr": "#2ca02c", "scipy.stats.entropy": "#98df8a",
    "scipy.special.entr": "#1b5e20", "scipy.special.xlogy": "#66bb6a",
    "scipy jensenshannon**2": "#2e7d32", "scipy log_softmax + rel_entr": "#7cb342",
    "scipy log_softmax": "#558b2f", "scipy rel_entr": "#43a047", "scipy xlogy": "#9ccc65",
    "scipy log_expit": "#33691e", "scipy rel_entr loop": "#81c784",
    "scipy cdist**2": "#388e3c", "scipy.stats.chisquare": "#4caf50",
    "torch": "#d62728", "torch MultivariateNormal": "#ff9896",
    "jax": "#e377c2",
}
# names the registry does not list yet: a fixed pick by name, never by position
_SPARE = ("#bcbd22", "#17becf", "#8c6d31", "#843c39", "#637939", "#7b4173")
_MARKERS = {"float64": "o", "float32": "^"}
_SHORT = {"float64": "f64", "float32": "f32"}


def colour_of(name):
    """The contender's colour, the same in every panel and every run."""
    if name in CONTENDER_COLOURS:
        return CONTENDER_COLOURS[name]
    return _SPARE[zlib.crc32(name.encode()) % len(_SPARE)]


def _panels(results):
    """quantity -> its rows, in the order of the run."""
    panels = {}
    for r in results:
        panels.setdefault(r["quantity"], []).append(r)
    return panels


def _relative(rows):
    """(name, dtype) -> time / the fastest kl_fast's time of the same dtype (the one the
    table's words compare with)."""
    rel = {}
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        same = [r for r in rows if r["dtype"] == dtype]
        best = best_ours(same)
        if best is not None:
            rel.update({(r["name"], dtype): r["median_s"] / best["median_s"] for r in same})
    return rel


def _verdict(quantity, summary):
    parts = []
    for s in summary:
        if s["quantity"] == quantity and s["kl_fast_is"]:
            words = s["kl_fast_is"].split(" than ")[0].split(" as ")[0]
            parts.append(f"{_SHORT.get(s['dtype'], s['dtype'])}: {words}")
    return " | ".join(parts) if parts else "no peer timed"


def _dot_panel(ax, quantity, rows, summary):
    from matplotlib.ticker import FuncFormatter, LogLocator

    names = list(dict.fromkeys(r["name"] for r in rows))
    rel = _relative(rows)
    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    offsets = {d: (0.15 - 0.3 * k / max(1, len(dtypes) - 1)) if len(dtypes) > 1 else 0.0
               for k, d in enumerate(dtypes)}
    for y, name in enumerate(names):
        ax.axhline(y, color="#eeeeee", lw=0.6, zorder=0)
        for dtype in dtypes:
            if (name, dtype) in rel:
                ax.scatter(rel[(name, dtype)], y + offsets[dtype], s=30,
                           marker=_MARKERS.get(dtype, "s"), color=colour_of(name),
                           edgecolor="black", linewidth=0.4, zorder=3)
    ax.axvline(1.0, color="#1f4e9c", ls="--", lw=0.8, zorder=1)
    ax.set_xscale("log")
    values = [v for v in rel.values() if v > 0] + [1.0]
    lo, hi = min(values) / 1.6, max(values) * 1.6
    ax.set_xlim(lo, hi)
    # fewer ticks per decade as the range widens, so tick labels never run together
    decades = math.log10(hi / lo)
    subs = (1.0, 2.0, 5.0) if decades <= 1.6 else (1.0, 3.0) if decades <= 3 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7.5)
    ax.set_ylim(len(names) - 0.5, -0.5)
    shape = "x".join(str(n) for n in rows[0]["shape"])
    ax.set_title(f"{quantity}  {shape}\n{_verdict(quantity, summary)}", fontsize=8.5)


def _memory_panel(ax, rows):
    labels = [f"{r['quantity'].removeprefix('llm_')}: {r['name']}" for r in rows]
    mib = [r["extra_peak_bytes"] / 2**20 for r in rows]
    ys = range(len(rows))
    ax.barh(ys, mib, color=[colour_of(r["name"]) for r in rows], edgecolor="black",
            linewidth=0.4)
    top = max(mib + [1.0])
    for y, r, v in zip(ys, rows, mib, strict=True):
        ax.text(v + top * 0.02, y, format_bytes(r["extra_peak_bytes"]), va="center",
                fontsize=7.5)
    ax.set_xlim(0, top * 1.35)
    ax.set_yticks(list(ys), labels, fontsize=7.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("extra peak memory, MiB", fontsize=7.5)
    ax.tick_params(axis="x", labelsize=7)
    shape = "x".join(str(n) for n in rows[0]["shape"])
    ax.set_title(f"extra peak memory\nLLM case {shape} {rows[0]['dtype']}", fontsize=8.5)


def plot(results, path, ncols=4, dpi=100):
    """Write the chart to `path` (PNG, at most 1600 px wide); False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
    except ImportError:
        return False
    panels = _panels(results)
    summary = summarize(results)
    memory_rows = [r for r in results if r["quantity"].startswith("llm_")
                   and r["extra_peak_bytes"] is not None and r["name"] != "floor"]
    n = len(panels) + (1 if memory_rows else 0)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    lines = max([len({r["name"] for r in rows}) for rows in panels.values()]
                + [len(memory_rows) * 0.8])
    height = min(nrows * (0.9 + 0.24 * lines) + 0.8, 20.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(16, height), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax, (quantity, rows) in zip(flat, panels.items(), strict=False):
        _dot_panel(ax, quantity, rows, summary)
    if memory_rows:
        _memory_panel(flat[len(panels)], memory_rows)
    for ax in flat[n:]:
        ax.set_axis_off()
    dtypes = list(dict.fromkeys(r["dtype"] for r in results))
    handles = [Line2D([], [], ls="", marker=_MARKERS.get(d, "s"), color="#888888",
                      markeredgecolor="black", label=d) for d in dtypes]
    handles.append(Line2D([], [], color="#1f4e9c", ls="--", label="fastest kl_fast"))
    fig.legend(handles=handles, loc="outside upper right", ncols=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle("Dots: time / fastest kl_fast's on the same data (log scale; right of the "
                 "dashed line = slower than kl_fast).  Titles: kl_fast against the fastest "
                 "peer.", fontsize=10, x=0.01, ha="left")
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True
