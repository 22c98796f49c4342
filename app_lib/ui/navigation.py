"""The app's pages: file -> title, material icon, url path and what a visitor does there.
app.py builds the navigation from this, and the Home page lists every other page through it
(one list: a page added here is on Home too)."""

from typing import NamedTuple

from fer_core.data.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, format_names


class Page(NamedTuple):
    title: str
    icon: str
    url: str
    what: str  # what a visitor can do there, in a sentence (the Home page's list)


HOME = "app_pages/home.py"
PAGES = {
    HOME: Page("Home", ":material/home:", "home", "What the app does and the model it uses."),
    "app_pages/live.py": Page(
        "Live webcam",
        ":material/videocam:",
        "live",
        "Your webcam, analysed live: boxes, labels and emotion bars per face; record a "
        "session, and save it to a person's history.",
    ),
    "app_pages/upload.py": Page(
        "Photos & videos",
        ":material/upload:",
        "upload",
        f"Photos ({format_names(IMAGE_SUFFIXES)}) and videos ({format_names(VIDEO_SUFFIXES)}): "
        "annotated images, an emotion timeline, CSV and JSON downloads.",
    ),
    "app_pages/people.py": Page(
        "People & history",
        ":material/group:",
        "people",
        "The people you record: each one's sessions over time, their captured faces, an "
        "export of everything kept about them, and deletion.",
    ),
    "app_pages/dataset.py": Page(
        "Dataset explorer",
        ":material/dataset:",
        "dataset",
        "FER2013 itself: class balance, samples, mean faces and its flaws (blank images, "
        "duplicates, train/test leakage, conflicting labels).",
    ),
    "app_pages/training.py": Page(
        "Training",
        ":material/model_training:",
        "training",
        "Train a model in the background, watch it learn, evaluate it and make it the app's model.",
    ),
    "app_pages/model.py": Page(
        "Model card",
        ":material/description:",
        "model",
        "The model card: per-class scores, confusion matrix, speed, and what the model cannot do.",
    ),
}

__all__ = ["HOME", "PAGES", "Page"]
