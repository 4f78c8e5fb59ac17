"""``kl-fast bench`` tells the truth at a glance: the speed-up in words, the LLM
case in the default plan, an honest extra-peak-memory column, a chart a page
can show.  Every bench run here is tiny (a few rows)."""

import json
import math
import struct

import numpy as np
import pytest

from kl_fast._cli import bench as _bench
from kl_fast._cli.bench import SIZES, dtypes_of, speed_words, summarize
from kl_fast._cli.bench_chart import CONTENDER_COLOURS, colour_of
from kl_fast._cli.bench_memory import format_bytes, measure_extra_peak, rss_meter_available
from kl_fast._contenders import LLM_QUANTITIES, QUANTITIES, contenders, make_data
from kl_fast._cli.main import build_parser, main

MIB = 1 << 20


@pytest.mark.parametrize(("ratio", "words"), [
    (2.3, "2.3x faster"), (1 / 1.4, "1.4x slower"), (1.0, "same speed"),
    (1.04, "same speed"), (1 / 1.04, "same speed"), (1.06, "1.1x faster"),
    (0.1, "10.0x slower"), (248.3, "248x faster"), (1 / 300, "300x slower"),
])
def test_speed_words(ratio, words):
    assert speed_words(ratio) == words


@pytest.mark.parametrize("ratio", [0.0, -1.0, math.inf, math.nan, None])
def test_speed_words_without_a_ratio(ratio):
    assert speed_words(ratio) == "n/a"


def test_speed_words_never_a_fraction():
    """Slower is said as slower: no "0.xx faster" for any ratio below 1."""
    for ratio in np.geomspace(1e-3, 1e3, 400):
        words = speed_words(float(ratio))
        factor = float(words.split("x")[0]) if words != "same speed" else 1.0
        assert factor >= 1.0, words
        assert words.endswith("slower") == (ratio < 1 / 1.05), (ratio, words)


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 512, 12 * 1024, 250 * MIB, int(1.234 * (1 << 30)),
                                      None)] == ["0 B", "512 B", "12.0 KiB", "250 MiB",
                                                 "1.23 GiB", "n/a"]


def test_llm_case_in_the_default_plan():
    parser_default = build_parser().parse_args(["bench"])
    assert parser_default.functions is None      # the CLI then runs all of QUANTITIES
    for quantity in LLM_QUANTITIES:
        assert quantity in QUANTITIES
        assert SIZES[quantity] == (2048, 32000)
        assert dtypes_of(quantity, ["float64", "float32"]) == ["float32"]
    names = contenders("llm_distill_kl", make_data("llm_distill_kl", 4, 16, "float32"),
                       ["cython"])
    assert {"floor", "kl_fast[cython]", "numpy", "torch"} <= set(names)


def test_llm_contenders_match_the_definition():
    """The distillation peer is KL(teacher || student) of the softened rows, batch mean."""
    from scipy.special import log_softmax, rel_entr

    d = make_data("llm_distill_kl", 5, 40, "float64", seed=1)
    pt = np.exp(log_softmax(d["teacher"] / 2.0, axis=-1))
    ps = np.exp(log_softmax(d["student"] / 2.0, axis=-1))
    expected = rel_entr(pt, ps).sum(axis=-1).mean()
    for name, fn in contenders("llm_distill_kl", d, ["cython"]).items():
        if name != "floor":
            assert float(fn()) == pytest.approx(expected, rel=1e-9), name


