"""bench.peers' helpers (the benchmark itself runs in bench/, never in a timed test)."""

from bench.peers import _match, bench_detection, moving_frames


def test_moving_frames_move_a_face_over_the_frame():
    frames = moving_frames(count=12)
    assert len(frames) == 12 and frames[0].shape == (480, 640, 3)
    assert any((a != b).any() for a, b in zip(frames, frames[1:]))


def test_match_counts_true_and_false_positives():
    truth = [(10, 10, 50, 50), (200, 10, 50, 50)]
    assert _match([(12, 12, 50, 50), (400, 400, 30, 30)], truth) == (1, 1, 1)
    assert _match([], truth) == (0, 0, 2)


def test_detection_without_photos_says_why(tmp_path):
    assert "skipped" in bench_detection(tmp_path, None)
