"""Long-lived WebSocket state out of full garbage collections, with memory still bounded.

A full (generation 2) collection walks every object the process holds, and nothing answers
meanwhile. 6,000 subscriptions hold about 680,000 objects (113 each: strawberry's task and
generators, extension hooks, graphql-core's executor), so a pass took 0.25 to 0.5 s and made
`/health`'s p99 under a flood (bench/RESULTS.md, finding 6). They live as long as their client
wants: once established, `gc.freeze()` moves them to the permanent generation, which
collections skip. When: FREEZE_DELAY after the last new socket or operation, or at once after
FREEZE_BATCH new ones (a burst of subscribes is frozen a batch at a time).

A freeze collects the young generations only, so it costs a fraction of a millisecond, not a
pass over the batch (bench/RESULTS.md, "/health while the 6,000 subscribe").

The price: cyclic garbage among frozen objects (and cycles that had grown old before their
freeze) is never collected until a thaw (reference counting frees the rest). So the frozen
sockets and operations that end are counted; once they are at least THAW_AT and as many as
the frozen ones still open, everything is thawed, one full collection runs (the one long pass
left: when many subscribers have gone) and what is left is frozen again. What a freeze
catches besides (requests in flight) is bounded too: at most MAX_FREEZES freezes between two
thaws. `serve` turns it on (one app per process); a test turns it on for
its server (tests/api/live/test_gc_tuning.py).
"""

import asyncio
import gc
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

FREEZE_DELAY = 1.0  # seconds after the last new socket or operation (and before a thaw)
FREEZE_BATCH = 300  # new sockets and operations that freeze at once (~40,000 objects)
THAW_AT = 200  # frozen sockets and operations ended before a thaw, at the least
MAX_FREEZES = 64  # freezes between two thaws


@dataclass
class GcState:
    """What the tuner did (for tests and logs)."""

    freezes: int = 0
    thaws: int = 0
    fresh: int = 0  # open sockets and operations not frozen yet
    frozen: int = 0  # open ones that a freeze covered
    ended_frozen: int = 0  # frozen ones ended since the last thaw


class GcTuning:
    def __init__(
        self,
        delay: float = FREEZE_DELAY,
        batch: int = FREEZE_BATCH,
        thaw_at: int = THAW_AT,
        max_freezes: int = MAX_FREEZES,
    ) -> None:
        self.delay, self.batch, self.thaw_at, self.max_freezes = delay, batch, thaw_at, max_freezes
        self.state = GcState()
        self.enabled = False
        self._epoch = 0  # freezes and thaws so far: what began in an earlier epoch is frozen
        self._new = 0  # began since the last freeze
        self._freezes_since_thaw = 0
        self._timer: asyncio.Handle | None = None
        self._due = 0.0
        self._at_once = False  # a batch is full: the freeze is on the next turn of the loop
        self._thaw_soon = False

    def start(self) -> None:
        """At start-up: what it made lives as long as the process; freeze it, and from now on
        the long-lived sockets and operations."""
        gc.collect()
        gc.freeze()
        self.enabled = True

    def close(self) -> None:
        """At shutdown: nothing stays frozen (a test process goes on to other servers)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.enabled:
            self.enabled = False
            gc.unfreeze()

    def began(self) -> int:
        """A socket or an operation began; hand its ticket to `ended`."""
        if not self.enabled:
            return -1
        self.state.fresh += 1
        self._new += 1
        loop = asyncio.get_running_loop()
        if self._new >= self.batch:
            self._due = 0.0  # at once (the next turn), however many more begin meanwhile
            if not self._at_once:
                self._at_once = True
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_soon(self._freeze)
        else:
            self._due = loop.time() + self.delay  # debounced: from the last one
            if self._timer is None:
                self._timer = loop.call_later(self.delay, self._freeze)
        return self._epoch

    def ended(self, ticket: int) -> None:
        if ticket < 0 or not self.enabled:
            return
        state = self.state
        if ticket == self._epoch:
            state.fresh -= 1
            return
        state.frozen -= 1
        state.ended_frozen += 1
        if not self._thaw_soon and state.ended_frozen >= max(self.thaw_at, state.frozen):
            self._thaw_soon = True  # when a crowd leaves, one pass once most of it has
            asyncio.get_running_loop().call_later(self.delay, self._thaw)

    def tracking(self) -> "Tracked":
        return Tracked(self)

    def _freeze(self) -> None:
        self._timer, self._at_once = None, False
        if not self.enabled or self._thaw_soon:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._due:  # something began since the timer was set
            self._timer = loop.call_at(self._due, self._freeze)
            return
        if self._freezes_since_thaw >= self.max_freezes:
            self._thaw()
            return
        # The young garbage is not frozen with the rest. Not a full pass: it walked every
        # object made since the last freeze (5 to 28 ms a batch, the loop's longest single
        # stall while 6,000 subscribe) and found nothing in 16 of 19 freezes, 142 objects at
        # most (bench/RESULTS.md); what dies old is collected by the next thaw's full pass.
        gc.collect(1)
        gc.freeze()
        self._freezes_since_thaw += 1
        self.state.freezes += 1
        self._advance()

    def _thaw(self) -> None:
        self._thaw_soon = False
        if not self.enabled:
            return
        state = self.state
        log.info(
            "garbage collection: thawing %d frozen sockets and operations (%d ended)",
            state.frozen,
            state.ended_frozen,
        )
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._freezes_since_thaw = 0
        state.thaws += 1
        state.ended_frozen = 0
        self._advance()

    def _advance(self) -> None:
        """Everything open is frozen now."""
        self._epoch += 1
        self._new = 0
        self.state.frozen += self.state.fresh
        self.state.fresh = 0


class Tracked:
    """`with tuning.tracking():` around a socket's or an operation's life."""

    __slots__ = ("ticket", "tuning")

    def __init__(self, tuning: GcTuning) -> None:
        self.tuning, self.ticket = tuning, -1

    def __enter__(self) -> None:
        self.ticket = self.tuning.began()

    def __exit__(self, *exc: object) -> None:
        self.tuning.ended(self.ticket)
