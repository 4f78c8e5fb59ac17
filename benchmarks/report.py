"""Turn pytest-benchmark JSON into the README's benchmark table (never hand-edited).

    python benchmarks/report.py bench-results/suite.json > bench-results/table.md

Per group (quantity|shape|dtype): each contender's median, its multiple of the
floor (numpy reading each input once), and how the best compiled kl_fast
backend compares with it, in words ("2.3x faster", "1.4x slower").
"""

import json
import sys
from collections import defaultdict

from kl_fast._cli.bench_verdict import speed_words


def table(path):
    with open(path) as fh:
        data = json.load(fh)
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        groups[bench["group"]][info["contender"]] = bench["stats"]["median"]
    machine = data.get("machine_info", {})
    lines = [f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
             f"{machine.get('cpu', {}).get('count', '?')} cores; "
             f"python {machine.get('python_version', '?')}", "",
             "| group | contender | median | x floor | kl_fast is |",
             "| --- | --- | ---: | ---: | ---: |"]
    for group, times in groups.items():
        floor = times.get("floor")
        ours = [t for name, t in times.items() if name in ("kl_fast[cython]", "kl_fast[numba]")]
        best = min(ours) if ours else None
        for name, t in sorted(times.items(), key=lambda kv: kv[1]):
            x_floor = f"{t / floor:.2f}" if floor else ""
            peer = not name.startswith("kl_fast") and name != "floor"
            speed = speed_words(t / best) if peer and best else ""
            # the group's own "|" would split the markdown cell
            lines.append(f"| {group.replace('|', ' / ')} | {name} | {t * 1e3:.3f} ms | "
                         f"{x_floor} | {speed} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1]))
