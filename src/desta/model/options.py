"""Generation options and results (frozen values, passed per call; :mod:`desta.infer` re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from desta.errors import DeSTAError


@dataclass(frozen=True)
class GenerationOptions:
    """How to decode: the one options type of every way to run a model (the local model, an
    OpenAI-compatible endpoint, vLLM, the data backends, evaluation). Greedy by default (the official
    ``generate`` samples by default; the paper's evaluations and its README use greedy).

    Callers with other defaults keep them as instances of this class (``desta ask``:
    ``desta.infer.cli.ASK_OPTIONS``; data generation: ``desta.data.generate.SamplingParams()``, where
    temperature 0 means greedy); evaluation uses the defaults.
    """

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0  # used only when do_sample
    top_p: float = 1.0  # nucleus sampling mass; 1.0 disables it
    top_k: int = 0  # 0 disables top-k
    seed: int | None = None  # seeds torch's generator for this call when sampling
    stop: tuple[str, ...] = ()  # extra stop strings (the LLM's end-of-turn ids always stop)
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise DeSTAError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and self.temperature <= 0:
            raise DeSTAError("temperature must be > 0 when sampling (use do_sample=False for greedy)")
        if not 0 < self.top_p <= 1:
            raise DeSTAError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise DeSTAError(f"top_k must be >= 0, got {self.top_k}")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def api_temperature(self) -> float:
        """The temperature an OpenAI-style API takes for these options: 0 when greedy (a zero given as
        the temperature is kept as given)."""
        return self.temperature if self.do_sample or self.temperature == 0 else 0.0


@dataclass(frozen=True)
class GenerationResult:
    text: str
    token_ids: list[int] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)  # per audio (windows joined by a space)
    finish_reason: str = "stop"  # "stop" or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
