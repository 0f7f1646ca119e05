"""The OplogActor's retention passes: when the next batch runs and where it goes on.

``[retention]`` (docs/operations.md, "Retention") is applied by the OplogActor
itself, as the oplog's only writer, but never in the way of ingest: a pass is a
series of small batches (``BATCH_ROWS`` operations looked at, one short
transaction each), at most one per tick of the hub's ticker (once a second), so a
session's batch never waits behind more than one of them. A pass starts when the
settings are first given and then ``[retention] interval`` seconds after the
previous one ended; new settings (a reload) start a pass at the next tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from hub.config import RetentionSettings
from hub.store import RetentionStore, RetireBatch

log = logging.getLogger(__name__)

BATCH_ROWS: Final = 2000


@dataclass
class RetentionPass:
    """Where retention stands; owned by one OplogActor, used in its thread only."""

    settings: RetentionSettings = field(default_factory=RetentionSettings)
    batch_rows: int = BATCH_ROWS
    after_id: int = 0
    removed_this_pass: int = 0
    next_pass_at: float = 0.0
    running: bool = False

    def configure(self, settings: RetentionSettings) -> None:
        if settings != self.settings:
            self.settings = settings
            self.next_pass_at = 0.0

    def step(self, store: RetentionStore, now: float) -> RetireBatch | None:
        """Run the batch due at ``now``, if any; None when nothing was due."""
        if not self.settings.enabled:
            self.running = False
            return None
        if not self.running:
            if now < self.next_pass_at:
                return None
            self.running, self.after_id, self.removed_this_pass = True, 0, 0
        batch = store.retire(self.settings, int(now * 1000), after_id=self.after_id,
                             limit=self.batch_rows)
        self.after_id = batch.next_after
        self.removed_this_pass += len(batch.removed)
        if batch.done:
            self.running = False
            self.next_pass_at = now + self.settings.interval
            if self.removed_this_pass:
                log.info("retention removed %d operations older than [retention] keeps",
                         self.removed_this_pass)
        return batch
