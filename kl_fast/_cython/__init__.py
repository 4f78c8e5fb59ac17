"""The Cython backend: extension modules built from ``src/<family>.pyx``.

The family modules (``rows``, ``spaces``, ``gaussian_full``,
``mutual_information``, ``pairwise``, ``elementwise``) have the names and
kernel signatures of ``kl_fast._numba`` and ``kl_fast._numpy``
(``_engine.backends.FAMILY_MODULES``); ``rel_entr_ufunc`` is the ufunc of
``kl_fast.scipy.rel_entr``.
"""
