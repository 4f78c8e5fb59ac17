"""dask arrays in, lazy dask results out.

``dispatch`` detects dask inputs and holds the shared helpers; ``rows`` the
probability-row reductions (``split`` when the category axis spans chunks);
``other`` every other public function.
"""
