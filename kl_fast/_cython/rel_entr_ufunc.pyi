"""Stub of kl_fast._cython.rel_entr_ufunc, compiled from src/rel_entr_ufunc.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

import numpy as np

rel_entr: np.ufunc
