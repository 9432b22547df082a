"""A simulated human-evaluation study with known model qualities (for the leaderboard tests and the sample
printout in the issue's closing note).

Stars: each caption has a latent quality c in 1..5 drawn with P(c) ∝ exp(q·(c − 3)), q = the model's
quality ± 0.5 for an easy or hard photo (so ratings of one photo are correlated: photos are the unit);
each rater reports c, c − 1 or c + 1 (probabilities 0.15, 0.7, 0.15), clipped to 1..5. The true mean stars
of a model is the exact expectation of that process. Votes: every pair of models once per photo, model i
beating j with probability σ(βi − βj) (Bradley–Terry with known centred log-strengths β).
"""

from __future__ import annotations

import math

import numpy as np

from igcap.leaderboard import CaptionRow, RatingRow, VoteRow

MODELS = ("model-a", "model-b", "model-c", "model-d")
QUALITY = (-0.6, -0.2, 0.2, 0.6)  # star quality per model (higher = more stars)
STRENGTH = (-0.75, -0.25, 0.25, 0.75)  # true Bradley–Terry log-strengths, centred
NOISE = ((-1, 0.15), (0, 0.7), (1, 0.15))
STARS = np.arange(1, 6)


def _latent(q: float) -> np.ndarray:
    weights = np.exp(q * (STARS - 3))
    return weights / weights.sum()


def _reported_mean(c: int) -> float:
    return sum(p * min(5, max(1, c + d)) for d, p in NOISE)


def true_mean_stars(model: int) -> float:
    """The exact expected star rating of a model over photos (half easy, half hard) and raters."""
    means = np.array([_reported_mean(c) for c in STARS])
    return float(np.mean([_latent(QUALITY[model] + e) @ means for e in (0.5, -0.5)]))


def simulate(seed: int, photos: int = 30, raters: int = 3, ratings_per_caption: int = 3,
             tie_share: float = 0.0, both_bad_share: float = 0.0, captions: bool = True,
             rater_bias: tuple[int, ...] | None = None):
    """(ratings, votes, captions) of one simulated study (random numbers drawn in bulk, for speed).
    ``rater_bias`` adds a fixed number of stars per rater (before clipping); the truth assumes none."""
    rng = np.random.default_rng(seed)
    k, names = len(MODELS), [f"rater{r + 1}" for r in range(raters)]
    ease = np.where(rng.random(photos) < 0.5, 0.5, -0.5)
    latent = np.empty((photos, k), int)  # each caption's quality, from its model on an easy/hard photo
    for m in range(k):
        for e in (0.5, -0.5):
            rows = np.flatnonzero(ease == e)
            latent[rows, m] = rng.choice(STARS, size=rows.size, p=_latent(QUALITY[m] + e))
    who = np.argsort(rng.random((photos, k, raters)), axis=2)[:, :, :ratings_per_caption]
    shift = rng.choice([d for d, _ in NOISE], size=who.shape, p=[w for _, w in NOISE])
    bias = np.asarray(rater_bias or (0,) * raters)[who]
    stars = np.clip(latent[:, :, None] + shift + bias, 1, 5)
    ratings = [RatingRow(f"photo{p:03d}", MODELS[m], names[who[p, m, r]], int(stars[p, m, r]), caption_id=p * k + m)
               for p in range(photos) for m in range(k) for r in range(ratings_per_caption)]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    flip, roll, win = rng.random((3, photos, len(pairs)))
    voter = rng.integers(raters, size=(photos, len(pairs)))
    votes = []
    for p in range(photos):
        for n, (i, j) in enumerate(pairs):
            a, b = (i, j) if flip[p, n] < 0.5 else (j, i)  # random left/right as on the Arena page
            winner = ("tie" if roll[p, n] < tie_share else "both_bad" if roll[p, n] < tie_share + both_bad_share
                      else "a" if win[p, n] < 1 / (1 + math.exp(STRENGTH[b] - STRENGTH[a])) else "b")
            votes.append(VoteRow(f"photo{p:03d}", MODELS[a], MODELS[b], winner, names[voter[p, n]]))
    texts = [CaptionRow(f"photo{p:03d}", MODELS[m], _caption_text(rng, m, p))
             for p in range(photos) for m in range(k)] if captions else []
    return ratings, votes, texts


_WORDS = "sunset beach vibes golden hour coffee friends city lights weekend mood love this view".split()


def _caption_text(rng, model: int, photo: int) -> str:
    if model == 0:  # the weakest model says the same thing for most photos, like the original first model
        return "a view of the city at night" if photo % 4 else f"a bowl of fruit on table {photo}"
    return " ".join(rng.choice(_WORDS, size=4 + model)) + " ✨"
