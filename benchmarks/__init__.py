"""The benchmarks, run from the checkout as `python -m benchmarks.<module>` (suite, hot_path, ...)."""
