"""Paths (two directions), seeds, descriptions; the units parsers behind every flag."""

from __future__ import annotations

import json

import pytest

import wtlab
from wtlab import ConfigError
from wtlab.net.link import Buffer, Link, LinkSpec
from wtlab.net.loss import GilbertElliott
from wtlab.net.path import Path, derive_seed
from wtlab.net.units import parse_duration, parse_fraction, parse_rate, parse_size


def test_symmetric_path_rtt_bdp_and_buffers():
    p = Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", buffer_bdp=1.0, seed=7)
    assert p.rtt_s == pytest.approx(0.04)
    assert p.bdp_bytes == pytest.approx(50_000)
    assert p.down.delay_s == p.up.delay_s == pytest.approx(0.02)
    assert p.down.buffer_bytes == p.up.buffer_bytes == 50_000
    # loss on the data direction (down) only; ACK-path loss is its own option
    assert p.down.spec.loss.p == 0.01 and p.up.spec.loss is None
    q = Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", ack_loss="0.5%", seed=7)
    assert q.down.spec.loss.p == 0.01 and q.up.spec.loss.p == 0.005
    assert wtlab.Path is Path


def test_asymmetric_path_and_bdp_from_path_rtt():
    down = LinkSpec(rate_bps=20e6, delay_s=0.03, buffer=Buffer(bdp=2.0))
    up = LinkSpec(rate_bps=1e6, delay_s=0.01, buffer="50p")
    p = Path(down=down, up=up, seed=1)
    assert p.rtt_s == pytest.approx(0.04)
    assert p.bdp_bytes == pytest.approx(20e6 * 0.04 / 8)
    assert p.bdp_bytes_up == pytest.approx(1e6 * 0.04 / 8)
    # a BDP buffer uses the path's RTT (0.04 s), not twice the link's delay (0.06 s)
    assert p.down.buffer_bytes == 200_000
    assert p.up.buffer_packets == 50
    (a,) = p.down.transmit(0.0, 1000)
    assert a == pytest.approx(1000 * 8 / 20e6 + 0.03)
    (b,) = p.up.transmit(0.0, 1000)
    assert b == pytest.approx(1000 * 8 / 1e6 + 0.01)


def test_dict_specs_and_defaults():
    p = Path(down={"rate_bps": "5mbit", "delay_s": "10ms"}, seed=3)
    assert p.up.capacity_bps == 5e6 and p.rtt_s == pytest.approx(0.02)
    assert p.down is not p.up  # two links, two queues
    with pytest.raises(ConfigError, match="unknown link parameter"):
        Path(down={"rate": "5mbit"})


def _arrivals(path: Path, n: int = 3000) -> list:
    return [(path.down.transmit(i * 1e-3, 1200), path.up.transmit(i * 1e-3, 60))
            for i in range(n)]


def test_seed_makes_a_path_repeatable_and_directions_independent():
    kw = dict(rate_bps=10e6, rtt_s=0.04, loss=GilbertElliott.from_burst(0.05, 3), jitter_s=0.002)
    a = _arrivals(Path.symmetric(**kw, seed=5))
    b = _arrivals(Path.symmetric(**kw, seed=5))
    c = _arrivals(Path.symmetric(**kw, seed=6))
    assert a == b and a != c
    p = Path.symmetric(**kw, seed=5)
    assert p.down.seed == derive_seed(5, "down") != p.up.seed == derive_seed(5, "up")
    # the two directions do not lose the same packets
    down_lost = [i for i in range(2000) if not p.down.transmit(i * 1e-3, 100)]
    up_lost = [i for i in range(2000) if not p.up.transmit(i * 1e-3, 100)]
    assert down_lost != up_lost


def test_new_gives_a_fresh_path_with_the_same_behaviour():
    p = Path.symmetric(rate_bps=10e6, rtt_s=0.04, loss=0.02, seed=9)
    first = _arrivals(p)
    q = p.new()
    assert q.down is not p.down and q.down.stats.offered == 0
    assert _arrivals(q) == first
    assert _arrivals(p.new(seed=10)) != first


def test_unseeded_path_records_a_seed_that_replays_it():
    p = Path.symmetric(rate_bps=10e6, rtt_s=0.04, loss=0.05)
    first = _arrivals(p, 2000)
    assert _arrivals(Path.symmetric(rate_bps=10e6, rtt_s=0.04, loss=0.05, seed=p.seed),
                     2000) == first


def test_link_spec_seed_is_kept_and_links_can_be_shared():
    spec = LinkSpec(rate_bps=1e6, loss="10%", seed=123)
    assert Path(down=spec, seed=1).down.seed == 123
    link = Link(rate_bps=1e6, seed=4)
    p = Path(down=link, up=LinkSpec(rate_bps=1e6))
    assert p.down is link


