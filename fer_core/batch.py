"""Batch prediction on Ray Data: ``fer predict --engine ray``, the same rows as the plain CLI.

Photos are read as bytes (``ray.data.read_binary_files``), so a broken file becomes a row with
an ``error`` instead of failing the job, and ``FacePredictor`` (one model per worker, one model
call per batch) maps each batch to typed, nullable columns. Without ``RAY_ADDRESS`` a private
local Ray is started on this machine (loopback only, no dashboard, no usage statistics); with
it, the job runs on that cluster, which must see the same files (a shared file system).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import ConfigError


# Each model worker asks Ray for half a CPU: with a whole one, N workers on N cores leave no CPU
# for the tasks that read the files, and the job waits forever.
WORKER_CPUS = 0.5


def start_ray(num_cpus: int | None = None):
    """Connect to ``$RAY_ADDRESS``, or start a local Ray that stays on this machine."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    try:
        import ray
    except ImportError:
        raise ConfigError("Ray is not installed: pip install -r requirements-ray.txt "
                          "(or pip install '.[ray]').") from None
    if ray.is_initialized():
        return ray
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, configure_logging=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
    return ray


def predict_with_ray(files: list[Path], model: str | None, preset: str, concurrency: int,
                     batch_size: int = 16):
    """The rows (a DataFrame, ``predict.TABLE_COLUMNS``) for ``files``, computed on Ray Data,
    in the order of ``files``; also the seconds taken with and without Ray's start-up."""
    from .predict import FacePredictor

    if concurrency < 1:
        raise ConfigError("--concurrency must be 1 or more.")
    started = time.perf_counter()
    ray = start_ray()
    ready = time.perf_counter()
    given = {str(Path(f).resolve()): str(f) for f in files}  # rows name files as given
    dataset = ray.data.read_binary_files(list(given), include_paths=True)
    table = dataset.map_batches(
        FacePredictor, fn_constructor_kwargs={"model_path": model, "preset": preset},
        batch_format="pandas", batch_size=batch_size, concurrency=concurrency,
        num_cpus=WORKER_CPUS).to_pandas()
    table["file"] = table["file"].map(lambda p: given.get(str(Path(p).resolve()), p)) \
        .astype("string")
    order = {str(f): i for i, f in enumerate(files)}
    table = table.assign(_order=table["file"].map(order)) \
        .sort_values(["_order", "face"], kind="stable", na_position="first") \
        .drop(columns="_order").reset_index(drop=True)
    finished = time.perf_counter()
    return table, {"seconds": finished - started, "seconds_after_start": finished - ready}


__all__ = ["start_ray", "predict_with_ray"]
