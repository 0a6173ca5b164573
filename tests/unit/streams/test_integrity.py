"""Resuming routed partitions from the state saved in Redis, and what is reported when the input
can no longer give back everything (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from streams.integrity.markers import parse_instant
from streams.integrity.plan import plan_resume
from streams.integrity.rebuild import InputCoverage


def test_a_state_behind_the_commit_replays_what_it_lacks() -> None:
    plan = plan_resume(saved=49, committed=120, earliest=0)
    assert (plan.start, plan.seek, plan.lost_writes, plan.rebuild) == (50, 50, True, False)


def test_redis_without_the_partition_replays_it_from_the_start() -> None:
    plan = plan_resume(saved=None, committed=120, earliest=0)
    assert (plan.start, plan.seek, plan.lost_writes, plan.rebuild) == (0, 0, True, False)


def test_nothing_to_do_when_the_state_is_at_or_ahead_of_the_commit() -> None:
    assert plan_resume(saved=119, committed=120, earliest=0).seek is None
    plan = plan_resume(saved=200, committed=120, earliest=0)  # flushed, crashed before the commit
    assert (plan.start, plan.seek, plan.lost_writes) == (201, None, False)
    fresh = plan_resume(saved=None, committed=None, earliest=0)
    assert (fresh.start, fresh.seek, fresh.lost_writes, fresh.rebuild) == (0, None, False, False)


def test_a_gap_the_routed_topic_no_longer_holds_means_a_rebuild() -> None:
    plan = plan_resume(saved=49, committed=120, earliest=80)
    assert (plan.start, plan.seek, plan.lost_writes, plan.rebuild) == (80, 80, True, True)
    never = plan_resume(saved=None, committed=None, earliest=30)  # nothing applied, oldest deleted
    assert (never.start, never.seek, never.rebuild) == (30, None, True)


@given(
    end=st.integers(0, 200),
    applied=st.integers(-1, 200),
    rolled_back_to=st.integers(-1, 200),
    commit_lag=st.integers(0, 20),
    earliest=st.integers(0, 200),
    committed_ever=st.booleans(),
)
def test_whatever_redis_rolled_back_to_every_missing_message_is_applied_once(
    end: int, applied: int, rolled_back_to: int, commit_lag: int, earliest: int, committed_ever: bool
) -> None:
    """A routed partition holds offsets [earliest, end); the worker had applied up to `applied`
    (and committed a little less); Redis then came back with the state as of `rolled_back_to`."""
    assume(applied < end and rolled_back_to <= applied and earliest <= end)
    committed = max(applied + 1 - commit_lag, 0) if committed_ever else None
    saved = None if rolled_back_to < 0 else rolled_back_to
    plan = plan_resume(saved, committed, earliest)
    # Where the consumer reads from: the seek, else the commit, else the oldest message kept.
    position = plan.seek if plan.seek is not None else (committed if committed is not None else earliest)
    position = max(position, earliest)
    assert position <= plan.start  # nothing between the resume point and the consumer skipped
    # The processor applies a message only when its offset is past the state's saved offset.
    state_offset = plan.start - 1
    applied_now = [o for o in range(position, end) if o > state_offset]
    lacking = list(range(rolled_back_to + 1, end))
    if plan.rebuild:
        assert earliest > rolled_back_to + 1  # the routed topic lost some of what Redis lacks
        assert applied_now == list(range(earliest, end))  # the rest comes from the input topics
    else:
        assert applied_now == lacking  # exactly what Redis lacks: no gap, no double
    assert plan.lost_writes == (committed is not None and committed > rolled_back_to + 1)


def test_input_coverage_names_the_latest_first_message_of_partitions_that_lost_some() -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    coverage = InputCoverage(
        {"crm.deals:0": 0, "crm.deals:1": 500, "crm.visits:0": 20},
        {"crm.deals:0": t0, "crm.deals:1": t0 + timedelta(days=3), "crm.visits:0": t0 + timedelta(days=1)},
    )
    assert coverage.lost_before() == t0 + timedelta(days=3)
    assert InputCoverage({"crm.deals:0": 0}, {"crm.deals:0": t0}).lost_before() is None


def test_instants_written_in_redis_are_read_back_or_ignored() -> None:
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert parse_instant(at.isoformat()) == at
    assert parse_instant(None) is None and parse_instant("") is None and parse_instant("soon") is None
