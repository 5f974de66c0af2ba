"""wtlab.cc.aioquic_hotpaths: each replacement gives aioquic's own result, on random input.

If aioquic changes the internals these patches rely on (RangeSet's private list), the
first test fails loudly, naming what moved.
"""

from __future__ import annotations

from aioquic.quic.rangeset import RangeSet
from hypothesis import given, settings
from hypothesis import strategies as st

from wtlab.cc import aioquic_hotpaths as H


def test_the_internals_the_patches_rely_on_are_there():
    r = RangeSet([range(0, 3)])
    assert isinstance(getattr(r, "_RangeSet__ranges", None), list), (
        "aioquic's RangeSet no longer keeps _RangeSet__ranges: update wtlab.cc.aioquic_hotpaths")
    assert H._ORIGINAL_ADD.__qualname__ == "RangeSet.add"


ADDS = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 8)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(adds=ADDS)
def test_rangeset_add_fast_path_matches_aioquic(adds):
    patched, original = RangeSet(), RangeSet()
    for start, n in adds:
        H._add(patched, start, start + n)
        H._ORIGINAL_ADD(original, start, start + n)
        assert list(patched) == list(original)
    single_p, single_o = RangeSet(), RangeSet()
    for start, _ in adds:
        H._add(single_p, start)
        H._ORIGINAL_ADD(single_o, start)
    assert list(single_p) == list(single_o)


def test_install_is_what_the_seam_uses():
    import wtlab.cc.aioquic  # noqa: F401 - installs

    assert H.installed() and RangeSet.add is H._add


def test_an_emulated_run_is_the_same_row_for_row_with_and_without_the_patches():
    from wtlab.lab import Experiment

    exp = Experiment(path=dict(rate_bps=20e6, rtt_s=0.03, loss="1%"), cc="cubic", seed=3,
                     engine="emulate")
    patched = exp.run(1.5).trace()
    H.uninstall()
    try:
        assert RangeSet.add is H._ORIGINAL_ADD
        original = exp.run(1.5).trace()
    finally:
        H.install()
    assert (patched["kind"] == "packet_lost").sum() > 0  # gaps: several ranges were kept
    assert len(patched) > 1000
    assert patched.equals(original)
