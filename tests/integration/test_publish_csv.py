"""`kpi-monitor publish EXPORT.csv --mapping M.yaml` into the real broker: what lands on the topics."""

from __future__ import annotations

from pathlib import Path

from kpi_testkit import Deployment
from tests.integration.workers import REPO, consume_topic

EXAMPLES = REPO / "examples"
OPPORTUNITIES = EXAMPLES / "salesforce-opportunities"
QUOTAS = EXAMPLES / "quotas"


def _expected(example: Path) -> list[bytes]:
    """The documented events of an example, byte for byte (see test_csv_mapping.py)."""
    return sorted(example.with_suffix(".events.jsonl").read_bytes().splitlines())


def _publish(deployment: Deployment, csv_path: Path, example: Path) -> tuple[int, str]:
    done = deployment.cli(
        "publish", str(csv_path), "--mapping", str(example.with_suffix(".mapping.yaml")), check=False
    )
    return done.returncode, done.stderr


def test_example_exports_land_on_the_topics_as_the_expected_events(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)  # its own topic prefix
    status, err = _publish(deployment, OPPORTUNITIES.with_suffix(".csv"), OPPORTUNITIES)
    assert status == 0, err
    assert (
        "publish: sent 10 acknowledged by Kafka (deal.created 4, deal.lost 1, deal.stage_changed 3, "
        "deal.won 2); failed 0; refused 0"
    ) in err, err
    deals = consume_topic(deployment, "deals", expected=10)
    assert sorted(record.value for record in deals) == _expected(OPPORTUNITIES)
    assert {record.key for record in deals} == {None}  # the contract does not need keys

    status, err = _publish(deployment, QUOTAS.with_suffix(".csv"), QUOTAS)
    assert status == 0, err
    assert "publish: sent 3 acknowledged by Kafka (target.set 3); failed 0; refused 0" in err, err
    targets = consume_topic(deployment, "targets", expected=3)
    assert sorted(record.value for record in targets) == _expected(QUOTAS)
    # The compacted topic's key: scope:owner|metric|period|period_start (latest revision of each
    # target).
    assert sorted(record.key for record in targets) == [
        b"rep:apatel|revenue|month|2026-11-01",
        b"rep:jsmith|revenue|month|2026-11-01",
        b"rep:mchen|revenue|month|2026-11-01",
    ]
    for topic in ("visits", "quotes", "deadletter"):
        assert consume_topic(deployment, topic) == [], topic


def test_bad_rows_are_refused_with_their_line_and_the_good_ones_still_sent(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    lines = OPPORTUNITIES.with_suffix(".csv").read_text(encoding="utf-8").splitlines()
    bad_stage = lines[1].replace(",Prospecting,", ",On Hold,")
    bad_amount = lines[2].replace('"12,500.00"', '"12.500,00"')
    # Bad rows at lines 3 and 6, good ones around them: the good ones are all sent.
    export = tmp_path / "export.csv"
    export.write_text("\n".join([*lines[:2], bad_stage, *lines[2:4], bad_amount, *lines[4:]]) + "\n")
    status, err = _publish(deployment, export, OPPORTUNITIES)
    assert status == 1, err
    assert "publish: line 3 not sent (unmapped_value): column 'Stage': 'On Hold' is not in" in err
    assert "publish: line 6 not sent (bad_amount): column 'Amount': '12.500,00' is not an amount" in err
    assert (
        "publish: sent 10 acknowledged by Kafka (deal.created 4, deal.lost 1, deal.stage_changed 3, "
        "deal.won 2); failed 0; refused 2 (bad_amount 1, unmapped_value 1)"
    ) in err, err
    deals = consume_topic(deployment, "deals", expected=10)
    assert sorted(record.value for record in deals) == _expected(OPPORTUNITIES)
