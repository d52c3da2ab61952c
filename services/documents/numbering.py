"""Document numbers from a merchant's pattern: formatting only.

Placeholders: ``{YYYY}`` (2026), ``{YY}`` (26), ``{MM}`` (01-12) from the issue date, and the
sequence number exactly once, as ``{seq}`` (no padding) or ``{seq:0N}`` (zero-padded to N digits,
1 <= N <= 12; a longer number is not cut). ``{{`` and ``}}`` are literal braces. Anything else in
braces is refused, so a typo cannot end up printed on every invoice. Allocating the next
sequence number without gaps happens elsewhere; this module only turns it into text.

>>> from datetime import date
>>> format_number("INV-{YYYY}-{seq:05}", 42, date(2026, 11, 3))
'INV-2026-00042'
>>> format_number("{YY}{MM}/{seq}", 7, date(2026, 1, 31))
'2601/7'
"""
from __future__ import annotations

import re
from datetime import date
from string import Formatter

_DATE_FIELDS = {
    "YYYY": lambda d: f"{d.year:04d}",
    "YY": lambda d: f"{d.year % 100:02d}",
    "MM": lambda d: f"{d.month:02d}",
}
_SEQ_SPEC = re.compile(r"^0([1-9]|1[0-2])$")
_MAX_LENGTH = 64
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


def _parse(pattern: str) -> list[tuple[str, str | None, int | None]]:
    """``[(literal, field or None, seq width or None), ...]``; raises ``ValueError``."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("number pattern must be a non-empty string")
    if len(pattern) > _MAX_LENGTH:
        raise ValueError(f"number pattern is longer than {_MAX_LENGTH} characters")
    if _FORBIDDEN.search(pattern):
        raise ValueError("number pattern must not contain control characters (tabs, newlines)")
    try:
        parsed = list(Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"number pattern {pattern!r} has unbalanced braces: {exc}") from exc
    parts: list[tuple[str, str | None, int | None]] = []
    seq_count = 0
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None, None))
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (
            f":{spec}" if spec else "") + "}"
        if conversion:
            raise ValueError(f"number pattern placeholder {shown} may not use a conversion")
        if name == "seq":
            seq_count += 1
            width = None
            if spec:
                match = _SEQ_SPEC.match(spec)
                if not match:
                    raise ValueError(
                        f"number pattern placeholder {shown}: padding must be written "
                        "{seq:0N} with N from 1 to 12, e.g. {seq:05}"
                    )
                width = int(match.group(1))
            parts.append((literal, "seq", width))
        elif name in _DATE_FIELDS:
            if spec:
                raise ValueError(f"number pattern placeholder {shown} takes no format")
            parts.append((literal, name, None))
        else:
            raise ValueError(
                f"unknown placeholder {shown} in number pattern {pattern!r}; "
                "use {YYYY}, {YY}, {MM}, {seq} or {seq:0N}"
            )
    if seq_count != 1:
        raise ValueError(
            f"number pattern {pattern!r} must contain the sequence exactly once "
            f"({{seq}} or e.g. {{seq:05}}), found it {seq_count} times"
        )
    return parts


def validate_pattern(pattern: str) -> None:
    """Raise ``ValueError`` with a readable message unless ``pattern`` can number documents."""
    _parse(pattern)


def format_number(pattern: str, seq: int, issued_on: date) -> str:
    """The document number for sequence number ``seq`` (>= 0) issued on ``issued_on``."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ValueError(f"sequence number must be an int, got {seq!r}")
    if seq < 0:
        raise ValueError(f"sequence number must not be negative, got {seq}")
    if not isinstance(issued_on, date):
        raise ValueError(f"issued_on must be a date, got {issued_on!r}")
    out: list[str] = []
    for literal, name, width in _parse(pattern):
        out.append(literal)
        if name == "seq":
            out.append(f"{seq:0{width}d}" if width else str(seq))
        elif name is not None:
            out.append(_DATE_FIELDS[name](issued_on))
    return "".join(out)
