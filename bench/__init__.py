"""The performance benchmark of issue 10: the whole system under load, one table of figures.

    python -m bench                      # every scenario, about 5 minutes
    python -m bench --smoke              # a few seconds per scenario (CI keeps it from rotting)
    python -m bench --scenario overhead --duration 300

`run()` is the library entry point; `render()` prints the table. See docs/PERFORMANCE.md.
"""

from bench.report import Report, render, run

__all__ = ["Report", "render", "run"]