def test_memory_meter_sees_numpy_and_torch_allocations():
    size = 64 * MIB
    numpy_reading = measure_extra_peak(lambda: np.ones(size // 8), "numpy")
    # within a few pages below (the resident high-water mark counts whole pages as
    # they are touched) and a little above
    assert 0.99 * size <= numpy_reading["extra_peak_bytes"] < size + 4 * MIB
    assert measure_extra_peak(lambda: None, "nothing")["extra_peak_bytes"] < MIB
    torch = pytest.importorskip("torch")
    reading = measure_extra_peak(lambda: torch.ones(size // 4), "torch")
    if rss_meter_available():
        # torch's CPU allocator is invisible to tracemalloc; the resident meter sees it
        assert reading["extra_peak_traced_bytes"] < MIB
        assert 0.99 * size <= reading["extra_peak_bytes"] < size + 4 * MIB
    else:
        assert reading["extra_peak_bytes"] is None


def test_torch_distillation_needs_its_temporaries():
    """At 256 x 32000 float32 (31 MiB an array) torch builds several full-size
    temporaries; the column shows them."""
    pytest.importorskip("torch")
    d = make_data("llm_distill_kl", 256, 32000, "float32")
    fn = contenders("llm_distill_kl", d, ["cython"])["torch"]
    fn()
    extra = measure_extra_peak(fn, "torch")["extra_peak_bytes"]
    if rss_meter_available():
        assert extra >= 3 * d["teacher"].nbytes
    else:   # tracemalloc alone cannot see torch: no number rather than a wrong one
        assert extra is None


@pytest.fixture(scope="module")
def tiny_run():
    sizes = {q: (6, 24) for q in QUANTITIES}
    return _bench.run_comparison(["kl", "cross_entropy_labels", "llm_distill_kl"],
                                 ["float64", "float32"], ["cython"], repeats=1, sizes=sizes)


def test_memory_column_filled(tiny_run):
    assert {r["quantity"] for r in tiny_run} == {"kl", "cross_entropy_labels",
                                                 "llm_distill_kl"}
    assert {r["dtype"] for r in tiny_run if r["quantity"] == "llm_distill_kl"} == {"float32"}
    for r in tiny_run:
        assert isinstance(r["extra_peak_bytes"], int) and r["extra_peak_bytes"] >= 0, r
    table = _bench.format_table(tiny_run)
    assert "| extra peak memory |" in table.splitlines()[0]
    assert "n/a" not in table


def test_words_in_table_and_json(tiny_run, tmp_path):
    for r in tiny_run:
        ours = r["name"].startswith("kl_fast[") or r["name"] == "floor"
        assert (r["kl_fast_is"] is None) == ours, r
        if not ours:
            assert r["kl_fast_is"] == speed_words(r["speedup"])
            assert r["kl_fast_is"] in _bench.format_table(tiny_run)
    path = tmp_path / "bench.json"
    _bench.write_json(path, tiny_run, {})
    saved = json.loads(path.read_text())
    assert saved["results"][0]["kl_fast_is"] is None
    assert all(s["kl_fast_is"] for s in saved["summary"])


def _row(name, seconds, quantity="kl", dtype="float64"):
    return {"quantity": quantity, "shape": [4, 4], "dtype": dtype, "name": name,
            "median_s": seconds, "first_call_s": seconds, "extra_peak_bytes": 0}


def test_summary_against_the_fastest_peer():
    rows = [_row("floor", 0.5), _row("kl_fast[cython]", 1.0), _row("kl_fast[numpy]", 0.1),
            _row("numpy", 2.3), _row("torch", 7.0),
            _row("floor", 0.1, "cross_entropy_labels"),
            _row("kl_fast[cython]", 1.4, "cross_entropy_labels"),
            _row("numpy q[arange(N), y]", 0.2, "cross_entropy_labels"),
            _row("torch", 1.0, "cross_entropy_labels")]
    _bench.annotate(rows)
    # kl_fast[numpy] is the fallback, never "the" kl_fast while a compiled one ran; the
    # bare gather is a yardstick, never the fastest peer
    assert [s["kl_fast_is"] for s in summarize(rows)] == ["2.3x faster than numpy",
                                                           "1.4x slower than torch"]
    assert "| 1.4x slower than torch |" in _bench.format_summary(rows)


def _png_size(path):
    with open(path, "rb") as fh:
        header = fh.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_chart_fits_a_page(tiny_run, tmp_path):
    path = tmp_path / "bench.png"
    assert _bench.plot(tiny_run, path)
    width, height = _png_size(path)
    assert width <= 1600 and height <= 2000


def test_one_distinct_colour_per_contender():
    names = set()
    for quantity in QUANTITIES:
        names |= set(contenders(quantity, make_data(quantity, 3, 4, "float64"),
                                ["cython", "numba", "numpy"]))
    names |= {f"kl_fast[{b}] precise" for b in ("cython", "numba")}
    assert names <= set(CONTENDER_COLOURS), names - set(CONTENDER_COLOURS)
    colours = [colour_of(n) for n in sorted(names)]
    assert len(set(colours)) == len(colours)
    assert colour_of("some new peer") == colour_of("some new peer")


def test_load_note():
    assert _bench.load_note({"before": 0.1, "after": 1.2}).startswith(
        "load average (1 min): 0.10 before, 1.20 after")
    assert "WARNING" not in _bench.load_note({"before": 0.1, "after": 1.2})
    assert "WARNING: other processes" in _bench.load_note({"before": 1.5, "after": 2.0})
    assert _bench.load_note({"before": None, "after": None}) == (
        "load average: not available on this system")


def test_cli_bench_end_to_end(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["bench", "--functions", "entropy", "llm_cross_entropy", "--rows", "4",
                 "--cats", "32", "--repeats", "1", "--quiet", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| kl_fast is |" in printed and "extra peak memory" in printed
    assert "llm_cross_entropy | 4x32 | float32" in printed
    saved = json.loads((out / "bench.json").read_text())
    assert {s["quantity"] for s in saved["summary"]} == {"entropy", "llm_cross_entropy"}
    assert "load average" in printed and set(saved["params"]["load_average"]) == {"before",
                                                                                  "after"}
