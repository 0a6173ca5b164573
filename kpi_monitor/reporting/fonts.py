"""Fonts of the charts: matplotlib's DejaVu Sans, with Noto Sans CJK SC behind it for zh-CN, and a
check that every glyph drawn was found (matplotlib only warns, and draws a box)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from matplotlib import font_manager

LATIN = "DejaVu Sans"  # shipped inside matplotlib: always there
CJK = "Noto Sans CJK SC"  # Debian fonts-noto-cjk (scripts/install-system-deps.sh, the Dockerfile)
#: The families a chart's text is drawn with, per locale: the first that has a glyph draws it.
FAMILIES: dict[str, tuple[str, ...]] = {"en": (LATIN, CJK), "zh-CN": (LATIN, CJK)}
#: What the HTML/PDF text asks for (the PDF renderer finds them through fontconfig).
CSS_FAMILIES: dict[str, str] = {
    "en": '"DejaVu Sans", "Helvetica Neue", Arial, "Noto Sans CJK SC", sans-serif',
    "zh-CN": '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", '
    '"DejaVu Sans", sans-serif',
}
T = TypeVar("T")


class FontError(RuntimeError):
    """A font the locale needs is not installed, or a text has a glyph no font draws."""


def families(locale: str) -> list[str]:
    """The installed families of `locale`; zh-CN without its CJK font is an error."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    if CJK not in installed:
        # matplotlib caches the font list once (~/.cache/matplotlib): a font installed since
        # then is found on disk and added here
        for path in font_manager.findSystemFonts():
            if "NotoSansCJK" in path.replace("-", "").replace("_", ""):
                font_manager.fontManager.addfont(path)
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
    wanted = FAMILIES.get(locale, FAMILIES["en"])
    if locale == "zh-CN" and CJK not in installed:
        raise FontError(
            f"zh-CN charts need the font {CJK!r}: install the Debian package fonts-noto-cjk "
            "(scripts/install-system-deps.sh does)"
        )
    return [name for name in wanted if name in installed] or [LATIN]


@contextmanager
def glyphs_checked(what: str) -> Iterator[None]:
    """Fails (FontError) when matplotlib warns that a glyph is missing from every font."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    missing = sorted({str(w.message) for w in caught if "missing from font" in str(w.message)})
    if missing:
        raise FontError(f"{what}: " + "; ".join(missing))


def checked(what: str, draw: Callable[[], T]) -> T:
    with glyphs_checked(what):
        return draw()
