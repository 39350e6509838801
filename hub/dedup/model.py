"""The dedup model: per-feature weights, time windows per category, thresholds per group.

Scoring is Fellegi–Sunter: every feature of a (ticket, case member) comparison falls into a
*level* (a distance band, a time band, …) and each level carries a weight, the log2 of how much
more often that level is seen between two reports of the same incident than between two
different incidents (``log2(m/u)``). The score is the prior log-odds plus the weights; the
match probability is ``1 / (1 + 2**-score)``. Weights are what ``hub dedup train`` learns from
labelled tickets; the shipped defaults (``default_model.yaml``) were trained on the sandbox
scenario and read sensibly (a shared phone or the same house number is strong evidence, a
different category group is not possible, a point far away is strong evidence against).

Thresholds are match probabilities: at or above ``auto`` a ticket is linked automatically;
between ``review`` and ``auto`` it opens its own case and the pair goes to the review queue;
below ``review`` it is a new incident. Each category group may override both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.yaml")

# Every feature and its levels, in the order explanations show them. A level missing from a
# model's weights counts 0 (no evidence either way).
LEVELS: dict[str, tuple[str, ...]] = {
    # metres (a model without pin errors), or multiples of the pair's usual pin error (the
    # same-incident distance a pin of the one system and a pin of the other typically show)
    "distance": ("le_15m", "le_40m", "le_80m", "le_150m", "le_300m", "far", "weak",
                 "pin_0.35", "pin_0.7", "pin_1", "pin_1.5", "pin_2", "pin_3", "pin_6"),
    "time": ("le_0.02w", "le_0.05w", "le_0.1w", "le_0.3w", "le_0.6w", "le_1w", "beyond"),
    "category": ("exact", "group", "other_group"),
    "text": ("ge_0.5", "ge_0.3", "ge_0.15", "gt_0", "none", "missing"),
    "address": ("same_place", "same_compound", "other_building", "near_number", "same_road", "different",
                "missing"),
    "phone": ("same", "different", "missing"),
    "system": ("same", "other"),
    # other open candidate cases that could as well be the ticket's incident (case level)
    "rivals": ("none", "one", "several"),
    # how far this case's score (before the case-level features) is ahead of the best other
    # open candidate case's, in log2 units: a clear favourite or a toss-up (case level)
    "margin": ("alone", "ahead_8", "ahead_4", "ahead_2", "ahead_0", "behind"),
    # how busy the ticket's compound is with its kind of incident: distinct open cases of the
    # ticket's group among the blocked members in that compound (ticket level: the odds that
    # a report there starts a new incident grow with it)
    "place_cases": ("no_compound", "le_1", "two", "three_four", "ge_5"),
    # the distance again when both reports name the same compound: its incidents are spread
    # over the compound, so a pin one or two errors away says more there than on a road
    "compound_distance": ("not_compound", "close", "apart", "far_apart", "weak"),
    # the best other open candidate when it is close behind or ahead (within 4): does it look
    # like this case's own incident (an incident split over two cases earlier: same place,
    # plausible with each other) or another one? (case level)
    "runner_up": ("clear", "twin_place", "twin_loose", "distinct"),
}
FEATURES = tuple(LEVELS)


@dataclass(frozen=True)
class Thresholds:
    auto: float
    review: float

    def __post_init__(self) -> None:
        if not 0.0 < self.review <= self.auto < 1.0:
            raise ValueError(f"thresholds need 0 < review <= auto < 1, got review={self.review} auto={self.auto}")


@dataclass(frozen=True)
class DedupModel:
    """Weights (feature → level → log2 Bayes factor), prior log2 odds, windows and thresholds."""

    weights: Mapping[str, Mapping[str, float]]
    prior: float = -6.0
    # hours within which the reports of one incident arrive, counted from the case's first report
    windows_h: Mapping[str, float] = field(default_factory=dict)
    default_window_h: float = 72.0
    thresholds: Mapping[str, Thresholds] = field(default_factory=dict)
    default_thresholds: Thresholds = Thresholds(0.97, 0.6)
    # a strong match to a case closed at most this long ago is linked as a recurrence
    recurrence_days: float = 60.0
    version: str = "untrained"
    # per category group: corrections added to ``weights`` and ``prior`` (a group whose
    # incidents look alike, e.g. illegal construction in one compound for weeks, learns that a
    # shared compound is weaker evidence there than for a stall on a road)
    group_weights: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    group_priors: Mapping[str, float] = field(default_factory=dict)
    # per source system: its pins' typical error in metres (a grid worker's GPS is a few metres
    # off, a citizen's pin on a 12345 map tens of metres). A pair's distance is read in units of
    # sqrt(ea² + eb²), so 60 m apart says "close" for two citizens' pins and "another spot" for
    # two grid workers'. Empty: distances are read in plain metres.
    pin_error_m: Mapping[str, float] = field(default_factory=dict)
    default_pin_error_m: float = 30.0

    def pin_scale_m(self, a: str, b: str) -> float:
        """The usual same-incident distance between a pin from system ``a`` and one from ``b``."""
        ea = float(self.pin_error_m.get(a, self.default_pin_error_m))
        eb = float(self.pin_error_m.get(b, self.default_pin_error_m))
        return math.sqrt(ea * ea + eb * eb)

    def window_h(self, category: str) -> float:
        return float(self.windows_h.get(category, self.default_window_h))

    def thresholds_for(self, group: str) -> Thresholds:
        return self.thresholds.get(group, self.default_thresholds)

    def weight(self, feature: str, level: str, group: str | None = None) -> float:
        value = float(self.weights.get(feature, {}).get(level, 0.0))
        if group is not None and group in self.group_weights:
            value += float(self.group_weights[group].get(feature, {}).get(level, 0.0))
        return value

    def prior_for(self, group: str | None = None) -> float:
        return self.prior + float(self.group_priors.get(group, 0.0)) if group is not None else self.prior

    @property
    def max_window_h(self) -> float:
        return max([self.default_window_h, *self.windows_h.values()])

    @staticmethod
    def probability(score: float) -> float:
        if score > 60:
            return 1.0
        if score < -60:
            return 0.0
        return 1.0 / (1.0 + math.pow(2.0, -score))

    # --- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "prior": round(self.prior, 4),
            "weights": {f: {lvl: round(float(w), 4) for lvl, w in levels.items()}
                        for f, levels in self.weights.items()},
            "default_window_h": self.default_window_h,
            "windows_h": {k: round(float(v), 2) for k, v in sorted(self.windows_h.items())},
            "default_thresholds": {"auto": self.default_thresholds.auto, "review": self.default_thresholds.review},
            "thresholds": {g: {"auto": t.auto, "review": t.review} for g, t in sorted(self.thresholds.items())},
            "recurrence_days": self.recurrence_days,
            **({"pin_error_m": {k: round(float(v), 2) for k, v in sorted(self.pin_error_m.items())},
                "default_pin_error_m": round(self.default_pin_error_m, 2)} if self.pin_error_m else {}),
            **({"group_priors": {g: round(float(v), 4) for g, v in sorted(self.group_priors.items())}}
               if self.group_priors else {}),
            **({"group_weights": {g: {f: {lvl: round(float(w), 4) for lvl, w in levels.items() if w}
                                      for f, levels in fw.items()}
                                  for g, fw in sorted(self.group_weights.items())}} if self.group_weights else {}),
        }

    def save(self, path: Path, header: str = "") -> None:
        text = yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)
        path.write_text((header + "\n" if header else "") + text, encoding="utf-8")


def _weights(raw: Any, where: str) -> dict[str, dict[str, float]]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping of feature → level → weight")
    weights: dict[str, dict[str, float]] = {}
    for feature, levels in raw.items():
        if feature not in LEVELS:
            raise ValueError(f"unknown feature {feature!r} (known: {', '.join(FEATURES)})")
        if not isinstance(levels, Mapping):
            raise ValueError(f"{where}.{feature} must map levels to numbers")
        for level, value in levels.items():
            if level not in LEVELS[feature]:
                raise ValueError(f"unknown level {feature}.{level} (known: {', '.join(LEVELS[feature])})")
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{where}.{feature}.{level} must be a finite number")
        weights[str(feature)] = {str(k): float(v) for k, v in levels.items()}
    return weights


def model_from_dict(raw: Mapping[str, Any]) -> DedupModel:
    """Validate and build a model; ``ValueError`` says what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError("a dedup model is a mapping")
    weights = _weights(raw.get("weights") or {}, "weights")
    group_weights_raw = raw.get("group_weights") or {}
    if not isinstance(group_weights_raw, Mapping):
        raise ValueError("group_weights must map category groups to weights")
    group_weights = {str(g): _weights(w or {}, f"group_weights.{g}") for g, w in group_weights_raw.items()}
    group_priors_raw = raw.get("group_priors") or {}
    if not isinstance(group_priors_raw, Mapping) or not all(
            isinstance(v, int | float) and math.isfinite(v) for v in group_priors_raw.values()):
        raise ValueError("group_priors must map category groups to finite numbers")

    def thresholds(node: Any, where: str) -> Thresholds:
        if not isinstance(node, Mapping) or "auto" not in node or "review" not in node:
            raise ValueError(f"{where} needs auto and review")
        try:
            return Thresholds(float(node["auto"]), float(node["review"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from exc

    windows = {str(k): float(v) for k, v in (raw.get("windows_h") or {}).items()}
    if any(v <= 0 for v in windows.values()):
        raise ValueError("windows_h must be positive hours")
    pins_raw = raw.get("pin_error_m") or {}
    if not isinstance(pins_raw, Mapping) or not all(
            isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in pins_raw.values()):
        raise ValueError("pin_error_m must map systems to positive metres")
    default_pin = raw.get("default_pin_error_m", 30.0)
    if not isinstance(default_pin, int | float) or not math.isfinite(default_pin) or default_pin <= 0:
        raise ValueError("default_pin_error_m must be positive metres")
    return DedupModel(
        weights=weights,
        prior=float(raw.get("prior", -6.0)),
        windows_h=windows,
        default_window_h=float(raw.get("default_window_h", 72.0)),
        thresholds={str(g): thresholds(t, f"thresholds.{g}") for g, t in (raw.get("thresholds") or {}).items()},
        default_thresholds=thresholds(raw.get("default_thresholds", {"auto": 0.97, "review": 0.6}),
                                      "default_thresholds"),
        recurrence_days=float(raw.get("recurrence_days", 60.0)),
        version=str(raw.get("version", "custom")),
        group_weights=group_weights,
        group_priors={str(g): float(v) for g, v in group_priors_raw.items()},
        pin_error_m={str(k): float(v) for k, v in pins_raw.items()},
        default_pin_error_m=float(default_pin),
    )


def load_model(path: Path | None = None) -> DedupModel:
    """The model at ``path`` (YAML), or the shipped default."""
    source = path or DEFAULT_MODEL_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read dedup model {source}: {exc}") from exc
    try:
        return model_from_dict(raw)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc
