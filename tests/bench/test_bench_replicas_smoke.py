"""`python -m bench --replicas 1,2` still runs: the same figures with two of each service.

Nothing here is timed: the benchmark reports, it does not gate CI (issue 10).
"""

import pytest

from tests.bench.test_bench_smoke import smoke


@pytest.mark.timeout(600)
def test_smoke_run_with_two_replicas_of_each_service_answers_as_with_one() -> None:
    stdout, rows = smoke("--replicas", "1,2", "--scenario", "overhead")
    by = {(row[0], row[1]): row[2] for row in rows}
    assert {row[0] for row in rows} == {"overhead (1+1)", "overhead (2+2)"}, stdout
    for count in (1, 2):
        answered = next(
            v for (s, f), v in by.items() if s == f"overhead ({count}+{count})" and f == "answered"
        )
        assert answered.split()[0] == answered.split()[-1], stdout  # all of them
    assert "2 + 2 backend + bot processes" in stdout, stdout
