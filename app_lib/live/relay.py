"""Frames a busy server cannot keep up with are dropped, never queued (issue 25).

streamlit-webrtc connects every track through aiortc's ``MediaRelay``: the browser's video
into the processing track, and the processed video into the encoder that sends it back.
Its ``subscribe`` is *buffered* by default, an unbounded ``asyncio.Queue`` per consumer. The
processed track is read at the pace frames arrive, but the encoder takes them only as fast
as the CPU encodes; once the server is past its capacity that queue grows without end, and
every stream's latency and memory with it (``python -m bench.live_capacity --relay
buffered`` measures it; docs/sharing.md shows it beside this relay).

``NewestFrameRelay`` subscribes every consumer unbuffered: it keeps only the newest frame,
and a consumer that was busy gets that one and skips the rest. Two wrappers ride along:

- ``ArrivalStamped`` stamps each received frame with when it came off the network, so that
  ``app_lib.live.processor.FrameLag`` can tell a frame that waited (the server's network loop fell
  behind) and ``LiveProcessor`` can skip analysing it;
- ``NewFramesOnly`` passes processed video on only when it is new: streamlit-webrtc's
  processing track hands out its latest annotated frame again for every frame that was not
  analysed, and encoding the same picture again takes the CPU that the analysis and the
  network loop need.

The Live page installs the relay as streamlit-webrtc's server-wide one (``install``) before
its first stream starts; the bench wires its server with the same class, so what it
measures is what the app does.
"""

from __future__ import annotations

import threading
import time

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay

# streamlit-webrtc keeps its one relay per server as this attribute of Streamlit's Runtime
# (streamlit_webrtc.relay.get_global_relay); tests/app/test_live_relay.py checks that it still
# reads it from there, so an upgrade that moves it fails a test instead of quietly queueing.
_GLOBAL_RELAY_ATTR = "streamlit-webrtc-global-relay"
_lock = threading.Lock()
_WRAPPER_ATTR = "_fer_newest_frame_wrapper"


class _Wrapper(MediaStreamTrack):
    """A track that reads ``source`` and ends with it."""

    def __init__(self, source: MediaStreamTrack):
        super().__init__()
        self.kind = source.kind
        self.source = source
        source.on("ended", self.stop)


class NewFramesOnly(_Wrapper):
    """``source``'s frames, each once: a frame object it hands out again is skipped."""

    _previous = None

    async def recv(self):
        while True:
            frame = await self.source.recv()
            if frame is not self._previous:
                self._previous = frame
                return frame

    def stop(self) -> None:
        super().stop()
        self._previous = None


class ArrivalStamped(_Wrapper):
    """``source``'s video frames, each stamped with when it arrived here
    (``frame.opaque``: ``time.monotonic()``), before any queue of the app's. A frame's
    lag (``app_lib.live.processor.FrameLag``) is counted up to that moment, so the wait for the
    analysis thread, which drops all but the newest frame anyway, is not counted as being
    behind."""

    async def recv(self):
        frame = await self.source.recv()
        if getattr(frame, "opaque", None) is None:
            frame.opaque = time.monotonic()
        return frame


def _is_processed(track) -> bool:
    from streamlit_webrtc.process import AsyncMediaProcessTrack, MediaProcessTrack

    return isinstance(track, (AsyncMediaProcessTrack, MediaProcessTrack))


class NewestFrameRelay(MediaRelay):
    """A ``MediaRelay`` whose consumers always get the newest frame: a consumer slower than
    its source skips frames instead of falling behind. Received video is relayed through
    ``ArrivalStamped``, processed video through ``NewFramesOnly``."""

    def subscribe(self, track, buffered: bool = False):
        # ``buffered`` is what streamlit-webrtc passes (it never does); it is ignored on
        # purpose: a queue here is exactly the unbounded backlog this class exists to avoid.
        if track.kind == "video" and not isinstance(track, _Wrapper):
            # One wrapper per track, shared by its consumers (the processing track, a
            # recorder; the encoder), so the relay reads each track once. It hangs on the
            # track itself, so both go when the stream does.
            wrapper = getattr(track, _WRAPPER_ATTR, None)
            if wrapper is None:
                make = NewFramesOnly if _is_processed(track) else ArrivalStamped
                wrapper = make(track)
                setattr(track, _WRAPPER_ATTR, wrapper)
            track = wrapper
        return super().subscribe(track, buffered=False)


def install() -> NewestFrameRelay | None:
    """Make ``NewestFrameRelay`` streamlit-webrtc's relay for this server process (once; the
    same one afterwards). None when no Streamlit server runs here (a script test), where
    streamlit-webrtc makes no connections either."""
    from streamlit.runtime.runtime import Runtime

    if not Runtime.exists():
        return None
    runtime = Runtime.instance()
    with _lock:
        current = getattr(runtime, _GLOBAL_RELAY_ATTR, None)
        if isinstance(current, NewestFrameRelay):
            return current
        # MediaRelay binds nothing to a loop when made; its tasks start on the loop of the
        # peer that first reads from it, which is streamlit-webrtc's server loop.
        relay = NewestFrameRelay()
        setattr(runtime, _GLOBAL_RELAY_ATTR, relay)
        return relay


__all__ = ["ArrivalStamped", "NewFramesOnly", "NewestFrameRelay", "install"]
