"""HTML and PDF reports with charts: a view model from the report document, charts, templates, PDF."""
