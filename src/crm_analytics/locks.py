"""One process at a time per dataset and step: ``build/DATASET/locks/STEP.lock``.

Two ``make reports`` of the same dataset at once (a nightly job meeting a manual run) would
otherwise write the same raw folder, staging folders and tables. The second one stops at once
with a message naming the process that holds the step; the operating system drops a lock when
its holder ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from crm_analytics import paths
from crm_analytics.errors import CrmAnalyticsError

__all__ = ["sole_run"]


@contextlib.contextmanager
def sole_run(dataset: str, step: str) -> Iterator[None]:
    """Hold the lock of *step* on *dataset* for the block, or raise :class:`CrmAnalyticsError`
    at once if another process holds it."""
    lock = paths.build_dir(dataset) / "locks" / f"{step}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise CrmAnalyticsError(
                f"{step} is already running on dataset '{dataset}' ({holder}); wait for that run to "
                f"finish, then run `make reports DATASET={dataset}` again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
