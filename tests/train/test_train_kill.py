"""A training subprocess SIGKILLed at random moments (with dropout on, a checkpoint every step, one
DataLoader worker), then resumed, ends with weights bit-identical to an uninterrupted run, and its
workers never outlive it. More kills: ``python bench/train_kill_resume.py``."""

from __future__ import annotations

import os
import sys

import pytest
from kill_harness import kill_and_resume

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_killed_training_resumes_bit_identically_and_leaves_no_worker(tmp_path):
    seed = int(os.environ.get("DESTA_KILL_SEED", "1234"))
    report = kill_and_resume(tmp_path, kills=2, seed=seed)
    assert report.kills == 2, report
    assert report.orphaned_workers == [], report
    assert report.identical, (
        f"seed {seed}: {len(report.differing)} tensors differ (e.g. {report.differing[:3]}) "
        f"after kills at steps {report.kill_steps}"
    )
