"""Flask-WTF forms: CSRF and field shapes. SMTP field checks live in
``wizard.smtp.validation`` so the live endpoint and the CLI share them."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from wizard.smtp.header_text import breaks_header


def no_control_characters(_form, field) -> None:
    """One line of visible text: the shared check for every value that can reach a header."""
    if breaks_header(field.data):
        raise ValidationError("Remove line breaks (including Unicode line and paragraph separators) "
                              "and invisible control characters.")


def no_nul(_form, field) -> None:
    if field.data and "\x00" in field.data:
        raise ValidationError("Remove the invisible NUL character.")


def real_email(_form, field) -> None:
    """An address shape check with ``email-validator``, no network look-ups."""
    if not field.data:
        return
    try:
        field.data = validate_email(field.data.strip(), check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(str(exc)) from exc


class SignUpForm(FlaskForm):
    store_name = StringField("Store name", validators=[
        DataRequired("Enter your store's name."), Length(max=120), no_control_characters])
    email = EmailField("Email", validators=[
        DataRequired("Enter your email address."), Length(max=254), no_control_characters, real_email])
    password = PasswordField("Password", validators=[
        DataRequired("Choose a password."), Length(min=8, max=200, message="Use 8 to 200 characters.")])

    def validate_password(self, field) -> None:
        if not field.errors:
            refuse_weak_password(field, self.email.data or "", self.store_name.data or "")


def refuse_weak_password(field, email: str, store_name: str) -> None:
    """A guessable password is refused, saying why (``wizard.passwords``)."""
    from wizard.accounts.passwords import weakness

    reason = weakness(field.data or "", email=email, store_name=store_name)
    if reason:
        raise ValidationError(reason)


class ChangePasswordForm(FlaskForm):
    """The account page's password change; the view sets ``email`` and ``store_name``
    so the new password is not derived from them."""

    email = ""
    store_name = ""
    current_password = PasswordField("Current password", validators=[
        DataRequired("Enter your current password."), Length(max=200)])
    new_password = PasswordField("New password", validators=[
        DataRequired("Choose a new password."), Length(min=8, max=200, message="Use 8 to 200 characters.")])
    repeat_password = PasswordField("Repeat the new password", validators=[DataRequired("Type the new password again.")])

    def validate_new_password(self, field) -> None:
        if not field.errors:
            refuse_weak_password(field, self.email, self.store_name)

    def validate_repeat_password(self, field) -> None:
        if field.data and field.data != self.new_password.data:
            raise ValidationError("The two new passwords are not the same.")


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254), no_control_characters])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])


class SignOutForm(FlaskForm):
    pass


class SignOutEverywhereForm(FlaskForm):
    """CSRF only: ends every session of the member."""


class PreChatForm(FlaskForm):
    enabled = BooleanField("Show the pre-chat form to visitors")
    email_required = BooleanField("Ask for the email address (required)")
    name_mode = SelectField(
        "Name field",
        choices=[SelectChoice("off", "Don't ask"), SelectChoice("optional", "Optional"), SelectChoice("required", "Required")],
        default="optional",
    )
    intro = TextAreaField("Text above the form", validators=[Optional(), Length(max=300), no_control_characters])


class ProviderForm(FlaskForm):
    """Provider cards; the view checks the key against the catalogue."""

    provider = StringField("Provider", validators=[DataRequired("Choose a provider."), Length(max=20)])
    ses_region = StringField("Amazon SES region", validators=[Optional(), Length(max=30)])


class SmtpForm(FlaskForm):
    """CSRF only: the fields are checked by ``check_smtp_settings``."""


class ActionForm(FlaskForm):
    """A bare form for buttons (test, save, confirm): CSRF only."""


class SendTestForm(FlaskForm):
    recipient = EmailField("Send the test email to", validators=[
        DataRequired("Enter the address to send to."), Length(max=254), no_control_characters, real_email])


class ChecklistForm(FlaskForm):
    arrived = BooleanField("It arrived")
    sender_name = BooleanField("The sender name looks right")
    not_spam = BooleanField("It was in the inbox, not in spam")


class VisitorForm(FlaskForm):
    name = StringField("Your name", validators=[Length(max=120), no_control_characters])
    email = EmailField("Your email", validators=[Length(max=254), no_control_characters, real_email])
    message = TextAreaField("How can we help?", validators=[Length(max=2000), no_nul])


class VisitorReplyForm(FlaskForm):
    """The local test mailbox's "Reply as the visitor" (development mode)."""

    body = TextAreaField("Your reply, as the visitor", validators=[
        DataRequired("Write the visitor's reply."), Length(max=5000), no_nul])
