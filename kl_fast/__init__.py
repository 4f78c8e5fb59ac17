"""kl_fast: fast, accurate KL divergence, entropy, cross-entropy and Gaussian KL.

Batched reductions over probability vectors with compiled kernels (Cython
ahead of time, Numba on demand) behind a thin, validating numpy API.

>>> import kl_fast
>>> round(float(kl_fast.kl_divergence([0.8, 0.2], [0.6, 0.4], base=2)), 5)
0.13203
"""

from ._api import cross_entropy, entropy, js_divergence, kl_divergence
from ._binary import binary_cross_entropy, binary_kl
from ._engine.backends import available_backends
from ._engine.config import show_config
from ._engine.threads import get_num_threads, set_num_threads, threads
from ._estimate import kl_estimate
from ._fdivergences import chi2_divergence, hellinger_distance, renyi_divergence, total_variation
from ._gaussian import gaussian_kl
from ._gaussian_full import gaussian_kl_full
from ._mutual_information import mutual_information
from ._pairwise import pairwise_js, pairwise_kl

__version__ = "0.1.0"

__all__ = [
    "kl_divergence",
    "entropy",
    "cross_entropy",
    "js_divergence",
    "gaussian_kl",
    "gaussian_kl_full",
    "mutual_information",
    "pairwise_kl",
    "pairwise_js",
    "binary_kl",
    "binary_cross_entropy",
    "kl_estimate",
    "renyi_divergence",
    "hellinger_distance",
    "total_variation",
    "chi2_divergence",
    "available_backends",
    "set_num_threads",
    "get_num_threads",
    "threads",
    "show_config",
    "__version__",
]


def __getattr__(name):
    # kl_fast.scipy (the scipy drop-ins) is imported on first use, so that
    # `import kl_fast; kl_fast.scipy.entropy(...)` works while `import kl_fast`
    # itself never imports scipy.
    if name == "scipy":
        import importlib

        return importlib.import_module(".scipy", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
