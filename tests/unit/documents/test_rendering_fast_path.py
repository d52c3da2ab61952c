"""The fast rendering path: preset font programs instead of per-document subsetting, and the
Factur-X XML embedded by fpdf2 in one pass instead of re-writing the PDF with pypdf.

Both are checked against the slow paths' guarantees: every character code in the PDF maps to
the glyph the original font draws for it, and the factur-x package reads, levels and validates
the embedded XML exactly as it does its own output.
"""
from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import facturx
import pytest
from fontTools import ttLib
from lxml import etree
from pypdf import PdfReader

from services.documents import rendering
from services.documents.document import Line
from services.documents.rendering import EInvoiceError, check_facturx_xml, render_facturx
from tests.unit.documents.test_rendering import (
    CREATED,
    make_buyer,
    make_credit_note,
    make_document,
    make_reminder,
)


def embedded_fonts(pdf: bytes):
    """``(base name, program, {code: gid}, {code: text})`` for each font of page 1."""
    reader = PdfReader(io.BytesIO(pdf))
    out = []
    for ref in reader.pages[0]["/Resources"]["/Font"].values():
        font = ref.get_object()
        cid_font = font["/DescendantFonts"][0].get_object()
        descriptor = cid_font["/FontDescriptor"].get_object()
        program = ttLib.TTFont(io.BytesIO(descriptor["/FontFile2"].get_object().get_data()))
        gid_map = cid_font["/CIDToGIDMap"].get_object().get_data()
        to_unicode = font["/ToUnicode"].get_object().get_data().decode("latin-1")
        texts = {int(code, 16): bytes.fromhex(text).decode("utf-16-be")
                 for code, text in re.findall(r"<([0-9A-F]{4})> <([0-9A-F]+)>", to_unicode)}
        gids = {code: int.from_bytes(gid_map[2 * code:2 * code + 2], "big") for code in texts}
        out.append((str(font["/BaseFont"]).split("+", 1)[1], program, gids, texts))
    return out


def outline(font: ttLib.TTFont, name: str):
    glyf = font["glyf"]
    coordinates, ends, flags = glyf[name].getCoordinates(glyf)
    return list(coordinates), list(ends), [f & 1 for f in flags], font["hmtx"][name][0]


def assert_every_code_draws_its_character(pdf: bytes) -> int:
    checked = 0
    for base, program, gids, texts in embedded_fonts(pdf):
        filename = "DejaVuSans-Bold.ttf" if "Bold" in base else "DejaVuSans.ttf"
        original = ttLib.TTFont(str(rendering.font_dir() / filename))
        cmap = original.getBestCmap()
        order = program.getGlyphOrder()
        for code, text in texts.items():
            expected = outline(original, cmap[ord(text)] if text != "\0" else ".notdef")
            assert outline(program, order[gids[code]]) == expected, (base, text)
            checked += 1
    return checked


def font_lengths(pdf: bytes) -> list[int]:
    reader = PdfReader(io.BytesIO(pdf))
    lengths = []
    for ref in reader.pages[0]["/Resources"]["/Font"].values():
        cid_font = ref.get_object()["/DescendantFonts"][0].get_object()
        stream = cid_font["/FontDescriptor"].get_object()["/FontFile2"].get_object()
        lengths.append(stream["/Length1"])
    return lengths


def preset_lengths() -> list[int]:
    return sorted(face.preset.length for face in rendering._faces().values())


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_latin_documents_embed_the_preset_and_every_code_draws_its_character(language):
    doc = make_document(language=language, lines=[
        Line.of("Ærøskøbing Œuvre – ‹Straße› „Zürich“ № 5 łódź ș ț €", 1, "10", 19, "EUR")])
    pdf = rendering.render_pdf(doc, created_at=CREATED)
    assert sorted(font_lengths(pdf)) == preset_lengths()
    assert assert_every_code_draws_its_character(pdf) > 60


def test_other_scripts_fall_back_to_per_document_subsets_that_draw_correctly():
    doc = make_document(buyer=make_buyer(name="Иван Петров", company="ООО Ромашка"))
    pdf = rendering.render_pdf(doc, created_at=CREATED)
    assert all(length < min(preset_lengths()) for length in font_lengths(pdf))
    assert "ООО Ромашка" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert_every_code_draws_its_character(pdf)


@pytest.mark.parametrize("factory", [make_document, make_credit_note], ids=["invoice", "credit"])
def test_one_pass_factur_x_is_read_levelled_and_validated_by_the_factur_x_package(factory):
    doc = factory()
    pdf, xml = render_facturx(doc, created_at=CREATED)

    filename, embedded = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert (filename, embedded) == ("factur-x.xml", xml)
    assert facturx.get_level(etree.fromstring(embedded)) == "en16931"
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    spec = root["/AF"][0].get_object()
    assert spec["/AFRelationship"] == "/Data" and spec["/UF"] == "factur-x.xml"
    assert spec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert root["/Names"]["/EmbeddedFiles"]["/Names"][0] == "factur-x.xml"
    xmp = reader.xmp_metadata.rdf_root.toxml()
    for expected in ("<pdfaid:part>3</pdfaid:part>", "<pdfaid:conformance>B</pdfaid:conformance>",
                     "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
                     "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
                     "<fx:DocumentType>INVOICE</fx:DocumentType>"):
        assert expected in xmp
    assert reader.xmp_metadata.xmp_create_date.replace(tzinfo=UTC) == CREATED
    assert doc.number in reader.pages[0].extract_text()


