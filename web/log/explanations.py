"""Plain words for what went wrong in an attempt, and what to do about it.

The log shows these next to the raw error code so a marketer can act without a developer.
Keyed by the transport's error codes (SPEC §5) and, for ``http_status``, by status code.
Also: why a due notification is waiting for its channel (rate limit, 429, breaker), in the
log and in the API's ``waiting.message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from engine.store.channel_states import ChannelWait


@dataclass(frozen=True)
class Explanation:
    summary: str
    hint: str


ERRORS: dict[str, Explanation] = {
    "timeout": Explanation(
        "the receiver did not answer in time",
        "it may be slow or overloaded; raise timeout_seconds in the campaign or ask the "
        "receiver's owner to answer faster (queue the work, reply 2xx at once)",
    ),
    "connection_error": Explanation(
        "the connection to the receiver failed (refused or reset)",
        "check the host and port in the URL, and that the receiver is running",
    ),
    "dns_error": Explanation(
        "the receiver's host name could not be found",
        "check the URL for a typo in the host name",
    ),
    "tls_error": Explanation(
        "the secure (HTTPS) connection could not be set up",
        "the receiver's certificate may be expired, self-signed or for another name",
    ),
    "ssrf_blocked": Explanation(
        "this address is on a private network",
        "Hookcast only sends to public addresses; use the receiver's public URL, or ask "
        "an administrator to allow that network (ALLOWED_NETWORKS)",
    ),
    "render_error": Explanation(
        "the request could not be built from the campaign's templates",
        "a variable used without a fallback was missing, or a template is wrong; fix the "
        "Content tab (add a fallback) and retry",
    ),
    "response_too_large": Explanation(
        "the receiver's answer was too large",
        "only the first 64 KiB of a response are read; ask the receiver to answer briefly",
    ),
}

STATUSES: dict[int, Explanation] = {
    400: Explanation(
        "the receiver rejected the request as malformed",
        "compare the body with what the receiver expects (field names, types)",
    ),
    401: Explanation(
        "the receiver refused the credentials",
        "check the auth settings of this campaign (an expired or wrong key or password)",
    ),
    403: Explanation(
        "the receiver understood who we are but does not allow this",
        "check the permissions of the API key or account used in the auth settings",
    ),
    404: Explanation(
        "the receiver has nothing at this URL",
        "check the URL for a typo in the path",
    ),
    405: Explanation(
        "the receiver does not accept this method at this URL",
        "check the method (POST, PUT…) in the campaign's Content tab",
    ),
    408: Explanation("the receiver timed out reading the request", "it is retried"),
    409: Explanation(
        "the receiver reported a conflict with existing data",
        "read the response body for the receiver's reason",
    ),
    410: Explanation(
        "the receiver says this endpoint is gone for good",
        "the webhook was disabled; update the URL, then re-enable it on the health page",
    ),
    413: Explanation(
        "the receiver found the request too large",
        "send fewer fields (use a field mapping instead of the default body)",
    ),
    415: Explanation(
        "the receiver does not accept this content type",
        "switch the content type between JSON and form in the Content tab",
    ),
    422: Explanation(
        "the receiver could not process the data it was sent",
        "read the response body: it usually names the field it did not like",
    ),
    429: Explanation(
        "the receiver is rate limiting us",
        "retries wait as long as the receiver asks (Retry-After); nothing to do unless it persists",
    ),
}


def explain(error_code: str | None, status_code: int | None = None) -> Explanation | None:
    """The plain-words explanation for an attempt's outcome, or None for a success."""
    if error_code == "http_status" or (error_code is None and status_code is not None):
        if status_code is None or 200 <= status_code < 300:
            return None
        if status_code in STATUSES:
            return STATUSES[status_code]
        if 300 <= status_code < 400:
            return Explanation(
                f"the receiver answered with a redirect ({status_code})",
                "redirects are not followed; put the final URL (often https://) in the campaign",
            )
        if status_code >= 500:
            return Explanation(
                f"the receiver had an internal error ({status_code})",
                "the problem is on the receiver's side; it is retried automatically",
            )
        return Explanation(
            f"the receiver refused the request ({status_code})",
            "read the response body for the receiver's reason",
        )
    if error_code is None:
        return None
    return ERRORS.get(
        error_code, Explanation(f"the send failed ({error_code})", "see the error message")
    )


REASONS: dict[str, str] = {
    "webhook_disabled": "held because the campaign's webhook is disabled after repeated "
    "failures; re-enable it on the campaign's health page to send",
    "webhook_inactive": "held because sending is paused for this campaign (Content tab, "
    "Delivery: Sending); messages are kept and go out when sending is on again",
    "frequency_capped": "skipped: the contact already got the most this campaign allows in "
    "its frequency cap period",
}


def alert_words(kind: str) -> str:
    """An alert's kind as a badge says it: ``failures_5`` is "5 failures in a row"."""
    if kind.startswith("failures_") and kind.removeprefix("failures_").isdigit():
        return f"{kind.removeprefix('failures_')} failures in a row"
    return {"disabled": "webhook disabled"}.get(kind, kind.replace("_", " "))


def explain_reason(reason: str | None) -> str | None:
    if not reason:
        return None
    return REASONS.get(reason, reason)


WAITS: dict[str, Explanation] = {
    "rate_limit": Explanation(
        "rate limit — the channel's next free send slot is at {until}",
        "notifications over the channel's rate limit wait their turn: they never fail or use "
        "up an attempt for it; raise the limit in the Content tab if the receiver takes more",
    ),
    "retry_after": Explanation(
        "the endpoint answered 429 (too many requests) — sends to it resume at {until}",
        "the whole channel holds back as long as the receiver asks (Retry-After); waiting "
        "uses up no attempt",
    ),
    "breaker": Explanation(
        "the endpoint keeps timing out or refusing connections — one probe request at a "
        "time; next probe at {until}",
        "the rest wait without using up attempts until a probe gets an answer; check that "
        "the receiver is up and reachable",
    ),
}


def _moment(until: datetime, now: datetime | None) -> str:
    """``15:04:05 UTC`` on the day of ``now``; the date too on another day or without one."""
    until = until.astimezone(UTC)
    if now is not None and until.date() == now.astimezone(UTC).date():
        return until.strftime("%H:%M:%S UTC")
    return until.strftime("%Y-%m-%d %H:%M:%S UTC")


def explain_wait(wait: ChannelWait, now: datetime | None = None) -> Explanation:
    """Why a due notification is not being sent yet, and until when, in plain words."""
    known = WAITS.get(
        wait.reason,
        Explanation("the channel holds its sends back until {until}", "it is sent after that"),
    )
    return Explanation(known.summary.format(until=_moment(wait.until, now)), known.hint)
