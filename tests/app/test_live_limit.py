"""Issue 25: FER_MAX_LIVE_STREAMS. The stream beyond the limit is turned away at START with a
message; the default is the measured streams per core (bench/live_capacity.json) times the
machine's cores."""

import json
import math
import types

import pytest

from app_lib.live_limit import (
    CAPACITY_RESULTS,
    LiveStreams,
    default_max_live_streams,
    max_live_streams,
    measured_streams_per_core,
    refusal_message,
)
from fer_core.errors import ConfigError


class FakeProcessor:
    """A LiveProcessor as LiveStreams sees it: the time of its latest analysed frame."""

    def __init__(self):
        self.latest_at = None
        self.holder = types.SimpleNamespace(
            latest=lambda: (
                None if self.latest_at is None else types.SimpleNamespace(updated=self.latest_at)
            )
        )


def _results(path, capacity, cores=2):
    runs = [
        {"detector": "haar", "fps": 15, "capacity": capacity},
        {"detector": "haar", "fps": 25, "capacity": 1},
        {"detector": "blazeface", "fps": 15, "capacity": 1},
    ]
    path.write_text(json.dumps({"cores": cores, "runs": runs}))
    return path


def test_the_limit_setting(tmp_path):
    measured = _results(tmp_path / "capacity.json", capacity=7, cores=2)
    assert measured_streams_per_core(measured) == 3.5
    assert default_max_live_streams(cores=2, path=measured) == 7
    assert default_max_live_streams(cores=8, path=measured) == 28
    assert default_max_live_streams(cores=1, path=_results(tmp_path / "one.json", 1)) == 1
    assert default_max_live_streams(path=tmp_path / "missing.json") is None  # not measured
    assert max_live_streams({}, cores=4, path=measured) == 14
    assert max_live_streams({"FER_MAX_LIVE_STREAMS": " 3 "}, path=measured) == 3
    assert max_live_streams({"FER_MAX_LIVE_STREAMS": "0"}, path=measured) is None
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(ConfigError, match="whole number"):
            max_live_streams({"FER_MAX_LIVE_STREAMS": bad}, path=measured)


def test_the_shipped_default_is_the_measurement():
    """The default is read from the committed measurement, not typed anywhere."""
    results = json.loads(CAPACITY_RESULTS.read_text())
    (run,) = [r for r in results["runs"] if r["detector"] == "haar" and r["fps"] == 15]
    per_core = run["capacity"] / results["cores"]
    assert default_max_live_streams(cores=results["cores"]) == max(
        1, math.floor(per_core * results["cores"])
    )


def test_streams_beyond_the_limit_are_turned_away_and_places_free_up():
    streams = LiveStreams(fresh_s=3.0, reserve_s=15.0)
    now = 1000.0
    first, second, third = FakeProcessor(), FakeProcessor(), FakeProcessor()
    assert streams.admit("a", first, limit=2, now=now)
    assert streams.admit("b", second, limit=2, now=now)
    assert not streams.admit("c", third, limit=2, now=now + 1)  # two are connecting
    assert streams.admit("a", first, limit=2, now=now + 1)  # one already in keeps its place
    assert streams.admit("c", third, limit=None, now=now + 1)  # no limit: always
    streams.release("c")
    # "a" streams; "b" never sent a frame: its reservation ends, and its place frees up.
    first.latest_at = now + 14
    assert streams.count(now=now + 16) == 1
    assert streams.admit("c", third, limit=2, now=now + 16)
    first.latest_at = third.latest_at = now + 17
    assert streams.count(now=now + 17.5) == 2
    # A closed tab sends no more frames: within fresh_s it no longer counts.
    assert streams.count(now=now + 40) == 0


def test_the_refusal_says_what_happened_and_what_to_do():
    message = refusal_message(3)
    assert "already analysing 3 live streams, its limit" in message
    assert "Try again in a minute" in message and "FER_MAX_LIVE_STREAMS" in message
    assert "1 live stream," in refusal_message(1)
