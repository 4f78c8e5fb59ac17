"""The ``kl-fast`` command: ``info`` and ``bench``."""

import argparse
import os
import sys

__all__ = ["main"]


def _cmd_info(args):
    from ._config import show_config

    show_config()
    return 0


def _cmd_bench(args):
    from . import _bench
    from ._backends import available_backends

    n_rows, n_cat = (20_000, 256) if args.quick else (args.rows, args.cats)
    backends = [b for b in args.backends if b in available_backends()]
    quiet = args.quiet

    def progress(msg):
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.threads is not None:
        from ._threading import set_num_threads

        set_num_threads(args.threads)
    progress(f"kl-fast bench: KL divergence, {n_rows} x {n_cat}, dtypes {args.dtypes}, "
             f"backends {backends}")
    results = _bench.run_comparison(n_rows, n_cat, args.dtypes, backends, args.repeats,
                                    progress=progress)
    print(_bench.format_table(results))
    for r in results:
        if r["name"] == "kl_fast[numba]":
            print(f"numba first call ({r['dtype']}, includes compile): {r['first_call_s']:.2f} s")
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "bench.json")
    _bench.write_json(path, results, {"rows": n_rows, "cats": n_cat, "dtypes": args.dtypes})
    print(f"wrote {path}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="kl-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print version, backends, OpenMP, threads, CPU")
    info.set_defaults(func=_cmd_info)
    bench = sub.add_parser("bench", help="compare kl_fast with numpy and scipy")
    bench.add_argument("--rows", type=int, default=200_000)
    bench.add_argument("--cats", type=int, default=256)
    bench.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                       choices=["float64", "float32"])
    bench.add_argument("--backends", nargs="+", default=["cython", "numba"],
                       choices=["cython", "numba", "numpy"])
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--threads", type=int, default=None)
    bench.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    bench.add_argument("--quiet", action="store_true", help="no progress lines")
    bench.add_argument("-o", "--output-dir", default="bench-results")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
