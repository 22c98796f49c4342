"""The id-consistency measure used by the benchmark and the Live page's browser test."""

from fer_core.recognition.track_metrics import id_consistency


def test_one_face_kept_a_switch_and_a_cut():
    moving = [[(1, (10 + 2 * t, 10, 50, 50))] for t in range(10)]
    assert id_consistency(moving) == {
        "chains": 1,
        "faces_shown": 10,
        "switches": 0,
        "kept_share": 1.0,
        "longest_chain": 10,
        "longest_kept_share": 1.0,
    }
    switched = moving[:6] + [[(7, box)] for [(_, box)] in moving[6:]]
    report = id_consistency(switched)
    assert report["switches"] == 1 and report["kept_share"] == 0.6 and report["chains"] == 1
    # a cut (the face elsewhere) or a frame without the face starts a new chain: not a switch
    cut = moving[:5] + [[]] + [[(2, (400, 300, 50, 50))] for _ in range(4)]
    report = id_consistency(cut)
    assert report["chains"] == 2 and report["switches"] == 0 and report["kept_share"] == 1.0
    assert report["longest_chain"] == 5


def test_a_face_lost_for_a_moment_stays_one_face():
    seen = [[(1, (100, 100, 60, 60))]] * 5
    lost = [[]] * 10  # a third of a second at 30 fps
    back_same = [[(1, (104, 100, 60, 60))]] * 5
    back_new = [[(9, (104, 100, 60, 60))]] * 5
    times = [i / 30 for i in range(20)]
    # bridged within half a second: a new id after the gap is a switch
    report = id_consistency(seen + lost + back_new, times=times, max_gap_s=0.5)
    assert report["chains"] == 1 and report["switches"] == 1 and report["kept_share"] == 0.5
    assert id_consistency(seen + lost + back_same, times=times, max_gap_s=0.5)["switches"] == 0
    # without a gap allowance the gap ends the face: two chains, no switch
    report = id_consistency(seen + lost + back_new)
    assert report["chains"] == 2 and report["switches"] == 0
    # a second later it is a new face
    late = [i / 30 for i in range(5)] + [1.5 + i / 30 for i in range(5)]
    assert id_consistency(seen + back_new, times=late, max_gap_s=0.5)["chains"] == 2


def test_two_faces_are_followed_apart():
    frames = [[(1, (0, 0, 50, 50)), (2, (200, 0, 50, 50))] for _ in range(4)]
    frames.append([(2, (0, 0, 50, 50)), (1, (200, 0, 50, 50))])  # ids swapped: two switches
    report = id_consistency(frames)
    assert report["chains"] == 2 and report["switches"] == 2 and report["kept_share"] == 0.8
    assert id_consistency([]) == {
        "chains": 0,
        "faces_shown": 0,
        "switches": 0,
        "kept_share": None,
        "longest_chain": 0,
        "longest_kept_share": None,
    }
