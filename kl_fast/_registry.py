"""The registries: the probability-row functions that one row kernel runs
(``ROW_REDUCTIONS``), and the benchmarked quantities (``REGISTRY``).

``ROW_REDUCTIONS`` drives every layer a function of probability rows passes
through: its public function's dispatch (``_api``'s error advice, the
f-divergences' whole body in ``_fdivergences``), dask (``_dask.rows``,
``_dask.split``), ``kl-fast score``'s metrics and flags (``_cli.score``,
``_cli.main``).  Its row kernel is ``kl_fast._<backend>.rows.<kernel>`` in
every backend.  The four core rows (KL, entropy, cross-entropy, JS) have
public functions of their own in ``_api`` (log and logits spaces, labels,
temperature); the f-divergences share one body.

``REGISTRY`` is read by the contenders (``kl_fast._contenders.<group>``),
``kl-fast bench`` (sizes, dtypes, ``--functions``) and the tests that walk
every quantity.

A quantity is one way of calling a public function that the benchmark and the
contender tests compare against peers: ``kl`` (probability rows) and
``kl_logits`` (two logits rows) are two quantities of ``kl_divergence``.  Its
``group`` names the contenders module that builds its data and peers
(``kl_fast._contenders.<group>``: ``rows``, ``tables``, ``elementwise``,
``llm``, ``fdiv``).  Adding a quantity to the benchmark is one row here plus
its contenders in the group's module.
"""

from dataclasses import dataclass

__all__ = ["RowReduction", "ROW_REDUCTIONS", "F_DIVERGENCES", "row_reduction", "Quantity",
           "REGISTRY", "names", "by_name"]


_ROW_OPTIONS = frozenset({"axis", "normalize", "sum_tol"})


@dataclass(frozen=True)
class RowReduction:
    """A public function of probability rows computed by one row kernel."""

    function: str                # the public kl_fast function
    kernel: str                  # its row kernel in kl_fast._<backend>.rows (every backend)
    logarithmic: bool            # takes `base` (the unit of a logarithm)
    metric: str                  # its `kl-fast score --metric` name
    parameter: str | None = None  # a required float keyword (and score flag), if any
    parameter_help: str = ""     # that flag's help text
    module: str = "_fdivergences"  # the kl_fast module defining the function
    dask_kind: str = "fdiv"      # its path in _dask.rows (fdiv: the family's shared one)
    n_inputs: int = 2            # probability arrays it reads (entropy: 1)
    space_keywords: tuple = ()   # its log/logits keywords, offered when rows look like logits
    elementwise_twin: str | None = None  # offered when the category axis has length 1
    score_options: frozenset = _ROW_OPTIONS  # `kl-fast score` settings beyond base/eps

    @property
    def is_fdivergence(self):
        """A member of the f-divergence family (one shared public body)."""
        return self.module == "_fdivergences"


ROW_REDUCTIONS = (
    # the core rows: public functions of their own in _api
    RowReduction("kl_divergence", "kl_rows", True, "kl", module="_api", dask_kind="kl",
                 space_keywords=("p_space", "q_space"), elementwise_twin="binary_kl",
                 score_options=_ROW_OPTIONS | {"p_space", "q_space", "temperature"}),
    RowReduction("entropy", "entropy_rows", True, "entropy", module="_api",
                 dask_kind="h", n_inputs=1, space_keywords=("space",),
                 score_options=_ROW_OPTIONS | {"p_space", "temperature"}),
    RowReduction("cross_entropy", "cross_entropy_rows", True, "cross-entropy",
                 module="_api", dask_kind="ce", space_keywords=("p_space", "q_space"),
                 elementwise_twin="binary_cross_entropy",
                 score_options=_ROW_OPTIONS | {"q_space", "temperature", "ignore_index"}),
    RowReduction("js_divergence", "js_rows", True, "js", module="_api", dask_kind="js"),
    # The f-divergence family.  A new member: its math in each backend, a row here, its
    # public function (a docstring and one call) and a Quantity row below.
    RowReduction("renyi_divergence", "renyi_rows", True, "renyi", "alpha",
                 "the order of --metric renyi (>= 0; inf: the max-ratio order)"),
    RowReduction("hellinger_distance", "hellinger_rows", False, "hellinger"),
    RowReduction("total_variation", "total_variation_rows", False, "total-variation"),
    RowReduction("chi2_divergence", "chi2_rows", False, "chi2"),
)

