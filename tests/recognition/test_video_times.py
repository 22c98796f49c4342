"""Video times count from the start of the video, as a player shows them (bug 2: a clip whose
timestamps start at 0.85 s gave a CSV starting at 0.852 s and 'last seen 9.96 s' for 9.2 s)."""

from fractions import Fraction

import cv2
import pytest
import skimage.data

from fer_core.recognition.video import analyze_video, iter_frames, video_info


def write_offset_video(
    path, start_frames: int = 9, frames: int = 20, fps: int = 10, container: str = "mp4"
):
    """A clip whose first timestamp is ``start_frames / fps`` seconds (0.9 s), of the
    astronaut's face."""
    import av

    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (320, 240))
    output = av.open(str(path), "w", format=container)
    stream = output.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(face, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = start_frames + index, Fraction(1, fps)
        for packet in stream.encode(frame):
            output.mux(packet)
    for packet in stream.encode():
        output.mux(packet)
    output.close()
    return path


@pytest.mark.parametrize("container, suffix", [("mp4", ".mp4"), ("matroska", ".mkv")])
def test_times_start_at_zero_and_end_within_the_duration(tmp_path, container, suffix):
    path = write_offset_video(tmp_path / f"offset{suffix}", container=container)
    times = [seconds for _, seconds, _ in iter_frames(path)]
    assert times[0] == pytest.approx(0.0) and times[1] == pytest.approx(0.1)
    duration = video_info(path)["duration_s"]
    assert duration == pytest.approx(2.0, abs=0.11)
    assert times[-1] <= duration
    frames = analyze_video(path, every=2)
    assert frames["time_s"].iloc[0] == pytest.approx(0.0)
    assert frames["time_s"].max() <= duration
    assert list(frames["frame"][:2]) == [0, 2]
