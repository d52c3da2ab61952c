"""Rendering: PDFs a person can read in en/de/fr, and EN 16931 XML a machine can read.

Nothing is replaced: real fonts (``PORTICO_FONT_DIR``), fpdf2, factur-x and its XSD; PDFs are read
back with pypdf.
"""
import io
import re
import shutil
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import facturx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from PIL import Image
from pypdf import PdfReader

from services.documents import rendering
from services.documents.document import Branding, Document, Line, Party, Reference
from services.documents.rendering import (
    EInvoiceError,
    embed_facturx,
    render_facturx_xml,
    render_pdf,
)

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
CREATED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)

TITLES = {
    "invoice": {"en": "Invoice", "de": "Rechnung", "fr": "Facture"},
    "credit_note": {"en": "Credit note", "de": "Gutschrift", "fr": "Avoir"},
    "reminder": {"en": "Payment reminder", "de": "Zahlungserinnerung", "fr": "Rappel de paiement"},
}
# 2 × 600.00 at 19 % = 1,428.00 gross: big enough to show each locale's grouping separator.
GROSS = {"en": "€1,428.00", "de": "1.428,00 €", "fr": "1 428,00 €"}
ISSUED = {"en": "1 Nov 2026", "de": "01.11.2026", "fr": "1 nov. 2026"}
REVERSE_CHARGE = {
    "en": "Reverse charge: VAT to be accounted for by the recipient "
          "(Art. 196 Directive 2006/112/EC).",
    "de": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge) gemäß Art. 196 der "
          "Richtlinie 2006/112/EG.",
    "fr": "Autoliquidation : TVA due par le preneur (art. 196 de la directive 2006/112/CE).",
}
LANGUAGES = ("en", "de", "fr")


def make_party(**overrides) -> Party:
    fields = {
        "name": "Max Müller",
        "company": "Acme Software GmbH",
        "street": "Hauptstraße",
        "house_number": "1a",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "vat_id": "DE136695976",
        "email": "billing@acme.example",
    }
    fields.update(overrides)
    return Party(**fields)


def make_buyer(**overrides) -> Party:
    fields = {
        "name": "Jeanne Dupré",
        "company": "Dupré & Fils SARL",
        "street": "rue de Rivoli",
        "house_number": "5",
        "postal_code": "75001",
        "city": "Paris",
        "country": "FR",
        "vat_id": "FR40303265045",
        "email": "compta@dupre.example",
    }
    fields.update(overrides)
    return Party(**fields)


def make_document(**overrides) -> Document:
    fields = {
        "kind": "invoice",
        "number": "INV-2026-00042",
        "issue_date": date(2026, 11, 1),
        "due_date": date(2026, 11, 15),
        "service_period_start": date(2026, 11, 1),
        "service_period_end": date(2026, 11, 30),
        "currency": "EUR",
        "seller": make_party(),
        "buyer": make_buyer(),
        "lines": [Line.of("Pro plan (monthly)", 2, "600.00", 19, "EUR")],
        "payment_terms": "Payable within 14 days.",
        "language": "en",
    }
    fields.update(overrides)
    return Document.build(**fields)


def make_credit_note(**overrides) -> Document:
    fields = {
        "kind": "credit_note",
        "number": "CN-2026-00007",
        "references": [Reference("INV-2026-00042", date(2026, 10, 1))],
    }
    fields.update(overrides)
    return make_document(**fields)


def make_reminder(**overrides) -> Document:
    fields = {
        "kind": "reminder",
        "number": "REM-2026-00003",
        "lines": [
            Line.of("Invoice INV-2026-00042 of 1 Nov 2026", 1, "1428.00", 0, "EUR",
                    tax_category="O"),
        ],
        "references": [Reference("INV-2026-00042", date(2026, 11, 1))],
        "reminder_level": 2,
        "reminder_fee": Decimal("5.00"),
        "service_period_start": None,
        "service_period_end": None,
    }
    fields.update(overrides)
    return make_document(**fields)


