"""Deliverability checks (SPF, DMARC, DKIM), the provider guess and the
``dns-check`` command, against a real DNS server on 127.0.0.1."""
from __future__ import annotations

import json
import time

import pytest

from wizard.catalogue import load_catalogue
from wizard.dns.deliverability import check_domain, normalise_domain
from wizard.dns.provider_guess import guess_provider
from wizard.dns.resolver import DnsLookupError, DnsResolver

from dns_server import DnsTestServer

KEY = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC3testkey"
GOOGLE = "v=spf1 include:_spf.google.com ~all"
TEN_LOOKUPS = ("v=spf1 a mx include:_spf.google.com include:sendgrid.net include:amazonses.com "
               "include:mailgun.org include:spf.protection.outlook.com")

ZONE = {
    # Providers' own SPF records, as the includes reach them (Google's nests 3 more).
    "_spf.google.com": {"TXT": ["v=spf1 include:_netblocks.google.com include:_netblocks2.google.com "
                                "include:_netblocks3.google.com ~all"]},
    "_netblocks.google.com": {"TXT": ["v=spf1 ip4:35.190.247.0/24 ~all"]},
    "_netblocks2.google.com": {"TXT": ["v=spf1 ip6:2001:4860:4000::/36 ~all"]},
    "_netblocks3.google.com": {"TXT": ["v=spf1 ip4:172.217.0.0/19 ~all"]},
    "sendgrid.net": {"TXT": ["v=spf1 ip4:167.89.0.0/17 ~all"]},
    "amazonses.com": {"TXT": ["v=spf1 ip4:199.255.192.0/22 ~all"]},
    "mailgun.org": {"TXT": ["v=spf1 ip4:209.61.151.0/24 ~all"]},
    "spf.protection.outlook.com": {"TXT": ["v=spf1 ip4:40.92.0.0/15 -all"]},
    # Everything right for Google Workspace; a long TXT record that only fits over TCP.
    "direct.test": {"TXT": ["google-site-verification=abc", GOOGLE, "x" * 600]},
    "_dmarc.direct.test": {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@direct.test"]},
    "google._domainkey.direct.test": {"TXT": [("v=DKIM1; k=rsa; ", "p=MIGfMA0GCSqGSIb3DQEB")]},
    # include chain 3 deep before Google's.
    "nested.test": {"TXT": ["v=spf1 include:spf1.nested.test -all"]},
    "spf1.nested.test": {"TXT": ["v=spf1 include:spf2.nested.test ~all"]},
    "spf2.nested.test": {"TXT": ["v=spf1 include:spf3.nested.test ~all"]},
    "spf3.nested.test": {"TXT": [GOOGLE]},
    "redirect.test": {"TXT": ["v=spf1 redirect=_spf.redirect.test"]},
    "_spf.redirect.test": {"TXT": ["v=spf1 include:sendgrid.net ~all"]},
    "redirect-with-all.test": {"TXT": ["v=spf1 -all redirect=_spf.redirect.test"]},
    "outlookonly.test": {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"]},
    "bare.test": {"TXT": ["some-verification=1"]},
    "twospf.test": {"TXT": [GOOGLE, "v=spf1 include:sendgrid.net ~all"]},
    "loop.test": {"TXT": ["v=spf1 include:a.loop.test ~all"]},
    "a.loop.test": {"TXT": ["v=spf1 include:b.loop.test ~all"]},
    "b.loop.test": {"TXT": ["v=spf1 include:a.loop.test ~all"]},
    "ten.test": {"TXT": [TEN_LOOKUPS + " ~all"]},
    "eleven.test": {"TXT": [TEN_LOOKUPS + " ptr ~all"]},
    "dangling.test": {"TXT": ["v=spf1 include:nowhere.test ~all"]},
    # DMARC variants.
    "_dmarc.p-none.test": {"TXT": ["v=DMARC1; p=none"]},
    "_dmarc.p-quarantine.test": {"TXT": ["v=DMARC1;p=Quarantine;pct=100"]},
    "_dmarc.p-reject.test": {"TXT": ["v=DMARC1; p=reject; sp=reject"]},
    "_dmarc.nopolicy.test": {"TXT": ["v=DMARC1; rua=mailto:d@nopolicy.test"]},
    "_dmarc.badpolicy.test": {"TXT": ["v=DMARC1; p=maybe"]},
    "_dmarc.twodmarc.test": {"TXT": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]},
    # DKIM: SendGrid's CNAME to its own key, a revoked key.
    "sg.test": {"TXT": ["v=spf1 include:sendgrid.net ~all"]},
    "s1._domainkey.sg.test": {"CNAME": "s1.domainkey.u123.wl.sendgrid.test."},
    "s1.domainkey.u123.wl.sendgrid.test": {"TXT": [KEY]},
    "revoked.test": {"TXT": [GOOGLE]},
    "google._domainkey.revoked.test": {"TXT": ["v=DKIM1; p="]},
    "ses.test": {"TXT": ["v=spf1 include:amazonses.com ~all"]},
    "_dmarc.ses.test": {"TXT": ["v=DMARC1; p=none"]},
    "flaky.test": {"TXT": [GOOGLE]},
    "silent.test": {"TXT": [GOOGLE]},
    # MX for the provider guess.
    "workspace.test": {"MX": [(5, "alt1.aspmx.l.google.com."), (1, "aspmx.l.google.com.")]},
    "m365.test": {"MX": [(0, "m365-test.mail.protection.outlook.com.")]},
    "zohobiz.test": {"MX": [(10, "mx.zoho.eu."), (20, "mx2.zoho.eu.")]},
    "selfhosted.test": {"MX": [(10, "mail.selfhosted.test."), (20, "backup.aspmx.l.google.com.")]},
    "gmail.com": {"TXT": ["v=spf1 redirect=_spf.google.com"]},
}


@pytest.fixture(scope="module")
def server():
    with DnsTestServer(ZONE, silent={"silent.test"}, servfail={"_dmarc.flaky.test"}) as running:
        yield running


@pytest.fixture
def resolver(server):
    return DnsResolver(server.nameserver, timeout=1)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- resolver -------------------------------------------------------------

def test_resolver_joins_strings_follows_truncation_and_sorts_mx(resolver):
    assert "x" * 600 in resolver.txt_records("direct.test")  # > 512 bytes: came over TCP
    assert resolver.txt_records("google._domainkey.direct.test") == ["v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEB"]
    assert resolver.mx_hosts("workspace.test") == ["aspmx.l.google.com", "alt1.aspmx.l.google.com"]
    assert resolver.txt_records("nothing-here.test") == []  # NXDOMAIN
    assert resolver.mx_hosts("direct.test") == []  # no MX
    with pytest.raises(DnsLookupError) as failure:
        resolver.txt_records("_dmarc.flaky.test")
    assert failure.value.reason == "servfail"


# --- SPF ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("domain", "provider", "status"),
    [
        ("direct.test", "gmail", "pass"),
        ("nested.test", "gmail", "pass"),
        ("redirect.test", "sendgrid", "pass"),
        ("redirect-with-all.test", "sendgrid", "provider_missing"),  # redirect= ignored next to -all
        ("outlookonly.test", "gmail", "provider_missing"),
        ("outlookonly.test", "microsoft365", "pass"),
        ("outlookonly.test", None, "pass"),
        ("outlookonly.test", "custom", "pass"),
        ("bare.test", "gmail", "missing"),
        ("twospf.test", "gmail", "invalid"),
        ("ten.test", "gmail", "pass"),
        ("eleven.test", "gmail", "invalid"),
        ("dangling.test", None, "invalid"),
    ],
)
def test_spf_status(resolver, domain, provider, status):
    assert check_domain(domain, provider, resolver)["spf"]["status"] == status


