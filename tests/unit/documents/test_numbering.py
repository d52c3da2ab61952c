"""Document numbers from merchant patterns: formatting and the refusal of bad patterns."""
from datetime import date

import pytest

from services.documents.numbering import format_number, validate_pattern

NOV_3 = date(2026, 11, 3)


@pytest.mark.parametrize(
    ("pattern", "seq", "issued_on", "expected"),
    [
        ("INV-{YYYY}-{seq:05}", 42, NOV_3, "INV-2026-00042"),
        ("INV-{YYYY}-{seq:05}", 1, NOV_3, "INV-2026-00001"),
        ("{seq}", 7, NOV_3, "7"),
        ("{YY}{MM}-{seq:04}", 12, date(2026, 1, 31), "2601-0012"),
        ("RE/{YYYY}/{MM}/{seq}", 3, date(2026, 12, 1), "RE/2026/12/3"),
        ("{YY}-{seq:02}", 5, date(2000, 6, 1), "00-05"),  # YY keeps its leading zero
        ("{YYYY}-{seq:03}", 9, date(999, 6, 1), "0999-009"),
        ("CN-{seq:012}", 1, NOV_3, "CN-000000000001"),
        ("{{literal}}-{seq}", 3, NOV_3, "{literal}-3"),  # doubled braces are literal braces
        ("Rechnung Nr. {seq:05} – ü€", 3, NOV_3, "Rechnung Nr. 00003 – ü€"),
        ("A-{seq:05}", 0, NOV_3, "A-00000"),
    ],
)
def test_formats_placeholders(pattern, seq, issued_on, expected):
    validate_pattern(pattern)
    assert format_number(pattern, seq, issued_on) == expected


def test_a_sequence_longer_than_its_padding_is_not_cut():
    assert format_number("INV-{seq:03}", 123456, NOV_3) == "INV-123456"


def test_numbers_differ_for_consecutive_sequence_numbers():
    numbers = {format_number("INV-{YYYY}-{seq:03}", n, NOV_3) for n in range(1, 1001)}
    assert len(numbers) == 1000


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("INV-{YYYY}", "exactly once"),
        ("INV-2026-0001", "exactly once"),
        ("{seq}-{seq}", "exactly once"),
        ("INV-{year}-{seq}", "unknown placeholder {year}"),
        ("INV-{yyyy}-{seq}", "unknown placeholder {yyyy}"),  # placeholders are case-sensitive
        ("INV-{DD}-{seq}", "unknown placeholder {DD}"),
        ("INV-{}-{seq}", "unknown placeholder {}"),
        ("INV-{0}-{seq}", "unknown placeholder {0}"),
        ("INV-{seq.real}", "unknown placeholder {seq.real}"),
        ("INV-{seq[0]}", "unknown placeholder {seq[0]}"),
        ("INV-{seq:5}", "{seq:0N}"),  # space padding would print blanks
        ("INV-{seq:00}", "{seq:0N}"),
        ("INV-{seq:013}", "{seq:0N}"),
        ("INV-{seq:x}", "{seq:0N}"),
        ("INV-{seq:{YYYY}}", "{seq:0N}"),
        ("INV-{YYYY:04}-{seq}", "takes no format"),
        ("INV-{seq!r}", "conversion"),
        ("INV-{seq", "unbalanced braces"),
        ("INV-}{seq}", "unbalanced braces"),
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("INV-\n{seq}", "control characters"),
        ("INV-\t{seq}", "control characters"),
        ("X" * 60 + "{seq}", "longer than 64"),
    ],
)
def test_rejects_bad_patterns_with_a_clear_message(pattern, message):
    with pytest.raises(ValueError) as excinfo:
        validate_pattern(pattern)
    assert message in str(excinfo.value)
    with pytest.raises(ValueError):  # format_number validates too
        format_number(pattern, 1, NOV_3)


def test_rejects_a_non_string_pattern():
    with pytest.raises(ValueError, match="non-empty string"):
        validate_pattern(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("seq", [-1, True, 1.0, "1", None])
def test_rejects_sequence_numbers_that_are_not_non_negative_ints(seq):
    with pytest.raises(ValueError, match="sequence number"):
        format_number("INV-{seq}", seq, NOV_3)


def test_rejects_an_issue_date_that_is_not_a_date():
    with pytest.raises(ValueError, match="issued_on"):
        format_number("INV-{seq}", 1, "2026-11-03")  # type: ignore[arg-type]


def test_year_and_month_come_from_the_issue_date_across_a_year_boundary():
    pattern = "{YYYY}{MM}-{seq:03}"
    assert format_number(pattern, 17, date(2026, 12, 31)) == "202612-017"
    assert format_number(pattern, 1, date(2027, 1, 1)) == "202701-001"
