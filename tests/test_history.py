"""The commit-facts cache behind credit: reused when present, rebuilt when damaged."""

from __future__ import annotations

import json

from testing.world import World


def test_credit_is_the_same_with_a_cold_warm_or_damaged_cache(world: World) -> None:
    m = world.maintainer()
    for v in ("0.6", "0.55", "0.7"):
        m.commit_score(v)
    m.coop("evaluate", "HEAD~3..HEAD")
    cold = json.loads(m.coop("credit", "--json").stdout)
    (cache,) = (m.repo / ".git/coop/history").iterdir()
    facts = json.loads(cache.read_text())
    assert len(facts) == 4  # the three new commits and the baseline
    assert json.loads(m.coop("credit", "--json").stdout) == cold
    cache.write_text("{not json")
    assert json.loads(m.coop("credit", "--json").stdout) == cold
    assert len(json.loads(cache.read_text())) == 4
