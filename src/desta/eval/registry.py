"""Task names -> constructors. ``family:argument`` picks a sub-task (``voicebench:sd-qa``,
``dynamic-superb:SuperbIC_SLURP-Intent``, ``sakura:Animal``, ``speech-ifeval:creative_writing``)."""

from __future__ import annotations

from collections.abc import Callable

from desta.eval.base import EvalError, Task


def _mmau(arg: str | None) -> Task:
    from desta.eval.tasks.mmau import MMAU

    return MMAU(arg or "test-mini")


def _mmau_test(arg: str | None) -> Task:
    from desta.eval.tasks.mmau import MMAU

    return MMAU("test")


def _mmau_pro(arg: str | None) -> Task:
    from desta.eval.tasks.mmau_pro import MMAUPro

    return MMAUPro()


def _mmar(arg: str | None) -> Task:
    from desta.eval.tasks.mmar import MMAR

    return MMAR()


def _sakura(arg: str | None) -> Task:
    from desta.eval.tasks.sakura import HOPS, SAKURA, TRACKS

    if not arg:
        return SAKURA()
    parts = arg.split(",")
    tracks = [p for p in parts if p in TRACKS] or list(TRACKS)
    hops = [p for p in parts if p in HOPS] or list(HOPS)
    unknown = [p for p in parts if p not in TRACKS and p not in HOPS]
    if unknown:
        raise EvalError(f"unknown SAKURA selector {unknown}; use tracks {TRACKS} and/or hops {HOPS}")
    return SAKURA(tracks, hops)


def _speech_ifeval(arg: str | None) -> Task:
    from desta.eval.tasks.speech_ifeval import SpeechIFEval

    return SpeechIFEval(arg.split(",")) if arg else SpeechIFEval()


def _voicebench(arg: str | None) -> Task:
    from desta.eval.tasks.voicebench import VoiceBench

    return VoiceBench(arg.split(",")) if arg else VoiceBench()


def _dynamic_superb(arg: str | None) -> Task:
    from desta.eval.tasks.dynamic_superb import DynamicSuperb

    if not arg:
        raise EvalError(
            "name the Dynamic-SUPERB task: dynamic-superb:<TaskName> (e.g. SuperbIC_SLURP-Intent)"
        )
    return DynamicSuperb(arg)


def _air_foundation(arg: str | None) -> Task:
    from desta.eval.tasks.air_bench_foundation import AIRBenchFoundation

    return AIRBenchFoundation()


def _air_chat(arg: str | None) -> Task:
    from desta.eval.tasks.air_bench import AIRBenchChat

    return AIRBenchChat(swap=arg != "noswap")


TASKS: dict[str, Callable[[str | None], Task]] = {
    "mmau": _mmau,
    "mmau-test": _mmau_test,
    "mmau-pro": _mmau_pro,
    "mmar": _mmar,
    "sakura": _sakura,
    "speech-ifeval": _speech_ifeval,
    "voicebench": _voicebench,
    "dynamic-superb": _dynamic_superb,
    "air-bench-foundation": _air_foundation,
    "air-bench-chat": _air_chat,
}


def get_task(name: str) -> Task:
    """A task instance from its name, e.g. ``"mmau"``, ``"voicebench:sd-qa"``."""
    family, _, arg = name.partition(":")
    if family not in TASKS:
        raise EvalError(f"unknown task {name!r}; available: {', '.join(sorted(TASKS))}")
    try:
        return TASKS[family](arg or None)
    except ValueError as err:
        raise EvalError(str(err)) from err
