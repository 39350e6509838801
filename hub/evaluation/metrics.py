"""Clustering quality against ground truth: pairwise and B-cubed precision/recall/F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 0.0 if total == 0 else 2 * self.precision * self.recall / total


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(predicted: Mapping[K, Hashable], truth: Mapping[K, Hashable]) -> Scores:
    """Over all pairs of items: a predicted pair is right when truth puts them together too.
    With no predicted (or no true) pairs the precision (recall) is 1 by convention."""
    items = truth.keys() & predicted.keys()
    both = Counter((predicted[i], truth[i]) for i in items)
    pred = Counter(predicted[i] for i in items)
    true = Counter(truth[i] for i in items)
    tp = sum(_pairs(n) for n in both.values())
    pp = sum(_pairs(n) for n in pred.values())
    tt = sum(_pairs(n) for n in true.values())
    return Scores(precision=tp / pp if pp else 1.0, recall=tp / tt if tt else 1.0)


def bcubed(predicted: Mapping[K, Hashable], truth: Mapping[K, Hashable]) -> Scores:
    """B-cubed (Bagga & Baldwin): per item, the share of its predicted cluster that truly
    belongs with it (precision) and the share of its true cluster found with it (recall)."""
    items = truth.keys() & predicted.keys()
    if not items:
        return Scores(1.0, 1.0)
    both = Counter((predicted[i], truth[i]) for i in items)
    pred = Counter(predicted[i] for i in items)
    true = Counter(truth[i] for i in items)
    precision = sum(both[(predicted[i], truth[i])] / pred[predicted[i]] for i in items) / len(items)
    recall = sum(both[(predicted[i], truth[i])] / true[truth[i]] for i in items) / len(items)
    return Scores(precision=precision, recall=recall)
