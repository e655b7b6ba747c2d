"""The developer's home page: the flavours' discovery URLs, the clients, and the grants.

Each grant shows its account, flavour, client and access-token expiry — never a
token — with two buttons that play what a provider does to a client: the access
token runs out now (the next use must refresh), or the user revokes the app's
access (the next refresh gets ``invalid_grant``).
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for

from .flavours import flavour_names, get_flavour

__all__ = ["bp"]

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    extension = current_app.extensions["devsignin"]
    flavours = [get_flavour(name) for name in flavour_names()]
    discovery = [(flavour, extension.metadata_url(flavour.name)) for flavour in flavours]
    return render_template("devsignin/home.html", discovery=discovery, clients=extension.store.list_clients(),
                           grants=extension.store.list_grants(), now=extension.store.now(),
                           format_time=_format_time)


@bp.post("/grants/<grant_id>/expire")
def expire(grant_id: str):
    store = current_app.extensions["devsignin"].store
    grant = store.get_grant(grant_id) or abort(404)
    store.expire_access_tokens(grant_id)
    flash(f"The access token of {grant.account_email} ({get_flavour(grant.flavour).title}) has expired: "
          "the client's next use must refresh it.")
    return redirect(url_for("home.index"))


@bp.post("/grants/<grant_id>/revoke")
def revoke(grant_id: str):
    store = current_app.extensions["devsignin"].store
    grant = store.get_grant(grant_id) or abort(404)
    store.revoke_grant(grant_id)
    flash(f"Access revoked for {grant.account_email} ({get_flavour(grant.flavour).title}): "
          "its tokens no longer work and the next refresh gets invalid_grant.")
    return redirect(url_for("home.index"))


def _format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
