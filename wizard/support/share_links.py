"""Share links: a support agent sends a store a link that opens one wizard step
or help topic, optionally suggesting non-secret SMTP values.

Plain functions over a database session — no Flask. The URL carries only the
``ShareLink`` row's id, signed with itsdangerous (the app's secret key and this
module's salt); the row decides expiry and revocation, so links can be listed
and revoked. Suggested values are never saved on their own: the merchant
accepts them into the draft, and a password can never be part of them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func
from sqlmodel import Session, select

from wizard import audit
from wizard.catalogue import SECURITY_LABELS, Catalogue, template_region
from wizard.catalogue.help import help_topics
from wizard.models import Member, ShareLink, ShareLinkOpening, SmtpDraft, Store, utcnow
from wizard.secrets import SecretBox
from wizard.setup import drafts
from wizard.smtp.validation import CONTROL_CHARACTERS, LABELS, MAX_LENGTH

SALT = "heichat.share-link.v1"
STEP_TARGETS = tuple(slug for slug, _ in drafts.STEPS)
# What a link may suggest, in the order the panel lists them. Never a password.
PREFILL_FIELDS = ("provider", "host", "port", "security", "username", "sender_name", "sender_email")
PREFILL_LABELS = {"provider": "Provider", **{k: v for k, v in LABELS.items() if k != "password"}}
DEFAULT_EXPIRY = timedelta(days=7)
MIN_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=30)
EXPIRY_UNITS = {"hours": timedelta(hours=1), "days": timedelta(days=1)}
NOTE_LIMIT = 500

# Link states, as the list and the opening page name them.
ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"


class ShareLinkError(ValueError):
    """The values for a new link are not acceptable: ``errors`` maps a field to a message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class PasswordRefused(ShareLinkError):
    """Someone tried to put a password into a link."""

    def __init__(self):
        super().__init__({"password": "Share links never carry a password: the merchant types it themselves."})


# -- targets and values --------------------------------------------------------------

def targets() -> list[tuple[str, str, str]]:
    """Every place a link can open: ``(target, title, kind)``, kind "step" or "topic"."""
    steps = [(slug, f"Step {i} · {title}", "step") for i, (slug, title) in enumerate(drafts.STEPS, 1)]
    return steps + [(t.anchor, t.title, "topic") for t in help_topics()]


def target_kind(target: str) -> str | None:
    if target in STEP_TARGETS:
        return "step"
    if any(t.anchor == target for t in help_topics()):
        return "topic"
    return None


def target_title(target: str) -> str:
    return next((title for value, title, _ in targets() if value == target), target)


def clean_prefill(values: Mapping[str, str], providers: Iterable[str]) -> dict[str, str]:
    """The suggested values, checked; blank ones are left out.

    ``providers`` are the catalogue keys this app offers. Any key naming a
    password raises ``PasswordRefused``; unknown keys and malformed values
    raise ``ShareLinkError``.
    """
    if any("password" in str(key).lower() for key in values):
        raise PasswordRefused()
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for key, raw in values.items():
        if key not in PREFILL_FIELDS:
            errors[key] = "A share link cannot suggest this value."
            continue
        value = str(raw).strip()
        if not value:
            continue
        if CONTROL_CHARACTERS.search(value):
            errors[key] = "Remove line breaks and invisible control characters."
        elif len(value) > MAX_LENGTH.get(key, 20):
            errors[key] = f"Use at most {MAX_LENGTH.get(key, 20)} characters."
        elif key == "provider" and value not in set(providers):
            errors[key] = "Choose one of the providers in the list."
        elif key == "security" and value not in SECURITY_LABELS:
            errors[key] = "Choose STARTTLS or SSL/TLS."
        elif key == "port" and not (ascii_number(value, 5) and 1 <= int(value) <= 65535):
            errors[key] = "Enter a port number from 1 to 65535."
        elif key == "host" and (" " in value or "://" in value):
            errors[key] = "Enter only the server name, like smtp.example.com."
        elif key == "sender_email":
            try:
                value = validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
            except EmailNotValidError as exc:
                errors[key] = str(exc)
        if key not in errors:
            cleaned[key] = value
    if errors:
        raise ShareLinkError(errors)
    return cleaned


def ascii_number(value: str, max_digits: int) -> bool:
    """Only ASCII digits count as a number (``"²"`` and ``"٣٣"`` do not), and a
    bounded count of them (no arithmetic on a 20-digit number)."""
    return 0 < len(value) <= max_digits and value.isascii() and value.isdigit()


def expiry_from(amount: str, unit: str) -> timedelta:
    """``"7", "days"`` → 7 days; between 1 hour and 30 days."""
    amount = (amount or "").strip()
    if not ascii_number(amount, 100) or unit not in EXPIRY_UNITS:
        raise ShareLinkError({"expires": "Enter a whole number of hours or days."})
    if len(amount.lstrip("0")) > 4:  # more than 9999 hours or days: out of range whatever the unit
        raise ShareLinkError({"expires": "Choose between 1 hour and 30 days."})
    expires_in = int(amount) * EXPIRY_UNITS[unit]
    if not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
        raise ShareLinkError({"expires": "Choose between 1 hour and 30 days."})
    return expires_in


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


