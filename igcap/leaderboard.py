"""The human-evaluation leaderboard: pure statistics over plain rows of star ratings and pairwise votes.

No database, no Streamlit, no torch: callers (the Evaluation page, ``python -m igcap leaderboard``) turn
their data into :class:`RatingRow`, :class:`VoteRow` and :class:`CaptionRow` and call
:func:`compute_leaderboard`. ("Evaluation" in ``igcap.evaluation`` means automatic metrics on held-out
photos; this module is about what people said.)

What is computed, and why this way:

- **Mean stars** per model over all its ratings for one criterion, with a bootstrap interval that
  resamples *photos* with replacement (the photo is the unit of analysis: ratings of one photo's captions
  are not independent), Hesterberg's expanded percentile interval so that it keeps its coverage with few
  photos (:mod:`igcap.intervals`; its tails for the model's own photos, not the study's).
- **Bradley–Terry** log-strengths from the pairwise votes by maximum likelihood (Newton's method), ties and
  "both bad" counted as half a win for each side, as Chatbot Arena does. Scores are natural-log strengths
  centred to mean 0 over the models that have votes. A ridge of :data:`DEFAULT_RIDGE` (a normal prior with
  standard deviation 10 on each log-strength) keeps the fit finite when a model never wins or never loses;
  it moves any score by far less than one vote does; a model, or a set of models, that never lost (or never
  won) against the rest gets a note, and so do groups of models that never met in a vote (their scores are
  not on one scale: :mod:`igcap.comparison_graph`). The interval comes from the same photo bootstrap. Where
  votes between two sets of models all went one way, the votes bound the gap on one side only: the interval
  is open on that side (±inf; null in JSON), and its other end comes from the bootstrap of the votes with
  each such record at its one-sided bound (the loser winning 1 − (1 − confidence)^(1/n) of their votes on n
  photos, Clopper–Pearson; about 3/n at 95 %, the rule of three, as for mean stars), not from the prior.
- **Rank** as in Chatbot Arena: 1 + the number of models whose interval lies wholly above this model's, so
  models whose intervals overlap share a place. Ranked by Bradley–Terry when at least two models have
  enough votes (among the models of its group), else by mean stars. By votes, a model that won every vote
  against another on enough photos (:func:`one_way_photos`, 5 at 95 %) counts as above it, and so does a
  model above one that is above it. Mean stars whose resamples never vary (every rating the same) get the
  rule of three's interval; a score from votes whose every resample is the same in a group they link both
  ways (only ties) has no interval and no rank.
- **Krippendorff's alpha** (ordinal metric) over captions rated by two or more people, with how many
  captions (units) and raters it rests on.
- Per rater: ratings, mean stars, and how far they sit from the others on the same captions.
- Automatic measures of each model's captions from :mod:`igcap.metrics`.
- "Not enough data" instead of numbers that mean nothing, below the :class:`Thresholds`.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from igcap import comparison_graph, metrics
from igcap.intervals import percentile_intervals

DEFAULT_CRITERION = "overall"
WINNERS = ("a", "b", "tie", "both_bad")
STARS = (1, 2, 3, 4, 5)
DEFAULT_RIDGE = 0.01  # L2 penalty on log-strengths = a Normal(0, 10²) prior; see the module docstring
ARENA_SCALE = 400 / math.log(10)  # Chatbot Arena's display scale: 1000 + 400·log10(strength)
ARENA_BASE = 1000.0


class LeaderboardDataError(ValueError):
    """A row or file that cannot be used, with a message a person understands."""


# ---------------------------------------------------------------------------------------------- rows

@dataclass(frozen=True)
class RatingRow:
    """One star rating. ``photo`` identifies the photo (its sha256 or any id): the bootstrap unit.
    ``caption_id`` identifies the caption rated (the agreement unit); when None, (photo, model) does."""

    photo: str
    model: str
    rater: str
    stars: int
    criterion: str = DEFAULT_CRITERION
    caption_id: int | str | None = None

    def __post_init__(self):
        _require_text("photo", self.photo)
        _require_text("model", self.model)
        _require_str("rater", self.rater)
        if isinstance(self.stars, bool) or not isinstance(self.stars, int) or self.stars not in STARS:
            raise LeaderboardDataError(f"stars must be a whole number from 1 to 5, got {self.stars!r}")
        _require_text("criterion", self.criterion)

    @property
    def unit(self) -> tuple:
        return ("caption", self.caption_id) if self.caption_id not in (None, "") else ("pair", self.photo,
                                                                                      self.model)


@dataclass(frozen=True)
class VoteRow:
    """One pairwise vote on one photo: ``winner`` is "a", "b", "tie" or "both_bad"."""

    photo: str
    model_a: str
    model_b: str
    winner: str
    rater: str = ""

    def __post_init__(self):
        _require_text("photo", self.photo)
        _require_text("model_a", self.model_a)
        _require_text("model_b", self.model_b)
        if self.model_a == self.model_b:
            raise LeaderboardDataError(f"a vote compares two different models, got {self.model_a!r} twice")
        if self.winner not in WINNERS:
            raise LeaderboardDataError(f"winner must be one of {', '.join(WINNERS)}, got {self.winner!r}")
        _require_str("rater", self.rater)


@dataclass(frozen=True)
class CaptionRow:
    """One caption a model wrote for a photo (for the automatic measures)."""

    photo: str
    model: str
    text: str


def _require_text(name: str, value) -> None:
    if not isinstance(value, str) or not value.strip():
        raise LeaderboardDataError(f"{name} must be a non-empty text, got {value!r}")


def _require_str(name: str, value) -> None:
    """A text that may be empty (a rater without a name)."""
    if not isinstance(value, str):
        raise LeaderboardDataError(f"{name} must be a text (empty for no name), got {value!r}")


# ----------------------------------------------------------------------------------------- thresholds

@dataclass(frozen=True)
class Thresholds:
    """Below these, a figure is reported as "not enough data" with how much more is needed.

    Ten ratings on eight photos: below about eight photos even the expanded percentile interval
    (:mod:`igcap.intervals`) covers the truth in fewer than 90 % of simulated studies (plain percentiles
    in 86–91 % at eight, 75–88 % at five); ten votes per model on eight photos likewise for Bradley–Terry;
    alpha wants ten captions rated by at least two of at least two raters.
    """

    ratings: int = 10  # ratings of a model (for the criterion) before its mean stars are shown
    rated_photos: int = 8  # ... on at least this many different photos
    votes: int = 10  # votes involving a model before its Bradley–Terry score is shown
    voted_photos: int = 8  # ... on at least this many different photos
    agreement_units: int = 10  # captions with two or more ratings before alpha is shown
    agreement_raters: int = 2

    @property
    def photos(self) -> int:
        """The fewest photos a study needs before every figure can be shown."""
        return max(self.rated_photos, self.voted_photos)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"threshold {name} must be a whole number >= 0, got {value!r}")


NO_THRESHOLDS = Thresholds(0, 0, 0, 0, 0, 0)


# ----------------------------------------------------------------------------------- Bradley–Terry

def win_matrix(votes: Iterable[VoteRow], models: Sequence[str]) -> np.ndarray:
    """(K, K) matrix: [i, j] = wins of models[i] over models[j], ties and both_bad as half to each side."""
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for vote in votes:
        a, b = index[vote.model_a], index[vote.model_b]
        if vote.winner == "a":
            wins[a, b] += 1
        elif vote.winner == "b":
            wins[b, a] += 1
        else:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
    return wins


def bradley_terry(wins: np.ndarray, ridge: float = DEFAULT_RIDGE, *, tol: float = 1e-11,
                  max_iter: int = 200) -> np.ndarray:
    """Maximum-likelihood Bradley–Terry log-strengths, centred to mean 0.

    ``wins`` is (K, K) or a batch (B, K, K) of win matrices; returns (K,) or (B, K). Maximises
    sum_ij wins[i, j]·log σ(θi − θj) − ridge/2·|θ|² by Newton's method with step halving (the objective is
    concave, strictly with ridge > 0). With ridge = 0 the comparison graph must be connected and every
    model must both win and lose somewhere, or the MLE does not exist.
    """
    wins = np.asarray(wins, dtype=float)
    single = wins.ndim == 2
    w = wins[None] if single else wins  # (B, K, K)
    b, k, _ = w.shape
    n = w + w.transpose(0, 2, 1)  # games between i and j
    theta = np.zeros((b, k))
    centre = np.ones((k, k)) / k  # added to the negative Hessian: fixes the free shift, keeps steps centred
    scale = np.maximum(1.0, n.sum(axis=(1, 2)))[:, None]  # (B, 1): gradients grow with the number of votes
    for _ in range(max_iter):
        p = _sigmoid(theta[:, :, None] - theta[:, None, :])  # (B, K, K): P(i beats j)
        grad = (w - n * p).sum(axis=2) - ridge * theta  # (B, K)
        if (np.abs(grad) < tol * scale).all():
            break
        info = n * p * (1 - p)  # Fisher information of each pair
        neg_hessian = -info + ridge * np.eye(k) + centre
        neg_hessian[:, np.arange(k), np.arange(k)] += info.sum(axis=2)
        step = np.linalg.solve(neg_hessian, grad[:, :, None])[:, :, 0]
        theta = _halving_step(theta, step, w, ridge)
    theta -= theta.mean(axis=1, keepdims=True)
    return theta[0] if single else theta


def _halving_step(theta, step, w, ridge):
    """theta + t·step with t = 1, 1/2, 1/4 … per batch item until the objective does not decrease."""
    current = _bt_objective(theta, w, ridge)
    t = np.ones(theta.shape[0])
    for _ in range(30):
        candidate = theta + t[:, None] * step
        worse = _bt_objective(candidate, w, ridge) < current - 1e-12 * (1 + np.abs(current))
        if not worse.any():
            break
        t[worse] /= 2
    return theta + t[:, None] * step


def _bt_objective(theta, w, ridge):
    d = theta[:, :, None] - theta[:, None, :]
    return -(w * np.logaddexp(0.0, -d)).sum(axis=(1, 2)) - ridge / 2 * (theta ** 2).sum(axis=1)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))  # stable for large |x|


# --------------------------------------------------------------------------------- Krippendorff's α

def krippendorff_alpha(units: Iterable[Sequence[float]], metric: str = "ordinal") -> float | None:
    """Krippendorff's alpha from the values each unit received (missing values simply absent).

    Built from the coincidence matrix as in Krippendorff (2011), "Computing Krippendorff's
    Alpha-Reliability"; only units with two or more values are pairable. ``metric`` is "nominal",
    "ordinal", "interval" or "ratio". None when nothing is pairable or every value is the same
    (alpha is 0/0 then).
    """
    pairable = [list(u) for u in units if len(u) >= 2]
    if not pairable:
        return None
    values = sorted({v for u in pairable for v in u})
    index = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(pairable), len(values)))  # counts[u, c]: how often unit u received value c
    for u, unit in enumerate(pairable):
        for v in unit:
            counts[u, index[v]] += 1
    weighted = counts / (counts.sum(axis=1, keepdims=True) - 1)
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))  # pairs within units, not with themselves
    marginals = coincidence.sum(axis=1)
    total = marginals.sum()
    delta = _difference(metric, np.array(values, dtype=float), marginals)
    observed = (coincidence * delta).sum() / total
    expected = (np.outer(marginals, marginals) * delta).sum() / (total * (total - 1))
    return None if expected == 0 else float(1 - observed / expected)


def _difference(metric: str, values: np.ndarray, marginals: np.ndarray) -> np.ndarray:
    """The squared difference δ²(c, k) between every two values, per Krippendorff's metrics."""
    c, k = values[:, None], values[None, :]
    if metric == "nominal":
        return (c != k).astype(float)
    if metric == "interval":
        return (c - k) ** 2
    if metric == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(((c - k) / (c + k)) ** 2)
    if metric == "ordinal":
        cumulative = np.cumsum(marginals)  # ranks: sum of n_g for g from c to k, minus half the ends
        mid = cumulative - marginals / 2
        return (mid[:, None] - mid[None, :]) ** 2
    raise ValueError(f"unknown metric {metric!r}; use nominal, ordinal, interval or ratio")


