"""ROC plots (PNG) and plain-text tables for CLI output.

Plots use matplotlib's object API (``Figure`` + ``FigureCanvasAgg``) rather than ``pyplot``:
no global backend switch, no figure registry, nothing left open, so this is safe to call from
a Qt application or a test session that uses a different backend. matplotlib is imported
lazily, so importing ``engine.metrics`` stays cheap.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

FPR_MIN = 1e-4


def plot_roc(curves: Mapping[str, tuple], path: str | Path, title: str = "ROC",
             fpr_min: float = FPR_MIN) -> Path:
    """Write ROC curves to a PNG and return its path.

    ``curves`` maps a legend label to ``(fpr, tpr)`` arrays of equal length (fractions,
    e.g. from ``verification.roc``). The FPR axis is logarithmic from ``fpr_min`` (1e-4) to
    1; points left of ``fpr_min`` (including fpr = 0) are drawn at the left edge, so the
    curve still starts there. Parent folders are created.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("no curves to plot")
    fig = Figure(figsize=(6.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, (fpr, tpr) in curves.items():
        fpr = np.asarray(fpr, dtype=np.float64)
        tpr = np.asarray(tpr, dtype=np.float64)
        if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size == 0:
            raise ValueError(f"curve {label!r}: fpr {fpr.shape} and tpr {tpr.shape} must be "
                             f"equal-length non-empty 1-D arrays")
        ax.plot(np.clip(fpr, fpr_min, 1.0), tpr, label=str(label), linewidth=1.5)
    ax.set_xscale("log")
    ax.set_xlim(fpr_min, 1.0)
    ax.set_ylim(0.0, 1.005)
    ax.set_xlabel("false accept rate (FPR)")
    ax.set_ylabel("true accept rate (TPR)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _cell(value, float_fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return float_fmt.format(float(value))
    return str(value)


def format_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None,
                 float_fmt: str = "{:.4f}") -> str:
    """Aligned plain-text table: a header, a dashed rule, one line per row.

    ``columns`` picks and orders the keys (default: keys in first-seen order across rows);
    missing values and None print as ``-``; floats use ``float_fmt``. Numeric columns are
    right-aligned, others left-aligned. No trailing newline.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    columns = [str(c) for c in columns]
    cells = [[_cell(row.get(c), float_fmt) for c in columns] for row in rows]
    numeric = [all(isinstance(row.get(c), (int, float, np.number)) and
                   not isinstance(row.get(c), bool) for row in rows if row.get(c) is not None)
               for c in columns]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    return "\n".join(out)
