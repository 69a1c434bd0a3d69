"""Login cost: a known email with a wrong password, an unknown email, and a locked account,
through the app's test client, against a baseline measured in the same run: one
``werkzeug.security.check_password_hash`` of a stored hash (the work every attempt must do).

Targets: unknown / known within 0.5-2x (timing reveals no accounts); a throttled attempt
(no hash) well under the baseline, so a flood of guesses stops costing hash work once locked.

Run: ``.venv/bin/python bench/bench_login.py``; PostgreSQL too where
``HOOKCAST_BENCH_POSTGRES_URL`` or ``HOOKCAST_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

from scratch import database_kinds, scratch_database  # bench/scratch.py
from werkzeug.security import check_password_hash, generate_password_hash

from engine.store import Database, accounts
from web import create_app
from web.database import get_database

REPEATS = 9
EMAIL = "owner@bench.test"
PASSWORD = "the right password"  # noqa: S105 (a benchmark account)


def _median_ms(action: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(kind: str) -> None:
    with scratch_database(kind) as url:
        database = Database(url)
        with database.transaction() as session:
            workspace = accounts.create_workspace(session, "Bench")
            user = accounts.create_user(
                session, email=EMAIL, password_hash=generate_password_hash(PASSWORD)
            )
            accounts.set_membership(
                session, user_id=user.id, workspace_id=workspace.id, role="owner"
            )
            stored = user.password_hash
        database.dispose()
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "ENCRYPTION_KEY": "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs=",
                "WTF_CSRF_ENABLED": False,
            }
        )
        counter = iter(range(10**6))

        def attempt(email: str, address: str) -> int:
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = address
            data = {"email": email, "password": f"wrong {next(counter)}"}
            return client.post("/login", data=data).status_code

        baseline = _median_ms(lambda: check_password_hash(stored, "wrong"))
        # A fresh address per attempt, so no counter locks while measuring.
        known = _median_ms(lambda: attempt(EMAIL, f"127.0.1.{next(counter) % 250}"))
        unknown = _median_ms(
            lambda: attempt(f"ghost{next(counter)}@bench.test", f"127.0.2.{next(counter) % 250}")
        )
        for _ in range(10):
            attempt(EMAIL, "127.0.3.1")
        assert attempt(EMAIL, "127.0.3.1") == 429
        locked = _median_ms(lambda: attempt(EMAIL, "127.0.3.1"))
        get_database(app).dispose()
    print(f"\n{kind}")
    rows = [
        ("baseline: one password hash check", baseline),
        ("known email, wrong password", known),
        ("unknown email", unknown),
        ("throttled attempt (429, no hash)", locked),
    ]
    for label, value in rows:
        print(f"  {label:<38} {value:7.1f} ms  {value / baseline:4.2f}x baseline")
    print(f"  {'unknown / known (target 0.5-2x)':<38} {unknown / known:7.2f}x")


def main() -> None:
    for kind in database_kinds():
        run(kind)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as instance:
        os.environ["HOOKCAST_INSTANCE_PATH"] = instance
        main()
