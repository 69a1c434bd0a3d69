"""Emails composed from Jinja templates: ``templates/mail/<kind>.subject.txt``,
``<kind>.txt`` (the plain text part) and ``<kind>.html`` (the HTML part, autoescaped).

Pure: values in, an ``EmailMessage`` out. Links are made from ``BASE_URL`` here, when the
mail is sent, so a queued message carries only the values it needs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

MAIL_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "mail"
KINDS = ("alert", "invitation", "password_reset")


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(MAIL_TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def links(kind: str, params: Mapping[str, Any], base_url: str) -> dict[str, str]:
    """The absolute links a mail of ``kind`` carries."""
    base = base_url.rstrip("/")
    if kind == "alert":
        found = {"health": f"{base}/campaigns/{quote(params['campaign_id'])}/health"}
        if params.get("notification_id"):
            found["notification"] = f"{base}/notifications/{quote(params['notification_id'])}"
        return found
    if kind == "invitation":
        return {"accept": f"{base}/invitations/{quote(params['token'])}"}
    if kind == "password_reset":
        return {"reset": f"{base}/password-reset/{quote(params['token'])}"}
    return {}


def compose(
    kind: str,
    params: Mapping[str, Any],
    *,
    to_address: str,
    mail_from: str,
    base_url: str,
) -> EmailMessage:
    """The message of ``kind``; raises ``ValueError`` for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"no mail templates for {kind!r}")
    env = _environment()
    context = {**params, "links": links(kind, params, base_url), "base_url": base_url}
    subject = env.get_template(f"{kind}.subject.txt").render(context)
    subject = " ".join(subject.split())  # one line: no header injection
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = mail_from
    message["To"] = to_address
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2].strip("> ") or None)
    message.set_content(env.get_template(f"{kind}.txt").render(context))
    message.add_alternative(env.get_template(f"{kind}.html").render(context), subtype="html")
    return message
