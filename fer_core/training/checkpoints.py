"""The Keras callback that writes a run folder while it trains: progress every second,
and after every epoch the history row, the checkpoints (last, best, the weight average) and
the state, all through ``fer_core.training.runs`` (atomically).

A checkpoint, history or state write that fails (a full disk, or another OS error) stops
training at once: the failure is kept in ``failure`` (a ``WriteError``, whose message names
the file and the cause) for ``fer_core.training.loop`` to record and report. The files already on
disk stay as they were (each write is atomic), so the run resumes from its last full epoch.
A failed progress write is skipped: progress is only what the page shows.

This module imports Keras: ``fer_core.training.loop`` imports it only when a run starts.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from fer_core.evaluation.reports import accuracy
from fer_core.models.architectures import save_keras_model
from fer_core.storage import WriteError, os_error_in, saving
from fer_core.training.averaging import recompute_batch_norm
from fer_core.training.config import learning_rate_at
from fer_core.training.runs import Run


class RunCallback(keras.callbacks.Callback):
    """Keras callback: history rows, checkpoints and state, all written atomically."""

    def __init__(
        self,
        run: Run,
        config,
        inner_model,
        history,
        best,
        hooks,
        steps,
        swa=None,
        x_swa=None,
        val=None,
        shared: Run | None = None,
    ):
        super().__init__()
        self.run, self.config, self.inner_model = run, config, inner_model
        self.shared = shared or run  # the chief's folder: every worker's stop flag
        self.history_rows, self.best, self.hooks = history, best, hooks
        self.steps_per_epoch, self.swa, self.x_swa, self.val = steps, swa, x_swa, val
        self.epoch_started, self.current_epoch, self.last_progress = time.time(), 0, 0.0
        self.failure: WriteError | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()
        self.current_epoch = epoch
        self.first_batch_end = None
        # Batch 0 at once: the page knows the epoch has begun (the first batch builds
        # the graph and can take many seconds) instead of thinking that this run
        # does not report its batches.
        self._write_progress(0, self.epoch_started, "first batch")
        if self.config.schedule in ("cosine", "constant"):
            self.model.optimizer.learning_rate.assign(learning_rate_at(self.config, epoch))

    def on_train_batch_end(self, batch, logs=None):
        if self.hooks["on_batch"] is not None:
            self.hooks["on_batch"](self.current_epoch, batch + 1, self.steps_per_epoch)
        if not self.run.path.is_dir():  # the run was deleted: end, write nothing
            self.model.stop_training = True
            return
        now = time.time()
        if self.first_batch_end is None:
            self.first_batch_end = now
        if now - self.last_progress >= 1.0 or batch + 1 == self.steps_per_epoch or batch == 0:
            self.last_progress = now
            self._write_progress(batch + 1, now, "training")
        if self.stop_requested():
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self.run.set_stage("validating")

    def on_test_batch_end(self, batch, logs=None):
        # Stopped mid-epoch: the epoch is not kept, so its validation is not needed.
        if self.model.stop_training and self.stop_requested():
            self.model.stop_evaluating = True

    def _write_progress(self, batch, now, stage):
        # ``first_batch_end``: the batch rate is measured from there, without the
        # first batch's graph building (the ETA jumped from 11 to 2 minutes).
        try:
            self.run.write_progress(
                {
                    "epoch": self.current_epoch + 1,
                    "epochs": self.config.epochs,
                    "batch": batch,
                    "steps": self.steps_per_epoch,
                    "epoch_started": self.epoch_started,
                    "updated": now,
                    "first_batch_end": getattr(self, "first_batch_end", None),
                    "stage": stage,
                }
            )
        except Exception as exc:  # noqa: BLE001  (only an OSError is skipped)
            if os_error_in(exc) is None:
                raise

    def stop_requested(self):
        should_stop = self.hooks["should_stop"]
        return (
            self.shared.stop_requested()
            or self.run.stop_requested()
            or (should_stop is not None and should_stop())
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {
            key: float(logs.get(key, float("nan")))
            for key in ("loss", "accuracy", "val_loss", "val_accuracy")
        }
        row.update(
            epoch=epoch + 1,
            seconds=round(time.time() - self.epoch_started, 2),
            learning_rate=float(np.asarray(self.model.optimizer.learning_rate)),
        )
        if not self.run.path.is_dir() or (self.model.stop_training and self.stop_requested()):
            return  # deleted, or stopped mid-epoch: keep the last full checkpoint
        self.run.set_stage("saving")
        try:
            self._save_epoch(epoch, row)
        except WriteError as failure:
            # Stop here: the next epochs could not be saved either. train() marks the
            # run failed with this reason; what is on disk is the last full epoch.
            self.failure = failure
            self.model.stop_training = True
            return
        if self.hooks["on_epoch"] is not None:
            self.hooks["on_epoch"](row)
        if self.stop_requested():  # asked while it validated or saved: no new epoch
            self.model.stop_training = True

    def _save_epoch(self, epoch, row):
        """The epoch's checkpoints, history row and state, in that order: the averaged
        model, last.keras, the history, best.keras (when this epoch is the best), then
        state.json. ``best`` is changed only once best.keras holds that model, so after
        a failure it still describes the file on disk, and best.keras never holds an
        epoch that the history does not (a full disk used to leave state.json saying
        best epoch 1 of 0 done)."""
        best_model = None
        if self.swa is not None and epoch + 1 >= self.config.swa_start:
            averaged = self.swa.update(self.inner_model)
            recompute_batch_norm(averaged, self.x_swa)
            row["swa_val_accuracy"] = accuracy(averaged, *self.val)
            with saving(self.run.swa_model.name):
                save_keras_model(averaged, self.run.swa_model)
            if (
                row["swa_val_accuracy"] > self.best["val_accuracy"]
                and row["swa_val_accuracy"] >= row["val_accuracy"]
            ):
                best_model = (averaged, row["swa_val_accuracy"], "swa")
        if best_model is None and row["val_accuracy"] > self.best["val_accuracy"]:
            best_model = (self.inner_model, row["val_accuracy"], "weights")
        with saving(self.run.last_model.name):
            save_keras_model(self.model, self.run.last_model)
        with saving(self.run.history_path.name):
            self.run.write_history(self.history_rows + [row])
        self.history_rows.append(row)
        if best_model is not None:
            model, val_accuracy, kind = best_model
            with saving(self.run.best_model.name):
                save_keras_model(model, self.run.best_model)
            self.best.update(val_accuracy=val_accuracy, epoch=epoch + 1, kind=kind)
        with saving(self.run.state_path.name):
            self.run.update_state(
                epochs_done=epoch + 1,
                epochs=self.config.epochs,
                best_val_accuracy=self.best["val_accuracy"],
                best_epoch=self.best["epoch"],
                best_kind=self.best["kind"],
                swa_count=self.swa.count if self.swa is not None else 0,
                status="running",
                updated=time.time(),
            )


__all__ = ["RunCallback"]
