"""Build the Cython kernels in ``src/`` into the ``kl_fast`` package.

The only build logic of the project lives here:

* compiler directives are set once (bounds checks off unless
  ``KL_FAST_CYTHON_DEBUG=1``, which also turns on ``-O0 -g``);
* OpenMP is detected by compiling a tiny probe; without it (or with
  ``KL_FAST_NO_OPENMP=1``) the kernels build and run serially and
  ``kl_fast.show_config()`` says so;
* no ``-ffast-math``: inf and NaN are real results of these kernels.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("KL_FAST_CYTHON_DEBUG", "0") == "1"


def _openmp_flags():
    """Return (compile_args, link_args) enabling OpenMP, or ([], []) if unusable."""
    if os.environ.get("KL_FAST_NO_OPENMP", "0") == "1":
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    if sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    if shutil.which(cc) is None:
        return [], []
    probe = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(probe)
        for cflags, lflags in candidates:
            cmd = [cc, *cflags, src, "-o", os.path.join(tmp, "probe"), *lflags]
            ok = subprocess.run(cmd, capture_output=True).returncode == 0
            if ok:
                return cflags, lflags
    print("kl_fast: OpenMP not available; building serial kernels", file=sys.stderr)
    return [], []


omp_compile, omp_link = _openmp_flags()
if sys.platform == "win32":
    base_compile = ["/O2"]
else:
    # -O3 vectorizes the lane loops of kl_blocks.h.  -fno-trapping-math lets
    # the compiler turn the selects of the special-value handling into
    # blends (we never read the FP exception flags); -ffp-contract=off keeps
    # every clone and the Numba backend doing the same roundings;
    # -fno-math-errno lets sqrt vectorize (the correctly rounded instruction
    # either way; we never read errno); -fopenmp-simd honours the `omp simd`
    # lane-loop hints of kl_blocks.h (no threads, and on even where OpenMP
    # itself is unusable).  Never -ffast-math: it folds the isnan/isinf tests
    # away.
    # -fno-wrapv undoes the -fwrapv of Python's own CFLAGS (which setuptools puts
    # first): nothing here relies on signed overflow wrapping (the bit tricks are
    # on uint64_t; numpy and scipy build their Cython modules without it), and
    # with it GCC laid out some terms-only passes so that rows streamed from
    # memory ran at half speed (KL of 50,000 x 256 float64 rows, validate=False,
    # one thread: 64 against 35 ms for the validated pass of the same terms).
    base_compile = ["-O0", "-g"] if DEBUG else ["-O3"]
    base_compile += ["-fno-wrapv", "-ffp-contract=off", "-fno-trapping-math",
                     "-fno-math-errno", "-fopenmp-simd"]

# Every src/<family>.pyx becomes the extension kl_fast._cython.<family>: one
# module per kernel family (the family names of kl_fast._numba and
# kl_fast._numpy too), all built with the same flags.
extensions = [
    Extension(
        f"kl_fast._cython.{os.path.splitext(os.path.basename(pyx))[0]}",
        sources=[pyx],
        include_dirs=[np.get_include(), "src"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=base_compile + omp_compile,
        extra_link_args=omp_link,
    )
    for pyx in sorted(glob.glob(os.path.join("src", "*.pyx")))
]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

# include_path: the shared declarations of src/kl_common.pxd
setup(ext_modules=cythonize(extensions, compiler_directives=directives, include_path=["src"]))
