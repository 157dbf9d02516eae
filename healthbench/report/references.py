"""Reference numbers reported in papers, read from a YAML file for the leaderboard.

They are shown beside the runs of the same task, **never ranked with them**, and always with
their source and protocol: a number from a paper was made with its authors' prompt, data split and
scorer, not reproduced here. The file looks like::

    references:
      - model: HealthGPT-M3
        task: omnimedvqa              # the healthbench task it is shown beside
        task_version: "1.0"           # optional: only beside runs of this version
        metric: accuracy
        value: 68.5                   # as printed in the paper, in its unit:
        unit: percent                 # percent (the default) | fraction | raw (PSNR dB, BLEU 0-100)
        groups: {modality: {CT: 70.1, MR: 66.0}}   # optional per-group numbers, same unit
        variant: Phi-3-mini           # optional
        size: 3.8B                    # optional
        n: 88996                      # optional: samples the paper evaluated
        source: "Lin et al. 2025, HealthGPT, Table 2"
        url: https://arxiv.org/abs/2502.09838       # optional
        protocol: "OmniMedVQA open-access, lettered prompt, greedy; authors' scorer"

Values are stored as fractions for percent and fraction units, like results.json, and shown as %;
a ``raw`` value is stored and shown in its own unit. The unit is the file's declaration, never
guessed from the metric's name: most papers print percentages, so that is the default.

``value`` may be left out when ``groups`` are given (a paper that prints per-group numbers only).

The files shipped with healthbench (``references/*.yaml`` in the repository, copied into the
package as ``healthbench/_references`` by setup.py) are what the default leaderboard shows:
``shipped_reference_files()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from healthbench.results.schema import MetricInfo

REQUIRED = ("model", "task", "metric", "source", "protocol")
OPTIONAL = ("value", "task_version", "unit", "groups", "variant", "size", "n", "url", "suite",
            "note")
UNITS = ("percent", "fraction", "raw")


class ReferenceError(ValueError):
    """A references file that cannot be used; the message names the file and entry."""


@dataclass(frozen=True)
class Reference:
    model: str
    task: str
    metric: str
    value: float | None
    source: str
    protocol: str
    task_version: str | None = None
    groups: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    variant: str = ""
    size: str = ""
    n: int | None = None
    url: str = ""
    suite: str | None = None
    note: str = ""
    unit: str = "percent"

    @property
    def info(self) -> MetricInfo:
        """How the number reads: a fraction shown as % unless its unit is ``raw``."""
        return MetricInfo(percent=self.unit != "raw")


def load_references(path: Path) -> list[Reference]:
    """Every entry of a references YAML file, validated; errors name the file and entry."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReferenceError(f"{path}: cannot read references file ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ReferenceError(f"{path}: not valid YAML ({exc})") from exc
    entries = data.get("references") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ReferenceError(f"{path}: expected a list under 'references'")
    return [_parse(entry, f"{path}: references[{i}]") for i, entry in enumerate(entries)]


def _parse(entry: Any, where: str) -> Reference:
    if not isinstance(entry, dict):
        raise ReferenceError(f"{where}: expected a mapping")
    missing = [key for key in REQUIRED if entry.get(key) in (None, "")]
    if entry.get("value") is None and not entry.get("groups"):
        missing.append("value (or groups)")
    if missing:
        raise ReferenceError(f"{where}: missing {', '.join(missing)} (a reference needs its "
                             "source and protocol)")
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ReferenceError(f"{where}: unknown key(s) {', '.join(unknown)}")
    metric = str(entry["metric"])
    unit = str(entry.get("unit") or "percent")
    if unit not in UNITS:
        raise ReferenceError(f"{where}.unit: expected one of {', '.join(UNITS)}, got {unit!r}")
    divisor = 100.0 if unit == "percent" else 1.0

    def number(value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReferenceError(f"{where}.{key}: expected a number, got {value!r}")
        return float(value) / divisor

    groups: dict[str, dict[str, float]] = {}
    raw_groups = entry.get("groups") or {}
    if not isinstance(raw_groups, dict):
        raise ReferenceError(f"{where}.groups: expected {{key: {{value: number}}}}")
    for key, values in raw_groups.items():
        if not isinstance(values, dict):
            raise ReferenceError(f"{where}.groups.{key}: expected {{value: number}}")
        groups[str(key)] = {str(v): number(x, f"groups.{key}.{v}") for v, x in values.items()}
    n = entry.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ReferenceError(f"{where}.n: expected a sample count, got {n!r}")
    url = str(entry.get("url") or "")
    if url and not url.startswith(("https://", "http://")):
        raise ReferenceError(f"{where}.url: expected an http(s) address, got {url!r}")
    return Reference(
        model=str(entry["model"]), task=str(entry["task"]), metric=metric,
        value=None if entry.get("value") is None else number(entry["value"], "value"),
        source=str(entry["source"]),
        protocol=str(entry["protocol"]),
        task_version=None if entry.get("task_version") is None else str(entry["task_version"]),
        groups=groups, variant=str(entry.get("variant") or ""), size=str(entry.get("size") or ""),
        n=n, url=url, suite=None if entry.get("suite") is None else str(entry["suite"]),
        note=str(entry.get("note") or ""), unit=unit)


def _shipped_dir() -> Path:
    """The packaged copy (``healthbench/_references``, made by setup.py from ``references/``) if
    there is one, else the repository's top-level ``references/`` (editable install, checkout)."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_references"
    return packaged if packaged.is_dir() else package.parent / "references"


def shipped_reference_files() -> list[Path]:
    """The references files healthbench ships (the HealthGPT paper's tables), sorted."""
    folder = _shipped_dir()
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def format_reference(value: float | None, info: MetricInfo) -> str:
    """A paper number as printed: the metric's usual digits, or two where the paper printed two
    (SSIM 71.09 stays 71.09; accuracy 73.7 stays 73.7). The scale is the reference's declared
    unit (``info``), never guessed from the metric's name."""
    if value is None:
        return "–"
    scale = 100.0 if info.percent else 1.0
    shown = value * scale
    digits = 1 if scale == 100.0 else 2
    if round(shown, digits) != round(shown, 2):
        digits = 2
    return f"{shown:.{digits}f}"
