"""``hub dedup train``: learn a dedup model from labelled canonical tickets (docs/dedup-jsonl.md).

1. **Windows**: per category, the 99th percentile of "hours from an incident's first report to a
   later one" in the labels, with 15 % head-room (at least two hours); the default window is used
   for categories with too few examples.
2. **Weights**: tickets are replayed in time order against the true clusters; every
   (ticket, candidate case) comparison is counted by feature levels and whether it is the same
   incident, and a logistic regression on those patterns gives the shared weights and prior
   (log2 units) plus, for each category group with enough comparisons, L2-pulled corrections.
3. **Thresholds**: the learned model is replayed as ingestion would run it (streaming, against
   the cases it forms itself); per group, ``auto`` is the lowest probability at which the
   automatic links reach the target precision (default 0.995) and ``review`` the lowest at which
   the review queue stays within the target share (default 4 % of the group's tickets).

All in memory (``MemoryIndex``, the same blocking rules as the store), so a 20,000-ticket file
trains in well under a minute.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hub.dedup.blocking import MemoryIndex
from hub.dedup.location import CentroidDetector
from hub.dedup.model import FEATURES, LEVELS, DedupModel, Thresholds
from hub.dedup.normalize import NormalizedTicket, normalize
from hub.dedup.scoring import LINK, decide, score_members
from mappings.taxonomy import Taxonomy

MIN_WINDOW_H = 2.0
MIN_EXAMPLES = 20


@dataclass
class Labelled:
    ticket: NormalizedTicket
    cluster: str
    key: str


def labelled(rows: Iterable[Mapping[str, Any]], taxonomy: Taxonomy, hasher: Callable[[str], str]) -> list[Labelled]:
    """Normalize rows (time order; centroid detection learns as it goes, as in the store)."""
    detector = CentroidDetector()
    out = []
    for row in sorted(rows, key=lambda r: str(r.get("reported_at"))):
        ticket = normalize(row, taxonomy=taxonomy, hasher=hasher, centroids=detector)
        out.append(Labelled(ticket, str(row.get("cluster", "")), f"{ticket.system}:{ticket.external_id}"))
    out.sort(key=lambda lt: lt.ticket.reported_at)
    return out


def learn_windows(data: Sequence[Labelled], default_h: float) -> dict[str, float]:
    """Per category, p99 × 1.15 of the hours from an incident's first report to each later one.
    An incident counts under its most frequent category, so a mistyped code on one report does
    not stretch the window of the category it was mistyped as."""
    first: dict[str, Any] = {}
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for item in data:
        first.setdefault(item.cluster, item.ticket.reported_at)
        votes[item.cluster][item.ticket.category] += 1
    gaps: dict[str, list[float]] = defaultdict(list)
    for item in data:
        start = first[item.cluster]
        if item.ticket.reported_at != start:
            category = votes[item.cluster].most_common(1)[0][0]
            gaps[category].append((item.ticket.reported_at - start).total_seconds() / 3600)
    windows = {}
    for category, values in gaps.items():
        if len(values) < MIN_EXAMPLES:
            continue
        values.sort()
        p99 = values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]
        windows[category] = round(max(MIN_WINDOW_H, p99 * 1.15), 1)
    return windows


def learn_pin_errors(data: Sequence[Labelled], min_pairs: int = MIN_EXAMPLES) -> tuple[dict[str, float], float]:
    """Per source system, the typical error of its pins in metres, from the distances between
    the trusted pins of two reports of one incident: for each pair of systems with enough such
    pairs, the median distance² ≈ ea² + eb², solved for every system by least squares. A
    system seen in too few pairs keeps the default (the median of the others)."""
    import numpy as np  # training only

    from hub.dedup.location import haversine_m

    pinned: dict[str, list[NormalizedTicket]] = defaultdict(list)
    for item in data:
        t = item.ticket
        if t.lat is not None and t.lng is not None and t.location_weak is None:
            pinned[item.cluster].append(t)
    distances: dict[tuple[str, str], list[float]] = defaultdict(list)
    for tickets in pinned.values():
        for i, one in enumerate(tickets):
            for two in tickets[:i]:
                pair = (min(one.system, two.system), max(one.system, two.system))
                distances[pair].append(haversine_m(one.lat, one.lng, two.lat, two.lng))  # type: ignore[arg-type]
    pairs = {p: sorted(v)[len(v) // 2] for p, v in distances.items() if len(v) >= min_pairs}
    systems = sorted({s for p in pairs for s in p})
    if not systems:
        return {}, 30.0
    col = {s: j for j, s in enumerate(systems)}
    x = np.zeros((len(pairs), len(systems)))
    y = np.zeros(len(pairs))
    for i, ((a, b), median) in enumerate(sorted(pairs.items())):
        x[i, col[a]] += 1.0
        x[i, col[b]] += 1.0
        y[i] = median * median
    variances, *_ = np.linalg.lstsq(x, y, rcond=None)
    errors = {s: round(math.sqrt(max(float(v), 25.0)), 2) for s, v in zip(systems, variances, strict=True)}
    values = sorted(errors.values())
    return errors, values[len(values) // 2]


Pattern = tuple[str, tuple[str, ...], bool]  # (ticket's category group, feature levels, same incident?)


def collect_patterns(data: Sequence[Labelled], model: DedupModel, taxonomy: Taxonomy) -> Counter[Pattern]:
    """(group, feature levels, same incident?) counts of every (ticket, candidate case)
    comparison in a replay against the true clusters; each case is compared through its best
    member under ``model``, exactly as ``decide`` compares (an untrained model picks the first
    member)."""
    index = MemoryIndex(model, taxonomy)
    case_of: dict[str, int] = {}
    counts: Counter[Pattern] = Counter()
    for i, item in enumerate(data):
        truth = case_of.get(item.cluster)
        for scored in score_members(model, item.ticket, index.candidates(item.ticket)):
            counts[item.ticket.group, tuple(c.level for c in scored.contributions), scored.case_id == truth] += 1
        case_id = case_of.setdefault(item.cluster, i)
        index.add(i, case_id, item.ticket)
    return counts


def collect_stream_patterns(data: Sequence[Labelled], model: DedupModel, taxonomy: Taxonomy) -> Counter[Pattern]:
    """Like ``collect_patterns``, but against the cases a streaming replay under ``model`` forms
    itself (a comparison counts as the same incident when the case holds a report of the
    ticket's incident), as ingestion meets them: an incident split over two cases shows up as
    two good candidates, which the true clusters never show."""
    index = MemoryIndex(model, taxonomy)
    members_of: dict[int, set[str]] = defaultdict(set)
    counts: Counter[Pattern] = Counter()
    for i, item in enumerate(data):
        members = index.candidates(item.ticket)
        for scored in score_members(model, item.ticket, members):
            counts[item.ticket.group, tuple(c.level for c in scored.contributions),
                   item.cluster in members_of[scored.case_id]] += 1
        decision = decide(model, item.ticket, members)
        case_id = decision.best.case_id if decision.action == LINK and decision.best is not None else i
        members_of[case_id].add(item.cluster)
        index.add(i, case_id, item.ticket)
    return counts


# a group's own corrections are learned only from this many comparisons of its tickets, and
# pulled towards zero (the shared weights) by a penalty worth this many comparisons
GROUP_MIN_COMPARISONS = 2000
GROUP_L2 = 50.0


@dataclass
class Fitted:
    weights: dict[str, dict[str, float]]
    prior: float
    group_weights: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    group_priors: dict[str, float] = field(default_factory=dict)


def fit_model(counts: Counter[Pattern], *, l2: float = 1.0, group_l2: float | None = None,
              iterations: int = 4000, per_group: bool = True) -> Fitted:
    """Logistic regression on one-hot feature levels (aggregated by pattern, so it is small):
    unlike independent m/u counting it does not count the same evidence twice when features
    move together (a close pin and the same house number). Each category group with enough
    comparisons also gets its own corrections (a prior and a weight per level, L2-pulled to
    zero), since one compound over three weeks is not one road over three hours.
    Coefficients are returned in log2 units, so they read and add up exactly like
    Fellegi–Sunter weights."""
    import numpy as np  # training only; scoring is a dictionary look-up

    shared = [(f, level) for f in FEATURES for level in LEVELS[f]]
    per: Counter[str] = Counter()
    for (group, _, _), n in counts.items():
        per[group] += n
    groups = sorted(g for g, n in per.items() if per_group and n >= GROUP_MIN_COMPARISONS)
    columns: list[tuple[str | None, str, str]] = [(None, f, lv) for f, lv in shared]
    for g in groups:
        columns += [(g, "prior", "")] + [(g, f, lv) for f, lv in shared]
    col = {key: j for j, key in enumerate(columns)}
    patterns = sorted(counts)
    x = np.zeros((len(patterns), len(columns)))
    for i, (group, levels, _) in enumerate(patterns):
        for feature, level in zip(FEATURES, levels, strict=True):
            x[i, col[None, feature, level]] = 1.0
            if (group, feature, level) in col:
                x[i, col[group, feature, level]] = 1.0
        if (group, "prior", "") in col:
            x[i, col[group, "prior", ""]] = 1.0
    y = np.array([1.0 if same else 0.0 for _, _, same in patterns])
    w = np.array([float(counts[p]) for p in patterns])
    total = w.sum()
    group_l2 = GROUP_L2 if group_l2 is None else group_l2
    penalty = np.array([l2 if g is None else group_l2 for g, _, _ in columns])
    coef, bias = np.zeros(len(columns)), 0.0
    m_coef, v_coef, m_bias, v_bias = np.zeros(len(columns)), np.zeros(len(columns)), 0.0, 0.0
    rate, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8
    for step in range(1, iterations + 1):  # Adam on the weighted log-loss + L2
        z = np.clip(x @ coef + bias, -35, 35)
        p = 1.0 / (1.0 + np.exp(-z))
        err = (p - y) * w
        g_coef = (x.T @ err) / total + penalty * coef / total
        g_bias = float(err.sum() / total)
        m_coef = beta1 * m_coef + (1 - beta1) * g_coef
        v_coef = beta2 * v_coef + (1 - beta2) * g_coef**2
        m_bias = beta1 * m_bias + (1 - beta1) * g_bias
        v_bias = beta2 * v_bias + (1 - beta2) * g_bias**2
        coef -= rate * (m_coef / (1 - beta1**step)) / (np.sqrt(v_coef / (1 - beta2**step)) + eps)
        bias -= rate * (m_bias / (1 - beta1**step)) / (math.sqrt(v_bias / (1 - beta2**step)) + eps)
    seen = x.T @ w > 0
    ln2 = math.log(2)
    fitted = Fitted({f: {} for f in FEATURES}, round(bias / ln2, 3))
    for (owner, feature, level), j in col.items():
        # a level never seen in training carries no evidence
        value = round(float(coef[j]) / ln2, 3) if seen[j] else 0.0
        if owner is None:
            fitted.weights[feature][level] = value
        elif feature == "prior":
            fitted.group_priors[owner] = value
        elif value:
            fitted.group_weights.setdefault(owner, {}).setdefault(feature, {})[level] = value
    return fitted


def fit_weights(counts: Counter[tuple[tuple[str, ...], bool]], *, l2: float = 1.0,
                iterations: int = 4000) -> tuple[dict[str, dict[str, float]], float]:
    """Shared weights and prior only, from (levels, same incident?) counts."""
    fitted = fit_model(Counter({("", levels, same): n for (levels, same), n in counts.items()}),
                       l2=l2, iterations=iterations, per_group=False)
    return fitted.weights, fitted.prior


def learn_weights(data: Sequence[Labelled], base: DedupModel, taxonomy: Taxonomy, rounds: int = 2,
                  per_group: bool = True) -> DedupModel:
    """Fit, then refit with each case compared through the member the fitted model prefers."""
    model = base
    for round_ in range(rounds):
        # the last round compares against the cases the previous fit forms when it streams
        collect = collect_stream_patterns if round_ == rounds - 1 else collect_patterns
        fitted = fit_model(collect(data, model, taxonomy), per_group=per_group)
        model = replace(model, weights=fitted.weights, prior=fitted.prior,
                        group_weights=fitted.group_weights, group_priors=fitted.group_priors)
    return model


@dataclass
class StreamResult:
    predicted: dict[str, int]
    # per decision: (group, action, probability of best open candidate, was it a true match)
    decisions: list[tuple[str, str, float, bool]] = field(default_factory=list)

    def share(self, action: str) -> float:
        return sum(1 for d in self.decisions if d[1] == action) / max(1, len(self.decisions))


def stream(model: DedupModel, data: Sequence[Labelled], taxonomy: Taxonomy) -> StreamResult:
    """Replay as ingestion decides: link or open a case (a review item opens one too)."""
    index = MemoryIndex(model, taxonomy)
    predicted: dict[str, int] = {}
    members_of: dict[int, set[str]] = defaultdict(set)
    result = StreamResult(predicted)
    for i, item in enumerate(data):
        decision = decide(model, item.ticket, index.candidates(item.ticket))
        best = decision.best
        truth = best is not None and item.cluster in members_of[best.case_id]
        result.decisions.append((item.ticket.group, decision.action,
                                 best.probability if best is not None else 0.0, truth))
        case_id = best.case_id if decision.action == LINK and best is not None else i
        predicted[item.key] = case_id
        members_of[case_id].add(item.cluster)
        index.add(i, case_id, item.ticket)
    return result


def link_precision(result: StreamResult, group: str | None = None) -> tuple[float, int]:
    links = [d for d in result.decisions if d[1] == LINK and (group is None or d[0] == group)]
    return (sum(1 for d in links if d[3]) / len(links) if links else 1.0), len(links)


THRESHOLD_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.98, 0.995)


def tune_thresholds(model: DedupModel, data: Sequence[Labelled], taxonomy: Taxonomy, *,
                    precision: float = 0.99, review_share: float = 0.04,
                    folds: Sequence[tuple[DedupModel, Sequence[Labelled]]] = (),
                    ) -> tuple[Thresholds, dict[str, Thresholds]]:
    """Per-group ``auto`` thresholds that link as many tickets as possible while all automatic
    links together keep ``precision``; ``review`` keeps the review queue within ``review_share``.

    The stream is replayed once per threshold on a grid (cases grow as in production) and each
    group's links and wrong links are counted at each; starting from the strictest threshold
    everywhere, the group whose next step down adds the most correct links per wrong one is
    lowered, as long as the total stays within the error budget (a greedy knapsack: a group of
    look-alike incidents, such as illegal construction in one compound over weeks, spends the
    budget badly and keeps a high threshold; a clean group goes low). A last replay with the
    chosen thresholds checks the total and raises the least precise group until it holds. The
    default (for groups the data did not show) is the lowest single threshold that holds.

    ``folds``: more (model, data) pairs replayed alongside and counted together (each fold's
    data scored by weights fitted on other data), so a group's few wrong links are counted on
    twice the tickets."""
    def run(default_auto: float, groups: Mapping[str, Thresholds]) -> StreamResult:
        combined = StreamResult({})
        for fold_model, fold_data in ((model, data), *folds):
            result = stream(replace(fold_model, thresholds=dict(groups),
                                    default_thresholds=Thresholds(default_auto, min(default_auto, 0.05))),
                            fold_data, taxonomy)
            combined.decisions.extend(result.decisions)
        return combined

    counts: list[dict[str, tuple[int, int]]] = []  # per grid step: group → (links, wrong links)
    default = THRESHOLD_GRID[-1]
    for t in THRESHOLD_GRID:
        result = run(t, {})
        per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for group, action, _, right in result.decisions:
            if action == LINK:
                per[group][0] += 1
                per[group][1] += 0 if right else 1
        counts.append({g: (n, w) for g, (n, w) in per.items()})
        if link_precision(result)[0] >= precision:
            default = min(default, t)
    # a group with few examples cannot show its precision: it keeps the default
    sizes = Counter(d[0] for d in result.decisions)
    names = sorted(g for g, n in sizes.items() if n >= 10 * MIN_EXAMPLES)
    step = dict.fromkeys(names, len(THRESHOLD_GRID) - 1)

    def at(group: str, i: int) -> tuple[int, int]:
        return counts[i].get(group, (0, 0))

    others = [g for g in sizes if g not in names]
    links = sum(at(g, step[g])[0] for g in names) + sum(at(g, THRESHOLD_GRID.index(default))[0] for g in others)
    wrong = sum(at(g, step[g])[1] for g in names) + sum(at(g, THRESHOLD_GRID.index(default))[1] for g in others)
    while True:
        best: tuple[float, str] | None = None
        for g in names:
            if step[g] == 0:
                continue
            (n0, w0), (n1, w1) = at(g, step[g]), at(g, step[g] - 1)
            dn, dw = n1 - n0, w1 - w0
            if links + dn == 0 or (links + dn - wrong - dw) / (links + dn) < precision:
                continue
            gain = (dn - dw) / dn if dn > 0 else 1.0
            if best is None or gain > best[0]:
                best = (gain, g)
        if best is None:
            break
        g = best[1]
        (n0, w0), (n1, w1) = at(g, step[g]), at(g, step[g] - 1)
        links, wrong = links + n1 - n0, wrong + w1 - w0
        step[g] -= 1

    def chosen() -> dict[str, Thresholds]:
        return {g: Thresholds(THRESHOLD_GRID[i], min(THRESHOLD_GRID[i], 0.05)) for g, i in step.items()}

    result = run(default, chosen())
    while link_precision(result)[0] < precision:  # groups meet across keys: the sum is not exact
        raisable = [g for g in names if step[g] < len(THRESHOLD_GRID) - 1 and link_precision(result, g)[1]]
        if not raisable:
            break
        worst = min(raisable, key=lambda g: link_precision(result, g)[0])
        step[worst] += 1
        result = run(default, chosen())
    groups = {g: t for g, t in chosen().items() if t.auto != default}
    # review: per threshold set, the probability above which at most review_share of its tickets
    # wait for a person
    def review_for(decisions: list[tuple[str, str, float, bool]], ceiling: float) -> float:
        pending = sorted((d[2] for d in decisions if d[1] != LINK and d[2] > 0), reverse=True)
        budget = int(review_share * len(decisions))
        review = pending[budget] if len(pending) > budget else (pending[-1] if pending else 0.5)
        return min(max(0.05, round(review, 4)), ceiling)

    fallback = Thresholds(default, review_for([d for d in result.decisions if d[0] not in groups], default))
    return fallback, {g: Thresholds(t.auto, review_for([d for d in result.decisions if d[0] == g], t.auto))
                     for g, t in groups.items()}


def train(rows: Iterable[Mapping[str, Any]], taxonomy: Taxonomy, hasher: Callable[[str], str], *,
          base: DedupModel, precision: float = 0.99, review_share: float = 0.04,
          version: str = "trained", holdout: float = 0.5) -> tuple[DedupModel, StreamResult, list[Labelled]]:
    data = labelled(rows, taxonomy, hasher)
    windows = {**base.windows_h, **learn_windows(data, base.default_window_h)}
    pin_errors, default_pin = learn_pin_errors(data)
    staged = replace(base, windows_h=windows, pin_error_m=pin_errors, default_pin_error_m=default_pin)
    if holdout:
        # thresholds are read off tickets the weights have not seen: weights fitted on the
        # earlier part of the file, the later part replayed (in-sample, the wrong links of a
        # group look cheaper than they are and the held-out precision falls short of the target)
        # two folds: the later part scored by weights fitted on the earlier part, and the
        # earlier part by weights fitted on the later part; their links are counted together
        cut = int(len(data) * (1 - holdout))
        early = learn_weights(data[:cut], staged, taxonomy)
        late = learn_weights(data[cut:], staged, taxonomy)
        default, groups = tune_thresholds(early, data[cut:], taxonomy, precision=precision,
                                          review_share=review_share, folds=((late, data[:cut]),))
        staged = learn_weights(data, staged, taxonomy)
    else:
        staged = learn_weights(data, staged, taxonomy)
        default, groups = tune_thresholds(staged, data, taxonomy, precision=precision, review_share=review_share)
    trained = replace(staged, default_thresholds=default, thresholds=groups, version=version)
    return trained, stream(trained, data, taxonomy), data
