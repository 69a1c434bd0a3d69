"""Standard Webhooks signing, checked by the independent ``standardwebhooks`` verifier."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine.delivery.signing import (
    generate_secret,
    is_valid_secret,
    mask_secret,
    sign,
    signature_header,
    webhook_headers,
)

BODY = '{"event": "lead.create", "name": "Zoë \\"Z\\" O\'Neil"}'.encode()


def test_generated_secret_is_whsec_and_32_bytes():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert is_valid_secret(secret)
    assert generate_secret() != secret


def test_headers_verify_with_standardwebhooks():
    secret = generate_secret()
    now = int(time.time())
    headers = webhook_headers(msg_id="msg_2abc", timestamp=now, body=BODY, secrets=[secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_2abc"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers, json_parse=False) is None


def test_tampered_body_or_other_secret_fails_verification():
    secret = generate_secret()
    headers = webhook_headers(
        msg_id="msg_1", timestamp=int(time.time()), body=BODY, secrets=[secret]
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_rotation_header_verifies_with_either_secret():
    current, previous = generate_secret(), generate_secret()
    now = int(time.time())
    value = signature_header(msg_id="msg_9", timestamp=now, body=BODY, secrets=[current, previous])
    first, second = value.split(" ")
    assert first == sign(msg_id="msg_9", timestamp=now, body=BODY, secret=current)
    assert second == sign(msg_id="msg_9", timestamp=now, body=BODY, secret=previous)
    headers = {"webhook-id": "msg_9", "webhook-timestamp": str(now), "webhook-signature": value}
    for secret in (current, previous):
        assert Webhook(secret).verify(BODY, headers, json_parse=False) is None
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_known_vector():
    # A fixed key and message, computed independently by the standardwebhooks package.
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    expected = Webhook(secret).sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, tz=UTC),
        '{"test": 2432232314}',
    )
    ours = sign(
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
        secret=secret,
    )
    assert ours == expected


def test_same_secret_twice_signs_once():
    secret = generate_secret()
    value = signature_header(msg_id="m", timestamp=1, body=b"", secrets=[secret, secret])
    assert value.count("v1,") == 1


def test_signing_needs_a_secret():
    with pytest.raises(ValueError):
        signature_header(msg_id="m", timestamp=1, body=b"", secrets=[])
    with pytest.raises(TypeError):
        signature_header(msg_id="m", timestamp=1, body=b"", secrets=generate_secret())
    with pytest.raises(ValueError):
        sign(msg_id="m", timestamp=1, body=b"", secret="not-a-secret")


@pytest.mark.parametrize(
    ("secret", "valid"),
    [
        ("whsec_" + base64.b64encode(b"k" * 32).decode(), True),
        ("whsec_" + base64.b64encode(b"k" * 24).decode(), True),
        ("whsec_" + base64.b64encode(b"k" * 64).decode(), True),
        ("whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("="), True),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), False),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), False),
        (base64.b64encode(b"k" * 32).decode(), False),
        ("whsec_not base64!", False),
        ("whsec_", False),
        ("", False),
    ],
)
def test_is_valid_secret(secret, valid):
    assert is_valid_secret(secret) is valid


def test_overlong_secrets_are_refused_without_being_decoded_or_cached():
    """Decoded keys are cached (every attempt signs); what an editor types that is longer
    than any key must not fill that cache."""
    from engine.delivery import signing

    before = signing._decode_key.cache_info().currsize
    assert is_valid_secret("whsec_" + "A" * 1_000_000) is False
    assert signing._decode_key.cache_info().currsize == before


def test_mask_secret_keeps_only_a_hint():
    secret = generate_secret()
    masked = mask_secret(secret)
    assert masked.startswith("whsec_****")
    assert len(masked) == len("whsec_****") + 4
    assert masked.endswith(secret.rstrip("=")[-4:])
    assert not is_valid_secret(masked)
    assert mask_secret(None) is None
    assert mask_secret("garbage") == "whsec_****"
