"""The rules file: business time zone, currency, stages, retention and alert thresholds."""

from kpi_rules.loader import DEFAULT_RULES_PATH, RulesError, load_rules, packaged_rules_path
from kpi_rules.models import AlertRules, Keep, Rules

__all__ = [
    "DEFAULT_RULES_PATH",
    "AlertRules",
    "Keep",
    "Rules",
    "RulesError",
    "load_rules",
    "packaged_rules_path",
]
