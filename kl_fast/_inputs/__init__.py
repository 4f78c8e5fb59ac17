"""Inputs: from what a user passes to 2-D row views the kernels take.

``prepare`` (``prepare_inputs``: gather, coerce, the result dtype),
``array_types`` (numpy/torch/JAX/pandas in and out), ``pandas_labels`` (label
alignment), ``validation`` (argument and dtype checks), ``shapes``
(broadcasting and the category axis: ``make_rows``, ``RowBatch``),
``batch_views`` (batches of small matrices).
"""
