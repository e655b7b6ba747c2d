"""Every SMTP field check of step 3: in the plain module, the live htmx
endpoint and the no-JavaScript form submit (the same message in all three)."""
from __future__ import annotations

import html
import re

import pytest

from wizard.catalogue import load_catalogue
from wizard.smtp.validation import SmtpValues, check_smtp_settings

CATALOGUE = load_catalogue()
APP_PASSWORD = "abcd efgh ijkl mnop"
SENDGRID_KEY = "SG." + "a" * 22 + "." + "b" * 43

# A clean, valid starting point for each provider.
BASE = {
    "gmail": dict(host="smtp.gmail.com", port="587", security="starttls", sender_name="Blue Fern Support",
                  sender_email="support@bluefern.com", username="support@bluefern.com", password=APP_PASSWORD),
    "microsoft365": dict(host="smtp.office365.com", port="587", security="starttls", sender_name="Blue Fern Support",
                    sender_email="support@bluefern.com", username="support@bluefern.com", password="mailbox-pass"),
    "zoho": dict(host="smtp.zoho.com", port="587", security="starttls", sender_name="Blue Fern Support",
                 sender_email="support@bluefern.com", username="support@bluefern.com", password="zoho-pass"),
    "sendgrid": dict(host="smtp.sendgrid.net", port="587", security="starttls", sender_name="Blue Fern Support",
                     sender_email="support@bluefern.com", username="apikey", password=SENDGRID_KEY),
    "mailgun": dict(host="smtp.mailgun.org", port="587", security="starttls", sender_name="Blue Fern Support",
                    sender_email="support@mg.bluefern.com", username="postmaster@mg.bluefern.com", password="mg-pass"),
    "ses": dict(host="email-smtp.us-east-1.amazonaws.com", port="587", security="starttls", sender_name="Blue Fern Support",
                sender_email="support@bluefern.com", username="AKIAIOSFODNN7EXAMPLE", password="ses-smtp-pass"),
    "brevo": dict(host="smtp-relay.brevo.com", port="587", security="starttls", sender_name="Blue Fern Support",
                  sender_email="support@bluefern.com", username="support@bluefern.com", password="xsmtpsib-key"),
    "custom": dict(host="mail.bluefern.com", port="587", security="starttls", sender_name="Blue Fern Support",
                  sender_email="support@bluefern.com", username="support@bluefern.com", password="pass"),
}

