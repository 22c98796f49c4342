"""fer_core.recognition.video_writer: annotated videos that browsers play."""

import cv2
import numpy as np
import skimage.data

from fer_core import Recognizer
from fer_core.recognition.video import analyze_video, iter_frames, video_info
from fer_core.recognition.video_writer import AnnotatedVideoWriter, choose_codec


def test_annotated_video_round_trip(tmp_path):
    """Write a short clip of the astronaut, analyse it, write the annotated copy, read it back."""
    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (321, 241))  # odd sizes on purpose
    source = AnnotatedVideoWriter(tmp_path / "clip", fps=10)
    for shift in range(6):
        source.write(np.roll(face, shift * 2, axis=1))
    source_path = source.close()
    assert source_path.suffix in (".mp4", ".webm") and source.frames == 6
    info = video_info(source_path)
    assert (info["width"], info["height"]) == (320, 240)

    codec, _, suffix, mime = choose_codec()
    writer = AnnotatedVideoWriter(tmp_path / "annotated.anything", fps=info["fps"] / 2)
    frames = analyze_video(
        source_path, recognizer=Recognizer(preset="photo"), every=2, on_frame=writer.on_frame
    )
    annotated = writer.close()
    assert annotated == (tmp_path / "annotated").with_suffix(suffix) and writer.mime == mime
    assert writer.frames == 3 and sorted(frames["frame"].unique()) == [0, 2, 4]
    assert (frames["label"] == "happy").all() and frames["face_id"].nunique() == 1
    decoded = [rgb for _, _, rgb in iter_frames(annotated)]
    assert len(decoded) == 3
    box = np.array([40, 200, 80])
    assert (np.abs(decoded[0].astype(int) - box).sum(axis=2) < 90).sum() > 100


def test_closing_an_unused_writer_writes_nothing(tmp_path):
    writer = AnnotatedVideoWriter(tmp_path / "none", fps=25)
    assert writer.close() is None
    assert not list(tmp_path.iterdir())
