"""Issue 25: beyond capacity a server drops frames, it does not queue them. The app's relay
hands every consumer the newest frame (streamlit-webrtc's default relay queues them all),
passes processed video on only when it is new, and stamps when received video arrived; the
Live page makes it streamlit-webrtc's relay for the server."""

import asyncio
import types
from fractions import Fraction

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay

from app_lib.live import relay as live_relay
from app_lib.live.relay import ArrivalStamped, NewestFrameRelay, NewFramesOnly


def frame(number: int) -> av.VideoFrame:
    video = av.VideoFrame(64, 48, "yuv420p")
    video.pts, video.time_base = number * 6000, Fraction(1, 90000)
    return video


class Camera(MediaStreamTrack):
    """``count`` frames, one every ``interval`` seconds, then the end of the stream."""

    kind = "video"

    def __init__(self, count: int, interval: float = 0.002):
        super().__init__()
        self.count, self.interval, self.sent = count, interval, 0

    async def recv(self):
        if self.sent >= self.count:
            self.stop()
            from aiortc.mediastreams import MediaStreamError

            raise MediaStreamError
        await asyncio.sleep(self.interval)
        self.sent += 1
        return frame(self.sent - 1)


def number(got: av.VideoFrame) -> int:
    return got.pts // 6000


async def read_slowly(track, pause: float, measure=number) -> list[int]:
    """``measure`` of every frame ``track`` gives a reader that rests ``pause`` s after each."""
    from aiortc.mediastreams import MediaStreamError

    seen = []
    while True:
        try:
            got = await asyncio.wait_for(track.recv(), 2)
        except (TimeoutError, MediaStreamError):
            return seen
        seen.append(measure(got))
        await asyncio.sleep(pause)


def test_a_slow_consumer_gets_the_newest_frame_instead_of_a_backlog():
    async def behind(relay) -> list[int]:
        """How many frames behind the camera each frame a slow reader gets is."""
        camera = Camera(60)
        return await read_slowly(  # a pause of ten of the camera's frames
            relay.subscribe(camera), 0.02, lambda got: camera.sent - 1 - number(got)
        )

    queued = asyncio.run(behind(MediaRelay()))
    newest = asyncio.run(behind(NewestFrameRelay()))
    # streamlit-webrtc's default: every frame, ever further behind
    assert len(queued) == 60 and max(queued) >= 30
    # the app's: the reader skips to the newest, at most a frame behind
    assert len(newest) < 30 and max(newest) <= 1


def test_processed_video_passes_each_frame_once():
    class Repeats(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            a, b, c = frame(1), frame(2), frame(3)
            self.frames = [a, a, b, b, b, c]

        async def recv(self):
            if not self.frames:
                from aiortc.mediastreams import MediaStreamError

                raise MediaStreamError
            return self.frames.pop(0)

    async def run():
        return await read_slowly(NewFramesOnly(Repeats()), pause=0)

    assert asyncio.run(run()) == [1, 2, 3]


def test_the_relay_wraps_received_and_processed_video_once_per_track():
    from streamlit_webrtc.models import CallbackAttachableProcessor
    from streamlit_webrtc.process import AsyncVideoProcessTrack

    async def run():
        relay = NewestFrameRelay()
        camera = Camera(5)
        received = relay.subscribe(camera)
        processed = AsyncVideoProcessTrack(
            received, CallbackAttachableProcessor(lambda f: f, None, None)
        )
        first, second = relay.subscribe(processed), relay.subscribe(processed)
        assert isinstance(received._source, ArrivalStamped)
        assert isinstance(first._source, NewFramesOnly)
        assert first._source is second._source  # one reader of the processing track
        assert relay.subscribe(camera)._source is received._source
        got = await asyncio.wait_for(received.recv(), 2)
        # stamped with the monotonic time it arrived
        assert isinstance(got.opaque, float) and got.opaque > 0
        camera.stop()

    asyncio.run(run())


def test_install_makes_it_streamlit_webrtcs_relay(monkeypatch):
    from streamlit.runtime.runtime import Runtime
    from streamlit_webrtc.relay import get_global_relay

    assert live_relay.install() is None  # no Streamlit server in this process
    server = types.SimpleNamespace()
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: server))
    relay = live_relay.install()
    assert isinstance(relay, NewestFrameRelay)
    # streamlit-webrtc reads its relay from where install put it (an upgrade that moves it
    # fails here instead of quietly queueing frames again)
    assert get_global_relay() is relay
    assert live_relay.install() is relay  # once per server
