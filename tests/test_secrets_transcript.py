"""Issue 9, item 7: transcripts are redacted structurally. The client's lines of the
AUTH exchange and the server's 334 continuations become a fixed marker; ordinary
server text is never searched for the password, so with the password ``Python``
the aiosmtpd banner "… Python SMTP 1.4.x" stays intact and nothing in the
support view or the wizard hints at the password."""
from __future__ import annotations

import base64
import html
import re

import pytest

from conftest import SMTP_USERNAME, run_connection_test, smtp_form
from helpers import choose_other, enable_prechat, store_id_of, support_agent
from smtp_servers import start_test_server

PASSWORD = "Python"
OWNER = "owner@bluefern.example.com"


def transcripts(page: str) -> list[list[str]]:
    return [html.unescape(block).splitlines() for block in re.findall(r'<details class="transcript">.*?<pre>(.*?)</pre>',
                                                                       page, re.S)]


def secret_forms() -> list[str]:
    forms = [base64.b64encode(PASSWORD.encode()).decode(),
             base64.b64encode(f"\0{SMTP_USERNAME}\0{PASSWORD}".encode()).decode()]
    return forms + [base64.b64encode(SMTP_USERNAME.encode()).decode()]


@pytest.mark.parametrize("mechanism, excluded", [("PLAIN", ()), ("LOGIN", ("PLAIN",))])
def test_a_password_that_appears_in_the_banner_is_neither_masked_nor_hinted(app, merchant, certs, mechanism, excluded):
    with start_test_server("starttls", username=SMTP_USERNAME, password=PASSWORD, cert=certs[0], key=certs[1],
                           exclude_mechanisms=excluded) as server:
        enable_prechat(merchant)
        choose_other(merchant)
        merchant.post("/wizard/smtp", smtp_form(server, password=PASSWORD))
        wizard_page = run_connection_test(merchant).get_data(as_text=True)
        assert 'data-category="ok"' in wizard_page
        merchant.post("/wizard/smtp", smtp_form(server, password="Pythonic-but-wrong"))
        assert 'data-category="auth_failed"' in run_connection_test(merchant).get_data(as_text=True)
    support_page = support_agent(app).get(f"/support/stores/{store_id_of(app, OWNER)}").get_data(as_text=True)

    [passed] = transcripts(wizard_page)
    shown = transcripts(support_page)
    assert len(shown) >= 2  # the latest test and the history
    for lines in [passed, *shown]:
        text = "\n".join(lines)
        banner = lines[0]
        assert re.fullmatch(r"S: 220 smtp\.test-provider\.example Python SMTP \d+\.\d+(\.\d+)?", banner), banner
        # The exchange itself: the command and mechanism, then only markers.
        auth = [i for i, line in enumerate(lines) if line.startswith("C: AUTH")]
        assert len(auth) == 1
        start = auth[0]
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(("C: [redacted]", "S: 334 ")))
        exchange = lines[start:end]
        assert exchange[0] == (f"C: AUTH {mechanism} [redacted]" if mechanism == "PLAIN" else "C: AUTH LOGIN [redacted]")
        assert all(line in ("C: [redacted]", "S: 334 [redacted]") for line in exchange[1:])
        if mechanism == "LOGIN":
            assert exchange[1:] == ["S: 334 [redacted]", "C: [redacted]"]
        assert re.match(r"S: (235|535) ", lines[end])  # the outcome is kept
        # Nothing else is redacted, and no form of the secret appears anywhere.
        assert text.count("[redacted]") == sum(line.count("[redacted]") for line in exchange)
        for secret in secret_forms() + ["Pythonic-but-wrong"]:
            assert secret not in text
        assert "Python SMTP" in text and "[redacted] SMTP" not in text
