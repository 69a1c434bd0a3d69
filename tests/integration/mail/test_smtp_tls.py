"""``smtp+starttls://`` and ``smtps://`` against a real TLS SMTP server on loopback, its
certificate trusted through ``SSL_CERT_FILE``; an untrusted certificate is a clear error."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.mail.sender import MailSender
from engine.store import mail_queue
from engine.store.models import MailMessage
from engine.store.types import utcnow
from tests.integration.smtp_server import SmtpServer
from web import create_app, engine_settings


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def send_one(app_config, db, workspace, smtp_url) -> MailMessage:
    app = create_app(
        {
            **app_config,
            "SMTP_URL": smtp_url,
            "MAIL_FROM": "hookcast@acme.test",
            "BASE_URL": "https://hookcast.acme.test",
        }
    )
    with db.transaction() as session:
        mail_id = mail_queue.enqueue(
            session,
            kind="password_reset",
            to_address="owner@acme.test",
            params={"token": "t", "email": "owner@acme.test", "valid_minutes": 60},
            now=utcnow(),
            workspace_id=workspace.id,
        ).id
    MailSender(db, engine_settings(app)).send_due()
    with db.session() as session:
        return session.get(MailMessage, mail_id)


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_schemes_send_over_tls(app_config, db, workspace, certificate, monkeypatch, scheme):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    context = server_context(certificate)
    tls = {"starttls": context} if scheme == "smtp+starttls" else {"implicit_tls": context}
    server = SmtpServer(user="hookcast", password="secret", **tls)
    try:
        sent = send_one(
            app_config, db, workspace, f"{scheme}://hookcast:secret@127.0.0.1:{server.port}"
        )
        assert sent.status == "sent", sent.last_error
        assert [m["To"] for m in server.received()] == ["owner@acme.test"]
    finally:
        server.close()


def test_an_untrusted_certificate_is_named(app_config, db, workspace, certificate):
    server = SmtpServer(implicit_tls=server_context(certificate))
    try:
        failed = send_one(app_config, db, workspace, f"smtps://127.0.0.1:{server.port}")
        assert failed.status == "pending"
        assert failed.last_error.startswith(f"TLS with smtps://127.0.0.1:{server.port} failed")
        assert server.received() == []
    finally:
        server.close()
