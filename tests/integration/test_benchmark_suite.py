"""The one-command benchmark suite (`python -m benchmarks.suite`) runs end to end at tiny sizes and writes
a RESULTS.md with all four sections, each a table of numeric figures and ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchmarks import suite

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("throughput", "latency", "recovery", "soak")
NUMBER = re.compile(r"^[-+]?\d[\d,]*(\.\d+)?$")


def _section(text: str, name: str) -> str:
    match = re.search(rf"<!-- BEGIN section:{name} -->\n(.*?)<!-- END section:{name} -->", text, re.DOTALL)
    assert match, f"section {name} missing"
    return match.group(1)


def _table(section: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first Markdown table of a section."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(lines) >= 3, f"no table in:\n{section}"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def _first_number(cell: str) -> str:
    return cell.split()[0] if cell.split() else ""


def test_quick_suite_writes_every_section(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.suite", "--quick", "--output", str(output),
            "--bootstrap", kafka_bootstrap, "--redis", redis_url, "--without-customers",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=420,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    text = output.read_text()
    for key in ("CPU", "nproc", "RAM", "OS", "Python", "Kafka", "Redis", "git commit", "date", "command"):
        assert f"| {key} |" in text, key
    assert "python -m benchmarks.suite --quick" in text
    for name in SECTIONS:
        section = _section(text, name)
        assert "_Measured " in section and "commit `" in section, name  # each section is stamped
        assert "This run failed" not in section, section
        header, rows = _table(section)
        ratio_columns = [i for i, title in enumerate(header) if "ratio" in title.lower()]
        assert ratio_columns, f"{name}: no ratio column in {header}"
        assert rows, f"{name}: empty table"
        ratios = [_first_number(row[i]) for row in rows for i in ratio_columns]
        assert any(NUMBER.match(r) for r in ratios), f"{name}: no numeric ratio in {ratios}"
        figures = [
            _first_number(cell)
            for row in rows
            for i, cell in enumerate(row)
            if i not in ratio_columns and i > 0
        ]
        assert sum(1 for f in figures if NUMBER.match(f)) >= 2, f"{name}: no numeric figures in {rows}"
    # The customer side's price: a worker without it, timed in the same run as the others.
    _, rows = _table(_section(text, "throughput"))
    without = [row for row in rows if "KPI_CUSTOMER_SIDE=false" in row[0]]
    assert len(without) == 1 and NUMBER.match(_first_number(without[0][1])), rows
    csv = (tmp_path / "soak-memory.csv").read_text().splitlines()
    assert csv[0].startswith("t_s,worker_rss_mib,redis_used_memory_mib") and len(csv) >= 5


def test_a_subset_keeps_the_other_sections() -> None:
    """`--only` rewrites the sections it ran and keeps the others (pure rendering, no stack)."""
    blocks = {n: suite.placeholder(n).replace("Not measured yet", f"old {n}") for n in SECTIONS}
    old = suite.merge("", blocks, "# head\n")
    new_block = suite.placeholder("latency").replace("Not measured yet", "new latency")
    merged = suite.merge(old, {"latency": new_block}, "# new head\n")
    assert merged.startswith("# new head")
    assert "new latency" in merged and "old latency" not in merged
    for name in ("throughput", "recovery", "soak"):
        assert f"old {name}" in merged
    assert re.findall(r"BEGIN section:(\w+)", merged) == list(SECTIONS)
