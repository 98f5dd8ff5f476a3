"""The portfolio under construction: column arrays plus who was planted where."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ringscope.ingest.synthetic.config import END, START, GeneratorConfig

__all__ = ["Book", "Groups"]


@dataclass(frozen=True)
class Groups:
    """Application rows cut into consecutive groups (rings, families, circles).

    ``rows[i]`` belongs to group ``group[i]``; ``leader[g]`` is the position
    in ``rows`` of group ``g``'s first member; ``position`` is a member's place
    within its group (0 = leader).
    """

    rows: np.ndarray
    group: np.ndarray
    sizes: np.ndarray

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def leader(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    @property
    def position(self) -> np.ndarray:
        return np.arange(len(self.rows)) - self.leader[self.group]

    @property
    def next_in_group(self) -> np.ndarray:
        """Index (into ``rows``) of the next member, the last wrapping to the leader: a cycle."""
        i = np.arange(len(self.rows))
        last = self.position == self.sizes[self.group] - 1
        return np.where(last, self.leader[self.group], i + 1)


@dataclass
class Book:
    """Column arrays of the portfolio and the planted truth beside them.

    A whole book is one ``Book``. A book written in chunks
    (``generate_portfolio(chunk_rows=...)``) is a run of ``Book``s, each
    the applications of one time window (``window``: first and end day,
    counted from ``START``) with ``config.applications`` rows of the
    ``population`` (``total``); ``offset`` applications lie in the windows before it,
    ``ring_offset`` rings were planted there, and ``hubs`` holds what the
    chunks share (carrier-NAT addresses, busy agents).
    """

    config: GeneratorConfig
    rng: np.random.Generator
    population: int | None = None
    offset: int = 0
    ring_offset: int = 0
    window: tuple[int, int] | None = None
    hubs: dict[str, np.ndarray] = field(default_factory=dict)
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    typology: np.ndarray = field(init=False)
    ring_id: np.ndarray = field(init=False)
    hard_negative: np.ndarray = field(init=False)
    force_mess: np.ndarray = field(init=False)
    new_batch: np.ndarray = field(init=False)
    rings: list[pd.DataFrame] = field(default_factory=list)
    circles: list[pd.DataFrame] = field(default_factory=list)
    contacts: list[pd.DataFrame] = field(default_factory=list)
    guarantees: list[pd.DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.n
        self.typology = np.full(n, "", dtype=object)
        self.ring_id = np.full(n, "", dtype=object)
        self.hard_negative = np.full(n, "", dtype=object)
        self.force_mess = np.zeros(n, dtype=bool)  # rows whose formatting must drift (repeat borrowers)
        self.new_batch = np.zeros(n, dtype=bool)  # rows written apart as the new batch (``new_batch_share``)
        self._free = np.ones(n, dtype=bool)
        # one shuffled queue per pool, consumed front to back: each take is
        # O(count) however many rings are planted
        self._queues: dict[str, np.ndarray] = {}
        self._cursor: dict[str, int] = {}
        self._ring_counter = self.ring_offset

    @property
    def n(self) -> int:
        return self.config.applications

    @property
    def total(self) -> int:
        """Applications in the whole book: ``population``, or this book's own."""
        return self.n if self.population is None else self.population

    @property
    def window_start(self) -> np.datetime64:
        """First second of the book's time window."""
        lo = 0 if self.window is None else self.window[0]
        return (START + np.timedelta64(lo, "D")).astype("datetime64[s]")

    @property
    def window_end(self) -> np.datetime64:
        """End (exclusive) of the book's time window: ``END`` for a whole book."""
        if self.window is None:
            return END.astype("datetime64[s]")
        return (START + np.timedelta64(self.window[1], "D")).astype("datetime64[s]")

    def set_pools(self, business: np.ndarray) -> None:
        """Shuffle the row queues once the honest book knows who is a business."""
        order = self.rng.permutation(self.n)
        self._queues = {"any": order, "business": order[business[order]], "consumer": order[~business[order]]}
        self._cursor = {k: 0 for k in self._queues}

    def take(self, count: int, pool: str = "any", mask: np.ndarray | None = None) -> np.ndarray:
        """``count`` not-yet-planted rows from ``pool`` (and ``mask``), marked taken, in random order."""
        if count <= 0:
            return np.empty(0, dtype=np.int64)
        if mask is not None:  # one-off selections (small shops, ...)
            idx = np.flatnonzero(self._free & mask)
            chosen = self.rng.permutation(idx)[:count]
        else:
            queue, pos, need, parts = self._queues[pool], self._cursor[pool], count, []
            while need > 0 and pos < len(queue):
                window = queue[pos : pos + max(2 * need, 64)]
                hits = np.flatnonzero(self._free[window])[:need]  # rows taken from another pool are skipped
                parts.append(window[hits])
                pos += int(hits[-1]) + 1 if len(hits) == need else len(window)
                need -= len(hits)
            self._cursor[pool] = pos
            chosen = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        self._free[chosen] = False
        return chosen.astype(np.int64)

    def groups(self, total: int, low: int, high: int, pool: str = "any", sizes: np.ndarray | None = None) -> Groups:
        """About ``total`` rows cut into groups of ``low``–``high`` members."""
        if sizes is None:
            sizes = self.rng.integers(low, high + 1, size=max(total // low, 1) + 1)
        sizes = sizes[np.cumsum(sizes) <= total] if total >= low else sizes[:0]
        rows = self.take(int(sizes.sum()), pool)
        if len(rows) < sizes.sum():  # the pool ran dry: keep only whole groups
            sizes = sizes[np.cumsum(sizes) <= len(rows)]
            rows = rows[: int(sizes.sum())]
        return Groups(rows=rows, group=np.repeat(np.arange(len(sizes)), sizes), sizes=sizes.astype(np.int64))

    def ring_ids(self, count: int) -> np.ndarray:
        """``count`` fresh ring ids (R00001, R00002, …)."""
        ids = np.array(
            [f"R{i:05d}" for i in range(self._ring_counter + 1, self._ring_counter + count + 1)], dtype=object
        )
        self._ring_counter += count
        return ids

    def plant(self, typology: str, g: Groups, shared: np.ndarray | str) -> np.ndarray:
        """Mark ``g``'s rows as ``typology`` rings and record them in truth; returns the ring ids."""
        ids = self.ring_ids(g.count)
        self.typology[g.rows] = typology
        self.ring_id[g.rows] = ids[g.group]
        self.rings.append(pd.DataFrame({"ring_id": ids, "typology": typology, "size": g.sizes, "shared": shared}))
        return ids

    def add_contacts(self, rows: np.ndarray, name, phone, relation) -> None:
        self.contacts.append(
            pd.DataFrame({"row": rows, "contact_name": name, "contact_phone": phone, "relation": relation})
        )

    def add_guarantees(self, rows: np.ndarray, kind, name, gid, phone, amount) -> None:
        self.guarantees.append(
            pd.DataFrame(
                {
                    "row": rows,
                    "guarantor_type": kind,
                    "guarantor_name": name,
                    "guarantor_id": gid,
                    "guarantor_phone": phone,
                    "amount": amount,
                }
            )
        )