def test_one_pass_and_the_packages_own_embedding_carry_the_same_invoice():
    doc = make_document()
    fast, xml = render_facturx(doc, created_at=CREATED)
    slow = rendering.embed_facturx(rendering.render_pdf(doc, created_at=CREATED), xml)
    assert facturx.get_facturx_xml_from_pdf(fast)[1] == facturx.get_facturx_xml_from_pdf(slow)[1]
    assert PdfReader(io.BytesIO(fast)).pages[0].extract_text() == \
        PdfReader(io.BytesIO(slow)).pages[0].extract_text()


def test_the_same_document_renders_to_the_same_bytes():
    doc = make_document()
    assert render_facturx(doc, created_at=CREATED) == render_facturx(doc, created_at=CREATED)
    reminder = make_reminder()
    assert rendering.render_pdf(reminder, created_at=CREATED) == rendering.render_pdf(
        reminder, created_at=CREATED)
    later = datetime(2026, 11, 2, tzinfo=UTC)
    assert render_facturx(doc, created_at=later)[0] != render_facturx(doc, created_at=CREATED)[0]


def test_xml_that_fails_the_xsd_is_refused_before_anything_is_embedded():
    xml = rendering.render_facturx_xml(make_document())
    check_facturx_xml(xml)
    broken = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")
    with pytest.raises(EInvoiceError, match="XSD"):
        check_facturx_xml(broken)
    with pytest.raises(EInvoiceError, match="well-formed"):
        check_facturx_xml(b"<not-closed>")


def test_reminders_have_no_factur_x():
    with pytest.raises(EInvoiceError):
        render_facturx(make_reminder())


@pytest.mark.parametrize("level", ["en16931", None])
@pytest.mark.parametrize("text", [
    "Rechnung INV-2026-00001", "Müller & Söhne <GmbH> \"quoted\" 'single'", "a\tb\nc\rd",
    "Ελληνικά, кириллица, 🧾 emoji", "", "marker \ue000title\ue001 inside", "x" * 300,
])
def test_xmp_from_the_template_equals_the_factur_x_packages_own(text, level):
    created = datetime(2026, 11, 3, 12, 30, 5, tzinfo=UTC)
    kwargs = dict(title=f"Rechnung {text}", author=text, subject=f"{text}!",
                  producer="fpdf2 test", creator_tool="Portico", facturx_level=level)
    expected = rendering._xmp_package(
        rendering._xmp_fields(created, kwargs["title"], kwargs["author"], kwargs["subject"]),
        "fpdf2 test", "Portico", level)
    assert rendering.xmp_metadata(created, **kwargs) == expected
    assert rendering.xmp_metadata(created, **kwargs) == expected  # from the cached template


def test_xmp_with_characters_xml_forbids_is_refused_like_the_package_refuses_it():
    with pytest.raises(ValueError):
        rendering.xmp_metadata(CREATED, title="bell \x07", author="a", subject="s",
                               producer="p", creator_tool="c", facturx_level=None)


def _fast_and_fpdf_paths(render):
    fast = render()
    rendering._PdfWriter.fast_text = False
    try:
        slow = render()
    finally:
        rendering._PdfWriter.fast_text = True
    return fast, slow


@pytest.mark.parametrize("language", ["en", "de", "fr"])
@pytest.mark.parametrize("factory", [make_document, make_credit_note, make_reminder])
def test_text_drawn_directly_gives_the_same_bytes_as_fpdf2s_own_text_and_widths(factory,
                                                                              language):
    doc = factory(language=language, buyer=make_buyer(name="Zoë O'Brien (\\) <&>"),
                  notes=("Long note " * 30,), lines=[
                      Line.of("Sehr lange Beschreibung " * 8 + "Donaudampfschifffahrt" * 4, 3,
                              "12.5", 19, "EUR"),
                      Line.of("Item with the page alias {nb} in it", 1, "-4.50", 19, "EUR"),
                      *[Line.of(f"Seat {i}", i, "1.25", 19, "EUR") for i in range(1, 40)]])
    fast, slow = _fast_and_fpdf_paths(lambda: rendering.render_pdf(doc, created_at=CREATED))
    assert fast == slow
    if doc.is_einvoice:
        fast, slow = _fast_and_fpdf_paths(lambda: render_facturx(doc, created_at=CREATED))
        assert fast == slow


def test_text_in_other_scripts_gives_the_same_bytes_both_ways():
    doc = make_document(buyer=make_buyer(name="Αλέξανδρος Παπαδόπουλος", company="ООО Ромашка"))
    fast, slow = _fast_and_fpdf_paths(lambda: rendering.render_pdf(doc, created_at=CREATED))
    assert fast == slow


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_cached_formatting_equals_babels_for_each_exact_value(language):
    from decimal import Decimal

    from babel.numbers import format_currency, format_decimal, format_percent

    fmt = rendering._Fmt(make_document(language=language, currency="EUR"))
    locale = rendering.LOCALES[language]
    for text in ("1", "1.0", "1.000", "0.0125", "-4.50", "1428.00", "19", "7.7"):
        value = Decimal(text)
        for _ in range(2):  # computed, then cached
            assert fmt.money(value) == format_currency(value, "EUR", locale=locale)
            assert fmt.price(value) == format_currency(value, "EUR", locale=locale,
                                                       decimal_quantization=False)
            assert fmt.quantity(value) == format_decimal(value.normalize(), locale=locale,
                                                         decimal_quantization=False)
            assert fmt.percent(value) == format_percent(value / 100, locale=locale,
                                                        decimal_quantization=False)