def test_describe_is_json_ready(tmp_path):
    p = Path(down=LinkSpec(trace=_trace_file(tmp_path), delay_s=0.02, buffer="1bdp", aqm="codel",
                           loss=GilbertElliott.from_burst(0.01, 2), outages=[(1, 2)]),
             up=LinkSpec(rate_bps=1e6, delay_s=0.02), seed=2)
    d = json.loads(json.dumps(p.describe()))
    assert d["seed"] == 2 and d["rtt_s"] == pytest.approx(0.04)
    assert d["down"]["trace"] == "12mbps.trace" and d["down"]["aqm"].startswith("codel")
    assert d["down"]["loss"]["model"] == "gilbert_elliott"
    assert d["down"]["buffer_bytes"] == 60_000 and d["up"]["rate_bps"] == 1e6
    assert "12mbps.trace" in repr(p)


def _trace_file(folder) -> str:
    """A 12 Mbit/s Mahimahi file (one 1500-byte opportunity per ms), written here."""
    from wtlab.net.traces import MahimahiTrace

    MahimahiTrace([1]).save(folder / "12mbps.trace")
    return str(folder / "12mbps.trace")


@pytest.mark.parametrize("text, value", [
    ("10mbit", 10e6), ("10Mbit/s", 10e6), ("10mbps", 10e6), ("500kbit", 5e5), ("1gbit", 1e9),
    ("1MB/s", 8e6), ("1MBps", 8e6), ("2.5 Mbit", 2.5e6), ("12000000", 12e6), (3e6, 3e6),
])
def test_parse_rate(text, value):
    assert parse_rate(text) == pytest.approx(value)


@pytest.mark.parametrize("text, value", [
    ("25ms", 0.025), ("0.5s", 0.5), ("100us", 1e-4), ("1min", 60.0), ("25 ms", 0.025), (0.1, 0.1),
])
def test_parse_duration(text, value):
    assert parse_duration(text) == pytest.approx(value)


@pytest.mark.parametrize("text, value", [
    ("1500", 1500), ("1500B", 1500), ("64KB", 64_000), ("64kB", 64_000), ("64KiB", 65_536),
    ("1MB", 1_000_000), ("512kbit", 64_000), ("100 bytes", 100),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_parse_fraction():
    assert parse_fraction("1%") == pytest.approx(0.01)
    assert parse_fraction("0.5 %") == pytest.approx(0.005)
    assert parse_fraction("0.02") == pytest.approx(0.02)


@pytest.mark.parametrize("func, text, needle", [
    (parse_rate, "fast", "--x: cannot read 'fast'"),
    (parse_rate, "10furlongs", "unknown rate unit"),
    (parse_rate, "0mbit", "positive"),
    (parse_duration, "25", "no unit"),
    (parse_duration, "-3ms", "non-negative"),
    (parse_duration, "3 fortnights", "unknown duration unit"),
    (parse_size, "12 parsecs", "unknown size unit"),
    (parse_fraction, "150%", "outside"),
    (parse_fraction, "1‰", "cannot read"),
])
def test_parse_errors_name_the_flag(func, text, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        func(text, "--x")
    assert str(info.value).startswith("--x: ")


@pytest.mark.parametrize("spec, words", [
    (dict(rate=10e6), ["'rate'", "rate_bps", "ack_loss", "buffer_bdp"]),
    (dict(buffer_bytes=1000), ["'buffer_bytes'", "valid keys"]),
    (dict(qdisc="red"), ["'qdisc'", "valid keys"]),  # (ecn= is a path key since issue 18)
    (dict(rate_bps=10e6, loss=0.5), ["loss=0.5", "50%", "'0.5%'"]),
    (dict(rate_bps=10e6, rtt_s=80), ["80 seconds", "'80ms'"]),
    (dict(rate_bps=10), ["10 bit/s", "'10mbit'"]),
])
def test_a_path_spec_that_does_not_say_what_it_means_is_refused(spec, words):
    with pytest.raises(ConfigError) as err:
        Path.from_spec(spec)
    for w in words:
        assert w in str(err.value)


def test_loss_reads_fractions_and_percent_strings():
    assert Path.from_spec(dict(rate_bps=1e6, loss="50%")).down_spec.loss.p == 0.5
    assert Path.from_spec(dict(rate_bps=1e6, loss="0.5%")).down_spec.loss.p == 0.005
    assert Path.from_spec(dict(rate_bps=1e6, loss=0.05)).down_spec.loss.p == 0.05
    assert Path.from_spec(dict(rate_bps=1e6, rtt_s="80s")).rtt_s == 80.0
