"""One model shared by many sessions (as st.cache_resource shares it): concurrent calls give
the same answers as sequential ones."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fer_core import Recognizer


@pytest.mark.slow
def test_shared_model_is_thread_safe(astronaut, shipped_model):
    images = [
        astronaut,
        np.ascontiguousarray(astronaut[:, ::-1]),
        np.concatenate([astronaut, astronaut[:, ::-1]], axis=1),
    ]
    reference = [
        [(r.box, r.probs) for r in Recognizer(shipped_model).analyze(image)] for image in images
    ]

    def session(index):
        recognizer = Recognizer(shipped_model)  # each session its own detector and tracker
        out = []
        for step in range(15):
            image_index = (index + step) % len(images)
            results = recognizer.analyze(images[image_index])
            out.append((image_index, [(r.box, r.probs) for r in results]))
        return out

    with ThreadPoolExecutor(8) as pool:
        for outcome in pool.map(session, range(8)):
            for image_index, faces in outcome:
                expected = reference[image_index]
                assert [box for box, _ in faces] == [box for box, _ in expected]
                for (_, got), (_, want) in zip(faces, expected):
                    np.testing.assert_allclose(got, want, atol=1e-6)
