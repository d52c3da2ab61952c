"""The hosted signup page: ``/signup/{merchant}/{plan_variant_id}``."""
from __future__ import annotations

from werkzeug.wrappers import Response

from services.common.errors import InvalidInput, NotFound

from .. import web
from ..http import error_page, route
from ..i18n import translator

FIELD_ORDER = ["company_name", "first_name", "last_name", "email", "street", "house_number",
               "address_line_2", "postal_code", "city", "country", "phone", "vat_id",
               "dispatch_type", "birth_date"]
FIELD_LABELS = {"company_name": "Company", "first_name": "First name", "last_name": "Last name",
                "email": "E-mail", "street": "Street", "house_number": "House number",
                "address_line_2": "Additional address line", "postal_code": "Postal code",
                "city": "City", "country": "Country", "phone": "Phone", "vat_id": "VAT ID",
                "dispatch_type": "Dispatch", "birth_date": "Birth date"}


class SignupPages:
    # -- hosted signup page -----------------------------------------------------------------------
    @route("GET", "/signup/<string:slug>/<string:variant_id>")
    def signup_page(self, request, slug, variant_id):
        language = web.language_of(request)
        page = self._signup_page(slug, variant_id, language)
        if isinstance(page, Response):
            return page
        values = {name: request.args.get(name) for name in FIELD_ORDER if request.args.get(name)}
        return self._render_signup(page, language, values, {})

    @route("POST", "/signup/<string:slug>/<string:variant_id>")
    def signup_submit(self, request, slug, variant_id):
        language = web.language_of(request)
        t = translator(language)
        page = self._signup_page(slug, variant_id, language)
        if isinstance(page, Response):
            return page
        form = request.form
        values = {name: form.get(name, "") for name in FIELD_ORDER}
        if web.cross_site(request) or not web.check_form_token(
                self.config["SECRET_KEY"], f"signup|{slug}|{variant_id}", form.get("csrf_token")):
            errors = {"_form": [{"code": "csrf",
                                 "message": t("The form has expired. Please submit it again.")}]}
            return self._render_signup(page, language, values, errors, status=400)
        order = {
            "customer": {k: v for k, v in values.items() if page["fields"].get(k) != "hidden"},
            "components": {key[len("component."):]: value for key, value in form.items()
                           if key.startswith("component.")},
            "coupon_code": form.get("coupon_code") or None,
            "accepted_terms": form.getlist("accepted_terms"),
            "external_id": form.get("external_id") or None,
            "language": language,
        }
        try:
            result = self.signup_rpc.submit_order(page["merchant"]["id"], variant_id, order,
                                                  self_service=True)
        except InvalidInput as exc:
            return self._render_signup(page, language, values, exc.fields, status=400)
        target = result.get("success_url") or (
            f"/signup/{slug}/{variant_id}/done?language={language}")
        separator = "&" if "?" in target else "?"
        return Response(status=303, headers={
            "Location": f"{target}{separator}contractId={result['contract_id']}"})

    @route("GET", "/signup/<string:slug>/<string:variant_id>/done")
    def signup_done(self, request, slug, variant_id):
        language = web.language_of(request)
        contract_id = request.args.get("contractId", "")[:64]
        return web.html("signup_done.html", language=language, t=translator(language),
                        styling={}, contract_id=contract_id)

    def _signup_page(self, slug, variant_id, language):
        try:
            return self.signup_rpc.get_signup_page(slug, variant_id, language)
        except NotFound:
            return error_page(404, language)

    def _render_signup(self, page, language, values, errors, status=200):
        scope = f"signup|{page['merchant']['slug']}|{page['variant']['id']}"
        return web.html("signup.html", status, language=language, t=translator(language),
                        page=page, values=values, errors=errors,
                        styling=page.get("styling") or {},
                        csrf_token=web.form_token(self.config["SECRET_KEY"], scope),
                        field_order=FIELD_ORDER, labels=FIELD_LABELS)