def test_spf_provider_missing_advice_names_the_include(resolver):
    result = check_domain("outlookonly.test", "gmail", resolver)
    assert result["spf"] == {"status": "provider_missing", "record": "v=spf1 include:spf.protection.outlook.com -all"}
    spf_advice = result["advice"][0]
    assert "Add include:_spf.google.com to the SPF record of outlookonly.test" in spf_advice
    assert "v=spf1 include:spf.protection.outlook.com include:_spf.google.com -all" in spf_advice


def test_spf_missing_advice_gives_a_record_for_the_provider(resolver):
    advice = check_domain("bare.test", "brevo", resolver)["advice"][0]
    assert "Publish an SPF record for bare.test" in advice
    assert "v=spf1 include:spf.brevo.com ~all" in advice


def test_spf_include_loop_stops(server, resolver):
    before = len(server.queries)
    started = time.monotonic()
    result = check_domain("loop.test", "gmail", resolver)
    assert time.monotonic() - started < 1
    assert result["spf"]["status"] == "invalid"
    assert "loops back on itself (loop.test → a.loop.test → b.loop.test → a.loop.test)" in result["advice"][0]
    assert len(server.queries) - before < 10


def test_spf_over_ten_lookups_is_invalid(resolver):
    result = check_domain("eleven.test", "gmail", resolver)
    assert result["spf"]["record"].startswith("v=spf1 a mx")
    assert "needs more than 10 DNS look-ups" in result["advice"][0]


