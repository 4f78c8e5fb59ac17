"""The ``kl-fast`` command line.

``main`` parses the arguments; ``bench*`` is ``kl-fast bench`` (run, memory,
verdict words, chart); ``score*`` is ``kl-fast score`` (inputs, CSV and
Parquet readers, the output table, error messages).
"""