_ROW_REDUCTIONS = {r.function: r for r in ROW_REDUCTIONS}
F_DIVERGENCES = tuple(r for r in ROW_REDUCTIONS if r.is_fdivergence)


def row_reduction(function):
    """The ROW_REDUCTIONS row of public function `function`, or None."""
    return _ROW_REDUCTIONS.get(function)


@dataclass(frozen=True)
class Quantity:
    """One benchmarked quantity."""

    name: str                 # the key of --functions, the contenders and the JSON
    function: str             # the public kl_fast function it calls
    group: str                # rows | tables | elementwise | llm | fdiv: its contenders
    full_size: tuple          # (n_rows, n_cat) of the performance contract (--full)
    dtypes: tuple = ("float64", "float32")


REGISTRY = (
    Quantity("kl", "kl_divergence", "rows", (200_000, 256)),
    Quantity("entropy", "entropy", "rows", (200_000, 256)),
    Quantity("cross_entropy", "cross_entropy", "rows", (200_000, 256)),
    Quantity("js", "js_divergence", "rows", (200_000, 256)),
    Quantity("cross_entropy_labels", "cross_entropy", "rows", (1_000_000, 1000)),
    Quantity("gaussian_kl_prior", "gaussian_kl", "rows", (1_000_000, 64)),
    Quantity("kl_logits", "kl_divergence", "rows", (200_000, 256)),
    Quantity("cross_entropy_logits", "cross_entropy", "rows", (200_000, 256)),
    Quantity("gaussian_kl", "gaussian_kl", "rows", (1_000_000, 64)),
    Quantity("mutual_information", "mutual_information", "tables", (100_000, 16)),
    Quantity("gaussian_kl_full", "gaussian_kl_full", "tables", (100_000, 8)),
    Quantity("pairwise_kl", "pairwise_kl", "tables", (2_000, 256)),
    Quantity("pairwise_js", "pairwise_js", "tables", (2_000, 256)),
    Quantity("binary_kl", "binary_kl", "elementwise", (200_000, 256)),
    Quantity("binary_cross_entropy", "binary_cross_entropy", "elementwise", (200_000, 256)),
    Quantity("binary_cross_entropy_logits", "binary_cross_entropy", "elementwise",
             (200_000, 256)),
    Quantity("kl_estimate_k3", "kl_estimate", "elementwise", (200_000, 256)),
    # the f-divergence family (Renyi at alpha = 1/2: _contenders.fdiv.RENYI_ALPHA)
    Quantity("renyi", "renyi_divergence", "fdiv", (200_000, 256)),
    Quantity("hellinger", "hellinger_distance", "fdiv", (200_000, 256)),
    Quantity("total_variation", "total_variation", "fdiv", (200_000, 256)),
    Quantity("chi2", "chi2_divergence", "fdiv", (200_000, 256)),
    # the LLM case: float32 logits, 2048 positions x a 32,000-token vocabulary
    Quantity("llm_distill_kl", "kl_divergence", "llm", (2048, 32_000), ("float32",)),
    Quantity("llm_cross_entropy", "cross_entropy", "llm", (2048, 32_000), ("float32",)),
)

_BY_NAME = {q.name: q for q in REGISTRY}


def names(group=None):
    """The quantities' names in registry order (of one `group` if given)."""
    return tuple(q.name for q in REGISTRY if group is None or q.group == group)


def by_name(name):
    """The registry row of quantity `name`."""
    return _BY_NAME[name]
