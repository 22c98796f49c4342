"""The Model page's pipeline figures, read from a results file (never typed in)."""

import json

from app_lib.model.pipeline import load_pipeline_results, pipeline_figure, pipeline_rows

ROW = {
    "detector": "blazeface",
    "preset": "photo",
    "variant": "plain",
    "found": 0.95,
    "accuracy_found": 0.68,
    "macro_f1_found": 0.65,
    "end_to_end": 0.646,
    "crop_accuracy_found": 0.685,
    "crop_accuracy": 0.6907,
    "framing_cost": 0.005,
}


def test_rows_show_crop_and_pipeline_accuracy_side_by_side(tmp_path):
    results = {
        "split": "PrivateTest",
        "faces": 3589,
        "rows": [
            ROW,
            {
                **ROW,
                "detector": "haar",
                "found": 0.0,
                "accuracy_found": None,
                "macro_f1_found": None,
                "crop_accuracy_found": None,
                "framing_cost": None,
                "end_to_end": 0.0,
            },
            {**ROW, "variant": "rotated"},
        ],
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(results))
    loaded = load_pipeline_results(path)
    rows = pipeline_rows(loaded)
    assert len(rows) == 2 and len(pipeline_rows(loaded, variant=None)) == 3
    assert rows[0]["detector"] == "BlazeFace"
    assert rows[0]["crop accuracy (FER2013's crops)"] == "69.1%"
    assert rows[0]["end-to-end accuracy"] == "64.6%" and rows[0]["framing cost"] == "+0.5 pt"
    assert rows[1]["accuracy on faces found"] == "—"
    figure = pipeline_figure(loaded)
    assert len(figure.data) == 3 and list(figure.data[0].x) == ["BlazeFace (photo)", "Haar (photo)"]
    assert load_pipeline_results(tmp_path / "missing.json") is None
