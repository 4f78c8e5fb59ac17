"""Codes shared by the API and every backend (they match ``src/kl_math.h``)."""

SCALE_VAR = 0
SCALE_STD = 1
SCALE_LOGVAR = 2
SCALE_LOGSTD = 3

SCALES = {"var": SCALE_VAR, "std": SCALE_STD, "logvar": SCALE_LOGVAR, "logstd": SCALE_LOGSTD}

# Columns of a kernel report row: [n_bad, bad_row, bad_col, bad_arg, sum_row, sum_arg].
REPORT_WIDTH = 6
