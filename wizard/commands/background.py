"""A loop on a thread of the web process (the embedded outbox worker, the embedded IMAP fetcher).

``serve`` runs them next to the web server; ``stop()`` sets the loop's stop
event (it finishes what it is doing, then returns) and waits for the thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["BackgroundLoop", "start_background_loop"]


class BackgroundLoop:
    """A loop's thread and the event that stops it."""

    def __init__(self, thread: threading.Thread, stop_event: threading.Event):
        self.thread = thread
        self.stop_event = stop_event

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


def start_background_loop(name: str, loop: Callable[..., object], *args, **kwargs) -> BackgroundLoop:
    """Run ``loop(*args, stop_event=…, **kwargs)`` on a daemon thread called ``name``."""
    stop_event = threading.Event()
    thread = threading.Thread(target=loop, args=args, kwargs=dict(stop_event=stop_event, **kwargs), name=name,
                              daemon=True)
    thread.start()
    return BackgroundLoop(thread, stop_event)