def test_two_spf_records_are_named_in_the_advice(resolver):
    result = check_domain("twospf.test", "gmail", resolver)
    assert result["spf"] == {"status": "invalid", "record": None}
    assert "twospf.test has 2 SPF records" in result["advice"][0]


# --- DMARC ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("domain", "dmarc"),
    [
        ("p-none.test", {"status": "present", "policy": "none"}),
        ("p-quarantine.test", {"status": "present", "policy": "quarantine"}),
        ("p-reject.test", {"status": "present", "policy": "reject"}),
        ("bare.test", {"status": "missing", "policy": None}),
        ("nopolicy.test", {"status": "invalid", "policy": None}),
        ("badpolicy.test", {"status": "invalid", "policy": None}),
        ("twodmarc.test", {"status": "invalid", "policy": None}),
    ],
)
def test_dmarc(resolver, domain, dmarc):
    assert check_domain(domain, None, resolver)["dmarc"] == dmarc


def test_dmarc_missing_advice(resolver):
    advice = check_domain("bare.test", None, resolver)["advice"]
    assert any(a.startswith("Publish a DMARC record at _dmarc.bare.test: a TXT record with the value "
                            "v=DMARC1; p=none; rua=mailto:") for a in advice)


# --- DKIM -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("domain", "provider", "dkim"),
    [
        ("direct.test", "gmail", {"status": "found", "selector": "google"}),
        ("sg.test", "sendgrid", {"status": "found", "selector": "s1"}),  # via CNAME
        ("bare.test", "gmail", {"status": "not_found", "selector": None}),
        ("revoked.test", "gmail", {"status": "not_found", "selector": None}),
        ("ses.test", "ses", {"status": "unknown", "selector": None}),
        ("bare.test", "zoho", {"status": "unknown", "selector": None}),
        ("direct.test", None, {"status": "unknown", "selector": None}),
    ],
)
def test_dkim(resolver, domain, provider, dkim):
    assert check_domain(domain, provider, resolver)["dkim"] == dkim


def test_dkim_not_found_advice_comes_from_the_catalogue(resolver):
    advice = check_domain("bare.test", "gmail", resolver)["advice"]
    assert any(a.startswith("Turn on DKIM signing in the Google Admin console") and "google._domainkey.bare.test" in a
               for a in advice)


def test_everything_right_means_no_advice(resolver):
    assert check_domain("direct.test", "gmail", resolver)["advice"] == []
    assert check_domain("ses.test", "ses", resolver)["advice"] == []


def test_free_mailbox_domain_gets_one_plain_advice(resolver):
    result = check_domain("gmail.com", "gmail", resolver)
    assert result["spf"]["status"] == "pass"
    assert len(result["advice"]) == 1 and "free mailbox domain" in result["advice"][0]


def test_servfail_leaves_dmarc_undecided_and_says_so(resolver):
    result = check_domain("flaky.test", "gmail", resolver)
    assert result["spf"]["status"] == "pass"
    assert result["dmarc"] == {"status": "invalid", "policy": None}
    assert any("SERVFAIL" in a and "DMARC could not be checked" in a for a in result["advice"])


# --- domain input ---------------------------------------------------------

