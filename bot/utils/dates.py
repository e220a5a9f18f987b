"""Dates as a person reads them, in their language."""

from datetime import datetime

from babel.dates import format_date as babel_format_date


def format_date(moment: datetime, language: str) -> str:
    """E.g. "31 December 2026" / "31 декабря 2026 г."."""
    return babel_format_date(moment.date(), format="long", locale=language)