# -- creating, signing, listing, revoking ------------------------------------------------

def create_link(session: Session, *, store: Store, creator: Member, target: str, prefill: Mapping[str, str],
                providers: Iterable[str], expires_in: timedelta = DEFAULT_EXPIRY, note: str = "",
                now: datetime | None = None) -> ShareLink:
    """Check the values, store the link, and audit ``share_link.created``."""
    values = clean_prefill(prefill, providers)
    errors = {}
    if target_kind(target) is None:
        errors["target"] = "Choose a wizard step or a help topic."
    if not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
        errors["expires"] = "Choose between 1 hour and 30 days."
    note = (note or "").strip()
    if len(note) > NOTE_LIMIT:
        errors["note"] = f"Keep the note under {NOTE_LIMIT} characters."
    elif CONTROL_CHARACTERS.search(note.replace("\n", " ").replace("\r", " ")):
        errors["note"] = "Remove invisible control characters."
    if errors:
        raise ShareLinkError(errors)
    now = now or utcnow()
    link = ShareLink(store_id=store.id, created_by=creator.id, created_at=now, expires_at=now + expires_in,
                     target=target, prefill=values, note=note)
    session.add(link)
    session.commit()
    audit.record(session, store_id=store.id, actor=creator, action="share_link.created",
                 detail={"link_id": link.id, "target": target, "fields": sorted(values),
                         "expires_at": link.expires_at.isoformat(timespec="seconds"), "note": note})
    return link


def serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def sign(link: ShareLink, secret_key: str) -> str:
    """The token for the link's URL: only the row id, signed."""
    return serializer(secret_key).dumps(link.id)


def link_id_from(token: str, secret_key: str) -> int | None:
    """The row id in a token, or None when the token was altered or is not one of ours."""
    try:
        value = serializer(secret_key).loads(token)
    except BadData:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def state(link: ShareLink, now: datetime | None = None) -> str:
    if link.revoked_at is not None:
        return REVOKED
    if as_utc(link.expires_at) <= (now or utcnow()):
        return EXPIRED
    return ACTIVE


def revoke(session: Session, link: ShareLink, actor: Member, now: datetime | None = None) -> bool:
    """Revoke the link (audited); False when it already was."""
    if link.revoked_at is not None:
        return False
    link.revoked_at = now or utcnow()
    session.add(link)
    session.commit()
    audit.record(session, store_id=link.store_id, actor=actor, action="share_link.revoked",
                 detail={"link_id": link.id, "target": link.target})
    return True


@dataclass
class LinkRow:
    """A link as the support view lists it."""

    link: ShareLink
    state: str
    creator_email: str
    openings: int
    last_opened: datetime | None


def links_for_store(session: Session, store_id: int, now: datetime | None = None) -> list[LinkRow]:
    """The store's links, newest first, with how often each was opened."""
    links = session.exec(select(ShareLink).where(ShareLink.store_id == store_id).order_by(ShareLink.id.desc())).all()
    ids = [link.id for link in links]
    counts = {}
    if ids:
        counts = {row[0]: (row[1], row[2]) for row in session.exec(
            select(ShareLinkOpening.link_id, func.count(ShareLinkOpening.id), func.max(ShareLinkOpening.opened_at))
            .where(ShareLinkOpening.link_id.in_(ids)).group_by(ShareLinkOpening.link_id)
        ).all()}
    creators = {m.id: m.email for m in session.exec(
        select(Member).where(Member.id.in_({link.created_by for link in links if link.created_by}))
    ).all()} if links else {}
    return [LinkRow(link, state(link, now), creators.get(link.created_by, ""), *counts.get(link.id, (0, None)))
            for link in links]


# -- opening -----------------------------------------------------------------------------

# What the opening page says, by outcome: (HTTP status, title, text).
PROBLEMS = {
    "tampered": (404, "This link is not valid",
                 ("It was changed or cut off when it was copied, so it could not be verified. "
                  "Copy the whole link again, or ask HeiChat support to send it again.")),
    "unknown": (404, "This link does not exist",
                "No share link matches it any more. Ask HeiChat support for a new one."),
    "other_store": (403, "This link is for another store",
                    ("You are signed in with an account that is not a member of the store this link was made for. "
                     "Sign out and sign in with that store's account.")),
    REVOKED: (410, "This link was revoked",
              "HeiChat support withdrew it. Ask them for a new one if you still need help."),
    EXPIRED: (410, "This link has expired",
              "Share links work for a limited time. Ask HeiChat support for a new one."),
}


