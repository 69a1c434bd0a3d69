"""The mail sender of a worker process: drains the durable queue through SMTP.

Runs on the runtime's scheduler (a job of its own, never on the webhook dispatcher's
thread): claim due messages in one short transaction, compose and send them over one SMTP
connection with no transaction open, then settle them (sent, due again after a backoff, or
failed for good) in another.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass

from engine.mail.compose import compose
from engine.mail.smtp import SmtpConfig, SmtpConnection
from engine.settings import EngineSettings
from engine.store import Database, mail_queue
from engine.store.types import utcnow

logger = logging.getLogger(__name__)

BATCH = 20


def describe_error(exc: BaseException, config: SmtpConfig) -> str:
    """An SMTP failure in words, with the server's answer where it gave one."""
    where = config.describe()
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"{where} refused the user name and password ({_answer(exc)})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{code} {_text(msg)}" for code, msg in exc.recipients.values())
        return f"{where} refused the recipient ({answers})"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"{where} refused the sender address ({_answer(exc)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} answered {_answer(exc)}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{where} does not support STARTTLS or login as configured"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"could not connect to {where}: connection refused"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer in time"
    if isinstance(exc, OSError):
        return f"could not talk to {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _answer(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


@dataclass(frozen=True)
class _Outcome:
    mail: mail_queue.QueuedMail
    subject: str | None
    error: str | None


class MailSender:
    def __init__(self, database: Database, settings: EngineSettings) -> None:
        if settings.smtp is None:
            raise ValueError("SMTP_URL is not set")
        self.database = database
        self.settings = settings
        self.smtp: SmtpConfig = settings.smtp

    def send_due(self) -> int:
        """Send every message due now, batch by batch; how many went out."""
        sent = 0
        while True:
            with self.database.transaction(write=True) as session:
                claimed = mail_queue.claim_due(session, utcnow(), limit=BATCH)
            if not claimed:
                return sent
            outcomes = self._send(claimed)
            with self.database.transaction(write=True) as session:
                now = utcnow()
                for outcome in outcomes:
                    mail = outcome.mail
                    if outcome.error is None:
                        mail_queue.mark_sent(session, mail.id, outcome.subject or "", now)
                        sent += 1
                        continue
                    retry_at = mail_queue.next_retry(mail.attempts, now)
                    mail_queue.mark_failed(
                        session, mail.id, outcome.error, retry_at, outcome.subject
                    )
                    logger.warning(
                        "mail %s to %s failed (attempt %d%s): %s",
                        mail.id,
                        mail.to_address,
                        mail.attempts,
                        "" if retry_at else ", giving up",
                        outcome.error,
                    )
            if len(claimed) < BATCH:
                return sent

    def _send(self, claimed: list[mail_queue.QueuedMail]) -> list[_Outcome]:
        connection = SmtpConnection(self.smtp)
        outcomes = []
        try:
            for mail in claimed:
                subject = None
                try:
                    message = compose(
                        mail.kind,
                        mail.params,
                        to_address=mail.to_address,
                        mail_from=self.settings.mail_from,
                        base_url=self.settings.base_url,
                    )
                    subject = str(message["Subject"])
                    connection.send(message)
                except (smtplib.SMTPException, OSError) as exc:
                    outcomes.append(_Outcome(mail, subject, describe_error(exc, self.smtp)))
                except Exception as exc:  # a template or value problem: keep the rest going
                    logger.exception("mail %s could not be composed", mail.id)
                    outcomes.append(_Outcome(mail, subject, f"could not compose: {exc}"))
                else:
                    outcomes.append(_Outcome(mail, subject, None))
        finally:
            connection.close()
        return outcomes
