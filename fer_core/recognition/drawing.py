"""Drawing faces on an image: boxes and labels, the one place a face is drawn (photos,
videos, the live page, the command line). A face whose top probability is below the model
card's threshold (``uncertain_below``) is drawn amber with its two leading emotions
(``fer_core.recognition.uncertainty.caption``); the others green with their top emotion.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fer_core.recognition.results import FaceResult
from fer_core.recognition.uncertainty import caption, is_uncertain

CONFIDENT_COLOUR = (40, 200, 80)  # green, RGB: a face's box and label background
UNCERTAIN_COLOUR = (255, 170, 0)  # amber, RGB: a face below the card's threshold

Style = Callable[[FaceResult], tuple[str, tuple[int, int, int]]]


def face_style(result: FaceResult, uncertain_below: float | None) -> tuple[str, tuple]:
    """A face's label text and colour: ``("happy 91%", green)`` or
    ``("uncertain: sad 41%/neutral 35%", amber)``."""
    colour = UNCERTAIN_COLOUR if is_uncertain(result.probs, uncertain_below) else CONFIDENT_COLOUR
    return caption(result.probs, uncertain_below), colour


def draw_results(
    rgb_image: np.ndarray,
    results: list[FaceResult],
    uncertain_below: float | None = None,
    style: Style | None = None,
) -> np.ndarray:
    """A copy of the image with each face boxed and labelled (``face_style``: its top
    emotion, or "uncertain" with its two leading ones below ``uncertain_below``).

    ``style(result) -> (text, rgb colour)`` overrides a face's label and colour (the face id
    is still put in front). Every label lies inside the image and, where the image has room,
    clear of the other labels (``label_boxes``): a face at the edge or in a group keeps a
    readable label. Boxes are drawn first, so no box line crosses a label."""
    import cv2

    canvas = np.ascontiguousarray(np.asarray(rgb_image, dtype=np.uint8).copy())
    height, width = canvas.shape[:2]
    thickness = max(2, int(round(min(height, width) / 300)))
    font_scale = _font_scale(canvas.shape)
    styled = [
        style(result) if style is not None else face_style(result, uncertain_below)
        for result in results
    ]
    texts = [
        (f"#{r.face_id} " if r.face_id is not None else "") + label
        for r, (label, _) in zip(results, styled)
    ]
    for result, (_, colour) in zip(results, styled):
        x, y, w, h = (int(v) for v in result.box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
    for text, (_, colour), (left, top, lw, lh) in zip(
        texts, styled, label_boxes(canvas.shape, results, texts)
    ):
        cv2.rectangle(canvas, (left, top), (left + lw - 1, top + lh - 1), colour, -1)
        baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[1]
        cv2.putText(
            canvas,
            text,
            (left + 2, top + lh - baseline - 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            max(1, thickness // 2),
            cv2.LINE_AA,
        )
    return canvas


def _font_scale(shape) -> float:
    """Labels grow with the image, so they stay readable on a large photo."""
    return max(0.5, min(shape[:2]) / 900)


def label_boxes(
    shape, results: list[FaceResult], texts: list[str]
) -> list[tuple[int, int, int, int]]:
    """Where ``draw_results`` puts each face's label: (left, top, width, height) in pixels.

    Each label goes above its box, else below it, else at the top inside it, whichever first
    lies clear of the labels already placed (moved down past them if none does); it is then
    kept inside the image. A label that cannot be clear of the others in a small image
    overlaps them rather than leave the image."""
    import cv2

    height, width = shape[:2]
    font_scale = _font_scale(shape)
    placed: list[tuple[int, int, int, int]] = []
    for result, text in zip(results, texts):
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        lw, lh = min(tw + 4, width), min(th + baseline + 4, height)
        x, y, w, h = (int(v) for v in result.box)
        left = _within(x, width - lw)
        tops = [_within(top, height - lh) for top in (y - lh, y + h, y)]
        top = next((t for t in tops if not _overlapping((left, t, lw, lh), placed)), None)
        if top is None:
            top = next(
                (
                    t
                    for t in (_slide_down((left, t, lw, lh), placed, height) for t in tops)
                    if t is not None
                ),
                tops[0],
            )
        placed.append((left, top, lw, lh))
    return placed


def _within(value: int, highest: int) -> int:
    return max(0, min(int(value), max(0, highest)))


def _overlapping(box, others) -> list:
    left, top, w, h = box
    return [
        o
        for o in others
        if left < o[0] + o[2] and o[0] < left + w and top < o[1] + o[3] and o[1] < top + h
    ]


def _slide_down(box, others, height: int) -> int | None:
    """The first top at or below ``box``'s where it overlaps none of ``others`` and still
    fits in the image; None if there is none."""
    left, top, w, h = box
    while top + h <= height:
        hits = _overlapping((left, top, w, h), others)
        if not hits:
            return top
        top = max(o[1] + o[3] for o in hits)
    return None


__all__ = ["draw_results", "face_style", "label_boxes", "CONFIDENT_COLOUR", "UNCERTAIN_COLOUR"]
