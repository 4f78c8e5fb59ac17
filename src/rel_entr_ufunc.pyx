"""``rel_entr`` as a real numpy ufunc, for the scipy drop-in ``kl_fast.scipy.rel_entr``.

A. Why a ufunc.  scipy.special.rel_entr is a ufunc, and code that calls it
   relies on what only a ufunc does: ``dtype=``, ``where=``, ``casting=``,
   ``out=`` with numpy's casting rules (an int64 ``out`` is a casting error,
   never a truncation), ``.outer``/``.reduce``, broadcasting, and dispatch
   to other array types (``__array_ufunc__`` for dask).  Reimplementing that in Python would be slower and
   subtly different; ``PyUFunc_FromFuncAndData`` gives it all for the cost
   of two inner loops.
B. Loops.  'ff->f' and 'dd->d', in that order, as scipy's: numpy's type
   resolution then picks the same loop (and so the same result dtype) for
   every input scipy accepts.  Both compute in double with the one scalar
   ``kl_rel_entr`` of kl_math.h (accurate where x ~ y), so the float32 loop
   is correctly rounded from a double result.
C. Floating-point flags.  numpy turns the flags a loop leaves set into
   RuntimeWarnings.  kl_rel_entr's results raise none by themselves (inf
   and NaN are returned, not computed), but its intermediates may overflow
   or underflow (x / y before the log-difference fallback): each loop clears
   the flags it leaves, as scipy's loops do not leave them either.
D. Threads.  An inner loop over at least ``PARALLEL_MIN`` elements takes
   the GIL once to read ``kl_fast.get_num_threads()`` (the calling thread's
   setting) and splits over OpenMP threads; shorter loops never touch
   Python, so a small call stays as cheap as scipy's.  Elementwise, so the
   result is identical for any thread count.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from numpy cimport (NPY_DOUBLE, NPY_FLOAT, PyUFunc_FromFuncAndData, PyUFunc_None,
                    PyUFuncGenericFunction, npy_intp)

from kl_fast._engine.threads import get_num_threads

cnp.import_array()
cnp.import_ufunc()

cdef extern from "kl_math.h" nogil:
    double kl_rel_entr(double p, double q)

cdef extern from "<fenv.h>" nogil:
    int feclearexcept(int excepts)
    int FE_ALL_EXCEPT

# Below this many elements one thread is faster than starting a team.
cdef npy_intp PARALLEL_MIN = 1 << 16


cdef int _threads_for(npy_intp n) noexcept nogil:
    if n < PARALLEL_MIN:
        return 1
    with gil:
        try:
            return max(1, int(get_num_threads()))
        except Exception:   # never let a thread-count lookup fail a ufunc call
            return 1


ctypedef fused real:
    float
    double


cdef inline void _apply(real tag, char** args, npy_intp* dims,
                        npy_intp* steps) noexcept nogil:
    """The loop of one signature ('ff->f' or 'dd->d', chosen by the type of `tag`):
    each element computed in double by kl_rel_entr, rounded once to `real`."""
    cdef npy_intp n = dims[0], i
    cdef char* x = args[0]            # IN
    cdef char* y = args[1]            # IN
    cdef char* o = args[2]            # OUT
    cdef npy_intp sx = steps[0], sy = steps[1], so = steps[2]
    cdef int n_threads = _threads_for(n)
    if n_threads == 1:
        for i in range(n):
            (<real*> (o + i * so))[0] = <real> kl_rel_entr(
                (<real*> (x + i * sx))[0], (<real*> (y + i * sy))[0])
    else:
        for i in prange(n, schedule="static", num_threads=n_threads):
            (<real*> (o + i * so))[0] = <real> kl_rel_entr(
                (<real*> (x + i * sx))[0], (<real*> (y + i * sy))[0])
    feclearexcept(FE_ALL_EXCEPT)


cdef void _loop_ff(char** args, npy_intp* dims, npy_intp* steps,
                   void* data) noexcept nogil:
    _apply(<float> 0, args, dims, steps)


cdef void _loop_dd(char** args, npy_intp* dims, npy_intp* steps,
                   void* data) noexcept nogil:
    _apply(<double> 0, args, dims, steps)


# numpy keeps these pointers (it does not copy them): module-level storage.
cdef PyUFuncGenericFunction _funcs[2]
cdef void* _data[2]
cdef char _types[6]
# numpy 2 declares the dims/steps arguments const; Cython's typedef does not
_funcs[0] = <PyUFuncGenericFunction> _loop_ff
_funcs[1] = <PyUFuncGenericFunction> _loop_dd
_data[0] = NULL
_data[1] = NULL
_types[0] = NPY_FLOAT
_types[1] = NPY_FLOAT
_types[2] = NPY_FLOAT
_types[3] = NPY_DOUBLE
_types[4] = NPY_DOUBLE
_types[5] = NPY_DOUBLE

cdef bytes _NAME = b"rel_entr"
cdef bytes _DOC = b"""Elementwise ``x * log(x / y)``, the drop-in for :func:`scipy.special.rel_entr`.

0 where ``x == 0`` and ``y >= 0``; ``+inf`` where ``x > 0`` and ``y == 0``
or either argument is negative; NaN if either is NaN.  Accurate (a few ULP)
where ``x ~ y``, where the naive formula loses most digits.

A numpy ufunc with scipy's loops ('ff->f', 'dd->d'): float32 and float16
inputs give float32 (computed in double), everything else float64; ``out=``,
``where=``, ``dtype=``, ``casting=``, ``.outer`` and broadcasting behave as
for any ufunc.

rel_entr has experimental support for Python Array API Standard compatible
backends in addition to NumPy, as scipy's: a dask array in gives a lazy dask
array out (``__array_ufunc__``); with ``SCIPY_ARRAY_API=1`` set, as in scipy,
``kl_fast.scipy.rel_entr`` is a function that passes numpy input to this
ufunc and also returns CPU torch tensors for torch tensors.

Examples
--------
>>> from kl_fast.scipy import rel_entr
>>> rel_entr([0.5, 0.0, 0.5], [0.25, 0.5, 0.0])
array([0.34657359, 0.        ,        inf])
"""

rel_entr = PyUFunc_FromFuncAndData(_funcs, _data, _types, 2, 2, 1, PyUFunc_None,
                                   _NAME, _DOC, 0)
