"""An evaluation report as JSON (sorted keys, fixed rounding) or as a rich table; both deterministic."""

from __future__ import annotations

from poseir.recipe.evaluate import METRICS, EvalReport

DECIMALS = 4
TITLES = {"mpjpe": "MPJPE", "p_mpjpe": "P-MPJPE", "n_mpjpe": "N-MPJPE", "mpjve": "MPJVE"}


def report_json(report: EvalReport, weights: str | None) -> dict:
    """Everything the run measured, errors in millimetres rounded to 4 decimals."""
    return {
        "model": report.model,
        "weights": weights,
        "runtime": report.options.runtime,
        "flip": report.options.flip,
        "subjects": list(report.options.subjects),
        "protocol": {"mode": report.protocol.mode, "receptive_field": report.protocol.receptive_field,
                     "pad": report.protocol.pad},
        "units": "mm",
        "actions": [{"action": result.action, "sequences": result.sequences, "frames": result.frames,
                     **_rounded(result.errors)} for result in report.actions],
        "average": _rounded(report.average),
    }


def _rounded(errors: dict[str, float]) -> dict[str, float]:
    return {metric: round(float(errors[metric]), DECIMALS) for metric in METRICS}


def report_table(report: EvalReport, weights: str | None):
    """A rich Table: one row per action, then the action-wise average."""
    from rich.table import Table

    flip = "with" if report.options.flip else "without"
    table = Table(title=f"{report.model} on {', '.join(report.options.subjects)}, {flip} flip augmentation "
                        f"(receptive field {report.protocol.receptive_field}, {report.options.runtime})",
                  caption=f"errors in mm; weights: {weights or 'seeded initialization'}")
    table.add_column("action")
    for column in ("sequences", "frames", *(TITLES[metric] for metric in METRICS)):
        table.add_column(column, justify="right")
    for result in report.actions:
        table.add_row(result.action, str(result.sequences), str(result.frames),
                      *(f"{result.errors[metric]:.1f}" for metric in METRICS))
    table.add_section()
    table.add_row("average (action-wise)", str(sum(result.sequences for result in report.actions)),
                  str(sum(result.frames for result in report.actions)),
                  *(f"{report.average[metric]:.1f}" for metric in METRICS), style="bold")
    return table
