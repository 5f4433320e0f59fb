"""A short kill campaign on this pass's engine (benchmarks/kill_campaign.py): a real trainer dropping numbered
anchors and re-saving `best` is SIGKILLed at random times (seeded) during and after drops; a fresh process then
finds no finished anchor lost or corrupted, and no leftover after the next drop. Slow: about 15 s per kill."""

from __future__ import annotations

import pytest

from benchmarks import kill_campaign


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_short_kill_campaign_loses_corrupts_and_leaves_nothing(engine, tmp_path):
    report = kill_campaign.campaign(engine, kills=3, seed=1, root=tmp_path, horizon=4.0)
    notes = [n for t in report["trials"] for n in t["notes"]] + [e for t in report["trials"] for e in t["leftovers"]]
    assert report["kills"] == 3
    assert (report["lost"], report["corrupt"], report["leftovers"]) == (0, 0, 0), notes
