"""Which Bradley–Terry scores the votes can set, and which only the prior does.

The maximum-likelihood Bradley–Terry fit exists only when (Zermelo 1929; Ford 1957):

- the models form one **group**: every two are linked by a chain of models that met in a vote. Two groups
  that never met have no common scale: their scores are placed against each other by the prior alone;
- within a group, for every split of its models into two sets, each set **won at least once** against the
  other (ties count as a win for both sides). A set that never lost to the rest would have its scores
  pushed up without bound; the ridge holds them finite, so their distance from the rest is the prior's.

Pure functions over the (K, K) win matrix (``[i, j]`` = wins of i over j, ties half to each side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def groups(wins: np.ndarray) -> list[list[int]]:
    """The models (indices) linked by votes, each group sorted, groups in order of their first model;
    a model without votes is a group of its own."""
    met = (np.asarray(wins) + np.asarray(wins).T) > 0
    seen, out = set(), []
    for start in range(len(met)):
        if start in seen:
            continue
        group, todo = {start}, [start]
        while todo:
            for j in np.flatnonzero(met[todo.pop()]):
                if int(j) not in group:
                    group.add(int(j))
                    todo.append(int(j))
        seen |= group
        out.append(sorted(group))
    return out


@dataclass(frozen=True)
class OneWay:
    """Models (indices) that won every vote against ``below`` and lost every vote against ``above``: the
    distance of their scores from those models is set by the prior, not by the votes."""

    members: tuple[int, ...]
    above: tuple[int, ...]  # models that beat a member and never lost to one
    below: tuple[int, ...]  # models a member beat and that never beat one


def one_way(wins: np.ndarray) -> list[OneWay]:
    """Within each group, the sets of models that can be split from the rest with every vote between them
    going one way (the strongly connected components of "won at least once against" that are not the whole
    group). Empty when every group's fit is set by its votes."""
    beat = np.asarray(wins) > 0
    together = _together(beat)
    out, done = [], set()
    for group in groups(wins):
        for i in group:
            if i in done:
                continue
            members = tuple(j for j in group if together[i, j])
            done |= set(members)
            if len(members) == len(group):
                continue
            rest = [j for j in group if j not in members]
            above = tuple(j for j in rest if beat[j, list(members)].any())
            below = tuple(j for j in rest if beat[list(members), j].any())
            out.append(OneWay(members, above, below))
    return out


def one_way_pairs(wins: np.ndarray) -> list[tuple[int, int]]:
    """(i, j) for models that met where i won every vote and no chain of wins leads back from j to i: the pairs
    between the sets of :func:`one_way`, whose distance the votes bound on one side only."""
    beat = np.asarray(wins) > 0
    together = _together(beat)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(beat & ~together))]


def _together(beat: np.ndarray) -> np.ndarray:
    """[i, j]: a chain of wins leads from i to j and one from j to i (the same strongly connected set)."""
    reach = beat | np.eye(len(beat), dtype=bool)
    while True:  # transitive closure: reach[i, j] = a chain of wins leads from i to j
        wider = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
        if (wider == reach).all():
            break
        reach = wider
    return reach & reach.T
