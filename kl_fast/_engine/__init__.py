"""The engine: running a kernel over row blocks and judging what it reports.

``run`` (``Options``, ``run_kernel``, ``finish``, ``deliver``), ``backends``
(the backend registry and "auto"), ``threads`` (the one place the thread
count is decided), ``report`` (kernel reports to error messages), ``scale``
(Gaussian scale codes, the report width), ``config`` (``show_config``).
"""
