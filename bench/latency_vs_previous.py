"""One face through the classifier as shipped, the default model against the model it
replaced (``bench.run.PREVIOUS_MODEL``), timed in turn round by round in one run so that the
machine's drift falls on both alike. Writes bench/latency_vs_previous.json.

    python -m bench.latency_vs_previous     # about 20 s; run it on an idle machine
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
OUT = ROOT / "bench" / "latency_vs_previous.json"


def main() -> int:
    from bench.run import compare_with_previous
    from fer_core.models.inference import EmotionModel, file_sha256, litert_path_for

    shipped = EmotionModel()
    result = compare_with_previous(shipped, repeats=3000, rounds=15)
    result.update(
        date=time.strftime("%Y-%m-%d"),
        shipped_model=shipped.path.name,
        shipped_backend=shipped.backend,
        shipped_litert_sha256=file_sha256(litert_path_for(shipped.path)),
        cpus=os.cpu_count(),
    )
    print(json.dumps(result, indent=1))
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
