"""Built-in e-mail texts (en/de/fr), used until a merchant saves their own.

They are templates in the same language merchants use (see ``templates.py``), so
``GET /api/v1/email-templates/{kind}/{language}`` can hand them out as a starting point. The
HTML part is made from the text: one paragraph per block, and a block holding only
``{SelfServicePortalUrl}`` becomes a button-like link.
"""
from __future__ import annotations

from markupsafe import escape

PORTAL = "{SelfServicePortalUrl}"
SIGNATURE = {
    "en": "Kind regards\n{{ merchant.name }}",
    "de": "Mit freundlichen Grüßen\n{{ merchant.name }}",
    "fr": "Cordialement,\n{{ merchant.name }}",
}
PORTAL_HINT = {
    "en": "This link is personal and valid for a limited time; please do not forward it.",
    "de": "Dieser Link ist persönlich und nur begrenzt gültig; bitte leiten Sie ihn nicht weiter.",
    "fr": "Ce lien est personnel et valable pour une durée limitée ; merci de ne pas le "
          "transférer.",
}
PORTAL_LABEL = {"en": "Open your customer portal", "de": "Zum Kundenportal",
                "fr": "Ouvrir votre espace client"}

_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "welcome": {
        "en": ("Welcome to {{ contract.plan_name }}",
               "Hello {{ customer.name }},\n\n"
               "thank you for your order. Your contract for {{ contract.plan_name }} starts on "
               "{{ contract.start_date }}.{% if contract.trial_end %} Your trial runs until "
               "{{ contract.trial_end }}.{% endif %}\n\n"
               "In your customer portal you can see your contract, update your details and "
               "download your invoices:\n\n" + PORTAL + "\n\n" + PORTAL_HINT["en"]),
        "de": ("Willkommen bei {{ contract.plan_name }}",
               "Hallo {{ customer.name }},\n\n"
               "vielen Dank für Ihre Bestellung. Ihr Vertrag für {{ contract.plan_name }} "
               "beginnt am {{ contract.start_date }}.{% if contract.trial_end %} Ihre "
               "Testphase läuft bis zum {{ contract.trial_end }}.{% endif %}\n\n"
               "In Ihrem Kundenportal sehen Sie Ihren Vertrag, ändern Ihre Daten und laden "
               "Ihre Rechnungen herunter:\n\n" + PORTAL + "\n\n" + PORTAL_HINT["de"]),
        "fr": ("Bienvenue chez {{ contract.plan_name }}",
               "Bonjour {{ customer.name }},\n\n"
               "merci pour votre commande. Votre contrat {{ contract.plan_name }} commence le "
               "{{ contract.start_date }}.{% if contract.trial_end %} Votre période d'essai "
               "dure jusqu'au {{ contract.trial_end }}.{% endif %}\n\n"
               "Dans votre espace client, vous pouvez consulter votre contrat, modifier vos "
               "données et télécharger vos factures :\n\n" + PORTAL + "\n\n"
               + PORTAL_HINT["fr"]),
    },
    "invoice": {
        "en": ("Your invoice {{ document.number }}",
               "Hello {{ customer.name }},\n\n"
               "please find attached your invoice {{ document.number }} of "
               "{{ document.issue_date }} for {{ contract.plan_name }} over "
               "{{ document.gross_total }}.{% if document.due_date %} It is due on "
               "{{ document.due_date }}.{% endif %}\n\n"
               "All your invoices are also in your customer portal:\n\n" + PORTAL),
        "de": ("Ihre Rechnung {{ document.number }}",
               "Hallo {{ customer.name }},\n\n"
               "anbei erhalten Sie Ihre Rechnung {{ document.number }} vom "
               "{{ document.issue_date }} für {{ contract.plan_name }} über "
               "{{ document.gross_total }}.{% if document.due_date %} Sie ist fällig am "
               "{{ document.due_date }}.{% endif %}\n\n"
               "Alle Ihre Rechnungen finden Sie auch in Ihrem Kundenportal:\n\n" + PORTAL),
        "fr": ("Votre facture {{ document.number }}",
               "Bonjour {{ customer.name }},\n\n"
               "veuillez trouver ci-joint votre facture {{ document.number }} du "
               "{{ document.issue_date }} pour {{ contract.plan_name }} d'un montant de "
               "{{ document.gross_total }}.{% if document.due_date %} Elle est payable au "
               "{{ document.due_date }}.{% endif %}\n\n"
               "Toutes vos factures sont aussi dans votre espace client :\n\n" + PORTAL),
    },
    "credit_note": {
        "en": ("Your credit note {{ document.number }}",
               "Hello {{ customer.name }},\n\n"
               "please find attached your credit note {{ document.number }} of "
               "{{ document.issue_date }} over {{ document.gross_total }}"
               "{% if document.corrects_number %}, correcting invoice "
               "{{ document.corrects_number }}{% endif %}.\n\n"
               "Your documents are also in your customer portal:\n\n" + PORTAL),
        "de": ("Ihre Gutschrift {{ document.number }}",
               "Hallo {{ customer.name }},\n\n"
               "anbei erhalten Sie Ihre Gutschrift {{ document.number }} vom "
               "{{ document.issue_date }} über {{ document.gross_total }}"
               "{% if document.corrects_number %} zur Rechnung "
               "{{ document.corrects_number }}{% endif %}.\n\n"
               "Ihre Dokumente finden Sie auch in Ihrem Kundenportal:\n\n" + PORTAL),
        "fr": ("Votre avoir {{ document.number }}",
               "Bonjour {{ customer.name }},\n\n"
               "veuillez trouver ci-joint votre avoir {{ document.number }} du "
               "{{ document.issue_date }} d'un montant de {{ document.gross_total }}"
               "{% if document.corrects_number %}, qui corrige la facture "
               "{{ document.corrects_number }}{% endif %}.\n\n"
               "Vos documents sont aussi dans votre espace client :\n\n" + PORTAL),
    },
    "reminder": {
        "en": ("Payment reminder {{ document.number }}",
               "Hello {{ customer.name }},\n\n"
               "we have not yet received payment for your invoice over "
               "{{ document.gross_total }}. Please find attached our reminder "
               "{{ document.number }}{% if document.due_date %} and pay by "
               "{{ document.due_date }}{% endif %}. If you have paid in the meantime, please "
               "disregard this message.\n\n"
               "You can check your payment details in your customer portal:\n\n" + PORTAL),
        "de": ("Zahlungserinnerung {{ document.number }}",
               "Hallo {{ customer.name }},\n\n"
               "für Ihre Rechnung über {{ document.gross_total }} haben wir noch keine Zahlung "
               "erhalten. Anbei finden Sie unsere Erinnerung {{ document.number }}"
               "{% if document.due_date %}; bitte zahlen Sie bis zum "
               "{{ document.due_date }}{% endif %}. Falls Sie inzwischen bezahlt haben, "
               "betrachten Sie diese Nachricht bitte als gegenstandslos.\n\n"
               "Ihre Zahlungsdaten prüfen Sie in Ihrem Kundenportal:\n\n" + PORTAL),
        "fr": ("Rappel de paiement {{ document.number }}",
               "Bonjour {{ customer.name }},\n\n"
               "nous n'avons pas encore reçu le paiement de votre facture d'un montant de "
               "{{ document.gross_total }}. Veuillez trouver ci-joint notre rappel "
               "{{ document.number }}{% if document.due_date %} et régler avant le "
               "{{ document.due_date }}{% endif %}. Si vous avez payé entre-temps, merci "
               "d'ignorer ce message.\n\n"
               "Vous pouvez vérifier vos moyens de paiement dans votre espace client :\n\n"
               + PORTAL),
    },
    "cancellation": {
        "en": ("Your cancellation of {{ contract.plan_name }}",
               "Hello {{ customer.name }},\n\n"
               "we have received your cancellation of {{ contract.plan_name }} on "
               "{{ cancellation.requested_on }}. Your contract ends on "
               "{{ cancellation.end_date }}; you can use the service until then.\n\n"
               "Your contract and documents stay available in your customer portal:\n\n"
               + PORTAL),
        "de": ("Ihre Kündigung von {{ contract.plan_name }}",
               "Hallo {{ customer.name }},\n\n"
               "wir haben Ihre Kündigung von {{ contract.plan_name }} am "
               "{{ cancellation.requested_on }} erhalten. Ihr Vertrag endet am "
               "{{ cancellation.end_date }}; bis dahin können Sie den Dienst weiter "
               "nutzen.\n\n"
               "Ihr Vertrag und Ihre Dokumente bleiben in Ihrem Kundenportal verfügbar:\n\n"
               + PORTAL),
        "fr": ("Votre résiliation de {{ contract.plan_name }}",
               "Bonjour {{ customer.name }},\n\n"
               "nous avons bien reçu le {{ cancellation.requested_on }} votre résiliation de "
               "{{ contract.plan_name }}. Votre contrat prend fin le "
               "{{ cancellation.end_date }} ; vous pouvez utiliser le service jusqu'à cette "
               "date.\n\n"
               "Votre contrat et vos documents restent disponibles dans votre espace client :"
               "\n\n" + PORTAL),
    },
    "portal_link": {
        "en": ("Your link to the customer portal",
               "Hello {{ customer.name }},\n\n"
               "here is your personal link to the customer portal for "
               "{{ contract.plan_name }}:\n\n" + PORTAL + "\n\n" + PORTAL_HINT["en"]),
        "de": ("Ihr Link zum Kundenportal",
               "Hallo {{ customer.name }},\n\n"
               "hier ist Ihr persönlicher Link zum Kundenportal für "
               "{{ contract.plan_name }}:\n\n" + PORTAL + "\n\n" + PORTAL_HINT["de"]),
        "fr": ("Votre lien vers l'espace client",
               "Bonjour {{ customer.name }},\n\n"
               "voici votre lien personnel vers l'espace client pour "
               "{{ contract.plan_name }} :\n\n" + PORTAL + "\n\n" + PORTAL_HINT["fr"]),
    },
}

