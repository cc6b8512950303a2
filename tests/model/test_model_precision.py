"""Backbone precision: auto / fast / fp32 / bf16 resolve per device, bad names fail early."""

from __future__ import annotations

import pytest
import torch

from desta.errors import DeSTAError
from desta.model import precision
from desta.model.precision import resolve_dtype
from desta.train.config import load_config


def test_resolve_dtype_per_device(monkeypatch):
    assert resolve_dtype("fp32", "cuda") is torch.float32
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    assert resolve_dtype("fast", "cuda") is torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_dtype("fast", "cpu") is torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("fast", "cpu") is torch.float32
    with pytest.raises(DeSTAError, match="precision must be one of"):
        resolve_dtype("half", "cpu")


def test_native_bf16_probe_answers_a_bool():
    assert isinstance(precision.cpu_has_native_bf16(), bool)


def test_train_config_rejects_unknown_precision():
    assert load_config("recipes/desta-tiny.yaml").run.precision == "fast"
    with pytest.raises(DeSTAError, match="run.precision must be one of"):
        load_config(overrides=["run.precision=half"])
