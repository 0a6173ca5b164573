"""CRM events (contract sections 1 and 2): field types, models, decoding, rejections, examples."""

from kpi_core.events.decode import decode_event, decode_obj
from kpi_core.events.examples import example_events
from kpi_core.events.fields import UNKNOWN
from kpi_core.events.models import (
    CHANNELS,
    EVENT_MODELS,
    EVENT_TYPES,
    BaseEvent,
    DealCreated,
    DealLost,
    DealStageChanged,
    DealWon,
    Event,
    LeadCreated,
    QuoteSent,
    RepEvent,
    SpendRecorded,
    SurveyCompleted,
    TargetSet,
    VisitCompleted,
)
from kpi_core.events.rejection import Rejection
from kpi_rules.vocabulary import Reason, values

REASONS = values(Reason)

__all__ = [
    "CHANNELS",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "REASONS",
    "UNKNOWN",
    "BaseEvent",
    "DealCreated",
    "DealLost",
    "DealStageChanged",
    "DealWon",
    "Event",
    "LeadCreated",
    "QuoteSent",
    "Rejection",
    "RepEvent",
    "SpendRecorded",
    "SurveyCompleted",
    "TargetSet",
    "VisitCompleted",
    "decode_event",
    "decode_obj",
    "example_events",
]
