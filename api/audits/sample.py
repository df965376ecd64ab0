"""The weekly audit's draw (standard 4.2: "每周随机抽取10%的工单"): pure and seeded, so the same
week's closed tickets and seed always give the same sample.

    >>> draw([5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11], seed=7)
    [3, 6]
    >>> draw([], seed=7)
    []
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from datetime import date

SHARE = 0.10  # the standard's 10 %


def draw(ticket_ids: Sequence[int], *, seed: int, share: float = SHARE) -> list[int]:
    """`share` of the tickets (rounded up: a week with any closed ticket is audited), chosen
    by a random generator seeded with `seed`, in ticket order."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return []
    count = min(len(ids), math.ceil(len(ids) * share))
    return sorted(random.Random(seed).sample(ids, count))


def week_seed(week: date) -> int:
    """The seed of a week when none is given: from its date, so anyone can repeat the draw."""
    digest = hashlib.sha256(f"forewarn-audit:{week.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:7], "big")  # fits a PostgreSQL bigint
