import gzip
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# As in the app: app_lib imports pylibsrtp, which segfaults when imported after TensorFlow,
# and keeps Streamlit from resetting Keras after each script run. Any test may load TF first.
import app_lib  # noqa: E402,F401
from fer_core.labels import EMOTIONS, USAGES  # noqa: E402

REAL_DATA_FIXTURES = {"fer2013_path", "ferplus_path", "fer2013"}


def pytest_collection_modifyitems(config, items):
    """Markers that follow from where a test lives and what it needs (pytest.ini explains
    them; `make test-fast` leaves these out): everything under tests/browser drives Chromium,
    and a test that asks for the real FER2013 or FER+ reads real data. `slow` is written on
    the tests themselves."""
    browser = Path(__file__).parent / "browser"
    for item in items:
        if browser in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)


@pytest.fixture(scope="session")
def fer2013_path():
    """The real FER2013 (CI sets FER2013_PATH); tests that need it skip when it is unset."""
    path = os.environ.get("FER2013_PATH")
    if not path:
        pytest.skip(
            "FER2013_PATH is not set: real-data tests need the FER2013 CSV "
            "(CI sets it to ../shared/data/fer2013/fer2013.csv.gz)"
        )
    if not Path(path).exists():
        pytest.skip(f"FER2013_PATH={path} does not exist")
    return Path(path)


@pytest.fixture(scope="session")
def ferplus_path():
    """FER+'s fer2013new.csv (CI sets FERPLUS_PATH); tests that need it skip when it is unset."""
    path = os.environ.get("FERPLUS_PATH")
    if not path:
        pytest.skip(
            "FERPLUS_PATH is not set: crowd-label tests need FER+'s fer2013new.csv "
            "(CI sets it to ../shared/data/ferplus/fer2013new.csv)"
        )
    if not Path(path).exists():
        pytest.skip(f"FERPLUS_PATH={path} does not exist")
    return Path(path)


@pytest.fixture(scope="session")
def fer2013(fer2013_path):
    from fer_core import load_fer2013

    return load_fer2013(fer2013_path)


def synthetic_rows(n_per_class=6, usages=USAGES, seed=0):
    """Generated FER2013-format rows: each class a distinct brightness pattern."""
    rng = np.random.default_rng(seed)
    rows = []
    for usage in usages:
        for label in range(len(EMOTIONS)):
            for _ in range(n_per_class):
                base = np.full((48, 48), 30 * label + 10, dtype=np.int32)
                image = np.clip(base + rng.integers(-8, 9, (48, 48)), 0, 255)
                rows.append((label, " ".join(map(str, image.ravel())), usage))
    return rows


def write_csv(path, rows, header="emotion,pixels,Usage", compress=False):
    text = header + "\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        Path(path).write_text(text)
    return Path(path)


@pytest.fixture
def synthetic_csv(tmp_path):
    return write_csv(tmp_path / "fer2013.csv", synthetic_rows())


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def shipped_model():
    from fer_core import load_model

    return load_model()