def test_domain_is_normalised():
    assert normalise_domain(" YourStore.COM. ") == "yourstore.com"
    assert normalise_domain("bücher.example") == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter a domain"),
        ("https://yourstore.com", "without http://"),
        ("your store.com", "spaces"),
        ("yourstore.com\x00", "control"),
        ("\u202eyourstore.com", "invisible"),
        ("me@yourstore.com", "not a whole email address"),
        ("a" * 64 + ".com", "1 to 63 characters"),
        ("yourstore..com", "1 to 63 characters"),
        ("your_store.com", "letters, digits and hyphens"),
        ("localhost", "full domain"),
        ("192.0.2.1", "not an IP address"),
    ],
)
def test_bad_domains_are_refused(resolver, value, message):
    with pytest.raises(ValueError, match=message):
        check_domain(value, None, resolver)


def test_unknown_provider_is_refused(resolver):
    with pytest.raises(ValueError, match="Unknown provider 'yahoo'"):
        check_domain("direct.test", "yahoo", resolver)


# --- provider guess -------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("owner@workspace.test", "gmail"),
        ("m365.test", "microsoft365"),
        ("zohobiz.test", "zoho"),
        ("selfhosted.test", None),  # the preferred MX decides, not a backup
        ("bare.test", None),
        ("Someone@GMAIL.com", "gmail"),
        ("someone@hotmail.com", "microsoft365"),
        ("someone@zohomail.com", "zoho"),
    ],
)
def test_guess_provider(resolver, value, expected):
    assert guess_provider(value, resolver, load_catalogue()) == expected


def test_guess_provider_gives_none_when_dns_is_silent(server):
    quick = DnsResolver(server.nameserver, timeout=0.3)
    assert guess_provider("silent.test", quick, load_catalogue()) is None


# --- the dns-check command -------------------------------------------------

def test_cli_json_is_the_contract(runner, server):
    result = runner.invoke(args=["dns-check", "--domain", "direct.test", "--provider", "gmail",
                                 "--nameserver", server.nameserver, "--timeout", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"domain", "provider", "spf", "dmarc", "dkim", "advice"}
    assert report["domain"] == "direct.test"
    assert report["provider"] == "gmail"
    assert report["spf"] == {"status": "pass", "record": GOOGLE}
    assert report["dmarc"] == {"status": "present", "policy": "reject"}
    assert report["dkim"] == {"status": "found", "selector": "google"}
    assert report["advice"] == []


def test_cli_report_says_what_to_add(runner, server):
    result = runner.invoke(args=["dns-check", "--domain", "outlookonly.test", "--provider", "gmail",
                                 "--nameserver", server.nameserver, "--timeout", "1"])
    assert result.exit_code == 0, result.output
    assert "Deliverability check for outlookonly.test (sending through Gmail / Google Workspace)" in result.stdout
    assert "SPF:   provider_missing" in result.stdout
    assert "Add include:_spf.google.com to the SPF record of outlookonly.test" in result.stdout
    assert "Publish a DMARC record at _dmarc.outlookonly.test" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "direct.test", "--provider", "yahoo"], "unknown provider 'yahoo'"),
        (["--domain", "http://direct.test"], "without http://"),
        (["--domain", "direct test"], "spaces"),
        (["--domain", "direct.test", "--nameserver", "dns.example.com:53"], "not an IP address"),
        (["--domain", "direct.test", "--nameserver", "127.0.0.1:0"], "not a port number"),
        (["--domain", "direct.test", "--timeout", "0"], "positive number"),
        (["--domain", "direct.test", "--timeout", "-2"], "positive number"),
        (["--provider", "gmail"], "Missing option '--domain'"),
    ],
)
def test_cli_bad_arguments_exit_2(runner, args, message):
    result = runner.invoke(args=["dns-check", *args, "--json"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_cli_silent_domain_answers_within_timeout(runner, server):
    started = time.monotonic()
    result = runner.invoke(args=["dns-check", "--domain", "silent.test", "--provider", "gmail",
                                 "--nameserver", server.nameserver, "--timeout", "1", "--json"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed < 1 + 1
    report = json.loads(result.stdout)
    assert report["spf"] == {"status": "invalid", "record": None}
    assert report["dmarc"] == {"status": "invalid", "policy": None}
    assert report["dkim"] == {"status": "unknown", "selector": None}
    assert len(report["advice"]) == 1
    assert "did not answer for silent.test within 1 s" in report["advice"][0]
    assert "SPF, DMARC and DKIM could not be checked" in report["advice"][0]
