"""A short, real `make bench` against the test stack: the ceilings it starts answer, the
gateway's read and write rows are measured without a failed request, and the result and
its plot are written."""

import json
from pathlib import Path

import pytest

from shopctl.bench import run
from shopctl.local import LocalStack

pytestmark = pytest.mark.integration


def test_a_short_bench_measures_every_row(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "OUT", tmp_path)
    assert run.bench(stack.settings, duration_s=2, checkout=False) == 0
    (result,) = tmp_path.glob("*.json")
    doc = json.loads(result.read_text())
    assert set(doc["rows"]) == {"ceiling_a", "ceiling_b", "read", "write"}
    for name, row in doc["rows"].items():
        assert row["requests"] > 0, name
        assert row["non_2xx"] == 0 and row["socket_errors"] == 0, name
    assert doc["flagged"] == []
    assert result.with_suffix(".png").stat().st_size > 10_000
    # Nothing it started is left behind: no temporary folder, so no pid files either.
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []
