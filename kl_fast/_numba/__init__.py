"""The Numba backend: the kernel families of ``kl_fast._cython``, in Numba.

Family modules (``rows``, ``spaces``, ``gaussian_full``,
``mutual_information``, ``pairwise``, ``elementwise``) carry the backend
protocol; ``kl_math`` is the scalar and lane math (the mirror of
``src/kl_math.h`` and ``kl_blocks.h``), ``lanes`` the fixed-lane sums,
``row_loops`` the compiled row drivers and ``cache`` the once-per-machine
compile cache.  Importing this package imports no numba.
"""
