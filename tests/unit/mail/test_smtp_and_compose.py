"""SMTP_URL parsing, the mail settings' rules, and composed messages (escaped HTML)."""

from __future__ import annotations

import pytest

from engine.mail.compose import compose
from engine.mail.smtp import SmtpConfig
from engine.settings import parse_mail


@pytest.mark.parametrize(
    ("url", "scheme", "port", "user", "password"),
    [
        ("smtp://mail.example.com", "smtp", 25, None, None),
        ("smtp+starttls://u:s3cret@mail.example.com", "smtp+starttls", 587, "u", "s3cret"),
        ("smtps://u%40x:p%3Aw%40rd@mail.example.com:2465", "smtps", 2465, "u@x", "p:w@rd"),
    ],
)
def test_smtp_urls(url, scheme, port, user, password):
    config = SmtpConfig.parse(url)
    assert (config.scheme, config.host, config.port) == (scheme, "mail.example.com", port)
    assert (config.username, config.password) == (user, password)
    assert "@" not in config.describe() and (password is None or password not in repr(config))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "must start with smtp://"),
        ("smtp://", "names no host"),
        ("smtp://mail.example.com:port", "not a number"),
    ],
)
def test_bad_smtp_urls_are_named(url, message):
    with pytest.raises(ValueError, match=message):
        SmtpConfig.parse(url)


def test_mail_needs_a_sender_and_a_public_url():
    assert parse_mail({}) == (None, "", "")
    with pytest.raises(ValueError, match="MAIL_FROM"):
        parse_mail({"SMTP_URL": "smtp://m.example.com", "BASE_URL": "https://h.example.com"})
    with pytest.raises(ValueError, match="BASE_URL must be set"):
        parse_mail({"SMTP_URL": "smtp://m.example.com", "MAIL_FROM": "h@example.com"})
    with pytest.raises(ValueError, match="BASE_URL must start"):
        parse_mail({"BASE_URL": "hookcast.example.com"})
    smtp, sender, base = parse_mail(
        {
            "SMTP_URL": "smtp://m.example.com",
            "MAIL_FROM": "h@example.com",
            "BASE_URL": "https://h.example.com/",
        }
    )
    assert smtp is not None and sender == "h@example.com" and base == "https://h.example.com"


def test_alert_mail_has_text_and_escaped_html_parts():
    message = compose(
        "alert",
        {
            "alert_kind": "failing",
            "campaign_id": "cmp_1",
            "campaign_name": "<script>alert(1)</script> & co",
            "workspace_name": "Acme",
            "threshold": 5,
            "failures": 5,
            "last_error": "HTTP 500 <b>down</b>",
            "reason": None,
            "notification_id": "msg_1",
        },
        to_address="owner@acme.test",
        mail_from="Hookcast <hookcast@acme.test>",
        base_url="https://hookcast.acme.test",
    )
    assert message["Subject"] == (
        "Webhook failing: <script>alert(1)</script> & co failed 5 times in a row"
    )
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "<script>alert(1)</script> & co" in text
    assert "https://hookcast.acme.test/notifications/msg_1" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "HTTP 500 &lt;b&gt;down&lt;/b&gt;" in html
    assert 'href="https://hookcast.acme.test/campaigns/cmp_1/health"' in html


def test_a_subject_stays_on_one_line():
    message = compose(
        "invitation",
        {
            "inviter": "a@acme.test\r\nBcc: victim@example.com",
            "workspace_name": "Acme",
            "role": "editor",
            "token": "tok",
            "expires_at": "2026-12-08 18:00",
        },
        to_address="new@acme.test",
        mail_from="hookcast@acme.test",
        base_url="https://h.example.com",
    )
    assert "\n" not in message["Subject"] and message["Bcc"] is None
    assert "https://h.example.com/invitations/tok" in message.get_body(("plain",)).get_content()


def test_mail_backoff_then_giving_up():
    from datetime import UTC, datetime, timedelta

    from engine.store import mail_queue

    now = datetime(2026, 12, 1, tzinfo=UTC)
    waits = [mail_queue.next_retry(n, now) for n in range(1, mail_queue.MAX_ATTEMPTS + 1)]
    assert [w - now for w in waits[:-1]] == [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=3),
        timedelta(hours=6),
    ]
    assert waits[-1] is None  # the 7th failed attempt is the last
