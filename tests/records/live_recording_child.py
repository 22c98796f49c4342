"""A process that records a live stream into the records database the way the Live page
does (frames through ``LiveProcessor``, the frame callback, with a ``SessionWriter`` as the
recording's sink) until it is killed. It prints ``session N`` once, then ``written N`` after
every batch that reached the database."""

import sys
from fractions import Fraction

import av
import cv2
import skimage.data

from app_lib.live.processor import LiveProcessor
from fer_core.records import Records, Viewer
from fer_core.records.writer import SessionWriter


def main(url: str) -> None:
    records = Records(url)
    viewer = Viewer("tab-ann")
    person = records.add_person("Ann", viewer)
    session = records.start_session("live", viewer, person_id=person.id, detector="haar")
    print(f"session {session}", flush=True)
    processor = LiveProcessor(None)
    processor.recorder.start(
        None,
        sink=lambda to_rows: SessionWriter(
            records,
            session,
            to_rows,
            flush_seconds=0.2,
            on_flush=lambda written: print(f"written {written}", flush=True),
        ),
    )
    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (640, 480))
    pts = 0
    while True:  # until killed
        frame = av.VideoFrame.from_ndarray(face, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, Fraction(1, 90000)
        processor(frame)
        pts += 3000


if __name__ == "__main__":
    main(sys.argv[1])
