"""The DeSTA2.5 Q-Former connector, written out so that its parameter names equal the official ones.

Legend: B batch (30 s windows), F encoder frames (1500 for 30 s), D encoder width (1280 for
large-v3), L taps (4), Q queries (64), H LLM width (4096 for Llama-3.1-8B).

    taps: L x (B, F, D) --[shared BERT-style encoder, per-tap queries (1, Q, D)]--> L x (B, Q, D)
          --[softmax over L, separately per query: layer_weights (Q, L)]--> (B, Q, D)
          --[proj: LayerNorm(D) -> Linear(D, H)]--> (B, Q, H)

Each BERT layer: bidirectional self-attention over the queries, cross-attention to all encoder frames
(no mask: the official model attends to padding too), then a GELU MLP; post-LayerNorm residuals with eps
1e-12. This equals HF ``BertEncoder(BertConfig(is_decoder=True, add_cross_attention=True))`` as the
official model calls it, but does not depend on transformers' BERT internals, which keep changing.
Parameter names match ``perception.connector.*`` of the official ``model.safetensors`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _Projections(nn.Module):
    """query/key/value projections, named like BERT's ``attention.self``."""

    def __init__(self, dim: int, kv_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(kv_dim, dim)
        self.value = nn.Linear(kv_dim, dim)


class _AddNorm(nn.Module):
    """dense + dropout + residual + LayerNorm, named like BERT's ``*.output``."""

    def __init__(self, in_dim: int, dim: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_dim, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=eps)  # noqa: N815 (official name)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, dim: int, kv_dim: int, heads: int, dropout: float, eps: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout_p = dropout
        self.self = _Projections(dim, kv_dim)
        self.output = _AddNorm(dim, dim, dropout, eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x: (B, Q, D) queries; context: (B, S, Dk) keys/values. Returns (B, Q, D)."""
        b, q, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, h, d // h).transpose(1, 2)

        qh, kh, vh = split(self.self.query(x)), split(self.self.key(context)), split(self.self.value(context))
        p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(qh, kh, vh, dropout_p=p, scale=1.0 / math.sqrt(d // h))
        return self.output(out.transpose(1, 2).reshape(b, q, d), x)


class _Intermediate(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact erf GELU, BERT's "gelu"


class QFormerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, intermediate: int, dropout: float, eps: float = 1e-12) -> None:
        super().__init__()
        self.attention = _Attention(dim, dim, heads, dropout, eps)
        self.crossattention = _Attention(dim, dim, heads, dropout, eps)
        self.intermediate = _Intermediate(dim, intermediate)
        self.output = _AddNorm(intermediate, dim, dropout, eps)

    def forward(self, queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        x = self.attention(queries, queries)
        x = self.crossattention(x, frames)
        return self.output(self.intermediate(x), x)


class QFormerEncoder(nn.Module):
    """A stack of :class:`QFormerLayer` stored as ``.layer.{i}`` like HF ``BertEncoder``."""

    def __init__(self, num_layers: int, dim: int, heads: int, intermediate: int, dropout: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(QFormerLayer(dim, heads, intermediate, dropout) for _ in range(num_layers))

    def forward(self, queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            queries = layer(queries, frames)
        return queries


class QformerConnector(nn.Module):
    """Per-tap learned queries + one shared Q-Former + per-query softmax over taps + projection.

    Args:
        encoder_dim: Whisper width D. heads: Whisper encoder heads (official: Q-Former heads = Whisper's).
        llm_dim: LLM width H. n_taps: L. n_queries: Q. num_layers: Q-Former depth (6 in the release).

    Initialisation is PyTorch's default module init (the official model never applies BERT's
    N(0, 0.02)); queries ~ N(0, 1); layer weights zero (taps start equally weighted).
    """

    def __init__(
        self,
        encoder_dim: int,
        heads: int,
        llm_dim: int,
        n_taps: int = 4,
        n_queries: int = 64,
        num_layers: int = 6,
        intermediate: int = 3072,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_taps, self.n_queries = n_taps, n_queries
        self.layer_prompts = nn.ParameterList(nn.Parameter(torch.randn(1, n_queries, encoder_dim)) for _ in range(n_taps))
        self.layer_weights = nn.Parameter(torch.zeros(n_queries, n_taps))
        self.qformer = QFormerEncoder(num_layers, encoder_dim, heads, intermediate, dropout)
        self.proj = nn.Sequential(nn.LayerNorm(encoder_dim), nn.Linear(encoder_dim, llm_dim))

    def forward_tap(self, tap: int, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (B, F, D) output of one tapped encoder layer -> (B, Q, D)."""
        queries = self.layer_prompts[tap].expand(hidden.shape[0], -1, -1)
        return self.qformer(queries.to(hidden.dtype), hidden)

    def mix(self, per_tap: Sequence[torch.Tensor]) -> torch.Tensor:
        """L x (B, Q, D) -> (B, Q, H): per-query softmax over taps, then LayerNorm + Linear."""
        stacked = torch.stack(list(per_tap), dim=2)  # (B, Q, L, D)
        weights = torch.softmax(self.layer_weights, dim=-1).to(stacked.dtype)  # (Q, L)
        mixed = (stacked * weights[None, :, :, None]).sum(dim=2)
        return self.proj(mixed)

    def forward(self, taps: Sequence[torch.Tensor]) -> torch.Tensor:
        """taps: L x (B, F, D) -> (B, Q, H)."""
        if len(taps) != self.n_taps:
            raise ValueError(f"expected {self.n_taps} tapped layers, got {len(taps)}")
        return self.mix([self.forward_tap(i, h) for i, h in enumerate(taps)])
