"""The numpy reference backend: the kernel families of ``kl_fast._cython``, plainly.

The oracle the compiled backends are tested against (``exact`` holds its
exactly rounded helpers).
"""
