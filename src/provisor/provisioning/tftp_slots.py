"""Who gets a TFTP transfer slot: caps per address and in total, fair under a flood, and exact.

A slot is taken when a read request is admitted and given back, synchronously, when its
transfer ends (final ACK, error, abandon) or when the request is answered without one. Counting
in the task that served a transfer lagged behind the wire: the final ACK of one transfer and
the client's next request arrive together, and when the next request was looked at first, a
client with 50 transfers in flight was refused under a cap of 64. Two rules make the count
exact:

- a request over a cap waits up to ``grace`` seconds for a slot of its address (or a global one)
  before "server busy", so the ACKs already received in the same loop turn are counted first;
- a request from an endpoint (address and port) that already has one in flight is the same
  transfer's retransmitted RRQ and takes no second slot, as long as that transfer has had no
  ACK; if after the grace the old transfer still runs and the request differs, or the client
  already acknowledged data of it, the client moved on (or its port was reused): the old
  transfer is dropped and the new request admitted.

Fairness: the last ``reserved`` slots under the total are kept for addresses with fewer than
``reserved_per_client`` transfers in flight, so a few addresses flooding unacknowledged
requests cannot keep every other phone on "server busy". Spoofed source addresses defeat any
per-address rule; the short life of never-acknowledged transfers (see ``tftp.py``) bounds them.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Endpoint", "Slot", "SlotPolicy", "SlotTable"]

Endpoint = tuple[str, int]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SlotPolicy:
    """The caps of a :class:`SlotTable`."""

    max_transfers: int = 2000
    max_per_client: int = 64
    reserved: int = 200
    reserved_per_client: int = 4
    grace: float = 0.2


class Slot:
    """One admitted request, from its RRQ until its transfer ends."""

    __slots__ = ("_table", "address", "endpoint", "request", "released", "progressed", "on_abort")

    def __init__(self, table: SlotTable[object], endpoint: Endpoint, request: bytes) -> None:
        self._table = table
        self.address = endpoint[0]
        self.endpoint = endpoint
        self.request = request
        self.released = False
        self.progressed = False  # the client acknowledged something of this transfer
        self.on_abort: Callable[[], None] | None = None

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if not self.released:
            self.released = True
            self._table._release(self)


class _Waiter(Generic[T]):
    __slots__ = ("endpoint", "request", "payload", "timer", "done")

    def __init__(self, endpoint: Endpoint, request: bytes, payload: T) -> None:
        self.endpoint = endpoint
        self.request = request
        self.payload = payload
        self.timer: asyncio.TimerHandle | None = None
        self.done = False


class SlotTable(Generic[T]):
    """Slots in flight, per address and per endpoint, and the requests waiting for one.

    ``admit(slot, payload)`` starts serving an admitted request, ``refuse(endpoint, reason)``
    answers "busy"; both are called synchronously, now or when a waiting request is settled.
    """

    def __init__(
        self,
        policy: SlotPolicy,
        admit: Callable[[Slot, T], None],
        refuse: Callable[[Endpoint, str], None],
    ) -> None:
        self.policy = policy
        self.admit = admit
        self.refuse = refuse
        self.active = 0
        self.per_address: Counter[str] = Counter()
        self.by_endpoint: dict[Endpoint, Slot] = {}
        self._waiting: deque[_Waiter[T]] = deque()
        self._waiting_per_address: Counter[str] = Counter()
        self._drain_scheduled = False
        self._max_waiting = max(256, 4 * policy.max_per_client)

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot (within their grace)."""
        return sum(1 for w in self._waiting if not w.done)

    def refusal(self, address: str) -> str | None:
        """Why a new request from ``address`` cannot have a slot now, or None."""
        n = self.per_address[address]
        policy = self.policy
        if n >= policy.max_per_client:
            return "per-address transfer cap"
        if self.active >= policy.max_transfers:
            return "transfer cap"
        if (
            self.active >= policy.max_transfers - policy.reserved
            and n >= policy.reserved_per_client
        ):
            return "reserved transfers"
        return None

    def request(self, endpoint: Endpoint, request: bytes, payload: T) -> None:
        """Admit a read request now, or let it wait for a slot, or refuse it."""
        address = endpoint[0]
        existing = self.by_endpoint.get(endpoint)
        if existing is None:
            reason = self.refusal(address)
            if reason is None:
                self.admit(self._take(endpoint, request), payload)
                return
        else:
            reason = "retransmitted request"
        waiter = _Waiter(endpoint, request, payload)
        if (
            self.policy.grace <= 0
            or len(self._waiting) >= self._max_waiting
            or self._waiting_per_address[address] >= self.policy.max_per_client
        ):
            self._give_up(waiter, reason)
            return
        waiter.timer = asyncio.get_running_loop().call_later(
            self.policy.grace, self._expire, waiter
        )
        self._waiting.append(waiter)
        self._waiting_per_address[address] += 1

    def close(self) -> None:
        """Forget the waiting requests (the server is stopping)."""
        for waiter in self._waiting:
            if waiter.timer is not None:
                waiter.timer.cancel()
        self._waiting.clear()
        self._waiting_per_address.clear()

    # -- internals -----------------------------------------------------------------------------

    def _take(self, endpoint: Endpoint, request: bytes) -> Slot:
        slot = Slot(self, endpoint, request)  # type: ignore[arg-type]
        self.active += 1
        self.per_address[slot.address] += 1
        self.by_endpoint[endpoint] = slot
        return slot

    def _release(self, slot: Slot) -> None:
        self.active -= 1
        n = self.per_address[slot.address] - 1
        if n > 0:
            self.per_address[slot.address] = n
        else:
            del self.per_address[slot.address]
        if self.by_endpoint.get(slot.endpoint) is slot:
            del self.by_endpoint[slot.endpoint]
        if self._waiting and not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        kept: deque[_Waiter[T]] = deque()
        for waiter in self._waiting:
            if waiter.done:
                continue
            if waiter.endpoint not in self.by_endpoint and self.refusal(waiter.endpoint[0]) is None:
                self._settle(waiter)
                self.admit(self._take(waiter.endpoint, waiter.request), waiter.payload)
            else:
                kept.append(waiter)
        self._waiting = kept

    def _settle(self, waiter: _Waiter[T]) -> None:
        waiter.done = True
        if waiter.timer is not None:
            waiter.timer.cancel()
        address = waiter.endpoint[0]
        n = self._waiting_per_address[address] - 1
        if n > 0:
            self._waiting_per_address[address] = n
        else:
            del self._waiting_per_address[address]

    def _expire(self, waiter: _Waiter[T]) -> None:
        if waiter.done:
            return
        self._settle(waiter)
        existing = self.by_endpoint.get(waiter.endpoint)
        if existing is not None:
            self._give_up(waiter, "retransmitted request")
            return
        reason = self.refusal(waiter.endpoint[0])
        if reason is None:
            self.admit(self._take(waiter.endpoint, waiter.request), waiter.payload)
        else:
            self.refuse(waiter.endpoint, reason)

    def _give_up(self, waiter: _Waiter[T], reason: str) -> None:
        existing = self.by_endpoint.get(waiter.endpoint)
        if existing is not None:
            if existing.request == waiter.request and not existing.progressed:
                return  # the same transfer's RRQ again: the transfer answers it
            if existing.on_abort is not None:
                existing.on_abort()  # the client moved on from that transfer
            existing.release()
            reason = self.refusal(waiter.endpoint[0]) or ""
            if not reason:
                self.admit(self._take(waiter.endpoint, waiter.request), waiter.payload)
                return
        self.refuse(waiter.endpoint, reason)
