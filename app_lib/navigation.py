"""The app's pages: file -> (title, material icon, url path). app.py builds the navigation
from this, and the Home page links to every page through it."""

PAGES = {
    "app_pages/home.py": ("Home", ":material/home:", "home"),
    "app_pages/live.py": ("Live webcam", ":material/videocam:", "live"),
    "app_pages/upload.py": ("Photos & videos", ":material/upload:", "upload"),
    "app_pages/people.py": ("People & history", ":material/group:", "people"),
    "app_pages/dataset.py": ("Dataset explorer", ":material/dataset:", "dataset"),
    "app_pages/training.py": ("Training", ":material/model_training:", "training"),
    "app_pages/model.py": ("Model card", ":material/description:", "model"),
}
