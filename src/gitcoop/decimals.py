"""Exact decimal scores: the one canonical text of a value, and the number literals a metric
may print (finite, plain or with an exponent, within a range that keeps texts small)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from gitcoop.errors import FormatError

_MAX_ADJUSTED_EXPONENT = 100
_MAX_SIGNIFICANT_DIGITS = 40
_MAX_LITERAL_CHARS = 200  # longer than any in-range literal needs to be
_SHOW_CHARS = 80

_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NON_FINITE_RE = re.compile(r"[+-]?(?:s?nan[0-9]*|inf|infinity)", re.IGNORECASE)


class Rejected(ValueError):
    """Why printed text is not an acceptable score; public callers re-raise their own error."""


def decimal_text(value: Decimal) -> str:
    """Return the canonical text of a finite Decimal.

    Plain notation (never an exponent), no trailing fractional zeros, no trailing point,
    and zero is always ``"0"``. Raises ValueError if ``value`` is NaN or infinite.
    """
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    text = format(value, "f")  # "f" without a precision keeps every digit, exactly
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def parse_decimal(text: str) -> Decimal:
    """Return the finite Decimal written as ``text``, a plain JSON-style number literal.

    Accepts ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` with an optional exponent, within the range
    allowed for metric scores. Raises FormatError for anything else.
    """
    try:
        return literal(text)
    except Rejected as exc:
        raise FormatError(f"bad decimal {shown(text)}: {exc}") from None


def literal(text: str) -> Decimal:
    if len(text) > _MAX_LITERAL_CHARS:
        raise Rejected(f"it is longer than {_MAX_LITERAL_CHARS} characters")
    if _NON_FINITE_RE.fullmatch(text):
        raise Rejected("it is not finite")
    if not _NUMBER_RE.fullmatch(text):
        raise Rejected("it is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation:  # exponent too large even for the decimal module
        raise Rejected("its exponent is out of range") from None
    return in_range(value)


def in_range(value: Decimal) -> Decimal:
    """Return ``value`` canonicalised, or raise Rejected if it could be a size bomb."""
    if not value.is_finite():
        raise Rejected("it is not finite")
    if value.is_zero():
        return Decimal(0)
    if abs(value.adjusted()) > _MAX_ADJUSTED_EXPONENT:
        limit = _MAX_ADJUSTED_EXPONENT
        raise Rejected(f"its magnitude is outside 1e-{limit}..1e+{limit}")
    digits = "".join(map(str, value.as_tuple().digits)).rstrip("0")
    if len(digits) > _MAX_SIGNIFICANT_DIGITS:
        raise Rejected(f"it has more than {_MAX_SIGNIFICANT_DIGITS} significant digits")
    # Safe now: the plain text is short. Equal scores then always have equal representations.
    return Decimal(decimal_text(value))


def shown(text: str) -> str:
    """``text`` as an error message quotes it: shortened past a few dozen characters."""
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 3] + "..."
    return repr(text)

