"""Tables, targets, JSON and a bar chart for benchmark results."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

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


def format_tables(results: List[Result], reference: Dict[str, str]) -> str:
    """One table per group: each case's median and its ratio to the group's reference."""
    out: List[str] = []
    groups: Dict[str, List[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    for group, rows in groups.items():
        ref_name = next(
            (ref for prefix, ref in reference.items() if group.startswith(prefix)), None
        )
        ref = next((r for r in rows if r.case == ref_name), None)
        unit = rows[0].unit
        out.append(f"\n{group}  ({unit}, median of {max(len(r.values) for r in rows)} rounds)")
        width = max(len(r.case) for r in rows)
        head = f"  {'':{width}}  {unit:>12}"
        if ref is not None:
            head += f"  {'÷ ' + ref.case:>{len(ref.case) + 2}}"
        out.append(head)
        for r in rows:
            line = f"  {r.case:{width}}  {r.median:12.3f}"
            if ref is not None and ref.median and r.values:
                line += f"  {r.median / ref.median:>{len(ref.case) + 1}.2f}×"
            if r.note:
                line += f"  ({r.note})"
            out.append(line)
    return "\n".join(out)


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
    results: List[Result], checked: List[Tuple[Target, Optional[float]]], path: str
) -> None:
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
    groups: Dict[str, List[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
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
