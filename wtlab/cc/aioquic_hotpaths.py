"""Cheaper versions of aioquic hot paths, behaviour for behaviour.

Part of the aioquic seam (:mod:`wtlab.cc.aioquic` installs it): each change replaces an
aioquic internal with one that returns the same result in every case and only costs
less, so traces are unchanged bit for bit (``tests/cc/test_hotpaths.py`` checks each
against aioquic's own on random inputs, and fails loudly if aioquic's internals move).

* ``RangeSet.add`` takes a fast path when the new range starts at or after the last
  range's start (received packet numbers and ACK ranges grow at the end): aioquic's
  loop skips every earlier range and then appends or merges with the last one, which
  the fast path does directly, instead of walking the list from the front.

:func:`install` applies them (idempotent); :func:`uninstall` restores aioquic's own
(the tests and the emulation benchmark compare both).
"""

from __future__ import annotations

from aioquic.quic.rangeset import RangeSet

_ORIGINAL_ADD = RangeSet.add
_installed = False


def _add(self: RangeSet, start: int, stop: int | None = None) -> None:
    """RangeSet.add with a fast path at the end (the same result as aioquic's)."""
    ranges = self._RangeSet__ranges  # type: ignore[attr-defined]
    if ranges:
        last = ranges[-1]
        if start >= last.start:
            if stop is None:
                stop = start + 1
            assert stop > start
            if start > last.stop:
                ranges.append(range(start, stop))
            elif stop > last.stop:
                ranges[-1] = range(last.start, stop)
            return
    _ORIGINAL_ADD(self, start, stop)


def install() -> None:
    """Apply the patches (idempotent)."""
    global _installed
    RangeSet.add = _add  # type: ignore[method-assign]
    _installed = True


def uninstall() -> None:
    """Restore aioquic's own functions."""
    global _installed
    RangeSet.add = _ORIGINAL_ADD  # type: ignore[method-assign]
    _installed = False


def installed() -> bool:
    """Whether the patches are in place (they are once :mod:`wtlab.cc.aioquic` is imported)."""
    return _installed
