"""`python -m bench.profiling OUT MODULE`: `python -m MODULE` under cProfile, stats to OUT.

The bench starts a service this way with `--profile DIR` (py-spy and pyinstrument are not
dependencies). Read the result with `python -m pstats OUT` (sort tottime, stats 30).
"""

import cProfile
import runpy
import signal
import sys


def main() -> None:
    out, module = sys.argv[1], sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    # uvicorn re-raises SIGTERM once shut down cleanly, which would kill us before the dump.
    signal.raise_signal = lambda _signum: None
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
