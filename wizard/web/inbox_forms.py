"""The inbox's forms: a chat reply, a follow-up email, a template's wording,
the store's sending settings."""
from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from wizard.web.forms import no_control_characters, no_nul, real_email

MAX_REPLY_CHARS = 2000


def whole_number(label: str, low: int, high: int):
    """A validator: empty, or ASCII digits from ``low`` to ``high`` (never int() on unbounded input)."""
    def check(_form, field) -> None:
        text = (field.data or "").strip()
        if not text:
            return
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise ValidationError(f"Enter {label} as a whole number from {low:,} to {high:,}.")
    return check


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply in the chat", validators=[
        DataRequired("Write a reply first."),
        Length(max=MAX_REPLY_CHARS, message=f"Keep a chat message under {MAX_REPLY_CHARS:,} characters."), no_nul])


class ComposeForm(FlaskForm):
    # Made when the form is first shown; the queue sends one email per key.
    draft_key = HiddenField()
    subject = StringField("Subject")
    body = TextAreaField("Message")
    order_number = StringField("Order number")
    carrier = StringField("Carrier")
    tracking_link = StringField("Tracking link")


class TemplateForm(FlaskForm):
    """One kind's wording; the page's CSRF token is checked by ``ActionForm`` (four forms share it)."""

    class Meta:
        csrf = False

    subject = StringField("Subject")
    body = TextAreaField("Message")


class SendSettingsForm(FlaskForm):
    reply_to = EmailField("Reply-To address",
                          validators=[Optional(), Length(max=254), no_control_characters, real_email])
    per_minute = StringField("Emails per minute", validators=[
        DataRequired("Enter how many emails may go out per minute."), whole_number("the limit per minute", 1, 1000)])
    per_day = StringField("Emails per day", validators=[whole_number("the limit per day", 1, 1_000_000)])
