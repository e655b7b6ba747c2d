"""The one place that answers a request as a page or as an htmx fragment.

Views call these and never branch on the request type themselves. A request
wants a fragment when it is an htmx request that is neither boosted nor a
history restore (those need the whole page). Every answer that depends on the
request type carries ``Vary: HX-Request``, so no cache serves a fragment for a
page or the other way round.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, flash, make_response, redirect, render_template

from wizard.extensions import htmx


def wants_fragment() -> bool:
    """An htmx request that is neither boosted nor a history restore wants a fragment."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _varies(response) -> Response:
    response = make_response(response)
    response.vary.add("HX-Request")
    return response


def respond(*, fragment: Callable[[], object], page: Callable[[], object]) -> Response:
    """Build the fragment's answer for htmx, the page's otherwise (each built only when chosen)."""
    return _varies(fragment() if wants_fragment() else page())


def page_or_fragment(page: str, fragment: str, status: int = 200, push_url: str | None = None,
                     **context) -> Response:
    """Render the full page, or only its fragment for htmx (the page includes the fragment:
    the markup exists once). ``push_url`` updates the address bar after an htmx swap."""
    template = fragment if wants_fragment() else page
    response = _varies(make_response(render_template(template, **context), status))
    if push_url and wants_fragment():
        response.headers["HX-Push-Url"] = push_url
    return response


def fragment_only(template: str, fallback_url: str, status: int = 200, **context) -> Response:
    """A fragment that exists only for htmx (a poll, a panel); a plain request goes to ``fallback_url``."""
    return respond(fragment=lambda: make_response(render_template(template, **context), status),
                   page=lambda: redirect(fallback_url))


def fragment_or_redirect(template: str, url: str, notice: tuple[str, str] | None = None, **context) -> Response:
    """After a POST that changes part of a page: htmx gets the fresh fragment (with
    ``notice``, text and level, shown in it), a plain request is redirected to ``url``
    with ``notice`` flashed."""
    def page():
        if notice:
            flash(*notice)
        return redirect(url)
    return respond(fragment=lambda: render_template(template, notice=notice, **context), page=page)


def after_post(url: str, target: str, notice: tuple[str, str] | None = None) -> Response:
    """After a successful POST: a plain request is redirected (post/redirect/get); htmx gets
    an ``HX-Location`` that loads ``url`` and swaps its ``target`` into place, pushing the URL."""
    if notice:
        flash(*notice)

    def located():
        response = make_response("", 200)
        response.headers["HX-Location"] = json.dumps({"path": url, "target": target, "swap": "outerHTML",
                                                      "select": target})
        return response
    return respond(fragment=located, page=lambda: redirect(url))


def empty_or_redirect(url: str, status: int = 200, notice: tuple[str, str] | None = None) -> Response:
    """htmx gets an empty answer (the element removes itself, or a poll stops); a plain
    request is redirected to ``url`` with ``notice`` flashed."""
    def page():
        if notice:
            flash(*notice)
        return redirect(url)
    return respond(fragment=lambda: make_response("", status), page=page)


def refused_for_plain(response, status: int) -> Response:
    """``response`` with ``status`` for a plain request; htmx keeps 200, because htmx 2
    does not swap 4xx bodies and the fragment itself explains the refusal."""
    response = _varies(response)
    if not wants_fragment():
        response.status_code = status
    return response
