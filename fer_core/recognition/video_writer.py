"""Write an annotated video (faces boxed and labelled) with PyAV, frame by frame.

Used as the ``on_frame`` callback of ``fer_core.recognition.video.analyze_video``::

    with AnnotatedVideoWriter("out.mp4", fps=info["fps"] / every) as writer:
        analyze_video(path, every=every, on_frame=writer.on_frame)

H.264 in MP4 plays in every browser; where this PyAV build has no H.264 encoder, VP9 in
WebM (also playable in browsers) is used, and MPEG-4 Part 2 as a last resort.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer_core.errors import ImageError
from fer_core.recognition.drawing import draw_results

if TYPE_CHECKING:
    import av

# (codec, container format, file suffix, MIME type), in order of preference.
CODECS = [
    ("libx264", "mp4", ".mp4", "video/mp4"),
    ("libvpx-vp9", "webm", ".webm", "video/webm"),
    ("mpeg4", "mp4", ".mp4", "video/mp4"),
]


def choose_codec() -> tuple[str, str, str, str]:
    """The first encoder of ``CODECS`` this PyAV build has."""
    import av

    for codec, container, suffix, mime in CODECS:
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # av.codec.codec.UnknownCodecError and friends
            continue
        return codec, container, suffix, mime
    raise ImageError("This PyAV build has no video encoder (H.264, VP9 or MPEG-4).")


class AnnotatedVideoWriter:
    """Encode RGB frames (annotated with ``draw_results``) into a browser-playable video.

    ``path``'s suffix is replaced to match the codec chosen; read the final ``path`` and
    ``mime`` after ``close()``. Frame size is fixed by the first frame (odd sizes are
    trimmed by one pixel, as yuv420p needs even sizes).
    """

    def __init__(
        self, path: str | Path, fps: float, crf: int = 23, uncertain_below: float | None = None
    ):
        codec, container_format, suffix, mime = choose_codec()
        self.codec = codec
        self.mime = mime
        self.path = Path(path).with_suffix(suffix)
        self.fps = Fraction(max(float(fps), 0.1)).limit_denominator(1001)
        self.crf = crf
        self.uncertain_below = uncertain_below  # faces below it are drawn "uncertain"
        self.frames = 0
        self._container_format = container_format
        self._container: av.container.OutputContainer | None = None  # opened by the first frame
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] = (0, 0)

    def _open(self, width: int, height: int) -> None:
        import av

        options = {"movflags": "+faststart"} if self._container_format == "mp4" else {}
        self._container = av.open(
            str(self.path), mode="w", format=self._container_format, options=options
        )
        stream = self._container.add_stream(self.codec, rate=self.fps)
        assert isinstance(stream, av.VideoStream)  # a video codec makes a video stream
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        elif self.codec == "libvpx-vp9":
            stream.options = {
                "crf": str(self.crf + 10),
                "b": "0",
                "deadline": "realtime",
                "cpu-used": "8",
            }
        self._stream = stream
        self._size = (width, height)

    def write(self, rgb: np.ndarray, results=None) -> None:
        """Add one frame; with ``results`` the faces are drawn on it first."""
        import av

        frame = (
            draw_results(rgb, results, self.uncertain_below)
            if results
            else np.asarray(rgb, dtype=np.uint8)
        )
        if self._container is None:
            height, width = frame.shape[:2]
            self._open(width - width % 2, height - height % 2)
        container, stream = self._container, self._stream
        assert container is not None and stream is not None  # opened above
        width, height = self._size
        frame = np.ascontiguousarray(frame[:height, :width])
        if frame.shape[:2] != (height, width):  # a later frame of another size
            import cv2

            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        video_frame = av.VideoFrame.from_ndarray(
            frame.astype(np.uint8, copy=False), format="rgb24"
        ).reformat(format="yuv420p")
        video_frame.pts = self.frames
        video_frame.time_base = Fraction(1) / self.fps
        for packet in stream.encode(video_frame):
            container.mux(packet)
        self.frames += 1

    def on_frame(self, index: int, rgb: np.ndarray, results) -> None:
        """Signature of ``analyze_video``'s ``on_frame`` callback."""
        self.write(rgb, results)

    def close(self) -> Path | None:
        """Flush and close; returns the video's path, or None if no frame was written."""
        if self._container is None or self._stream is None:
            return None
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
        return self.path

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


__all__ = ["AnnotatedVideoWriter", "choose_codec"]
