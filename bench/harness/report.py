"""Tables, targets, JSON and a bar chart for benchmark results."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .core import Result


@dataclass
class Target:
    """``numerator / denominator >= ratio`` within one group (or across two)."""

    text: str
    group: str
    numerator: str
    denominator: str
    ratio: float
    denominator_group: Optional[str] = None


def index(results: List[Result]) -> Dict[Tuple[str, str], Result]:
    return {(r.group, r.case): r for r in results}


def references_of(group: str, rows: List[Result], *references: Dict[str, str]) -> List[Result]:
    """The rows of ``group`` its ratios are taken to: from each mapping (group
    prefix -> case), the case named for the group's prefix, where it ran."""
    found: List[Result] = []
    for reference in references:
        name = next((ref for prefix, ref in reference.items() if group.startswith(prefix)), None)
        row = next((r for r in rows if r.case == name), None)
        if row is not None and row not in found:
            found.append(row)
    return found


def _groups(results: List[Result]) -> Dict[str, List[Result]]:
    groups: Dict[str, List[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    return groups


def format_tables(
    results: List[Result], reference: Dict[str, str], also: Optional[Dict[str, str]] = None
) -> str:
    """One table per group: each case's median and its ratio to the group's
    reference, then (``also``) to a second reference, in a column of its own."""
    out: List[str] = []
    for group, rows in _groups(results).items():
        refs = references_of(group, rows, reference, *([also] if also else []))
        unit = rows[0].unit
        out.append(f"\n{group}  ({unit}, median of {max(len(r.values) for r in rows)} rounds)")
        width = max(len(r.case) for r in rows)
        head = f"  {'':{width}}  {unit:>12}"
        for ref in refs:
            head += f"  {'÷ ' + ref.case:>{len(ref.case) + 2}}"
        out.append(head)
        for r in rows:
            line = f"  {r.case:{width}}  {r.median:12.3f}"
            for ref in refs:
                if ref.median and r.values:
                    line += f"  {r.median / ref.median:>{len(ref.case) + 1}.2f}×"
                else:
                    line += f"  {'–':>{len(ref.case) + 2}}"
            if r.note:
                line += f"  ({r.note})"
            out.append(line)
    return "\n".join(out)


def ratios(
    results: List[Result], *references: Dict[str, str]
) -> Dict[Tuple[str, str], Dict[str, float]]:
    """(group, case) -> {reference case: ratio} for every measured pair."""
    found: Dict[Tuple[str, str], Dict[str, float]] = {}
    for group, rows in _groups(results).items():
        refs = [ref for ref in references_of(group, rows, *references) if ref.values and ref.median]
        for r in rows:
            if r.values:
                found[(group, r.case)] = {ref.case: r.median / ref.median for ref in refs}
    return found


def check_targets(
    results: List[Result], targets: List[Target]
) -> List[Tuple[Target, Optional[float]]]:
    found = index(results)
    checked: List[Tuple[Target, Optional[float]]] = []
    for t in targets:
        num = found.get((t.group, t.numerator))
        den = found.get((t.denominator_group or t.group, t.denominator))
        if num is None or den is None or not num.values or not den.values:
            checked.append((t, None))
        else:
            checked.append((t, num.median / den.median))
    return checked


def format_targets(checked: List[Tuple[Target, Optional[float]]]) -> str:
    out = ["\nTargets (ratios measured in this run)"]
    width = max((len(t.text) for t, _ in checked), default=10)
    for t, ratio in checked:
        if ratio is None:
            out.append(f"  {t.text:{width}}  not measured")
        else:
            verdict = "met" if ratio >= t.ratio else "MISSED"
            out.append(f"  {t.text:{width}}  {ratio:6.2f}× (target ≥ {t.ratio}×)  {verdict}")
    return "\n".join(out)


def machine() -> Dict[str, str]:
    import os
    import sys

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
    }


def to_json(
    results: List[Result],
    checked: List[Tuple[Target, Optional[float]]],
    path: str,
    references: Sequence[Dict[str, str]] = (),
) -> None:
    """Every figure; with ``references``, each result's ``ratios`` to them
    (reference case -> ratio, the measured ones only)."""
    found = ratios(results, *references)
    data = {
        "machine": machine(),
        "results": [
            {
                "group": r.group,
                "case": r.case,
                "unit": r.unit,
                "median": r.median,
                "values": r.values,
                "note": r.note,
                "ratios": found.get((r.group, r.case), {}),
            }
            for r in results
        ],
        "targets": [{"target": t.text, "ratio": ratio, "wanted": t.ratio} for t, ratio in checked],
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def plot(results: List[Result], path: str) -> None:
    """A horizontal bar chart per group (needs matplotlib: the [bench] extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'csapp[bench]'") from None
    groups = _groups(results)
    height = sum(0.6 + 0.25 * len(rows) for rows in groups.values())
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, max(2.0, height)))
    if len(groups) == 1:
        axes = [axes]
    for ax, (group, rows) in zip(axes, groups.items()):
        names = [r.case for r in rows][::-1]
        values = [r.median for r in rows][::-1]
        colors = ["tab:blue" if "[" in n else "tab:gray" for n in names]
        ax.barh(names, values, color=colors)
        ax.set_title(f"{group} ({rows[0].unit})", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