# (provider, changed fields, field, code, level)
CASES = [
    # port / security
    ("gmail", {"port": "465", "security": "starttls"}, "port", "port_security_mismatch", "error"),
    ("gmail", {"port": "587", "security": "ssl"}, "port", "port_security_mismatch", "error"),
    ("custom", {"port": "25"}, "port", "port_25_blocked", "hint"),
    ("gmail", {"port": "2525"}, "port", "port_not_offered", "hint"),
    ("sendgrid", {"port": "2525"}, "port", "port_2525_alternative", "hint"),
    ("custom", {"port": "abc"}, "port", "port_not_number", "error"),
    ("custom", {"port": "-5"}, "port", "port_not_number", "error"),
    ("custom", {"port": "0"}, "port", "port_out_of_range", "error"),
    ("custom", {"port": "70000"}, "port", "port_out_of_range", "error"),
    ("custom", {"port": "8587"}, "port", "port_unusual", "hint"),
    ("custom", {"security": "tls1.0"}, "security", "security_invalid", "error"),
    # host
    ("gmail", {"host": "smtp://smtp.gmail.com"}, "host", "host_has_scheme", "error"),
    ("gmail", {"host": "https://smtp.gmail.com/settings"}, "host", "host_has_scheme", "error"),
    ("gmail", {"host": "smtp.gmail.com/path"}, "host", "host_has_path", "error"),
    ("gmail", {"host": "smtp.gmail.com:587"}, "host", "host_has_port", "error"),
    ("gmail", {"host": "smtp. gmail.com"}, "host", "host_has_spaces", "error"),
    ("gmail", {"host": "support@gmail.com"}, "host", "host_is_email", "error"),
    ("custom", {"host": "smtp_mail..example"}, "host", "host_invalid", "error"),
    ("gmail", {"host": "imap.gmail.com"}, "host", "host_read_only", "error"),
    ("microsoft365", {"host": "outlook.office365.com"}, "host", "host_read_only", "error"),
    ("custom", {"host": "pop.bluefern.com"}, "host", "host_looks_read_only", "hint"),
    ("gmail", {"host": "smtp.sendgrid.net"}, "host", "host_other_provider", "hint"),
    ("gmail", {"host": "smtp.gmial.com"}, "host", "host_near_miss", "hint"),
    ("custom", {"host": "smtp.sendgird.net"}, "host", "host_near_miss", "hint"),
    ("gmail", {"host": "mail.bluefern.com"}, "host", "host_not_provider", "hint"),
    ("ses", {"host": "email-smtp.us-east-7.amazonaws.com"}, "host", "ses_region_unknown", "hint"),
    ("ses", {"host": "email-smtp.virginia.amazonaws.com"}, "host", "ses_host_malformed", "error"),
    # username
    ("sendgrid", {"username": "owner@bluefern.com"}, "username", "sendgrid_username_apikey", "error"),
    ("gmail", {"username": "support"}, "username", "username_full_address", "hint"),
    ("microsoft365", {"username": "support"}, "username", "username_full_address", "hint"),
    ("zoho", {"username": "support"}, "username", "username_full_address", "hint"),
    ("brevo", {"username": "support"}, "username", "username_full_address", "hint"),
    ("ses", {"username": "owner@bluefern.com"}, "username", "ses_username_generated", "error"),
    ("mailgun", {"username": "owner@gmail.com"}, "username", "mailgun_username_login", "hint"),
    ("mailgun", {"username": "postmaster"}, "username", "mailgun_username_domain", "hint"),
    # sender email vs username
    ("gmail", {"sender_email": "hello@bluefern.com"}, "sender_email", "sender_alias_send_as", "hint"),
    ("microsoft365", {"sender_email": "hello@bluefern.com"}, "sender_email", "sender_alias_send_as", "hint"),
    ("zoho", {"sender_email": "hello@bluefern.com"}, "sender_email", "sender_alias_send_as", "hint"),
    ("sendgrid", {}, "sender_email", "sender_verified_required", "hint"),
    ("ses", {}, "sender_email", "sender_verified_required", "hint"),
    ("mailgun", {}, "sender_email", "sender_verified_required", "hint"),
    ("brevo", {}, "sender_email", "sender_verified_required", "hint"),
    # A sending service can never send as a free mailbox domain: that blocks (issue 13).
    ("sendgrid", {"sender_email": "bluefern.shop@gmail.com"}, "sender_email", "sender_free_mailbox_service", "error"),
    ("gmail", {"sender_email": "bluefern.shop@gmail.com", "username": "bluefern.shop@gmail.com"},
     "sender_email", "sender_free_mailbox", "hint"),
    ("custom", {"sender_email": "not-an-address"}, "sender_email", "sender_email_invalid", "error"),
    # password
    ("gmail", {"password": "my-normal-google-password"}, "password", "gmail_app_password", "hint"),
    ("sendgrid", {"password": "my-sendgrid-login"}, "password", "sendgrid_api_key", "hint"),
    ("custom", {"password": ""}, "password", "password_required", "error"),
    # sender name
    ("custom", {"sender_name": ""}, "sender_name", "required", "error"),
    ("custom", {"sender_name": "B" * 71}, "sender_name", "sender_name_too_long", "error"),
    ("custom", {"sender_name": "support@bluefern.com"}, "sender_name", "sender_name_is_address", "hint"),
    # control characters in any field
    ("custom", {"sender_name": "Blue\r\nBcc: victim@example.com"}, "sender_name", "control_characters", "error"),
    ("custom", {"host": "mail.bluefern.com\n"}, "host", "control_characters", "error"),
    ("custom", {"sender_email": "support@bluefern.com\r\nBcc: x@y.com"}, "sender_email", "control_characters", "error"),
    ("custom", {"username": "support\x00"}, "username", "control_characters", "error"),
    ("custom", {"password": "pa\nss"}, "password", "control_characters", "error"),
    ("custom", {"port": "587\r"}, "port", "control_characters", "error"),
    ("custom", {"security": "starttls\n"}, "security", "control_characters", "error"),
    ("custom", {"sender_name": "Blue\tFern"}, "sender_name", "control_characters", "error"),
]


def findings_for(provider: str, changes: dict):
    values = dict(BASE[provider], **changes)
    return check_smtp_settings(SmtpValues(provider=provider, **values), CATALOGUE)


@pytest.mark.parametrize("provider", sorted(BASE))
def test_clean_settings_have_no_errors(provider):
    errors = [f for f in findings_for(provider, {}) if f.level == "error"]
    assert errors == []


