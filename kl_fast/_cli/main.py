"""The ``kl-fast`` command: ``bench`` (the comparison), ``score`` (files) and ``info``."""

import argparse
import os
import sys
import time

__all__ = ["main"]


def _parameters(args):
    """The registry parameters given on the command line (Renyi's --alpha)."""
    from .score import PARAMETERS

    return {name: getattr(args, name) for name in PARAMETERS}


def _cmd_info(args):
    from .._engine.config import show_config

    show_config()
    return 0


def _cmd_bench(args):
    from .._contenders import QUANTITIES
    from .._engine.backends import available_backends
    from . import bench as _bench

    if args.threads is not None:
        from .._engine.threads import set_num_threads

        set_num_threads(args.threads)
    sizes = dict(_bench.QUICK_SIZES if args.quick
                 else _bench.FULL_SIZES if args.full else _bench.SIZES)
    if args.rows or args.cats:
        sizes = {q: (args.rows or n, args.cats or k) for q, (n, k) in sizes.items()}
    backends = [b for b in args.backends if b in available_backends()]
    quantities = args.functions or list(QUANTITIES)
    start = time.perf_counter()

    def progress(msg):
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    progress(f"kl-fast bench: {quantities}, dtypes {args.dtypes}, backends {backends}")
    load_before = _bench.load_average()
    results = _bench.run_comparison(quantities, args.dtypes, backends, args.repeats, sizes,
                                    peers=not args.no_peers, progress=progress,
                                    memory=not args.no_memory)
    # the verdicts first (one line per quantity and dtype), then every contender
    print(_bench.format_summary(results))
    print()
    print(_bench.format_table(results))
    for note in _bench.compile_notes(results):
        print(note)
    load = {"before": load_before, "after": _bench.load_average()}
    print(_bench.load_note(load))
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "bench.json")
    _bench.write_json(path, results, {"sizes": sizes, "dtypes": args.dtypes,
                                      "backends": backends, "repeats": args.repeats,
                                      "memory": not args.no_memory, "load_average": load})
    print(f"wrote {path}")
    chart = os.path.join(args.output_dir, "bench.png")
    if _bench.plot(results, chart):
        print(f"wrote {chart}")
    else:
        print("no chart: matplotlib is not installed (pip install 'kl_fast[plot]')")
    return 0


def _progress_factory(quiet):
    """A tqdm bar maker when stderr is a terminal and not --quiet; None otherwise.

    tqdm is an optional extra ("progress"): without it there is simply no bar.
    """
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def make(total):
        return tqdm(total=total, unit="row", unit_scale=True, file=sys.stderr,
                    desc="kl-fast score", leave=False)
    return make


