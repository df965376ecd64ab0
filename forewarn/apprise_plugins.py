"""Apprise, loaded once and quietly: every place that instantiates Apprise URLs (the
dispatcher, the registry checking owners' targets) loads its plugins through here."""

from __future__ import annotations

import functools
import warnings
from typing import Any

from apprise.apprise import N_MGR
from apprise.apprise_config import C_MGR


@functools.cache
def load_plugins() -> None:
    """Import Apprise's plugins now, once, rather than lazily at the first send.

    Its e-mail plugin imports ``imghdr``, deprecated since Python 3.11, and that warning is
    Apprise's to fix: silenced here so it neither reaches the logs at the first send nor
    fails a test run that turns warnings into errors.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="imghdr")
        warnings.filterwarnings("ignore", message=".*imghdr.*", category=DeprecationWarning)
        for manager in (N_MGR, C_MGR):
            _load(manager)


def _load(manager: Any) -> None:
    manager.load_modules()  # untyped in Apprise
