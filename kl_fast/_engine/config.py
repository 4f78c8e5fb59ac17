"""``show_config()``: what this installation can do, for bug reports and `kl-fast info`."""

import os
import platform
import sys

import numpy as np

from . import backends as _backends
from . import threads as _threading

__all__ = ["config", "show_config"]


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config():
    """The facts show_config prints, as a dict."""
    from .. import __version__

    info = {
        "kl_fast": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "usable cores": _threading.usable_cpu_count(),
        "default threads": _threading.get_num_threads(),
        "KL_FAST_NUM_THREADS": os.environ.get("KL_FAST_NUM_THREADS", "(unset)"),
        "backends available": ", ".join(_backends.available_backends()),
        "auto backend": _backends.get_backend("auto")[0],
    }
    cython = _backends.load_backend("cython")
    if cython is not None:
        info["cython kernels"] = "built, OpenMP " + (
            "enabled" if cython.openmp_enabled() else "DISABLED (serial kernels)")
    else:
        info["cython kernels"] = f"unavailable: {_backends.load_error('cython')}"
    try:
        import numba

        numba_kernels = _backends.load_backend("numba")
        layer = numba_kernels.threading_layer() if numba_kernels is not None else None
        info["numba"] = (f"{numba.__version__}, threading layer "
                         f"{layer or 'not chosen yet (chosen at first parallel call)'}")
    except ImportError:
        info["numba"] = "not installed"
    return info


def show_config():
    """Print version, backends, OpenMP, threads and CPU of this installation.

    Examples
    --------
    >>> import kl_fast
    >>> kl_fast.show_config()  # doctest: +ELLIPSIS
    kl_fast ...
    """
    info = config()
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