def _cmd_score(args):
    from .score import score_files

    def fail(message):
        print(f"kl-fast score: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2

    try:
        summary = score_files(
            args.P, args.Q, metric=args.metric, out=args.output, key=args.key,
            p_key=args.p_key, q_key=args.q_key, delimiter=args.delimiter, header=args.header,
            axis=args.axis, eps=args.eps, base=args.base, normalize=args.normalize or None,
            p_space=args.p_space, q_space=args.q_space, temperature=args.temperature,
            ignore_index=args.ignore_index, reduction=args.reduction,
            chunk_rows=args.chunk_rows, num_threads=args.threads, backend=args.backend,
            validate=not args.no_validate, sum_tol=args.sum_tol,
            progress=_progress_factory(args.quiet), **_parameters(args))
    except KeyboardInterrupt:
        print("kl-fast score: interrupted; no output written", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as exc:
        return fail(exc)
    # stdout carries only the result (a sum or mean), so `$(kl-fast score ...)` and
    # pipes get a number; the summary is a message, on stderr
    if not args.quiet:
        print(summary.line(), file=sys.stderr, flush=True)
    if summary.value is not None:
        print(summary.value_text(), flush=True)
    return 0


_SCORE_DESCRIPTION = """\
Score P (and Q) chunk by chunk with bounded memory and write OUT (.npy or
.csv) atomically. Inputs: .npy, .npz (--key/--p-key/--q-key pick an array),
.parquet (pip install "kl_fast[parquet]"; the numeric columns, or one list
column, are the categories; a key picks a column) and .csv/.tsv/.txt (one
distribution per line; a first line of names is a header). Inputs
broadcast as in numpy. The summary goes to stderr; a --reduction sum or
mean value is printed alone on stdout (with -o it is also written).
Errors: one line on stderr, exit status 2."""


def _add_score(sub):
    from .score import METRICS

    score = sub.add_parser(
        "score", help="score .npy/.npz/.parquet/.csv files of any size in chunks "
                      "(bounded memory)",
        description=_SCORE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("P", help="the first input: P for kl/js, the distributions for "
                                 "entropy, labels or targets for cross-entropy, y for "
                                 "binary-cross-entropy")
    score.add_argument("Q", nargs="?", default=None,
                       help="the second input (not for entropy; default with --q-key: P's file)")
    score.add_argument("--metric", required=True, choices=list(METRICS))
    score.add_argument("-o", "--output", default=None, metavar="OUT",
                       help="result file: .npy, or .csv (a header line, then one line per "
                            "row); replaced only when complete. Required unless --reduction "
                            "is sum or mean")
    score.add_argument("--key", default=None,
                       help="array name inside .npz inputs (column of .parquet inputs); a "
                            "file holding a single array ignores it")
    score.add_argument("--p-key", default=None, metavar="KEY",
                       help="the array (or parquet column) of P; overrides --key")
    score.add_argument("--q-key", default=None, metavar="KEY",
                       help="the array (or parquet column) of Q; overrides --key. Without Q, "
                            "Q comes from P's file")
    score.add_argument("--delimiter", default=None, metavar="CHAR",
                       help="CSV delimiter (default ',', tab for .tsv; '\\t' or 'tab' for tab)")
    score.add_argument("--header", choices=["auto", "yes", "no"], default="auto",
                       help="CSV: is the first line a header (default auto: yes when all "
                            "its cells are text)")
    score.add_argument("--axis", type=int, default=None,
                       help="the category axis (default -1)")
    score.add_argument("--eps", type=float, default=0.0, help="smoothing (default 0)")
    from .._registry import ROW_REDUCTIONS

    for row in ROW_REDUCTIONS:     # the metrics' required parameters (Renyi's --alpha)
        if row.parameter:
            score.add_argument(f"--{row.parameter}", type=float, default=None,
                               help=row.parameter_help)
    score.add_argument("--base", type=float, default=None,
                       help="logarithm base (default e; 2 gives bits)")
    score.add_argument("--normalize", action="store_true",
                       help="divide each row by its sum first (counts)")
    score.add_argument("--p-space", choices=["prob", "log", "logits"], default=None,
                       help="what P holds (entropy: its space)")
    score.add_argument("--q-space", choices=["prob", "log", "logits"], default=None,
                       help="what Q holds (binary metrics: prob or logits)")
    score.add_argument("--temperature", type=float, default=None,
                       help="divides logits before the softmax")
    score.add_argument("--ignore-index", type=int, default=None,
                       help="cross-entropy labels: rows with this label are skipped")
    score.add_argument("--reduction", choices=["none", "sum", "mean"], default="none",
                       help="none: one value per row in OUT; sum/mean: one value, printed "
                            "on stdout")
    score.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                       help="rows per chunk (default: about 32 MiB of input; 4 MiB of "
                            "numbers for CSV/parquet)")
    score.add_argument("--threads", type=int, default=None, help="threads for kl_fast")
    score.add_argument("--backend", choices=["auto", "cython", "numba", "numpy"],
                       default="auto")
    score.add_argument("--sum-tol", type=float, default=None, metavar="TOL",
                       help="how far a row sum may miss 1 (default: K x float32 eps, "
                            "between 1e-6 and 1e-3)")
    score.add_argument("--no-validate", action="store_true",
                       help="skip the value and row-sum checks (validate=False)")
    score.add_argument("--quiet", action="store_true",
                       help="no progress bar, no summary (a sum/mean value is still printed)")
    score.set_defaults(func=_cmd_score)


def build_parser():
    from .._contenders import QUANTITIES

    parser = argparse.ArgumentParser(prog="kl-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print version, backends, OpenMP, threads, CPU")
    info.set_defaults(func=_cmd_info)
    bench = sub.add_parser(
        "bench", help="time kl_fast against the read floor, numpy, scipy and installed peers",
        description="Time kl_fast against the read floor, numpy, scipy and installed peers "
                    "(torch, JAX) on the same synthetic data, including an LLM-sized case "
                    "(float32 logits 2048 x 32000: distillation KL at temperature 2 and "
                    "label cross-entropy). Prints one verdict per quantity and dtype "
                    "('2.3x faster than torch'), then every contender's median, multiple "
                    "of the floor and extra peak memory; writes bench.json and bench.png.")
    bench.add_argument("--functions", nargs="+", choices=QUANTITIES, metavar="NAME",
                       help=f"quantities to time (default: all of {', '.join(QUANTITIES)})")
    bench.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                       choices=["float64", "float32"])
    bench.add_argument("--backends", nargs="+", default=["cython"],
                       choices=["cython", "numba", "numpy"],
                       help="kl_fast backends to time (default: cython; numba compiles once "
                            "per machine, 10-40 s per quantity and dtype, then loads "
                            "from its disk cache in about a second; the first call's "
                            "time is reported separately)")
    bench.add_argument("--rows", type=int, help="rows per batch (overrides the defaults)")
    bench.add_argument("--cats", type=int, help="categories per row (overrides the defaults)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs per contender")
    bench.add_argument("--threads", type=int, default=None, help="threads for kl_fast")
    bench.add_argument("--quick", action="store_true",
                       help="a tenth of the default rows (the LLM case: 256 x 32000)")
    bench.add_argument("--full", action="store_true",
                       help="the performance contract's sizes (200,000 x 256 and larger)")
    bench.add_argument("--no-peers", action="store_true", help="time kl_fast and the floor only")
    bench.add_argument("--no-memory", action="store_true",
                       help="skip the extra call per contender that measures its extra peak "
                            "memory (the column then reads n/a)")
    bench.add_argument("--quiet", action="store_true", help="no progress lines")
    bench.add_argument("-o", "--output-dir", default="bench-results",
                       help="where bench.json and bench.png go (default: bench-results)")
    bench.set_defaults(func=_cmd_bench)
    _add_score(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