def find(session: Session, token: str, secret_key: str) -> tuple[str, ShareLink | None]:
    """``("found", link)``, or ``("tampered" | "unknown", None)``."""
    link_id = link_id_from(token, secret_key)
    if link_id is None:
        return "tampered", None
    link = session.get(ShareLink, link_id)
    return ("found", link) if link is not None else ("unknown", None)


def check_for(link: ShareLink, member: Member, now: datetime | None = None) -> str:
    """May ``member`` open ``link``? ``"ok"``, ``"other_store"``, ``"revoked"`` or ``"expired"``.
    The store is checked first, so other stores learn nothing about the link."""
    if member.store_id is None or member.store_id != link.store_id:
        return "other_store"
    current = state(link, now)
    return "ok" if current == ACTIVE else current


def record_opening(session: Session, link: ShareLink, member: Member) -> dict | None:
    """Record the opening (row + ``share_link.opened``); return the suggestion, if any."""
    session.add(ShareLinkOpening(link_id=link.id, member_id=member.id))
    session.commit()
    audit.record(session, store_id=link.store_id, actor=member, action="share_link.opened",
                 detail={"link_id": link.id, "target": link.target})
    return suggestion_for(link)


# -- the suggestion ------------------------------------------------------------------------

def suggestion_for(link: ShareLink) -> dict | None:
    """What the merchant's session keeps after opening: plain JSON, never a password."""
    values = {k: v for k, v in (link.prefill or {}).items() if k in PREFILL_FIELDS}
    if not values:
        return None
    return {"link_id": link.id, "store_id": link.store_id, "values": values, "note": link.note}


def suggestion_rows(suggestion: dict, catalogue: Catalogue) -> list[tuple[str, str, str]]:
    """``(field, label, shown value)`` in form order, provider by its name."""
    rows = []
    for key in PREFILL_FIELDS:
        value = suggestion["values"].get(key)
        if not value:
            continue
        if key == "provider":
            preset = catalogue.get(value)
            value = preset.name if preset else value
        elif key == "security":
            value = SECURITY_LABELS.get(value, value)
        rows.append((key, PREFILL_LABELS[key], value))
    return rows


# Why a pending suggestion can no longer be accepted, by the link's state.
NO_LONGER = {
    REVOKED: "HeiChat support revoked the link this suggestion came from, so it can no longer be accepted. "
             "Nothing was changed; ask them for a new link if you still need it.",
    EXPIRED: "The link this suggestion came from has expired, so it can no longer be accepted. "
             "Nothing was changed; ask HeiChat support for a new link if you still need it.",
    "unknown": "The link this suggestion came from no longer exists, so it can no longer be accepted. "
               "Nothing was changed.",
}


def suggestion_link_state(session: Session, suggestion: dict, now: datetime | None = None) -> str:
    """The state of the link a pending suggestion came from, as it is now:
    ``ACTIVE``, ``REVOKED``, ``EXPIRED`` or ``"unknown"``."""
    link_id = suggestion.get("link_id")
    link = session.get(ShareLink, link_id) if isinstance(link_id, int) and not isinstance(link_id, bool) else None
    if link is None or link.store_id != suggestion.get("store_id"):
        return "unknown"
    return state(link, now)


def apply_suggestion(session: Session, store: Store, suggestion: dict, catalogue: Catalogue,
                     providers: Iterable[str], member: Member, box: SecretBox) -> list[str]:
    """Accept: re-check the link (revoked or expired links apply nothing), choose
    the suggested provider (``drafts.apply_provider``), then write the
    suggested fields into the draft. The saved settings are untouched; a stored
    password stays only if the server it was typed for is unchanged (else the
    merchant types it again). Returns the fields applied (audited as ``settings.changed``)."""
    if suggestion.get("store_id") != store.id:
        raise ShareLinkError({"store": "This suggestion belongs to another store."})
    link_state = suggestion_link_state(session, suggestion)
    if link_state != ACTIVE:
        raise ShareLinkError({"link": NO_LONGER[link_state]})
    values = clean_prefill(suggestion.get("values") or {}, providers)
    preset = catalogue.get(values.get("provider"))
    if preset is not None:
        region = None
        if preset.host_template:
            region = (template_region(preset.host_template, values.get("host", "").lower())
                      or (store.ses_region if store.provider == preset.key else None) or preset.default_region)
        drafts.apply_provider(session, store, preset, region, member.email, box)
    draft = drafts.get_draft(session, store) or SmtpDraft(store_id=store.id)
    draft.provider = store.provider or ""
    applied = [field for field in drafts.TEXT_FIELDS if field in values]
    for field in applied:
        setattr(draft, field, drafts.clean_for_storage(values[field]))
    # The suggested server is not the one the password was typed for: drop it.
    drafts.keep_password_bound(draft, box)
    draft.updated_at = utcnow()
    session.add(draft)
    session.commit()
    applied = (["provider"] if preset is not None else []) + applied
    audit.record(session, store_id=store.id, actor=member, action="settings.changed",
                 detail={"source": "share_link", "link_id": suggestion.get("link_id"), "fields": applied})
    return applied
