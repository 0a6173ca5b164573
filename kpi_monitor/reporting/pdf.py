"""The report as PDF: the same HTML page laid out by WeasyPrint (no browser), charts kept as vectors.

WeasyPrint renders HTML/CSS with Pango (Debian's libpango) and embeds the fonts it uses (Noto
Sans CJK SC for Chinese); the page's CSS sets A4 pages and page numbers."""

from __future__ import annotations

import logging
from pathlib import Path


def write_pdf(html: str, path: Path) -> None:
    from weasyprint import HTML  # imported here: loading Pango takes a moment, only PDF needs it

    # WeasyPrint logs every CSS property it does not know at WARNING (e.g. the screen-only ones).
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    HTML(string=html).write_pdf(path)