def flat(text: str) -> str:
    """Whitespace (incl. the no-break spaces Babel uses) collapsed to single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return flat(" ".join(page.extract_text() for page in reader.pages))


def xml_tree(xml: bytes):
    return etree.fromstring(xml)


def xpath_text(tree, path: str) -> list[str]:
    return [node.text for node in tree.xpath(path, namespaces=NS)]


def png_logo() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (120, 40), (37, 99, 235, 255)).save(out, format="PNG")
    return out.getvalue()


def jpeg_logo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (90, 30), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


# ---- PDF content in every language


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("factory", [make_document, make_credit_note, make_reminder],
                         ids=["invoice", "credit_note", "reminder"])
def test_pdf_shows_title_number_total_and_both_addresses(factory, language):
    doc = factory(language=language)
    pdf = render_pdf(doc, created_at=CREATED)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)

    assert TITLES[doc.kind][language] in text
    assert doc.number in text
    assert ISSUED[language] in text
    if doc.kind == "reminder":
        # the open amount (gross of the overdue items) and the amount due including the fee
        assert flat(GROSS[language]) in text
        due = {"en": "€1,433.00", "de": "1.433,00 €", "fr": "1 433,00 €"}[language]
        assert flat(due) in text
    else:
        assert flat(GROSS[language]) in text
    for party in (doc.seller, doc.buyer):
        assert party.company in text
        assert party.name in text
        assert party.city in text and party.postal_code in text
        assert party.street in text and party.house_number in text
    country = {"en": ("Germany", "France"), "de": ("Deutschland", "Frankreich"),
               "fr": ("Allemagne", "France")}[language]
    assert all(name in text for name in country)
    assert doc.seller.vat_id in text and doc.buyer.vat_id in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_invoice_pdf_shows_dates_lines_and_tax_breakdown(language):
    doc = make_document(language=language)
    text = pdf_text(render_pdf(doc))
    expected = {
        "en": ["Net total €1,200.00", "VAT 19% on €1,200.00 €228.00", "Total €1,428.00",
               "15 Nov 2026", "1 Nov 2026 – 30 Nov 2026", "Please pay €1,428.00 by 15 Nov 2026."],
        "de": ["Nettobetrag 1.200,00 €", "USt. 19 % auf 1.200,00 € 228,00 €",
               "Gesamtbetrag 1.428,00 €", "15.11.2026", "01.11.2026 – 30.11.2026",
               "Bitte zahlen Sie 1.428,00 € bis zum 15.11.2026."],
        "fr": ["Total HT 1 200,00 €", "TVA 19 % sur 1 200,00 € 228,00 €",
               "Total TTC 1 428,00 €", "15 nov. 2026", "1 nov. 2026 – 30 nov. 2026",
               "Merci de régler 1 428,00 € au plus tard le 15 nov. 2026."],
    }[language]
    for snippet in expected:
        assert flat(snippet) in text, snippet
    assert "Pro plan (monthly)" in text
    assert "Payable within 14 days." in text


def test_credit_note_names_the_invoice_it_corrects_and_asks_for_no_payment():
    text = pdf_text(render_pdf(make_credit_note(language="de")))
    assert "Diese Gutschrift bezieht sich auf die Rechnung INV-2026-00042 vom 01.10.2026." in text
    assert "Bitte zahlen" not in text


def test_reminder_shows_level_open_items_and_fee():
    text = pdf_text(render_pdf(make_reminder(language="de")))
    assert "Mahnstufe 2" in text
    assert "Invoice INV-2026-00042 of 1 Nov 2026" in text
    assert flat("Mahngebühr 5,00 €") in text
    assert flat("Zu zahlender Betrag 1.433,00 €") in text
    assert "Nach unseren Unterlagen" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_reverse_charge_statement_only_when_flagged(language):
    lines = [Line.of("Pro plan (monthly)", 2, "600.00", 0, "EUR")]
    reverse = make_document(language=language, reverse_charge=True, lines=lines)
    normal = make_document(language=language)
    reverse_text = pdf_text(render_pdf(reverse))
    normal_text = pdf_text(render_pdf(normal))
    assert flat(REVERSE_CHARGE[language]) in reverse_text
    assert "2006/112" not in normal_text
    short = {"en": "reverse charge", "de": "Reverse Charge", "fr": "autoliquidation"}[language]
    assert short in reverse_text.split("2006/112")[0]  # the breakdown line names it too


def test_special_characters_render_as_written():
    description = 'Tarif <Pro> & "Plus" – 5 € für Müller, café & crème'
    doc = make_document(
        lines=[Line.of(description, 1, "10.00", 19, "EUR")],
        buyer=make_buyer(company='Smith & <Sons> "Ltd"', name="Zoë Ørsted"),
        notes=["Σας ευχαριστούμε! Спасибо!"],
    )
    text = pdf_text(render_pdf(doc))
    assert description in text
    assert 'Smith & <Sons> "Ltd"' in text and "Zoë Ørsted" in text
    assert "Σας ευχαριστούμε! Спасибо!" in text


def test_control_characters_are_dropped_and_decomposed_accents_composed():
    doc = make_document(lines=[Line.of("Cafe\u0301\x00 line\x07\nbreak", 1, "1", 19, "EUR")])
    text = pdf_text(render_pdf(doc))
    assert "Café line break" in text
    name = xpath_text(xml_tree(render_facturx_xml(doc)), "//ram:SpecifiedTradeProduct/ram:Name")
    assert name == ["Café line break"]


def test_long_descriptions_wrap_without_losing_words():
    words = " ".join(f"word{i}" for i in range(60))
    unbroken = "x" * 150  # wider than the column: cut into pieces, nothing dropped
    doc = make_document(lines=[Line.of(words, 1, "1", 19, "EUR"),
                               Line.of(unbroken, 1, "1", 19, "EUR")])
    text = pdf_text(render_pdf(doc))
    assert words in text
    assert unbroken in text.replace(" ", "")


def test_many_lines_flow_onto_further_pages_with_page_numbers():
    lines = [Line.of(f"Seat {i:03}", 1, "10.00", 19, "EUR") for i in range(1, 81)]
    doc = make_document(lines=lines)
    pdf = render_pdf(doc)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    pages = len(reader.pages)
    text = pdf_text(pdf)
    assert all(f"Seat {i:03}" in text for i in range(1, 81))
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert flat("Total €952.00") in text
    # every page repeats the table header
    assert all("Description" in page.extract_text() for page in reader.pages[:-1])


def test_line_periods_that_differ_from_the_document_period_are_shown():
    line = Line.of("Upgrade (prorated)", 1, "12.34", 19, "EUR",
                   period_start=date(2026, 11, 12), period_end=date(2026, 11, 30))
    text = pdf_text(render_pdf(make_document(lines=[line], language="de")))
    assert "12.11.2026 – 30.11.2026" in text


@pytest.mark.parametrize("logo", [png_logo(), jpeg_logo()], ids=["png", "jpeg"])
def test_logo_is_drawn(logo):
    doc = make_document(branding=Branding(logo=logo, primary_color="#0F766E",
                                          accent_color="#B45309"))
    reader = PdfReader(io.BytesIO(render_pdf(doc)))
    assert len(reader.pages[0].images) == 1
    content = reader.pages[0].get_contents().get_data()
    assert b"0.0588 0.4627 0.4314 rg" in content  # primary colour #0F766E (title, table head)
    assert b"0.7059 0.3255 0.0353" in content  # accent colour #B45309 (rules, total)


def test_fonts_are_embedded_subsets_and_pdf_is_pdfa_ready():
    reader = PdfReader(io.BytesIO(render_pdf(make_document())))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert len(fonts) == 2
    for ref in fonts.values():
        font = ref.get_object()
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor
        assert "DejaVuSans" in font["/BaseFont"]
    root = reader.trailer["/Root"]
    assert root["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    assert root["/Lang"] == "en-GB"


def test_rendering_is_deterministic_for_the_same_document():
    doc = make_document()
    first = PdfReader(io.BytesIO(render_pdf(doc, created_at=CREATED)))
    second = PdfReader(io.BytesIO(render_pdf(doc, created_at=CREATED)))
    assert first.pages[0].get_contents().get_data() == second.pages[0].get_contents().get_data()
    # PDF/A keeps document metadata in XMP (no Info dictionary)
    assert first.xmp_metadata.xmp_create_date.replace(tzinfo=UTC) == CREATED


def test_rendering_from_many_threads_at_once():
    docs = [make_document(number=f"INV-2026-{n:05}", language=LANGUAGES[n % 3])
            for n in range(1, 17)]
    sequential = [pdf_text(render_pdf(doc, created_at=CREATED)) for doc in docs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda d: pdf_text(render_pdf(d, created_at=CREATED)), docs))
    assert parallel == sequential
    assert all(doc.number in text for doc, text in zip(docs, parallel, strict=True))


def test_font_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(rendering.FONT_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="PORTICO_FONT_DIR"):
        render_pdf(make_document())
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(rendering.DEFAULT_FONT_DIR + "/" + name, tmp_path / name)
    assert rendering.font_dir() == tmp_path
    assert "INV-2026-00042" in pdf_text(render_pdf(make_document()))


# ---- EN 16931 XML


@pytest.mark.parametrize("language", LANGUAGES)
def test_invoice_xml_validates_and_carries_the_figures(language):
    doc = make_document(language=language)
    xml = render_facturx_xml(doc)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = xml_tree(xml)
    assert facturx.get_level(tree) == "en16931"
    assert xpath_text(tree, "//rsm:ExchangedDocument/ram:ID") == ["INV-2026-00042"]
    assert xpath_text(tree, "//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert xpath_text(tree, "//ram:IssueDateTime/udt:DateTimeString") == ["20261101"]
    assert xpath_text(tree, "//ram:DueDateDateTime/udt:DateTimeString") == ["20261115"]
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
    assert xpath_text(tree, summation + "TaxBasisTotalAmount") == ["1200.00"]
    assert xpath_text(tree, summation + "TaxTotalAmount") == ["228.00"]
    assert xpath_text(tree, summation + "GrandTotalAmount") == ["1428.00"]
    assert xpath_text(tree, summation + "DuePayableAmount") == ["1428.00"]
    assert xpath_text(tree, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
                            "ram:RateApplicablePercent") == ["19"]
    assert xpath_text(tree, "//ram:BilledQuantity") == ["2"]
    assert xpath_text(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [
        "DE136695976"]
    assert xpath_text(tree, "//ram:BuyerTradeParty//ram:CountryID") == ["FR"]
    assert xpath_text(tree, "//ram:SellerTradeParty/ram:Name") == ["Acme Software GmbH"]


def test_credit_note_xml_is_type_381_and_references_the_invoice():
    xml = render_facturx_xml(make_credit_note())
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = xml_tree(xml)
    assert xpath_text(tree, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert xpath_text(tree, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [
        "INV-2026-00042"]
    assert xpath_text(tree, "//ram:InvoiceReferencedDocument//qdt:DateTimeString") == [
        "20261001"]


def test_reminders_have_no_einvoice():
    with pytest.raises(EInvoiceError, match="not an e-invoice"):
        render_facturx_xml(make_reminder())


def test_reverse_charge_xml_uses_category_ae_with_exemption_reason():
    lines = [Line.of("Pro plan (monthly)", 2, "600.00", 0, "EUR")]
    xml = render_facturx_xml(make_document(reverse_charge=True, lines=lines))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = xml_tree(xml)
    header_tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
    assert xpath_text(tree, header_tax + "CategoryCode") == ["AE"]
    assert xpath_text(tree, header_tax + "ExemptionReasonCode") == ["VATEX-EU-AE"]
    assert xpath_text(tree, header_tax + "CalculatedAmount") == ["0.00"]
    assert any("2006/112" in note for note in xpath_text(tree, "//ram:IncludedNote/ram:Content"))
    assert xpath_text(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [
        "FR40303265045"]


def test_outside_scope_invoice_has_no_vat_ids_but_identifies_the_seller():
    lines = [Line.of("Pro plan (monthly)", 1, "100.00", 0, "EUR", tax_category="O")]
    buyer = make_buyer(country="US", vat_id=None, city="New York", postal_code="10001")
    xml = render_facturx_xml(make_document(lines=lines, buyer=buyer))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = xml_tree(xml)
    assert tree.xpath("//ram:SpecifiedTaxRegistration", namespaces=NS) == []
    assert xpath_text(tree, "//ram:SellerTradeParty/ram:ID") == ["DE136695976"]
    assert tree.xpath("//ram:RateApplicablePercent", namespaces=NS) == []


def test_zero_decimal_currency_xml():
    doc = make_document(currency="JPY", lines=[Line.of("Plan", 3, "333", 10, "JPY")])
    xml = render_facturx_xml(doc)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert xpath_text(xml_tree(xml), "//ram:GrandTotalAmount") == ["1099"]
    assert "￥1,099" in pdf_text(render_pdf(doc)) or "¥1,099" in pdf_text(render_pdf(doc))


def test_discount_lines_get_a_positive_price_and_negative_quantity():
    lines = [Line.of("Plan", 1, "100.00", 19, "EUR"), Line.of("Discount", 1, "-10.00", 19, "EUR")]
    tree = xml_tree(render_facturx_xml(make_document(lines=lines)))
    assert xpath_text(tree, "//ram:ChargeAmount") == ["100.00", "10.00"]
    assert xpath_text(tree, "//ram:BilledQuantity") == ["1", "-1"]
    assert xpath_text(tree, "//ram:LineTotalAmount")[:2] == ["100.00", "-10.00"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seller": make_party(vat_id=None)}, "seller's VAT ID"),
        ({"due_date": None, "payment_terms": None}, "due date or payment terms"),
        ({"lines": [Line.of("a", 1, "1", 0, "EUR", tax_category="O"),
                    Line.of("b", 1, "1", 19, "EUR")]}, "BR-O-11"),
    ],
)
def test_documents_en16931_rejects_raise_einvoice_error(overrides, message):
    with pytest.raises(EInvoiceError, match=message):
        render_facturx_xml(make_document(**overrides))


def test_xml_escapes_markup_and_keeps_unicode():
    description = 'A < B & "C" > D – 5 € für Müller, café'
    doc = make_document(lines=[Line.of(description, 1, "10.00", 19, "EUR")],
                        buyer=make_buyer(company="Smith & <Sons>"))
    xml = render_facturx_xml(doc)
    assert b"A &lt; B &amp; " in xml and b"Smith &amp; &lt;Sons&gt;" in xml
    assert "5 € für Müller, café".encode() in xml  # UTF-8, not character references
    tree = xml_tree(xml)
    assert xpath_text(tree, "//ram:SpecifiedTradeProduct/ram:Name") == [description]
    assert xpath_text(tree, "//ram:BuyerTradeParty/ram:Name") == ["Smith & <Sons>"]
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")


printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn")), min_size=1,
    max_size=80,
).filter(lambda s: s.strip())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(description=printable, company=printable)
def test_any_printable_text_round_trips_through_the_xml(description, company):
    doc = make_document(lines=[Line.of(description, 1, "1.00", 19, "EUR")],
                        buyer=make_buyer(company=company))
    xml = render_facturx_xml(doc)
    tree = xml_tree(xml)
    nfc = unicodedata.normalize
    assert xpath_text(tree, "//ram:SpecifiedTradeProduct/ram:Name") == [nfc("NFC", description)]
    assert xpath_text(tree, "//ram:BuyerTradeParty/ram:Name") == [nfc("NFC", company.strip())]
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")


# ---- Factur-X PDF/A-3


@pytest.mark.parametrize("factory", [make_document, make_credit_note],
                         ids=["invoice", "credit_note"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_embedded_xml_is_extractable_and_valid(factory, language):
    doc = factory(language=language)
    xml = render_facturx_xml(doc)
    pdf = embed_facturx(render_pdf(doc), xml, lang=language)

    filename, extracted = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert extracted == xml
    assert facturx.xml_check_xsd(extracted, flavor="factur-x", level="en16931")

    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert re.search(rb"pdfaid:part(>|=\")3", xmp)
    assert re.search(rb"pdfaid:conformance(>|=\")B", xmp)
    assert b"EN 16931" in xmp
    assert root["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    assert root["/AF"][0].get_object()["/AFRelationship"] == "/Data"
    # still the same readable document
    text = pdf_text(pdf)
    assert doc.number in text and flat(GROSS[language]) in text


def test_embed_refuses_xml_that_is_not_valid_factur_x():
    pdf = render_pdf(make_document())
    bad = render_facturx_xml(make_document()).replace(b"<ram:TypeCode>380", b"<ram:Bogus>380")
    bad = bad.replace(b"</ram:TypeCode>\n    <ram:IssueDateTime>",
                      b"</ram:Bogus>\n    <ram:IssueDateTime>", 1)
    with pytest.raises(Exception, match="not valid"):
        embed_facturx(pdf, bad)


def test_document_kinds_render_without_sharing_state():
    invoice = make_document()
    credit = replace(make_credit_note(), language="fr")
    assert "Avoir" in pdf_text(render_pdf(credit))
    assert "Invoice" in pdf_text(render_pdf(invoice))
