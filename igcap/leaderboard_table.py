"""The leaderboard as plain text for a terminal: what ``python -m igcap leaderboard`` prints.

Names (models, raters) come from people's data, so control characters (ANSI escapes, line breaks) are
shown as ``?`` and long names are cut, never interpreted by the terminal.
"""

from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING

from igcap.leaderboard import one_way_photos

if TYPE_CHECKING:
    from igcap.leaderboard import Leaderboard, ModelStanding

NAME_WIDTH = 24


def plain(text: str, width: int = NAME_WIDTH) -> str:
    """``text`` with control characters as ``?``, cut to ``width`` characters with an ellipsis."""
    clean = "".join("?" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in str(text))
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def format_leaderboard(board: Leaderboard) -> str:
    sections = [_header(board), _models(board), _needs(board), _agreement(board), _win_rates(board),
                _raters(board), _automatic(board)]
    return "\n\n".join(s for s in sections if s)


def _header(board: Leaderboard) -> str:
    level = f"{board.confidence:.0%}"
    intervals = (f"{level} intervals from {board.bootstrap} bootstrap resamples of photos (seed {board.seed})"
                 if board.bootstrap else "no intervals (--bootstrap 0)")
    ranked = {"bt": "ranked by Bradley–Terry score", "stars": "ranked by mean stars",
              None: "not ranked: not enough data"}[board.rank_by]
    if board.rank_by is not None:
        ranked += ("; shared rank = overlapping intervals" if board.bootstrap else
                   ", by the point estimates alone, without uncertainty (a shared rank only for equal estimates)")
    if board.rank_by == "bt" and board.bootstrap and any(_open(m.bt_ci) for m in board.models):
        ranked += (f", except that a model that won every vote against another, on at least "
                   f"{one_way_photos(board.confidence)} photos, ranks above it (≥ and ≤ mark the intervals such "
                   "votes leave open)")
    return f"Leaderboard, criterion {plain(board.criterion)}: {intervals}; {ranked}"


def _models(board: Leaderboard) -> str:
    rows = [("rank", "model", "ratings", f"mean stars [{board.confidence:.0%} CI]", "votes", "W-L-T",
             f"BT score [{board.confidence:.0%} CI]", "arena")]
    for m in board.models:
        stars = (_with_ci(m.mean_stars, m.mean_stars_ci, "{:.2f}") if m.mean_stars is not None
                 else _short(m, "ratings", "rated_photos"))
        strength = (_with_ci(m.bt_score, m.bt_ci, "{:+.2f}") if m.bt_score is not None
                    else _short(m, "votes", "voted_photos"))
        rows.append(("-" if m.rank is None else str(m.rank), plain(m.model_key), str(m.ratings), stars,
                     str(m.votes), f"{m.wins}-{m.losses}-{m.ties}", strength, _arena(m)))
    return _grid(rows) if board.models else "No ratings or votes."


def _short(m: ModelStanding, *needs: str) -> str:
    return "not enough data" if any(k in m.needs for k in needs) else "-"


def _with_ci(point: float, ci, fmt: str) -> str:
    """'+0.40 [+0.13, +0.69]'; an interval left open by one-way votes shows its bound alone ('≥ +1.28'), since
    the point there is the prior's, not the votes'."""
    if _open(ci):
        return _bound(ci, fmt)
    text = fmt.format(point)
    return text if ci is None else f"{text} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def _open(ci) -> bool:
    return ci is not None and not (math.isfinite(ci[0]) and math.isfinite(ci[1]))


def _bound(ci, fmt: str) -> str:
    if math.isfinite(ci[0]):
        return "≥ " + fmt.format(ci[0])
    if math.isfinite(ci[1]):
        return "≤ " + fmt.format(ci[1])
    return "no bound"


def _arena(m: ModelStanding) -> str:
    if m.arena_score is None:
        return ""
    if _open(m.arena_ci):
        return _bound(m.arena_ci, "{:.0f}")
    return f"{m.arena_score:.0f}"


