"""Issue 25: FER_MAX_LIVE_STREAMS. The stream beyond the limit is turned away at START with a
message; the default is the measured streams per core (bench/live_capacity.json) times the
machine's cores."""

import json
import math
import threading

import pytest

from app_lib.live.limit import (
    CAPACITY_RESULTS,
    LiveStreams,
    default_max_live_streams,
    max_live_streams,
    measured_streams_per_core,
    refusal_message,
)
from fer_core.errors import ConfigError


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
    streams = LiveStreams(hold_s=10.0, reserve_s=15.0)
    now = 1000.0
    assert streams.admit("a", limit=2, now=now)
    assert streams.admit("b", limit=2, now=now)
    assert not streams.admit("c", limit=2, now=now + 1)  # two are connecting
    assert streams.admit("a", limit=2, now=now + 1)  # one already in keeps its place
    assert streams.admit("c", limit=None, now=now + 1)  # no limit: always
    streams.release("c")
    # "a" streams; "b" never sent a frame: its reservation ends, and its place frees up.
    assert streams.frame("a", limit=2, now=now + 14)
    assert streams.count(now=now + 16) == 1
    assert streams.admit("c", limit=2, now=now + 16)
    assert streams.frame("a", limit=2, now=now + 17) and streams.frame("c", 2, now=now + 17)
    assert streams.count(now=now + 17.5) == 2
    # A closed tab sends no more frames: within hold_s it no longer counts.
    assert streams.count(now=now + 40) == 0


def test_a_paused_stream_keeps_its_place_for_a_while_and_never_exceeds_the_limit():
    """Issue 34 item 3: with a limit of 2, a stream that stops sending frames for 3 s (a
    replaced track, a network stall) used to lose its place; when it resumed, 3 streams were
    analysed. Now each frame asks before it is analysed: a pause shorter than HOLD_S keeps
    the place; after a longer one, the place is free, a third stream may take it, and the
    resumed stream's frames are not analysed until a place frees again."""
    streams = LiveStreams(hold_s=10.0, reserve_s=15.0)
    now = 1000.0
    for key in ("a", "b"):
        assert streams.admit(key, limit=2, now=now)
        assert streams.frame(key, limit=2, now=now + 0.5)
    # "a" pauses 3 s: still its place, a third stream is turned away at START and at a frame
    assert not streams.admit("c", limit=2, now=now + 3)
    assert not streams.frame("c", limit=2, now=now + 3.1)
    assert streams.frame("a", limit=2, now=now + 3.5)
    # "a" pauses 12 s: its place frees up, "c" takes it
    streams.frame("b", limit=2, now=now + 14)
    assert streams.admit("c", limit=2, now=now + 15.6)
    assert streams.frame("c", limit=2, now=now + 15.7)
    # "a" resumes: not analysed while "b" and "c" stream, frame after frame
    for t in (16.0, 16.1, 20.0):
        assert streams.frame("b", 2, now=now + t) and streams.frame("c", 2, now=now + t)
        assert not streams.frame("a", limit=2, now=now + t)
    assert streams.count(now=now + 20) == 2
    streams.release("c")  # "c" stops: "a"'s next frame is analysed again
    assert streams.frame("a", limit=2, now=now + 20.1)
    assert streams.count(now=now + 20.2) == 2


def test_frames_of_many_streams_at_once_never_exceed_the_limit():
    """Frames of 12 streams arrive at once from 12 threads, 200 each: at no moment are more
    than 3 streams allowed, and the 3 that hold places keep them."""
    streams = LiveStreams(hold_s=10.0, reserve_s=15.0)
    allowed: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def stream(key: str) -> None:
        barrier.wait()
        for _ in range(200):
            if streams.frame(key, limit=3):
                with lock:
                    allowed[key] = allowed.get(key, 0) + 1
            assert streams.count() <= 3

    threads = [threading.Thread(target=stream, args=(f"s{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 3 and all(n == 200 for n in allowed.values()), allowed


def test_the_refusal_says_what_happened_and_what_to_do():
    message = refusal_message(3)
    assert "already analysing 3 live streams, its limit" in message
    assert "Try again in a minute" in message and "FER_MAX_LIVE_STREAMS" in message
    assert "1 live stream," in refusal_message(1)
