"""A small run of bench/audio_fuzz.py: every generated hostile input ends in a clean error or audio.

``DESTA_AUDIO_FUZZ_N`` sets the inputs per seed (default 60, about 25 s on 2 cores; CI machines
with time to spare can run thousands, and ``python bench/audio_fuzz.py`` runs the 10,000).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "audio_fuzz", Path(__file__).parents[2] / "bench" / "audio_fuzz.py"
)
fuzz = sys.modules.setdefault("audio_fuzz", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fuzz)  # registered first: its dataclasses look their module up


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_small(seed):
    # 1 h of silence (above the fuzz's 600 s cap, cheap to encode); timeouts generous for a busy CI box
    n = int(os.environ.get("DESTA_AUDIO_FUZZ_N", "60"))
    figures = fuzz.run(n, seed=seed, timeout=120.0, long_seconds=3600.0)
    counts = figures["counts"]
    assert sum(counts.values()) == n
    assert {k: counts[k] for k in fuzz.FAILURES} == dict.fromkeys(fuzz.FAILURES, 0), figures["failures"]
    assert counts["clean_error"] > 0 and counts["success"] > 0
    assert figures["max_rss_growth_mb"] < 200  # no input may cost more than a few clips' worth