def _needs(board: Leaderboard) -> str:
    lines = []
    for m in board.models:
        parts = []
        if "ratings" in m.needs or "rated_photos" in m.needs:
            parts.append(_more(m.needs.get("ratings", 0), "rating") +
                         _on_photos(m.needs.get("rated_photos", 0)) + " for its mean stars")
        if "votes" in m.needs or "voted_photos" in m.needs:
            parts.append(_more(m.needs.get("votes", 0), "vote") +
                         _on_photos(m.needs.get("voted_photos", 0)) + " for its Bradley–Terry score")
        if parts:
            lines.append(f"  {plain(m.model_key)} needs " + "; ".join(parts))
        lines += [f"  {plain(m.model_key)}: {note}" for note in m.notes]
    return "Not enough data yet / notes:\n" + "\n".join(lines) if lines else ""


def _more(count: int, noun: str) -> str:
    return f"{count} more {noun}{'s' * (count != 1)}" if count else f"{noun}s"


def _on_photos(count: int) -> str:
    return f" on {count} more photo{'s' * (count != 1)}" if count else ""


def _agreement(board: Leaderboard) -> str:
    a = board.agreement
    head = "Agreement (Krippendorff's alpha, ordinal)"
    if a.krippendorff_alpha_ordinal is not None:
        return (f"{head}: {a.krippendorff_alpha_ordinal:.3f} over {a.units} captions rated by 2+ people, "
                f"{a.raters} raters")
    if a.needs:
        need = " and ".join(f"{n} more {'captions rated by 2+ people' if k == 'units' else 'raters'}"
                            for k, n in a.needs.items())
        return f"{head}: not enough data yet ({a.units} captions, {a.raters} raters; needs {need})"
    if not a.units:
        return f"{head}: no caption has been rated by two or more people"
    return f"{head}: undefined (every rating of the captions rated by 2+ people is the same star value)"


def _win_rates(board: Leaderboard) -> str:
    keys = [m.model_key for m in board.models if m.votes]
    if len(keys) < 2:
        return ""
    rows = [("row beats column", *[plain(k, 12) for k in keys])]
    for a in keys:
        rows.append((plain(a), *["-" if a == b else _share(board.win_rate[a].get(b), board.games[a].get(b))
                                 for b in keys]))
    return "Win rate (ties and both-bad count half; in brackets, the votes it rests on):\n" + _grid(rows)


def _share(value, votes) -> str:
    return "n/a" if value is None else f"{value:.2f} ({votes})"


def _raters(board: Leaderboard) -> str:
    if not board.raters:
        return ""
    rows = [("rater", "ratings", "mean stars", "vs others", "mean |diff|", "on captions")]
    for r in board.raters:
        rows.append((plain(r.rater or "(no name)"), str(r.ratings), f"{r.mean_stars:.2f}",
                     "-" if r.mean_diff is None else f"{r.mean_diff:+.2f}",
                     "-" if r.mean_abs_diff is None else f"{r.mean_abs_diff:.2f}", str(r.compared)))
    return "Raters (vs others: stars minus the other raters' mean on the same caption):\n" + _grid(rows)


def _automatic(board: Leaderboard) -> str:
    with_text = [m for m in board.models if m.automatic]
    if not with_text:
        return ""
    rows = [("model", "captions", "chars", "words", "distinct-1", "distinct-2", "repetitive", "same caption")]
    for m in with_text:
        a = m.automatic
        rows.append((plain(m.model_key), str(a["captions"]), f"{a['mean_chars']:.0f}", f"{a['mean_words']:.1f}",
                     f"{a['distinct_1']:.2f}", f"{a['distinct_2']:.2f}", f"{a['repetition_rate']:.0%}",
                     f"{a['same_caption_share']:.0%}"))
    return "Automatic measures of the captions:\n" + _grid(rows)


def _grid(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
