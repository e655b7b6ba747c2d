"""Provider facts as catalogue data (issue 8, point 4): SES eu-south-1 and
FIPS endpoints, SendGrid EU, Brevo's SMTP login, Outlook.com personal
accounts (OAuth only), Microsoft 365's December 2026 change, Zoho's two
kinds of host picked from the sender's domain."""
from __future__ import annotations

import html

import pytest
from test_validation import BASE, findings_for

from wizard.catalogue import load_catalogue
from wizard.smtp.diagnosis import explain

from conftest import sign_up
from helpers import enable_prechat

CATALOGUE = load_catalogue()


def codes(provider, changes):
    return {(f.field, f.code, f.level) for f in findings_for(provider, changes)}


@pytest.mark.parametrize("host", ["email-smtp.eu-south-1.amazonaws.com", "email-smtp-fips.us-east-1.amazonaws.com",
                                  "email-smtp-fips.us-gov-west-1.amazonaws.com"])
def test_ses_milan_and_fips_endpoints_are_known(host):
    found = codes("ses", {"host": host})
    assert not {c for c in found if c[1].startswith("ses_") or c[1] == "host_not_provider"}, found
    assert CATALOGUE.provider_for_host(host).key == "ses"


def test_a_fips_endpoint_aws_does_not_list_is_flagged():
    found = [f for f in findings_for("ses", {"host": "email-smtp-fips.eu-west-1.amazonaws.com"})
             if f.code == "ses_fips_region_unknown"]
    assert found and "email-smtp.eu-west-1.amazonaws.com" in found[0].text


def test_sendgrid_eu_host_is_one_of_its_servers():
    assert CATALOGUE.provider_for_host("smtp.eu.sendgrid.net").key == "sendgrid"
    assert not {c for c in codes("sendgrid", {"host": "smtp.eu.sendgrid.net"}) if c[0] == "host"}


def test_brevo_hint_speaks_of_the_generated_login_and_smtp_key_like_the_card():
    _title, hint = explain("auth_failed", "brevo", {})
    assert "@smtp-brevo.com" in hint and "SMTP key" in hint
    card = CATALOGUE.get("brevo")
    assert "@smtp-brevo.com" in card.username_help and card.password_label == "SMTP Key"


@pytest.mark.parametrize("changes", [
    {"username": "shop@hotmail.com", "sender_email": "shop@hotmail.com"},
    {"username": "shop@outlook.com", "sender_email": "shop@outlook.com"},
    {"host": "smtp-mail.outlook.com"},
])
def test_outlook_com_personal_accounts_cannot_sign_in_with_a_password(changes):
    found = [f for f in findings_for("microsoft365", changes) if f.code == "outlook_personal_oauth_only"]
    assert found and found[0].level == "error"
    assert "16 September 2024" in found[0].text and "cannot work" in found[0].text
    assert "Sign in with Microsoft" in found[0].text  # the OAuth path the wizard offers instead


def test_the_microsoft_365_card_has_the_december_2026_change(client):
    card = " ".join(CATALOGUE.get("microsoft365").notes)
    for words in ("December 2026", "second half of 2027", "16 September 2024", "5.7.30"):
        assert words in card
    merchant = sign_up(client)
    enable_prechat(merchant)
    page = html.unescape(merchant.get("/wizard/provider").get_data(as_text=True))
    assert "December 2026" in page and "16 September 2024" in page


@pytest.mark.parametrize(("email", "host", "kind"), [
    ("owner@bluefern.example.com", "smtppro.zoho.com", "an organisation account"),
    ("bluefern@zohomail.com", "smtp.zoho.com", "a personal account"),
])
def test_zoho_preset_follows_the_senders_domain_and_says_which(client, email, host, kind):
    merchant = sign_up(client, email=email)
    enable_prechat(merchant)
    merchant.post("/wizard/provider", {"provider": "zoho"})
    page = html.unescape(merchant.get("/wizard/smtp").get_data(as_text=True))
    assert f'value="{host}"' in page
    form = {"host": host, "port": "587", "security": "starttls", "sender_name": "Blue Fern", "sender_email": email,
            "username": email, "password": "zoho-pass"}
    live = html.unescape(merchant.post("/wizard/smtp/check", form, htmx=True, trigger="host").get_data(as_text=True))
    assert f"Zoho host {host}: {email} is {kind}" in live


def test_zoho_hint_points_an_organisation_sender_to_smtppro():
    found = [f for f in findings_for("zoho", {"host": "smtp.zoho.eu"}) if f.code == "zoho_account_host"]
    assert found and "smtppro.zoho.eu" in found[0].text
    assert BASE["zoho"]["sender_email"] in found[0].text
