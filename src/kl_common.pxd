# Cython declarations shared by kl_fast's kernel modules (every src/_*.pyx
# cimports from here instead of redeclaring them).

# The two input dtypes every kernel is compiled for: a kernel taking
# `const floating[:, :]` is specialized once for float32 and once for float64.
ctypedef fused floating:
    float
    double

# Columns of a kernel report row (kl_fast/_engine/report.py; REPORT_WIDTH in kl_fast/_engine/scale.py):
# [n_bad, bad_row, bad_col, bad_arg, sum_row, sum_arg].
cdef enum:
    N_REPORT = 6