_LAYOUT = (
    '<!doctype html>\n<html lang="{lang}">\n<head><meta charset="utf-8">'
    "<title>{title}</title></head>\n"
    '<body style="margin:0;padding:24px;background:#f6f7f9;font:16px/1.5 Arial,sans-serif;'
    'color:#1b1f24">\n<div style="max-width:560px;margin:0 auto;background:#ffffff;'
    'padding:24px 32px;border:1px solid #d0d7de;border-radius:8px">\n{body}\n</div>\n'
    "</body>\n</html>\n"
)


def html_from_text(text: str, language: str, subject: str) -> str:
    """Paragraphs from blank-line blocks; a block that is only the portal link → a link."""
    blocks = []
    for block in text.split("\n\n"):
        if block.strip() == PORTAL:
            blocks.append(f'<p><a href="{PORTAL}" style="display:inline-block;padding:10px 18px;'
                          f'background:#1f6feb;color:#ffffff;text-decoration:none;'
                          f'border-radius:4px">{escape(PORTAL_LABEL[language])}</a></p>\n'
                          f'<p style="font-size:13px;color:#57606a">{PORTAL}</p>')
        else:
            blocks.append("<p>" + str(escape(block)).replace("\n", "<br>\n") + "</p>")
    return _LAYOUT.format(lang=language, title=subject, body="\n".join(blocks))


def default(kind: str, language: str) -> dict[str, str]:
    """``{"subject", "text", "html"}`` of the built-in template."""
    subject, body = _TEXTS[kind][language]
    text = body + "\n\n" + SIGNATURE[language] + "\n"
    return {"subject": subject, "text": text, "html": html_from_text(text, language, subject)}
