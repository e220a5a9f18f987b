"""The benchmark still runs: `python -m bench --smoke` gives every scenario's figures.

Nothing here is timed: the benchmark reports, it does not gate CI (issue 10).
"""

import re
import subprocess
import sys

import pytest

from bench.scenarios import SCENARIOS
from tests.processes import ROOT

_NUMBER = re.compile(r"^-?\d+(\.\d+)?( |$)")


def smoke(*args: str) -> tuple[str, list[list[str]]]:
    """`python -m bench --smoke ARGS`: its output and the table's rows."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| scenario ")
    ]
    return done.stdout, rows


@pytest.mark.timeout(600)
def test_smoke_run_reports_a_number_for_every_scenario() -> None:
    stdout, rows = smoke()
    assert {row[0] for row in rows} == set(SCENARIOS), stdout
    for scenario, figure, value, _target, _met in rows:
        assert _NUMBER.match(value), f"{scenario} / {figure}: {value!r}"
    assert "cores" in stdout.splitlines()[0], stdout
