"""The engine's running half in one process: scheduler, dispatcher, senders.

``hookcast serve`` and ``hookcast worker`` create exactly one ``EngineRuntime``; the web
app never does, so no forked web worker runs a second scheduler.
"""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from engine.settings import EngineSettings
from engine.store import Database


class EngineRuntime:
    def __init__(self, settings: EngineSettings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.scheduler = BackgroundScheduler(timezone="UTC")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)
