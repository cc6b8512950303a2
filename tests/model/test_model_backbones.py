"""Offline backbone assets split over several packages: joined once into the cache, checked by SHA-256."""

from __future__ import annotations

import hashlib

import pytest

from desta.errors import BackboneUnavailableError
from desta.model import backbones


def fake_asset(tmp_path, monkeypatch, parts: list[bytes], sha: str) -> list:
    files = []
    for i, data in enumerate(parts):
        f = tmp_path / "site" / f"pkg{i}" / "data" / f"part{i}.bin"
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        files.append(f)
    asset = backbones.OfflineAsset("llm", ("pkg0", "pkg1"), "pip install fake-parts", ("x", "y"), sha256=sha)
    monkeypatch.setitem(backbones.OFFLINE, "offline:fake", asset)
    monkeypatch.setenv("DESTA_CACHE", str(tmp_path / "cache"))
    return files


def test_parts_are_joined_once_and_checked(tmp_path, monkeypatch):
    parts = [b"GGUF" + b"a" * 100_000, b"b" * 77]
    files = fake_asset(tmp_path, monkeypatch, parts, hashlib.sha256(b"".join(parts)).hexdigest())
    joined = backbones._joined("offline:fake", files, ".gguf")
    assert joined.read_bytes() == b"".join(parts) and joined.parent == tmp_path / "cache" / "backbones"
    assert not list(joined.parent.glob("*.tmp*"))
    assert backbones._joined("offline:fake", files, ".gguf") == joined  # kept: not joined again


def test_a_wrong_part_is_refused_naming_the_parts_and_the_install(tmp_path, monkeypatch):
    files = fake_asset(tmp_path, monkeypatch, [b"one", b"two"], hashlib.sha256(b"onetwo!").hexdigest())
    with pytest.raises(
        BackboneUnavailableError,
        match=r"offline:fake: the joined parts .*part0.bin.* reinstall with `pip install fake-parts`",
    ):
        backbones._joined("offline:fake", files, ".gguf")
    assert not list((tmp_path / "cache" / "backbones").iterdir())  # nothing half-written is left

