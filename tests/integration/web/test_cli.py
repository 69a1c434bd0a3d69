"""The hookcast command line, driven through click's runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from engine.store import Database, accounts
from web.cli import cli


def test_init_writes_config_once_and_migrates(tmp_path: Path, monkeypatch) -> None:
    instance = tmp_path / "inst"
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("HOOKCAST_DATABASE_URL", raising=False)
    runner = CliRunner()
    first = runner.invoke(cli, ["init"])
    assert first.exit_code == 0, first.output
    config = (instance / "config.py").read_text()
    assert "SECRET_KEY = " in config and "ENCRYPTION_KEY = " in config
    assert (instance / "config.py").stat().st_mode & 0o777 == 0o600
    assert (instance / "hookcast.sqlite3").exists()

    second = runner.invoke(cli, ["init"])
    assert second.exit_code == 0, second.output
    assert "Keeping existing" in second.output
    assert (instance / "config.py").read_text() == config  # keys are never regenerated


def test_workspace_user_and_api_key(runner: CliRunner, db: Database, client) -> None:
    created = runner.invoke(cli, ["workspace", "create", "Acme Marketing"])
    assert created.exit_code == 0, created.output
    workspace_id = created.output.strip()
    assert workspace_id.startswith("ws_")

    user = runner.invoke(
        cli,
        [
            "user",
            "create",
            "Ana@Example.com",
            "--workspace",
            workspace_id,
            "--role",
            "owner",
            "--password",
            "s3cret-pass",
        ],
    )
    assert user.exit_code == 0, user.output
    with db.transaction(write=False) as session:
        stored = accounts.get_user_by_email(session, "ana@example.com")
        assert stored is not None
        membership = accounts.get_membership(session, user_id=stored.id, workspace_id=workspace_id)
        assert membership is not None and membership.role == "owner"

    key = runner.invoke(cli, ["api-key", "create", "--workspace", workspace_id, "--name", "crm"])
    assert key.exit_code == 0, key.output
    secret = key.output.strip()
    assert secret.startswith("hk_") and "\n" not in secret  # the key alone on stdout
    response = client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert response.get_json()["id"] == workspace_id


def test_bad_input_is_one_line_and_non_zero(runner: CliRunner) -> None:
    cases = [
        ["user", "create", "a@b.co", "--workspace", "ws_missing", "--password", "longenough"],
        ["api-key", "create", "--workspace", "ws_missing"],
        ["workspace", "create", "   "],
        ["user", "create", "not-an-email", "--workspace", "ws_x", "--password", "longenough"],
    ]
    for args in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code != 0, args
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert lines[0].startswith("hookcast: error:"), lines[0]
        assert "Traceback" not in result.output


def test_short_password_and_missing_password_are_refused(runner: CliRunner) -> None:
    workspace_id = runner.invoke(cli, ["workspace", "create", "W"]).output.strip()
    short = runner.invoke(
        cli, ["user", "create", "x@y.co", "--workspace", workspace_id, "--password", "123"]
    )
    assert short.exit_code == 1 and "at least 8" in short.output
    missing = runner.invoke(
        cli, ["user", "create", "x@y.co", "--workspace", workspace_id], input=""
    )
    assert missing.exit_code == 1 and "--password is required" in missing.output


def test_commands_refuse_an_unmigrated_database(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("HOOKCAST_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("HOOKCAST_SECRET_KEY", "k")
    monkeypatch.setenv("HOOKCAST_ENCRYPTION_KEY", "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs=")
    result = CliRunner().invoke(cli, ["workspace", "create", "W"])
    assert result.exit_code == 1
    assert "run `hookcast init`" in result.output


def test_missing_keys_and_bad_settings_are_explained(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path))
    for name in ("HOOKCAST_SECRET_KEY", "HOOKCAST_ENCRYPTION_KEY", "HOOKCAST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1 and "SECRET_KEY is not set" in result.output

    monkeypatch.setenv("HOOKCAST_SECRET_KEY", "k")
    monkeypatch.setenv("HOOKCAST_ENCRYPTION_KEY", "not-a-fernet-key")
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1 and "ENCRYPTION_KEY is not a valid Fernet key" in result.output

    monkeypatch.setenv("HOOKCAST_ENCRYPTION_KEY", "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs=")
    monkeypatch.setenv("HOOKCAST_ALLOWED_NETWORKS", "10.0.0.0/8,banana")
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1 and "'banana'" in result.output
