"""The worker never turns debug logging on behind the user's back (Faust's spinner does, at WARNING
and above, which made every aiokafka debug call build a record: a fifth of the CPU)."""

from __future__ import annotations

import logging

import pytest

from kpi_rules import load_rules
from streams.app import create_app, faust_worker_for
from streams.settings import Settings


@pytest.mark.parametrize("level", ["warning", "error", "info"])
def test_setting_up_the_root_logger_keeps_debug_off(level: str, tmp_path: object) -> None:
    settings = Settings(log_level=level, data_dir=tmp_path)  # type: ignore[arg-type]
    worker = create_app(settings, load_rules())
    faust_worker = faust_worker_for(worker, settings)
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    try:
        if not root.handlers:
            root.addHandler(logging.NullHandler())
        root.setLevel(getattr(logging, level.upper()))
        faust_worker.on_setup_root_logger(root, getattr(logging, level.upper()))
        assert not logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)
        assert root.level == getattr(logging, level.upper())
    finally:
        root.setLevel(saved_level)
        root.handlers[:] = saved_handlers