# --------------------------------------------------------------------------------------- the result

@dataclass(frozen=True)
class ModelStanding:
    """One model's line of the leaderboard. Figures below the thresholds are None; ``needs`` says why."""

    model_key: str
    ratings: int
    rated_photos: int
    mean_stars: float | None
    mean_stars_ci: tuple[float, float] | None
    votes: int
    wins: int
    losses: int
    ties: int  # ties and "both bad" together (half a win each side); both_bad counts the latter alone
    both_bad: int
    bt_score: float | None
    bt_ci: tuple[float, float] | None
    rank: int | None
    needs: dict[str, int] = field(default_factory=dict)  # e.g. {"ratings": 4, "votes": 6}: how many more
    notes: tuple[str, ...] = ()
    automatic: dict | None = None  # the automatic measures of this model's captions

    @property
    def arena_score(self) -> float | None:
        return None if self.bt_score is None else ARENA_BASE + ARENA_SCALE * self.bt_score

    @property
    def arena_ci(self) -> tuple[float, float] | None:
        return None if self.bt_ci is None else (ARENA_BASE + ARENA_SCALE * self.bt_ci[0],
                                                ARENA_BASE + ARENA_SCALE * self.bt_ci[1])

    def to_json(self) -> dict:
        out = asdict(self)
        out["mean_stars_ci"] = _list(self.mean_stars_ci)
        out["bt_ci"] = _list(self.bt_ci)
        out["notes"] = list(self.notes)
        out["arena_score"] = self.arena_score
        out["arena_ci"] = _list(self.arena_ci)
        return out


