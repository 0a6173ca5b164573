"""Adapters around the KPI core: the Faust app, its Redis store, metrics and HTTP."""
