"""crmlink's benchmark harness: ``python -m bench`` (see README.md, "Benchmarks").

Each phase (CSV import, reading the interactions table, audit, API syncs) runs in a
child process of its own, so its peak memory (``ru_maxrss`` from ``os.wait4``) is its
own; the figures that matter are ratios measured within one run.
"""