@dataclass(frozen=True)
class Agreement:
    krippendorff_alpha_ordinal: float | None
    units: int  # captions with two or more ratings for the criterion
    raters: int  # distinct raters among those ratings
    needs: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RaterStats:
    rater: str
    ratings: int
    mean_stars: float
    compared: int  # ratings on captions that someone else also rated
    mean_diff: float | None  # mean of (this rater's stars − the other raters' mean on that caption)
    mean_abs_diff: float | None  # the same, absolute: how far this rater sits from the others

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Leaderboard:
    criterion: str
    models: tuple[ModelStanding, ...]
    agreement: Agreement
    win_rate: dict[str, dict[str, float | None]]  # row model's share against column model, ties half
    games: dict[str, dict[str, int]]  # votes between the row and column models (what each win rate rests on)
    raters: tuple[RaterStats, ...]
    rank_by: str | None  # "bt", "stars" or None (not enough data to rank)
    criteria: tuple[str, ...]  # every criterion present in the ratings
    bootstrap: int
    seed: int
    confidence: float
    thresholds: Thresholds

    def to_json(self) -> dict:
        return {
            "criterion": self.criterion,
            "models": [m.to_json() for m in self.models],
            "agreement": self.agreement.to_json(),
            "win_rate": self.win_rate,
            "games": self.games,
            "raters": [r.to_json() for r in self.raters],
            "rank_by": self.rank_by,
            "criteria": list(self.criteria),
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "confidence": self.confidence,
            "thresholds": asdict(self.thresholds),
        }

    def model(self, key: str) -> ModelStanding:
        return next(m for m in self.models if m.model_key == key)


