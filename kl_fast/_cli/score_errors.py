"""The error type of ``kl-fast score`` and the dtype rule every input format shares."""

__all__ = ["ScoreInputError", "dtype_problem"]


class ScoreInputError(ValueError):
    """A bad input file or option of ``kl-fast score`` (one line, names the file)."""


def dtype_problem(dtype, allow_int):
    """Why `dtype` cannot be scored (None if it can)."""
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return None
    if dtype.kind in "iu" and allow_int:
        return None
    if dtype.kind in "iu":
        return (f"holds integers ({dtype}); integer data is only read as class labels "
                "(cross-entropy, one dimension fewer than Q) or as counts with --normalize")
    what = {"c": "complex numbers", "O": "Python objects", "b": "booleans",
            "U": "strings", "S": "bytes", "V": "structured records",
            "M": "datetimes", "m": "timedeltas"}.get(dtype.kind, "an unsupported type")
    return f"holds {what} ({dtype}); score needs float16, float32 or float64 data"
