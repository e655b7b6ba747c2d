"""Rendering follow-up emails from templates (``wizard.compose``, no Flask, no database)."""
from __future__ import annotations

import re

import pytest

from wizard.outbox.compose import (
    KINDS,
    QUOTED_MESSAGES,
    ChatLine,
    ComposeValues,
    check_template,
    default_templates,
    placeholders,
    render_email,
)

CHAT = [ChatLine("visitor", "Do you ship to Oslo?"), ChatLine("merchant", "Yes, in 3 days."),
        ChatLine("visitor", "Great <b>thanks</b>\nand gift wrap?")]


def values(**overrides) -> ComposeValues:
    base = dict(store_name="Blue Fern & Co", visitor_name="Ada", messages=CHAT)
    base.update(overrides)
    return ComposeValues(**base)


def codes(problems) -> list[tuple[str, str]]:
    return [(p.field, p.code) for p in problems]


@pytest.mark.parametrize("kind", KINDS)
def test_every_default_template_renders(kind):
    template = default_templates()[kind]
    extra = dict(order_number="A-1001", carrier="Posten", tracking_link="https://track.example/A-1001") \
        if kind == "order_update" else {}
    email, problems = render_email(kind, template.subject, template.body, values(**extra))
    assert problems == []
    assert "{" not in email.subject and "{" not in email.body_text
    assert "Hi Ada," in email.body_text
    assert "> You: Do you ship to Oslo?" in email.body_text
    assert "<blockquote>" in email.body_html and "</html>" in email.body_html
    assert check_template(kind, template.subject, template.body) == []


def test_placeholders_are_filled_in_text_and_html():
    email, problems = render_email(
        "order_update", "Order {order_number} from {store_name}",
        "Hi {visitor_name},\n\nOrder {order_number} ships with {carrier}.\nTrack it: {tracking_link}\n\n"
        "{last_messages}\n\nBye",
        values(order_number="A-1001", carrier="Posten <Norway>", tracking_link="https://track.example/?id=1&x=\"2\""),
    )
    assert problems == []
    assert email.subject == "Order A-1001 from Blue Fern & Co"
    assert "Order A-1001 ships with Posten <Norway>." in email.body_text
    assert "Track it: https://track.example/?id=1&x=\"2\"" in email.body_text
    # The HTML: escaped, in paragraphs, a link only for the http(s) tracking link.
    html = email.body_html
    assert "<p>Hi Ada,</p>" in html
    assert "Posten &lt;Norway&gt;" in html
    assert '<a href="https://track.example/?id=1&amp;x=&quot;2&quot;">' in html
    assert "<br>" in html  # the single line break inside a paragraph
    assert "<title>Order A-1001 from Blue Fern &amp; Co</title>" in html
    assert html.count("<a ") == 1


def test_quoted_messages_text_and_blockquote():
    email, _ = render_email("follow_up", "Hi", "Before\n{last_messages}\nAfter", values())
    assert ("> You: Do you ship to Oslo?\n> Blue Fern & Co: Yes, in 3 days.\n"
            "> You: Great <b>thanks</b>\n> and gift wrap?") in email.body_text
    html = email.body_html
    assert "<p>Before</p>\n<blockquote>" in html and "</blockquote>\n<p>After</p>" in html
    assert "Great &lt;b&gt;thanks&lt;/b&gt;<br>\nand gift wrap?" in html
    assert "<b>" not in html


def test_only_the_last_few_messages_are_quoted():
    many = [ChatLine("visitor", f"message {n}") for n in range(QUOTED_MESSAGES + 3)]
    email, _ = render_email("follow_up", "Hi", "{last_messages}", values(messages=many))
    assert "message 2" not in email.body_text and f"message {QUOTED_MESSAGES + 2}" in email.body_text
    assert email.body_text.count("> You:") == QUOTED_MESSAGES


@pytest.mark.parametrize("link", ["javascript:alert(1)", "ftp://files.example/x", "track.example/123", "http:///nohost",
                                  "https://track.example/a b"])
def test_tracking_link_is_a_link_only_for_http(link):
    email, problems = render_email("order_update", "Order {order_number}", "Track: {tracking_link}",
                                   values(order_number="1", tracking_link=link))
    assert problems == []
    assert "<a " not in email.body_html
    assert f"<p>Track: {link}</p>" in email.body_html


def test_visitor_without_a_name_is_greeted_anyway():
    email, _ = render_email("follow_up", "Hello {visitor_name}", "Hi {visitor_name},", values(visitor_name=None))
    assert email.subject == "Hello there" and email.body_text == "Hi there,\n"


def test_literal_braces():
    email, problems = render_email("follow_up", "Use {{code}}", "Price {{ 10 }} for {store_name}", values())
    assert problems == []
    assert email.subject == "Use {code}" and email.body_text == "Price { 10 } for Blue Fern & Co\n"


