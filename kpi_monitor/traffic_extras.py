"""What comes with the simulated deals: costs (margin), satisfaction scores, lead channels, and
business-hours arithmetic for events that follow later."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from kpi_rules.vocabulary import Channel, DealType

BUSINESS_START, BUSINESS_HOURS = 8, 10  # 08:00-18:00 local, Monday to Friday

#: Where leads come from (weights): inbound web and email most, then phone, events, referrals.
LEAD_CHANNELS: dict[str, float] = {
    Channel.WEB: 0.30,
    Channel.EMAIL: 0.20,
    Channel.PHONE: 0.15,
    Channel.EVENT: 0.13,
    Channel.REFERRAL: 0.10,
    Channel.VISIT: 0.07,
    Channel.OTHER: 0.05,
}
#: Margin points a channel adds to a rep's usual gross margin (referrals and relationships sell
#: at better prices; event and other leads are bought with discounts).
CHANNEL_MARGIN: dict[str, float] = {
    Channel.REFERRAL: 0.05,
    Channel.VISIT: 0.03,
    Channel.WEB: 0.02,
    Channel.EMAIL: 0.0,
    Channel.PHONE: 0.0,
    Channel.OTHER: -0.02,
    Channel.EVENT: -0.04,
}


def lead_channel(rng: random.Random) -> str:
    return rng.choices(list(LEAD_CHANNELS), weights=list(LEAD_CHANNELS.values()))[0]


def cost_of(
    rng: random.Random, amount: Decimal, rep_margin: float, channel: str, deal_type: DealType
) -> Decimal:
    """The cost of what a won deal sold: the rep's usual margin, moved by channel and deal type
    (expansions sell more of what is already set up), with some noise; 10% to 60% margin."""
    margin = rep_margin + CHANNEL_MARGIN.get(channel, 0.0) + rng.gauss(0.0, 0.04)
    if deal_type is DealType.EXPANSION:
        margin += 0.03
    margin = min(0.6, max(0.1, margin))
    return (amount * Decimal(str(round(1 - margin, 4)))).quantize(Decimal("0.01"))


def csat_score(rng: random.Random, satisfied: float) -> int:
    """A 1-5 answer: 4 or 5 with probability `satisfied`, else mostly 3."""
    if rng.random() < satisfied:
        return 5 if rng.random() < 0.55 else 4
    return rng.choices((3, 2, 1), weights=(0.6, 0.25, 0.15))[0]


def nps_score(rng: random.Random, satisfied: float) -> int:
    """A 0-10 answer of a customer of a rep whose CSAT satisfaction is `satisfied` (0.7-0.95):
    promoters (9-10) about `satisfied` - 0.35, detractors (0-6) about 1.1 - `satisfied`."""
    roll = rng.random()
    if roll < satisfied - 0.35:
        return rng.choice((9, 10))
    if roll < satisfied - 0.1:
        return rng.choice((7, 8))
    return rng.choices(range(7), weights=(1, 1, 1, 2, 3, 4, 6))[0]


def business_after(at: datetime, hours: float, zone: ZoneInfo) -> datetime:
    """The instant `hours` business hours after `at` (business hours: BUSINESS_START to
    BUSINESS_START + BUSINESS_HOURS local, Monday to Friday), in `at`'s time zone."""
    local = at.astimezone(zone)
    left = timedelta(hours=hours)
    while True:
        opens = local.replace(hour=BUSINESS_START, minute=0, second=0, microsecond=0)
        closes = opens + timedelta(hours=BUSINESS_HOURS)
        if local.weekday() >= 5 or local >= closes:
            local = (opens + timedelta(days=1)).replace(hour=BUSINESS_START)
            continue
        local = max(local, opens)
        if local + left < closes:
            return (local + left).astimezone(at.tzinfo)
        left -= closes - local
        local = (opens + timedelta(days=1)).replace(hour=BUSINESS_START)