@pytest.mark.parametrize("provider,changes,field,code,level", CASES, ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_each_check_reports_its_code_next_to_its_field(provider, changes, field, code, level):
    findings = findings_for(provider, changes)
    matching = [f for f in findings if f.code == code]
    assert matching, f"expected {code}, got {[f.code for f in findings]}"
    assert matching[0].field == field
    assert matching[0].level == level
    assert matching[0].text and "{" not in matching[0].text


def test_hints_are_worded_for_the_provider():
    gmail = next(f for f in findings_for("gmail", {"sender_email": "hello@bluefern.com"}) if f.code == "sender_alias_send_as")
    outlook = next(f for f in findings_for("microsoft365", {"sender_email": "hello@bluefern.com"}) if f.code == "sender_alias_send_as")  # noqa: E501
    assert "Send mail as" in gmail.text
    assert "Send As" in outlook.text and "Send mail as" not in outlook.text
    near = next(f for f in findings_for("gmail", {"host": "smtp.gmial.com"}) if f.code == "host_near_miss")
    assert "smtp.gmail.com" in near.text
    scheme = next(f for f in findings_for("gmail", {"host": "smtp://smtp.gmail.com:587"}) if f.code == "host_has_scheme")
    assert "smtp.gmail.com" in scheme.text and "smtp://" in scheme.text


def test_a_real_looking_app_password_with_spaces_is_accepted():
    assert not [f for f in findings_for("gmail", {"password": "abcd efgh ijkl mnop"}) if f.code == "gmail_app_password"]


def test_every_code_has_a_text():
    used = {c[3] for c in CASES}
    assert used <= set(CATALOGUE.hints)


# -- the same messages through the web app ------------------------------------------

ENDPOINT_CASES = [
    ("gmail", {"port": "465"}, "port", "port_security_mismatch"),
    ("gmail", {"host": "imap.gmail.com"}, "host", "host_read_only"),
    ("sendgrid", {"username": "owner@bluefern.com"}, "username", "sendgrid_username_apikey"),
    ("gmail", {"password": "my-normal-google-password"}, "password", "gmail_app_password"),
    ("custom", {"sender_name": "support@bluefern.com"}, "sender_name", "sender_name_is_address"),
]


def feedback_codes(body: str, field: str) -> list[str]:
    block = re.search(rf'<div id="feedback-{field}"[^>]*>(.*?)</div>', body, re.S)
    assert block, f"no feedback region for {field}"
    return re.findall(r'data-code="([a-z0-9_]+)"', block.group(1))


def choose(merchant, provider):
    merchant.post("/wizard/provider", {"provider": provider, "ses_region": "us-east-1"})


@pytest.mark.parametrize("provider,changes,field,code", ENDPOINT_CASES)
def test_live_check_and_full_submit_show_the_same_message(merchant, provider, changes, field, code):
    choose(merchant, provider)
    values = dict(BASE[provider], **changes)
    live = merchant.post("/wizard/smtp/check", values, htmx=True, trigger=field)
    assert live.status_code == 200
    live_body = live.get_data(as_text=True)
    assert code in feedback_codes(live_body, field)
    assert "<html" not in live_body
    submitted = merchant.post("/wizard/smtp", values)
    assert submitted.status_code in (200, 302)
    if submitted.status_code == 302:  # only hints: the draft is saved, the hints follow on the next page
        page = merchant.get("/wizard/smtp").get_data(as_text=True)
    else:
        page = submitted.get_data(as_text=True)
    assert code in feedback_codes(page, field)
    text = re.search(rf'data-code="{code}">(.*?)</p>', live_body, re.S).group(1)
    assert html.unescape(text).strip() in html.unescape(page)


def test_live_check_updates_other_filled_fields_out_of_band(merchant):
    choose(merchant, "gmail")
    values = dict(BASE["gmail"], port="465")
    body = merchant.post("/wizard/smtp/check", values, htmx=True, trigger="security").get_data(as_text=True)
    assert 'id="feedback-port" class="feedback" aria-live="polite" hx-swap-oob="true"' in body
    assert "port_security_mismatch" in feedback_codes(body.split('id="feedback-port"', 1)[0] + '<div id="feedback-port"' + body.split('id="feedback-port"', 1)[1], "port")  # noqa: E501


def test_errors_block_continuing_and_keep_the_draft(merchant):
    choose(merchant, "gmail")
    values = dict(BASE["gmail"], port="465", sender_name="Blue Fern <Support>")
    response = merchant.post("/wizard/smtp", values)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "port_security_mismatch" in feedback_codes(body, "port")
    assert 'value="465"' in body and "Blue Fern &lt;Support&gt;" in body
    # The draft survives a reload, and the test step refuses to run.
    assert 'value="465"' in merchant.get("/wizard/smtp").get_data(as_text=True)
    test_page = merchant.get("/wizard/test").get_data(as_text=True)
    assert "Fix first" in test_page
