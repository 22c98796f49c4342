"""How well a stream keeps each face's id, measured from the stream's own output.

A physical face is followed by linking each shown box to the box of a recent frame that
overlaps it most (IoU >= ``link_iou``): the previous frame, or, with ``times`` and
``max_gap_s``, any frame of the last ``max_gap_s`` seconds, so a face the detector loses for a
moment stays one face. A longer absence, or a camera cut, ends its chain. Within a chain the
face should keep one id: ``kept_share`` is the share of the chains' frames that show their
chain's most frequent id, ``switches`` counts the links whose id changed. No labels are
needed, so the same measure runs on a benchmark's frames and on a recording downloaded from
the Live page.
"""

from __future__ import annotations

from collections import Counter

from fer_core.faces.common import iou


def id_consistency(frames, link_iou: float = 0.3, times=None, max_gap_s: float = 0.0) -> dict:
    """``frames``: one list per frame, in order, of (face_id, (x, y, w, h)) for every face
    shown; ``times``: each frame's time in seconds (needed for ``max_gap_s``). Returns chains,
    faces_shown, kept_share, switches, and the longest chain's length and kept share (the main
    face: e.g. a performer)."""
    chains: list[list] = []
    open_chains: dict[int, tuple[tuple, float]] = {}  # chain -> (last box, last time)
    for index, faces in enumerate(frames):
        now = float(times[index]) if times is not None else float(index)
        gap = max_gap_s if times is not None else 1.0
        candidates = {
            chain: box for chain, (box, seen) in open_chains.items() if now - seen <= gap + 1e-9
        }
        taken: set[int] = set()
        updates = {}
        for face_id, box in faces:
            best, best_iou = None, link_iou
            for chain, old_box in candidates.items():
                overlap = iou(old_box, box)
                if chain not in taken and overlap >= best_iou:
                    best, best_iou = chain, overlap
            if best is None:
                chains.append([])
                best = len(chains) - 1
            taken.add(best)
            chains[best].append(face_id)
            updates[best] = (tuple(box), now)
        open_chains = {
            chain: last
            for chain, last in {**open_chains, **updates}.items()
            if now - last[1] <= gap + 1e-9
        }
    shown = sum(len(c) for c in chains)
    kept = sum(Counter(c).most_common(1)[0][1] for c in chains if c)
    switches = sum(a != b for c in chains for a, b in zip(c, c[1:]))
    longest = max(chains, key=len, default=[])
    return {
        "chains": len(chains),
        "faces_shown": shown,
        "switches": switches,
        "kept_share": round(kept / shown, 4) if shown else None,
        "longest_chain": len(longest),
        "longest_kept_share": round(Counter(longest).most_common(1)[0][1] / len(longest), 4)
        if longest
        else None,
    }


__all__ = ["id_consistency"]
