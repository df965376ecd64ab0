"""What a demo run does with the previous runs' data in the same database.

Every run simulates its fleet from two days back. Run again with the same devices, that
fleet would develop the same faults while the last run's incidents for them are still open,
and deduplication (right for a real fleet) would suppress everything. So each run gets a
fleet of its own, numbered after the simulated devices already there, and the open work
left by earlier runs' simulated devices (incidents, tickets, unsent notifications) is
withdrawn with a note: it stays in the tables for the console and the KPIs leave it out.
The demo's responder starts after the predictions already written (the last run may have
stopped before it read its last ones, which are about the fleet just withdrawn). Only
devices the simulator registered are touched, never a real fleet's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cli.demo import repository as demo_repo
from cli.demo.bootstrap import HISTORY_NUMBER_FROM
from forewarn.db import connect
from forewarn.settings import Settings
from notifier import repository as outbox
from notifier.tickets import repository as tickets
from rules import repository as rules_repo

NOTE = "withdrawn by a new demo run: the previous run's simulated fleet stopped reporting"


@dataclass(frozen=True, slots=True)
class Previous:
    """The earlier runs' simulated devices, what was withdrawn, and where this fleet starts."""

    devices: int
    number_from: int
    incidents: int
    fleet_incidents: int
    tickets: int
    notifications: int

    def describe(self, fleet: int) -> str:
        """One line for the start of the run."""
        this = f"this run's {fleet} devices are numbered from {self.number_from}"
        if not self.devices:
            return f"first demo run in this database: {this}"
        return (
            f"previous demo runs left {self.devices} simulated devices here (kept as history); "
            f"withdrawn from them: {self.incidents} open incidents, {self.fleet_incidents} "
            f"fleet incidents, {self.tickets} tickets, {self.notifications} unsent "
            f"notifications; {this}"
        )


def make_room(settings: Settings, *, at: datetime, responder: str) -> Previous:
    """Withdraw the open work of earlier runs' simulated devices, find this run's numbers and
    move the `responder`'s cursor past the predictions written so far, in one transaction."""
    with connect(settings) as conn, conn.transaction():
        rules_repo.save_cursor(conn, name=responder, updated_after=rules_repo.db_now(conn))
        devices, number_from = demo_repo.next_number(conn, below=HISTORY_NUMBER_FROM)
        closed = tickets.withdraw(conn, registered_by="simulator", at=at, note=NOTE)
        withdrawn = rules_repo.withdraw_incidents(conn, registered_by="simulator", at=at)
        cancelled = outbox.cancel_pending(conn, registered_by="simulator", reason=NOTE)
    return Previous(
        devices, number_from, withdrawn.incidents, withdrawn.fleet_incidents, closed, cancelled
    )
