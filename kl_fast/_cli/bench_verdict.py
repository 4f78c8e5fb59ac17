"""What ``kl-fast bench``'s numbers say: kl_fast against each contender, in words.

The best kl_fast of a quantity and dtype is the fastest compiled backend
(the numpy backend, a fallback, only when it ran alone).  Every other row
gets ``speedup`` = its time / that kl_fast's, and ``kl_fast_is``, the same
ratio in words: "2.3x faster", "1.4x slower", "same speed".  The verdict of
a quantity and dtype is against its fastest *peer*: the floor and the bare
label gather time parts of the work, not the quantity, and are never peers.
"""

import math

from .._contenders import FLOOR, YARDSTICKS

__all__ = ["speed_words", "is_ours", "is_peer", "best_ours", "annotate", "summarize"]


def speed_words(ratio):
    """How kl_fast compares, in words, given `ratio` = the other's time / kl_fast's.

    ``2.3`` gives "2.3x faster", ``1 / 1.4`` gives "1.4x slower" (never "0.7x
    faster"), ratios within 5% of 1 give "same speed"; 100 and beyond lose
    the decimal ("250x faster").  A ratio that is not a positive finite
    number gives "n/a".
    """
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return "n/a"
    factor = ratio if ratio >= 1 else 1.0 / ratio
    if round(factor, 1) <= 1.0:
        return "same speed"
    text = f"{factor:.0f}" if factor >= 100 else f"{factor:.1f}"
    return f"{text}x {'faster' if ratio >= 1 else 'slower'}"


def is_ours(name):
    """A kl_fast contender (any backend, any variant)."""
    return name.startswith("kl_fast[")


def is_peer(name):
    """Another library computing the quantity (not kl_fast, not a yardstick)."""
    return not is_ours(name) and name not in YARDSTICKS


def _groups(results):
    """(quantity, dtype) -> its rows, in the order of the run."""
    groups = {}
    for r in results:
        groups.setdefault((r["quantity"], r["dtype"]), []).append(r)
    return groups


def best_ours(rows):
    """The fastest kl_fast row: compiled backends first, the numpy backend only alone."""
    ours = [r for r in rows if is_ours(r["name"])]
    compiled = [r for r in ours if not r["name"].startswith("kl_fast[numpy]")]
    pool = compiled or ours
    return min(pool, key=lambda r: r["median_s"]) if pool else None


def annotate(results):
    """Add x_floor, and for every row not kl_fast's own: speedup (its time / best
    kl_fast's) and kl_fast_is, the same ratio in words."""
    for rows in _groups(results).values():
        floor = next((r["median_s"] for r in rows if r["name"] == FLOOR), None)
        best = best_ours(rows)
        for r in rows:
            r["x_floor"] = r["median_s"] / floor if floor else None
            if best is not None and not is_ours(r["name"]) and r["name"] != FLOOR:
                r["speedup"] = r["median_s"] / best["median_s"]
                r["kl_fast_is"] = speed_words(r["speedup"])
            else:
                r["speedup"], r["kl_fast_is"] = None, None


def _versus(ratio, name):
    """'2.3x faster than torch', 'same speed as numpy'."""
    words = speed_words(ratio)
    return f"{words} {'as' if words == 'same speed' else 'than'} {name}"


def summarize(results):
    """One line per quantity and dtype: best kl_fast against the fastest peer."""
    lines = []
    for (quantity, dtype), rows in _groups(results).items():
        best = best_ours(rows)
        peer_rows = [r for r in rows if is_peer(r["name"])]
        peer = min(peer_rows, key=lambda r: r["median_s"]) if peer_rows else None
        lines.append({
            "quantity": quantity, "shape": rows[0]["shape"], "dtype": dtype,
            "kl_fast": best["name"] if best else None,
            "kl_fast_s": best["median_s"] if best else None,
            "kl_fast_extra_peak_bytes": best["extra_peak_bytes"] if best else None,
            "fastest_peer": peer["name"] if peer else None,
            "fastest_peer_s": peer["median_s"] if peer else None,
            "fastest_peer_extra_peak_bytes": peer["extra_peak_bytes"] if peer else None,
            "kl_fast_is": _versus(peer["median_s"] / best["median_s"], peer["name"])
            if best and peer else None})
    return lines
