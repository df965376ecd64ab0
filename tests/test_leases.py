"""Sharing slices of the devices among processes with PostgreSQL advisory locks: a fair
split, a hand-over when a member leaves, and a take-over within seconds when one is killed."""

from __future__ import annotations

import subprocess
import sys
import time

from forewarn.leases import Leases
from forewarn.settings import Settings
from tests.conftest import env_for, wait_for

HOLDER = """
import sys, time
from forewarn.leases import Leases
from forewarn.settings import Settings
leases = Leases(Settings(), "scorers", partitions=16)
leases.rebalance()
print(sorted(leases.owned), flush=True)
while True:
    time.sleep(0.2)
    leases.rebalance()
"""


def test_members_split_the_slices_and_take_over_a_dead_ones(settings: Settings) -> None:
    a = Leases(settings, "scorers", partitions=16)
    b = Leases(settings, "scorers", partitions=16)
    other_group = Leases(settings, "responders", partitions=16)
    try:
        a.rebalance()
        assert a.owned == frozenset(range(16))  # alone: everything
        b.rebalance()  # b joins: a holds all, b gets none yet...
        gained, lost = a.rebalance()  # ...until a gives back what is over its share
        assert lost and not gained and len(a.owned) == 8
        b.rebalance()
        assert len(b.owned) == 8 and a.owned.isdisjoint(b.owned)
        other_group.rebalance()  # groups do not share a lock space
        assert other_group.owned == frozenset(range(16))

        # A process holding slices is killed: its connection goes, and so do its locks.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            env=env_for(settings),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        try:
            for _ in range(3):
                a.rebalance()
                b.rebalance()
                time.sleep(0.3)
            # Three members: a fair share is 6 each, so a and b keep 12 and the holder 4.
            wait_for(lambda: _settled(a, b, 12), timeout=10, what="a three-way split")
        finally:
            holder.kill()
            holder.wait(10)
            holder.stdout.close()
        started = time.monotonic()
        wait_for(lambda: _settled(a, b, 16), timeout=10, what="the dead member's slices taken")
        assert time.monotonic() - started < 5
        assert a.owned.isdisjoint(b.owned) and a.owned | b.owned == frozenset(range(16))
    finally:
        for leases in (a, b, other_group):
            leases.leave()


def _settled(a: Leases, b: Leases, between_them: int) -> bool:
    a.rebalance()
    b.rebalance()
    return len(a.owned | b.owned) == between_them and a.owned.isdisjoint(b.owned)
