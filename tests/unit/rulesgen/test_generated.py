"""The committed generated files are current, promtool/amtool accept them, promtool tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kpi_monitor.cli import main
from kpi_monitor.rulesgen import render_all
from kpi_rules import load_rules

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "kpi_rules" / "rules.yaml"


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


def test_committed_files_are_not_stale(tmp_path: Path) -> None:
    assert main(["rules", "--rules", str(RULES), "--out", str(tmp_path)]) == 0
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "nothing generated"
    stale = [
        str(rel)
        for rel in generated
        if not (REPO / rel).is_file() or (REPO / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    assert not stale, (
        "generated files are stale: run `kpi-monitor rules` (from the repository root) and commit:\n  "
        + "\n  ".join(stale)
    )


def test_check_flag_reports_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--rules", str(RULES), "--out", str(tmp_path)]) == 0
    assert main(["rules", "--rules", str(RULES), "--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / "prometheus" / "rules" / "kpi-alerts.yml"
    target.write_text(target.read_text() + "# edited\n")
    (tmp_path / "grafana" / "dashboards" / "service-health.json").unlink()
    capsys.readouterr()
    assert main(["rules", "--rules", str(RULES), "--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "prometheus/rules/kpi-alerts.yml" in err and "service-health.json" in err
    assert "run `kpi-monitor rules`" in err


def test_promtool_check_rules() -> None:
    files = sorted(str(p) for p in (REPO / "prometheus" / "rules").glob("*.yml"))
    assert {Path(f).name for f in files} >= {"kpi-recording.yml", "kpi-alerts.yml", "service.yml"}
    _run([_tool("promtool"), "check", "rules", *files])


def test_promtool_unit_tests() -> None:
    files = sorted(str(p) for p in (REPO / "prometheus" / "tests").glob("*.yml"))
    assert files
    _run([_tool("promtool"), "test", "rules", *files])


def test_amtool_check_config() -> None:
    _run([_tool("amtool"), "check-config", str(REPO / "prometheus" / "alertmanager.yml")])


def test_zh_cn_rules_are_valid_and_chinese(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace("locale: en ", "locale: zh-CN ")
    assert "locale: zh-CN" in text
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(text, encoding="utf-8")
    files = render_all(load_rules(rules_file))
    alerts = files["prometheus/rules/kpi-alerts.yml"]
    assert "销售下滑预警" in alerts  # simplified characters throughout
    assert "銷售" not in alerts
    assert '"title": "销售总览"' in files["grafana/dashboards/sales-overview.json"]
    out = tmp_path / "rules"
    out.mkdir()
    for rel, content in files.items():
        if rel.startswith("prometheus/rules/"):
            (out / Path(rel).name).write_text(content, encoding="utf-8")
    _run([_tool("promtool"), "check", "rules", *sorted(str(p) for p in out.glob("*.yml"))])
