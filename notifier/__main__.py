"""``python -m notifier``: dispatch the outbox until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from forewarn.clock import Clock, SystemClock
from forewarn.errors import ServiceError
from forewarn.settings import Settings
from notifier.dispatcher import Dispatcher

log = logging.getLogger("notifier")

# How often the waiting entry point checks that the dispatcher thread is still alive.
WATCH_SECONDS = 1.0


def run_dispatcher(settings: Settings, clock: Clock, stop: threading.Event) -> None:
    """Run a Dispatcher until `stop` is set; raises ServiceError if its thread dies."""
    dispatcher = Dispatcher(settings, clock)
    dispatcher.start()
    log.info("dispatching the outbox as %s", dispatcher.worker)
    try:
        while not stop.wait(WATCH_SECONDS):
            if dispatcher.failure is not None:
                raise ServiceError("the dispatcher stopped") from dispatcher.failure
    finally:
        dispatcher.stop()
        log.info("dispatcher stopped: %s", dispatcher.stats())


def main() -> None:
    """Entry point: settings from the environment, the wall clock, stop on a signal."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    run_dispatcher(Settings(), SystemClock(), stop)


if __name__ == "__main__":
    main()
