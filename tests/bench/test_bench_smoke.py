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


@pytest.mark.timeout(600)
def test_smoke_run_with_two_replicas_of_each_service_answers_as_with_one() -> None:
    stdout, rows = smoke("--replicas", "1,2", "--scenario", "overhead", "--scenario", "ceiling")
    by = {(row[0], row[1]): row[2] for row in rows}
    assert {row[0] for row in rows} == {
        "overhead (1+1)",
        "overhead (2+2)",
        "ceiling (1+1)",
        "ceiling (2+2)",
    }, stdout
    for count in (1, 2):
        answered = next(
            v for (s, f), v in by.items() if s == f"overhead ({count}+{count})" and f == "answered"
        )
        assert answered.split()[0] == answered.split()[-1], stdout  # all of them
    assert "2 + 2 backend + bot processes" in stdout, stdout