@pytest.mark.parametrize("kind, subject, body, expected", [
    ("follow_up", "Hi {visitor_nam}", "Body", [("subject", "unknown_placeholder")]),
    ("follow_up", "Hi", "Body {coupon_code}", [("body", "unknown_placeholder")]),
    ("follow_up", "Hi", "Order {order_number}", [("body", "unknown_placeholder")]),
    ("follow_up", "", "Body", [("subject", "subject_empty")]),
    ("follow_up", "   ", "Body", [("subject", "subject_empty")]),
    ("follow_up", "Hi", "  \n ", [("body", "body_empty")]),
    ("follow_up", "Hi\r\nBcc: x@example.com", "Body", [("subject", "subject_control")]),
    ("follow_up", "Hi\x00", "Body", [("subject", "subject_control")]),
    ("follow_up", "Hi", "Body\x07", [("body", "body_control")]),
    ("follow_up", "x" * 201, "Body", [("subject", "subject_too_long")]),
    ("order_update", "Order {order_number}", "Body", [("order_number", "value_missing")]),
])
def test_problems_are_reported_beside_the_field(kind, subject, body, expected):
    email, problems = render_email(kind, subject, body, values())
    assert email is None
    assert codes(problems) == expected


def test_unknown_placeholder_is_named():
    _, problems = render_email("follow_up", "Hi", "Your code: {coupon}", values())
    assert "{coupon}" in problems[0].text and "{visitor_name}" in problems[0].text
    _, problems = render_email("reminder", "{tracking_link}", "Body", values())
    assert problems[0].text == "The placeholder {tracking_link} only works in order updates."


def test_oversized_body_states_the_limit():
    _, problems = render_email("follow_up", "Hi", "x" * 1001, values(), max_body_chars=1000)
    assert codes(problems) == [("body", "body_too_long")]
    assert "1,001" in problems[0].text and "limit is 1,000" in problems[0].text
    # Placeholders can push a short template over the limit too.
    big = [ChatLine("visitor", "y" * 600)] * 3
    _, problems = render_email("follow_up", "Hi", "{last_messages}", values(messages=big), max_body_chars=1000)
    assert codes(problems) == [("body", "body_too_long")] and "limit is 1,000" in problems[0].text


def test_multi_line_placeholder_cannot_go_in_the_subject():
    _, problems = render_email("follow_up", "About {last_messages}", "Body", values())
    assert codes(problems) == [("subject", "subject_control")]
    assert "{last_messages}" in problems[0].text


def test_order_values_are_one_line():
    _, problems = render_email("order_update", "Order {order_number}", "Body {carrier}",
                               values(order_number="1\r\nBcc: x@example.com", carrier="Posten"))
    assert codes(problems) == [("order_number", "value_control")]


def test_crlf_from_the_browser_becomes_newlines():
    email, _ = render_email("follow_up", "Hi", "One\r\n\r\nTwo", values())
    assert email.body_text == "One\n\nTwo\n"
    assert "<p>One</p>\n<p>Two</p>" in email.body_html


def test_reminder_footer_links_to_the_unsubscribe_page():
    url = "https://shop.example/u/abc.def"
    email, _ = render_email("reminder", "Hi", "Come back", values(), unsubscribe_url=url)
    assert email.body_text.startswith("Come back\n\n--\n")
    assert email.body_text.rstrip().endswith(url)
    assert f'<a href="{url}">Stop these reminders</a>' in email.body_html
    with pytest.raises(ValueError):
        render_email("reminder", "Hi", "Come back", values(), unsubscribe_url="javascript:x")


def test_order_placeholders_belong_to_order_updates_only():
    assert "tracking_link" in placeholders("order_update")
    assert "tracking_link" not in placeholders("reminder")
    with pytest.raises(ValueError):
        check_template("newsletter", "Hi", "Body")


def test_html_email_is_styled_inline_with_the_system_font():
    email, _ = render_email("follow_up", "Hello", "Hi {visitor_name},\n\nThanks.", values(visitor_name="Ada"))
    body = email.body_html
    # Inline on the wrappers (clients drop <style> blocks), sans-serif, never the client's default serif.
    assert '<body style="margin:0;' in body and "<style" not in body
    assert re.search(r'<div style="[^"]*font-family:-apple-system,[^"]*sans-serif;[^"]*">\n<p>Hi Ada,</p>', body)


def test_html_has_no_unescaped_markup_from_values():
    email, _ = render_email("follow_up", "{visitor_name}", "{visitor_name} {store_name}",
                            values(visitor_name="<script>x</script>", store_name="A\"B'<i>"))
    tags = set(re.findall(r"<(/?[a-z]+)", email.body_html))
    assert tags <= {"html", "/html", "head", "/head", "meta", "title", "/title", "body", "/body", "div", "/div", "p", "/p"}
