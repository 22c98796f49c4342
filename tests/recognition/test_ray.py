"""Batch inference on Ray Data, for real: a local Ray (2 CPUs, loopback only, no dashboard)
runs the documented pipeline over a folder with faces, a faceless photo and a broken file, and
gives the plain CLI's rows."""

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # a Ray cluster on this machine

ray = pytest.importorskip("ray", reason="Ray is a test dependency (requirements-dev.txt)")


@pytest.fixture(scope="module")
def local_ray():
    from fer_core.recognition.batch import start_ray

    start_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def folder(tmp_path, astronaut):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(folder / "sub" / "mirror.jpg")
    side = np.concatenate([astronaut, astronaut], axis=1)  # two faces in one photo
    Image.fromarray(side).save(folder / "two.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return folder


def test_the_documented_pipeline_gives_typed_columns_and_one_model_call_a_batch(
    local_ray, folder, astronaut
):
    import pyarrow as pa

    from fer_core.recognition.predict import TABLE_COLUMNS, FacePredictor

    paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    table = (
        ray.data.read_binary_files(paths, include_paths=True)
        .map_batches(
            FacePredictor, batch_format="pandas", batch_size=8, concurrency=2, num_cpus=0.5
        )
        .to_pandas()
    )
    assert list(table.columns) == TABLE_COLUMNS and len(table) == 6  # 1 + 1 + 2 + blank + broken
    arrow = pa.Table.from_pandas(table)
    assert not [
        f.name
        for f in arrow.schema
        if pa.types.is_null(f.type) or f.type == pa.binary() or str(f.type) == "object"
    ]
    by_file = {name.rsplit("/", 1)[-1]: group for name, group in table.groupby("file")}
    assert by_file["blank.png"]["faces"].tolist() == [0]
    assert by_file["broken.jpg"]["error"].notna().all()
    assert by_file["two.png"]["face"].tolist() == [1, 2]
    assert (by_file["astronaut.png"]["label"] == "happy").all()
    # One model call for all faces of a batch.
    predictor = FacePredictor()
    calls = []
    original = predictor.recognizer.model.predict_faces
    predictor.recognizer.model.predict_faces = lambda crops: (
        calls.append(len(crops)) or original(crops)
    )
    predictor({"path": ["a.png", "b.png"], "image": [astronaut, astronaut]})
    framings = predictor.recognizer.framing
    assert calls == [2 * (len(framings) if isinstance(framings, tuple) else 1)]


def test_ray_engine_rows_equal_the_plain_cli_rows(local_ray, folder):
    from fer_core.recognition.predict import run_predict

    plain = run_predict([str(folder)], None, None, 1, "photo")
    on_ray = run_predict([str(folder)], None, None, 1, "photo", engine="ray", concurrency=2)
    assert on_ray["summary"]["failed"][0][0].endswith("broken.jpg")
    assert [f for f, _ in on_ray["summary"]["failed"]] == [f for f, _ in plain["summary"]["failed"]]
    for key in ("files", "processed", "faces"):
        assert on_ray["summary"][key] == plain["summary"][key], key
    assert len(on_ray["rows"]) == len(plain["rows"]) == 5
    for ours, theirs in zip(on_ray["rows"], plain["rows"]):
        for column, value in theirs.items():
            if column in ("frame", "time_s"):
                continue
            if isinstance(value, float):
                assert ours[column] == pytest.approx(value, abs=1e-6), column
            else:
                assert ours[column] == value, (column, ours, theirs)
