"""Which runs the Training page keeps an eye on while it is open (no streamlit here).

The run selector and the runs table name every run's phase. A page drawn while a run was
busy (starting, training, stopping or being evaluated) is drawn again when that run's phase
changes, whichever run is shown below them: otherwise a run that ended keeps saying
"(starting)" or "(stopping)" until the visitor clicks something.
"""

from __future__ import annotations

from fer_core.service.status import ACTIVE_PHASES, evaluation_status, run_status


def phases(run_dir) -> tuple[str, str]:
    """A run's (training, evaluation) phases, read from its folder now."""
    return run_status(run_dir).phase, evaluation_status(run_dir).phase


def busy_runs(statuses: dict, evaluations: dict) -> dict[str, tuple[str, str]]:
    """The runs that are training or being evaluated, each with its phases as drawn
    (``statuses``: ``run_status`` by run name; ``evaluations``: ``evaluation_status``)."""
    return {
        name: (status.phase, evaluations[name].phase)
        for name, status in statuses.items()
        if status.phase in ACTIVE_PHASES or evaluations[name].alive
    }


def changed_runs(busy: dict[str, tuple[str, str]], statuses: dict) -> list[str]:
    """The runs of ``busy`` whose phases differ now from those drawn."""
    return [name for name, drawn in busy.items() if phases(statuses[name].path) != drawn]


__all__ = ["ACTIVE_PHASES", "busy_runs", "changed_runs", "phases"]
