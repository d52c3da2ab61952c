"""The signup page driven in Debian's chromium (Playwright), as its own process.

Playwright's sync API and eventlet (monkey-patched into every test process) both drive the main
thread's greenlets, and together they hang at random; so the browser steps run here, in a plain
interpreter without eventlet, started by the e2e test:

    python -m tests.support.signup_browser BASE_URL SLUG VARIANT_ID COMPONENT_ID

It exits 0 and prints ``{"contract_id": …, "url": …}`` as JSON, or exits 1 with the failed
expectation on stderr.
"""
from __future__ import annotations

import json
import re
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def live_preview_and_localized_error(base_url: str, slug: str, variant: str, seats: str) -> dict:
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base_url}/signup/{slug}/{variant}?language=de")
            total = page.locator("#gross-total")
            expect(total).to_have_text(re.compile(r"46,29\s€"))  # 38,90 € + 19 % USt.

            # the price follows what is typed, without pressing any button
            page.locator(f'[name="component.{seats}"]').fill("3")
            expect(total).to_have_text(re.compile(r"64,14\s€"))  # (38,90 + 15) × 1,19
            page.select_option("#f-country", "FR")
            expect(page.locator("#tax-line")).to_contain_text("USt. 20 %")
            expect(total).to_have_text(re.compile(r"64,68\s€"))

            # a wrong e-mail comes back in German, next to the field, with everything kept
            page.fill("#f-first_name", "Anne")
            page.fill("#f-last_name", "Dupont")
            page.fill("#f-email", "anne-at-example.com")
            page.click("#order-button")
            expect(page.locator("#e-email")).to_have_text(
                "Bitte geben Sie eine gültige E-Mail-Adresse ein.")
            expect(page.locator("#e-terms-0")).to_have_text("Bitte bestätigen Sie dies.")
            expect(page.locator("#f-last_name")).to_have_value("Dupont")
            expect(page.locator(f'[name="component.{seats}"]')).to_have_value("3")
            expect(total).to_have_text(re.compile(r"64,68\s€"))

            page.fill("#f-email", "anne@example.com")
            page.check('input[name="accepted_terms"][value="0"]')
            page.click("#order-button")
            expect(page.locator("#contract-id")).to_have_text(re.compile(r"^ct_"))
            contract_id = page.locator("#contract-id").text_content()
            if errors:
                raise AssertionError(f"JavaScript errors: {errors}")
            return {"contract_id": contract_id, "url": page.url}
        finally:
            browser.close()


if __name__ == "__main__":
    print(json.dumps(live_preview_and_localized_error(*sys.argv[1:5])))
