"""Print the measured errors of every accuracy case and backend.

Run ``python -m tests.accuracy_report`` from the repository root.

The cases, inputs, mpmath references and bounds are those of
``tests/test_accuracy.py``; units: float32 ULP (ulp32), eps relative (rel),
or eps * sum |terms| (scaled).  Options: ``--backend NAME`` (repeatable),
``--filter TEXT`` (case names containing TEXT).
"""

import argparse
import sys

import numpy as np

import kl_fast

from . import test_accuracy as acc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=kl_fast.available_backends())
    parser.add_argument("--filter", default="")
    args = parser.parse_args(argv)
    backends = args.backend or kl_fast.available_backends()
    cases = [c for c in acc.CASES if args.filter in c.name]
    width = max(len(c.name) for c in cases)
    header = f"{'case':<{width}}  {'unit':<6} {'bound':>5}"
    for b in backends:
        header += f"  {b + ' max':>11} {'median':>8}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for case in cases:
        line = f"{case.name:<{width}}  {case.measure:<6} {case.bound:>5g}"
        for b in backends:
            _, err = acc.errors(case, b)
            worst = max(worst, float(err.max()) / case.bound)
            flag = "!" if err.max() > case.bound else " "
            line += f"  {err.max():>10.3g}{flag} {np.median(err):>8.3g}"
        print(line)
    print(f"\nworst error / bound: {worst:.3g}  ({len(cases)} cases, backends: "
          f"{', '.join(backends)})")
    return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