def _list(pair):
    """[lo, hi] for JSON, an open end (±inf: one-way votes) as null."""
    return None if pair is None else [x if math.isfinite(x) else None for x in pair]


# ------------------------------------------------------------------------------------ computation

def compute_leaderboard(ratings: Iterable[RatingRow], votes: Iterable[VoteRow], captions: Iterable[CaptionRow] = (),
                        *, criterion: str = DEFAULT_CRITERION, bootstrap: int = 1000, seed: int = 0,
                        confidence: float = 0.95, thresholds: Thresholds = Thresholds(),
                        ridge: float = DEFAULT_RIDGE, expect_ratings: bool | None = None,
                        expect_votes: bool | None = None) -> Leaderboard:
    """The leaderboard for one criterion. Reproducible: the same rows, ``bootstrap`` and ``seed`` give the
    same figures. ``bootstrap=0`` skips the intervals (ranks then compare point estimates).

    ``expect_ratings`` / ``expect_votes``: whether "not enough data" should ask for ratings / votes
    (a study that collects them: True, even before the first one); None = when there are any.
    """
    if not isinstance(bootstrap, int) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a whole number >= 0, got {bootstrap!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    all_ratings = _latest_ratings(ratings)
    chosen = [r for r in all_ratings if r.criterion == criterion]
    votes, captions = list(votes), list(captions)
    models = sorted({r.model for r in all_ratings} | {m for v in votes for m in (v.model_a, v.model_b)}
                    | {c.model for c in captions})
    # One random stream each, so the votes' intervals do not depend on which ratings came with them.
    stars_rng, votes_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    stars = _star_estimates(chosen, models, bootstrap, stars_rng, confidence)
    graph = _VoteGraph.of(votes, models, confidence)
    strengths = _bt_estimates(votes, models, bootstrap, votes_rng, confidence, ridge, graph)
    automatic = automatic_measures(captions)
    want = (bool(chosen) if expect_ratings is None else expect_ratings,
            bool(votes) if expect_votes is None else expect_votes)
    standings = [_standing(m, stars[m], strengths[m], votes, automatic.get(m), thresholds, want,
                           graph.notes[m] + (graph.bound_notes.get(m, ()) if bootstrap else ()), bootstrap)
                 for m in models]
    rank_by, standings = _ranked(standings, graph, bootstrap)
    return Leaderboard(
        criterion=criterion, models=tuple(standings),
        agreement=agreement(chosen, thresholds if want[0] else NO_THRESHOLDS),
        win_rate=win_rates(votes, models), games=games(votes, models), raters=tuple(rater_stats(chosen)),
        rank_by=rank_by,
        criteria=tuple(sorted({r.criterion for r in all_ratings}, key=lambda c: (c != DEFAULT_CRITERION, c))),
        bootstrap=bootstrap, seed=seed, confidence=confidence, thresholds=thresholds)


def _latest_ratings(ratings: Iterable[RatingRow]) -> list[RatingRow]:
    """One rating per (caption, rater, criterion), the last one given, as the database keeps it; ratings
    without a rater name cannot be told apart and are all kept."""
    kept: dict[tuple, RatingRow] = {}
    for i, row in enumerate(ratings):
        key = (row.unit, row.rater, row.criterion) if row.rater.strip() else ("anonymous", i)
        kept.pop(key, None)
        kept[key] = row
    return list(kept.values())


@dataclass(frozen=True)
class _Estimate:
    point: float | None
    ci: tuple[float, float] | None
    count: int
    photos: int
    flat: bool = False  # every resample gave the same figure: no interval (for stars, the rule of three's)


def _estimate(point, ci, count: int, photos: int) -> _Estimate:
    flat = (ci is not None and math.isfinite(ci[0]) and math.isfinite(ci[1])
            and ci[1] - ci[0] <= 1e-9 * max(1.0, abs(ci[0])))
    return _Estimate(point, None if flat else ci, count, photos, flat)


def _photo_resamples(photos: int, bootstrap: int, rng: np.random.Generator):
    """Bootstrap resamples of ``photos`` photos as (block, photos) counts, in blocks that bound memory."""
    block = max(1, 4_000_000 // max(photos, 1))
    for start in range(0, bootstrap, block):
        size = min(block, bootstrap - start)
        yield rng.multinomial(photos, np.full(photos, 1 / photos), size=size).astype(float)


def _star_estimates(ratings, models, bootstrap, rng, confidence) -> dict[str, _Estimate]:
    photos = sorted({r.photo for r in ratings})
    p_index, m_index = {p: i for i, p in enumerate(photos)}, {m: i for i, m in enumerate(models)}
    sums, counts = np.zeros((len(photos), len(models))), np.zeros((len(photos), len(models)))
    for r in ratings:
        sums[p_index[r.photo], m_index[r.model]] += r.stars
        counts[p_index[r.photo], m_index[r.model]] += 1
    cis = [None] * len(models)
    if bootstrap and photos:
        boots = []
        for weights in _photo_resamples(len(photos), bootstrap, rng):
            with np.errstate(invalid="ignore", divide="ignore"):
                boots.append((weights @ sums) / (weights @ counts))
        cis = percentile_intervals(np.concatenate(boots), confidence, (counts > 0).sum(axis=0))
    total, n = sums.sum(axis=0), counts.sum(axis=0)
    found = {m: _estimate(float(total[i] / n[i]) if n[i] else None, cis[i] if n[i] else None, int(n[i]),
                          int((counts[:, i] > 0).sum())) for i, m in enumerate(models)}
    return {m: replace(e, ci=rule_of_three(e.point, e.photos)) if e.flat else e for m, e in found.items()}


def rule_of_three(point: float, photos: int) -> tuple[float, float]:
    """A 95 % interval for mean stars whose every rating is ``point``, which no resampling can widen: by the
    rule of three (Hanley and Lippman-Hand 1983), up to 3/n of its n photos could get other ratings without a
    study of n photos showing any, 95 % of the time; those could lie anywhere on the scale."""
    share = min(1.0, 3 / max(photos, 1))
    return (point - share * (point - STARS[0]), point + share * (STARS[-1] - point))


def _bt_estimates(votes, models, bootstrap, rng, confidence, ridge, graph: _VoteGraph) -> dict[str, _Estimate]:
    """Scores from all the votes (the ridge holding one-way gaps finite) and intervals from the photo bootstrap
    of the votes with each one-way record at its bound (:class:`_OneWay`), open where the votes set no bound."""
    voted = sorted({m for v in votes for m in (v.model_a, v.model_b)})
    photos = sorted({v.photo for v in votes})
    per_photo = defaultdict(list)
    for v in votes:
        per_photo[v.photo].append(v)
    w = np.stack([win_matrix(per_photo[p], voted) for p in photos]) if photos else np.zeros((0, 0, 0))
    games = w + w.transpose(0, 2, 1)
    counts = {m: sum(1 for v in votes if m in (v.model_a, v.model_b)) for m in voted}
    model_photos = {m: len({v.photo for v in votes if m in (v.model_a, v.model_b)}) for m in voted}
    points = bradley_terry(w.sum(axis=0), ridge) if len(voted) >= 2 else np.zeros(len(voted))
    cis = [None] * len(voted)
    if bootstrap and len(voted) >= 2:
        index, bounded = {m: i for i, m in enumerate(voted)}, w.copy()
        for record in graph.one_way:  # the loser wins its bounded share, on the photos where it lost
            i, j = index[record.winner], index[record.loser]
            bounded[:, j, i] += record.share / (1 - record.share) * w[:, i, j]
        boots = []
        for weights in _photo_resamples(len(photos), bootstrap, rng):
            theta = bradley_terry(np.einsum("bp,pij->bij", weights, bounded), ridge)
            absent = np.einsum("bp,pij->bi", weights, games) == 0  # no votes for it in this resample
            theta[absent] = np.nan
            boots.append(theta - np.nanmean(theta, axis=1, keepdims=True))
        cis = percentile_intervals(np.concatenate(boots), confidence, [model_photos[m] for m in voted])
        cis = [_opened(ci, *graph.open.get(m, (False, False))) for m, ci in zip(voted, cis)]
    est = {m: _estimate(float(points[i]), cis[i], counts[m], model_photos[m]) for i, m in enumerate(voted)}
    return {m: est.get(m, _Estimate(None, None, 0, 0)) for m in models}


def _opened(ci, below: bool, above: bool):
    """``ci`` with the ends the votes cannot bound (a one-way gap) at ±inf."""
    return None if ci is None else (-math.inf if below else ci[0], math.inf if above else ci[1])


def one_way_share(photos: int, confidence: float) -> float:
    """The largest share of its votes a model that lost every vote to another on ``photos`` photos may truly win,
    at ``confidence``: Clopper–Pearson's one-sided bound for none in n, 1 − (1 − confidence)^(1/n), about 3/n
    at 95 % (the rule of three, as for mean stars that never vary)."""
    return 1 - (1 - confidence) ** (1 / photos)


def one_way_photos(confidence: float) -> int:
    """The fewest photos on which a model must win every vote against another to rank above it (5 at 95 %):
    then the loser's :func:`one_way_share` is under one half."""
    photos = 1
    while one_way_share(photos, confidence) >= 0.5:
        photos += 1
    return photos


@dataclass(frozen=True)
class _OneWay:
    """A record the fit cannot place: ``winner`` won every one of its votes against ``loser``, which met it on
    ``photos`` photos. ``share``: the largest share of their votes the loser may truly win (:func:`one_way_share`
    at the confidence asked for)."""

    winner: str
    loser: str
    photos: int
    share: float

    @property
    def decided(self) -> bool:
        """The bound keeps the loser under half its votes: the winner is the better one at that confidence."""
        return self.share < 0.5


@dataclass(frozen=True)
class _VoteGraph:
    """What the pattern of the votes allows: each voted model's group (the models linked to it by votes), the
    notes of models whose Bradley–Terry score the prior sets rather than the votes (comparison_graph), and for
    those the one-way records, which ends of their intervals the votes leave open, and what that means."""

    group: dict[str, frozenset[str]]
    notes: dict[str, tuple[str, ...]]
    one_way: tuple[_OneWay, ...] = ()  # the records between the sets of comparison_graph.one_way
    open: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # (below, above): interval ends left open
    bound_notes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # what the open interval means

    @classmethod
    def of(cls, votes: Sequence[VoteRow], models: Sequence[str], confidence: float) -> _VoteGraph:
        voted = sorted({m for v in votes for m in (v.model_a, v.model_b)})
        wins = win_matrix(votes, voted)
        met: dict[frozenset[str], set[str]] = defaultdict(set)
        for v in votes:
            met[frozenset((v.model_a, v.model_b))].add(v.photo)
        records = []
        for i, j in comparison_graph.one_way_pairs(wins):
            photos = len(met[frozenset((voted[i], voted[j]))])
            records.append(_OneWay(voted[i], voted[j], photos, one_way_share(photos, confidence)))
        found = [frozenset(voted[i] for i in g) for g in comparison_graph.groups(wins)]
        group = {m: g for g in found for m in g}
        notes: dict[str, list[str]] = {m: [] for m in models}
        if len(found) > 1:
            for m in voted:
                apart = [o for o in voted if o not in group[m]]
                notes[m].append(f"compared only with {_names(group[m] - {m})}, never (even through other models) "
                                f"with {_names(apart)}: its score and rank are relative to its own group")
        opened, bound_notes = {}, {}
        for split in comparison_graph.one_way(wins):
            members = [voted[i] for i in split.members]
            above, below = [voted[i] for i in split.above], [voted[i] for i in split.below]
            for m in members:
                notes[m].append(_one_way_note(m, members, above, below))
                opened[m] = (bool(above), bool(below))  # beaten one way: no floor; won one way: no ceiling
                bound_notes[m] = (_bound_note(above, below, confidence),)
        return cls(group, {m: tuple(n) for m, n in notes.items()}, tuple(records), opened, bound_notes)


def _one_way_note(model: str, members: list[str], above: list[str], below: list[str]) -> str:
    held = "its Bradley–Terry score is held finite by the prior and may be "
    way = "higher" if not above else "lower" if not below else "further out"
    if len(members) == 1 and not above:
        return "never lost a vote: " + held + way
    if len(members) == 1 and not below:
        return "never won a vote: " + held + way
    team = f"with {_names([o for o in members if o != model])}, " if len(members) > 1 else ""
    parts = ([f"won every vote against {_names(below)}"] if below else []) + (
        [f"lost every vote against {_names(above)}"] if above else [])
    return team + " and ".join(parts) + ": " + held + way


def _bound_note(above: list[str], below: list[str], confidence: float) -> str:
    """What an interval left open by one-way votes says, and where its other end comes from."""
    share = f"up to 1 − {1 - confidence:.2g}^(1/n)"
    bound = (f"n the photos they met on (about 3/n: the rule of three, Clopper–Pearson's one-sided {confidence:.0%} "
             "bound for none in n)")
    if not above:
        return (f"its interval is open above: the votes put it above {_names(below)} but cannot say how far; its "
                f"lower end lets each of them have won {share} of their votes against it, {bound}")
    if not below:
        return (f"its interval is open below: the votes put it below {_names(above)} but cannot say how far; its "
                f"upper end lets it have won {share} of its votes against each of them, {bound}")
    return (f"its interval is open both ways: the votes put it below {_names(above)} and above {_names(below)} "
            "without saying how far, so its score, centred on all the models, has no bound; its rank says where "
            "it stands")


def _names(models) -> str:
    return ", ".join(sorted(models))


def _standing(model, stars: _Estimate, strength: _Estimate, votes, automatic, t: Thresholds,
              want: tuple[bool, bool], vote_notes: tuple[str, ...], bootstrap: int) -> ModelStanding:
    needs = {}
    if want[0] and (stars.count < t.ratings or stars.photos < t.rated_photos):
        needs.update(ratings=max(0, t.ratings - stars.count), rated_photos=max(0, t.rated_photos - stars.photos))
    if want[1] and (strength.count < t.votes or strength.photos < t.voted_photos):
        needs.update(votes=max(0, t.votes - strength.count), voted_photos=max(0, t.voted_photos - strength.photos))
    needs = {k: v for k, v in needs.items() if v}
    enough_stars = "ratings" not in needs and "rated_photos" not in needs and stars.point is not None
    enough_votes = "votes" not in needs and "voted_photos" not in needs and strength.point is not None
    notes = []
    if enough_stars and bootstrap and stars.flat:
        notes.append(f"every rating of it is {stars.point:g} stars, which resampling cannot widen: its interval "
                     f"allows other ratings on up to 3 of its {stars.photos} photos (the rule of three)")
    if enough_votes:
        notes += vote_notes
        if bootstrap and strength.flat:
            notes.append("every resample of the votes gives it the same score (e.g. only ties): no interval, so "
                         "not ranked by votes until they vary")
    return ModelStanding(
        model_key=model, ratings=stars.count, rated_photos=stars.photos,
        mean_stars=stars.point if enough_stars else None, mean_stars_ci=stars.ci if enough_stars else None,
        votes=strength.count, **_record(model, votes), bt_score=strength.point if enough_votes else None,
        bt_ci=strength.ci if enough_votes else None, rank=None, needs=needs, notes=tuple(notes),
        automatic=automatic)


def _record(model: str, votes: Sequence[VoteRow]) -> dict[str, int]:
    record = Counter()
    for v in votes:
        if model not in (v.model_a, v.model_b):
            continue
        side = "a" if v.model_a == model else "b"
        record["wins" if v.winner == side else "ties" if v.winner in ("tie", "both_bad") else "losses"] += 1
        record["both_bad"] += v.winner == "both_bad"
    return {k: record[k] for k in ("wins", "losses", "ties", "both_bad")}


def _ranked(standings: list[ModelStanding], graph: _VoteGraph,
            bootstrap: int) -> tuple[str | None, list[ModelStanding]]:
    """Chatbot Arena's rank: 1 + how many models have an interval wholly above this model's. By votes, only
    models of the same group count (scores of groups that never met are not on one scale), and, with intervals,
    a model that won every vote against this one on enough photos (:attr:`_OneWay.decided`) counts as above it
    too, as does any model above one above it (intervals left open by one-way votes cannot show that). With
    intervals asked for, a score without one (votes whose every resample is the same, e.g. only ties) is not
    ranked; fewer than two ranked by votes, the stars rank."""
    group = graph.group
    by_bt = [s for s in standings if s.bt_score is not None and (s.bt_ci or not bootstrap)]
    by_stars = [s for s in standings if s.mean_stars is not None and (s.mean_stars_ci or not bootstrap)]
    if len(by_bt) >= 2:  # (fewer with an interval, e.g. only ties: by stars, which can tell them apart)
        rank_by, bounds = "bt", {s.model_key: s.bt_ci or (s.bt_score, s.bt_score) for s in by_bt}
    elif len(by_stars) >= 2:
        rank_by, bounds = "stars", {s.model_key: s.mean_stars_ci or (s.mean_stars, s.mean_stars) for s in by_stars}
    else:
        return None, sorted(standings, key=lambda s: s.model_key)

    def rivals(m: str) -> list[str]:
        return [o for o in bounds if o != m and (rank_by == "stars" or o in group.get(m, ()))]

    above = {m: {o for o in rivals(m) if bounds[o][0] > hi_m} for m, (_, hi_m) in bounds.items()}
    if rank_by == "bt" and bootstrap:
        for record in graph.one_way:
            if record.decided and record.winner in bounds and record.loser in bounds:
                above[record.loser].add(record.winner)
        while True:  # through chains: above a model that is above this one
            wider = {m: over.union(*(above[o] for o in over)) for m, over in above.items()}
            if wider == above:
                break
            above = wider
    ranks = {m: 1 + len(over - {m}) for m, over in above.items()}
    ranked = [replace(s, rank=ranks.get(s.model_key)) for s in standings]

    def order(s: ModelStanding):
        score = s.bt_score if rank_by == "bt" else s.mean_stars
        return (s.rank is None, s.rank or 0, -(score if score is not None else -math.inf), s.model_key)

    return rank_by, sorted(ranked, key=order)


def win_rates(votes: Iterable[VoteRow], models: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """{row: {column: share}}: the row model's share of its votes against the column model, ties and
    both_bad counting half; None for pairs that were never compared."""
    wins = win_matrix(votes, models)
    games = wins + wins.T
    return {a: {b: (float(wins[i, j] / games[i, j]) if games[i, j] else None)
                for j, b in enumerate(models) if j != i} for i, a in enumerate(models)}


def games(votes: Iterable[VoteRow], models: Sequence[str]) -> dict[str, dict[str, int]]:
    """{row: {column: votes}}: how many votes compared the two models (what each win rate rests on)."""
    wins = win_matrix(votes, models)  # each vote puts one whole win between its two models
    played = np.rint(wins + wins.T).astype(int)
    return {a: {b: int(played[i, j]) for j, b in enumerate(models) if j != i} for i, a in enumerate(models)}


def agreement(ratings: Sequence[RatingRow], thresholds: Thresholds = Thresholds()) -> Agreement:
    """Krippendorff's alpha (ordinal) of the ratings given (one criterion), over captions with 2+ ratings."""
    units: dict[tuple, list[RatingRow]] = defaultdict(list)
    for r in ratings:
        units[r.unit].append(r)
    pairable = [rows for rows in units.values() if len(rows) >= 2]
    raters = len({r.rater for rows in pairable for r in rows})
    needs = {k: v for k, v in {"units": thresholds.agreement_units - len(pairable),
                               "raters": thresholds.agreement_raters - raters}.items() if v > 0}
    alpha = None if needs else krippendorff_alpha([[r.stars for r in rows] for rows in pairable], "ordinal")
    return Agreement(alpha, len(pairable), raters, needs)


def rater_stats(ratings: Sequence[RatingRow]) -> list[RaterStats]:
    """Per rater: ratings, mean stars, and the mean (absolute) difference from the other raters' mean on
    the same captions. Sorted by rater name."""
    by_unit: dict[tuple, list[RatingRow]] = defaultdict(list)
    for r in ratings:
        by_unit[r.unit].append(r)
    mine: dict[str, list[int]] = defaultdict(list)
    diffs: dict[str, list[float]] = defaultdict(list)
    for rows in by_unit.values():
        for i, r in enumerate(rows):
            mine[r.rater].append(r.stars)
            others = [o.stars for j, o in enumerate(rows) if j != i and o.rater != r.rater]
            if others:
                diffs[r.rater].append(r.stars - sum(others) / len(others))
    return [RaterStats(rater, len(stars), sum(stars) / len(stars), len(diffs[rater]),
                       _mean(diffs[rater]), _mean([abs(d) for d in diffs[rater]]))
            for rater, stars in sorted(mine.items())]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# -------------------------------------------------------------------------------- automatic measures

_SPACE = re.compile(r"\s+")


def automatic_measures(captions: Iterable[CaptionRow]) -> dict[str, dict]:
    """Per model: captions, photos, mean length (characters, words), distinct-1/2, repetition rate, and the
    share of its photos whose caption is the same text (whitespace and case aside) as its caption for
    another photo (the original first model wrote one sentence for nearly every photo)."""
    by_model: dict[str, list[CaptionRow]] = defaultdict(list)
    for c in captions:
        by_model[c.model].append(c)
    return {model: _measures(rows) for model, rows in sorted(by_model.items())}


def _measures(rows: list[CaptionRow]) -> dict:
    texts = [r.text for r in rows]
    photos_of: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        photos_of[_SPACE.sub(" ", r.text.strip()).casefold()].add(r.photo)
    photos = {r.photo for r in rows}
    repeated = {p for shared in photos_of.values() if len(shared) > 1 for p in shared}
    return {
        "captions": len(rows), "photos": len(photos),
        "mean_chars": sum(len(t) for t in texts) / len(texts), "mean_words": metrics.mean_length(texts),
        "distinct_1": metrics.distinct_n(texts, 1), "distinct_2": metrics.distinct_n(texts, 2),
        "repetition_rate": metrics.repetition_rate(texts), "same_caption_share": len(repeated) / len(photos),
    }


# ------------------------------------------------------------------------ rows from exported files

RATING_COLUMNS = ("photo_sha256", "model_key", "rater", "criterion", "stars")  # required in a ratings file
VOTE_COLUMNS = ("photo_sha256", "model_a", "model_b", "winner")  # required in a votes file


def ratings_from_records(records: Iterable[Mapping[str, str]], source: str = "ratings file") -> list[RatingRow]:
    """RatingRows from the rows of a one-row-per-rating export (dicts of text cells, already restored from
    formula neutralising). Unknown columns are ignored; a bad cell raises LeaderboardDataError naming
    the data row (1 = the first row under the header)."""
    rows = []
    for number, record in enumerate(records, start=1):
        if number == 1:
            _require_columns(record, RATING_COLUMNS, source)
        try:
            rows.append(RatingRow(
                photo=_cell(record, "photo_sha256") or _cell(record, "photo_name"), model=_cell(record, "model_key"),
                rater=_cell(record, "rater"), stars=_whole(_cell(record, "stars"), "stars"),
                criterion=_cell(record, "criterion") or DEFAULT_CRITERION,
                caption_id=_cell(record, "caption_id") or None))
        except LeaderboardDataError as err:
            raise LeaderboardDataError(f"{source}, data row {number}: {err}") from None
    return rows


def captions_from_records(records: Iterable[Mapping[str, str]]) -> list[CaptionRow]:
    """The distinct captions in a ratings export (one per caption_id, else per photo, model and text)."""
    seen, rows = set(), []
    for record in records:
        text, photo = record.get("caption"), _cell(record, "photo_sha256") or _cell(record, "photo_name")
        if text is None or not photo or not _cell(record, "model_key"):
            continue
        key = _cell(record, "caption_id") or (photo, _cell(record, "model_key"), text)
        if key not in seen:
            seen.add(key)
            rows.append(CaptionRow(photo, _cell(record, "model_key"), text))
    return rows


def votes_from_records(records: Iterable[Mapping[str, str]], source: str = "votes file") -> list[VoteRow]:
    """VoteRows from the rows of a votes export (vote_id, voted_utc, photo_sha256, model_a, model_b,
    caption_a_id, caption_b_id, winner, rater, study); unknown columns are ignored."""
    rows = []
    for number, record in enumerate(records, start=1):
        if number == 1:
            _require_columns(record, VOTE_COLUMNS, source)
        try:
            rows.append(VoteRow(photo=_cell(record, "photo_sha256"), model_a=_cell(record, "model_a"),
                                model_b=_cell(record, "model_b"), winner=_cell(record, "winner").lower(),
                                rater=_cell(record, "rater")))
        except LeaderboardDataError as err:
            raise LeaderboardDataError(f"{source}, data row {number}: {err}") from None
    return rows


def _require_columns(record: Mapping[str, str], required: Sequence[str], source: str) -> None:
    missing = [c for c in required if c not in record]
    if missing:
        found = ", ".join(k for k in record if k) or "none"
        raise LeaderboardDataError(f"{source} lacks the column(s) {', '.join(missing)} (found: {found})")


def _cell(record: Mapping[str, str], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _whole(text: str, name: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise LeaderboardDataError(f"{name} must be a whole number from 1 to 5, got {text!r}") from None
    if not number.is_integer():
        raise LeaderboardDataError(f"{name} must be a whole number from 1 to 5, got {text!r}")
    return int(number)
