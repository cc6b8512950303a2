"""The Q-Former connector: shapes, parity with HF BertEncoder, per-query layer mixing, official names."""

from __future__ import annotations

import pytest
import torch

from desta.model.connector import QformerConnector
from helpers import official_connector_shapes


def _connector(
    dim=32, heads=4, llm_dim=24, n_taps=3, n_queries=5, num_layers=2, intermediate=48, dropout=0.0, seed=0
):
    torch.manual_seed(seed)
    return QformerConnector(dim, heads, llm_dim, n_taps, n_queries, num_layers, intermediate, dropout).eval()


def _hf_bert(dim, heads, num_layers, intermediate):
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertEncoder

    cfg = BertConfig(
        is_decoder=True,
        add_cross_attention=True,
        hidden_size=dim,
        num_attention_heads=heads,
        num_hidden_layers=num_layers,
        intermediate_size=intermediate,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    cfg._attn_implementation = "eager"  # as the official model sets it
    return BertEncoder(cfg).eval()


def test_output_shape():
    conn = _connector()
    taps = [torch.randn(2, 17, 32) for _ in range(3)]
    out = conn(taps)
    assert out.shape == (2, 5, 24)
    assert torch.isfinite(out).all()
    assert conn.forward_tap(1, taps[1]).shape == (2, 5, 32)


def test_wrong_tap_count_raises():
    with pytest.raises(ValueError, match="expected 3 tapped layers, got 2"):
        _connector()([torch.randn(1, 4, 32)] * 2)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="not divisible"):
        QformerConnector(30, 4, 8, n_taps=1, n_queries=2, num_layers=1, intermediate=8)


def test_qformer_equals_hf_bert_encoder():
    conn = _connector(dim=32, heads=4, num_layers=3, intermediate=48)
    bert = _hf_bert(32, 4, 3, 48)
    missing, unexpected = bert.load_state_dict(conn.qformer.state_dict(), strict=True)
    assert not missing and not unexpected
    torch.manual_seed(1)
    queries, frames = torch.randn(2, 5, 32), torch.randn(2, 40, 32)
    ours = conn.qformer(queries, frames)
    ref = bert(queries, encoder_hidden_states=frames, use_cache=False).last_hidden_state
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_full_connector_equals_official_recipe_with_hf_bert():
    """Official forward: per tap, BertEncoder(queries_k, frames_k); softmax(layer_weights) per query; proj."""
    conn = _connector()
    with torch.no_grad():
        conn.layer_weights.copy_(torch.randn(5, 3))
    bert = _hf_bert(32, 4, 2, 48)
    bert.load_state_dict(conn.qformer.state_dict(), strict=True)
    taps = [torch.randn(2, 11, 32) for _ in range(3)]
    outs = [
        bert(conn.layer_prompts[k].expand(2, -1, -1), encoder_hidden_states=t, use_cache=False)[0]
        for k, t in enumerate(taps)
    ]
    w = torch.softmax(conn.layer_weights, dim=-1)  # (Q, L)
    mixed = sum(outs[k] * w[:, k][None, :, None] for k in range(3))
    ref = conn.proj(mixed)
    torch.testing.assert_close(conn(taps), ref, atol=1e-5, rtol=0)


def test_query_self_attention_is_bidirectional():
    """No causal mask among queries: the first query's output depends on the last query."""
    conn = _connector(n_taps=1)
    frames = torch.randn(1, 6, 32)
    q = torch.randn(1, 5, 32)
    q2 = q.clone()
    q2[0, -1] += 1.0
    a, b = conn.qformer(q, frames), conn.qformer(q2, frames)
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4


def test_cross_attention_sees_frames():
    conn = _connector(n_taps=1)
    q = torch.randn(1, 5, 32)
    a = conn.qformer(q, torch.randn(1, 6, 32))
    b = conn.qformer(q, torch.randn(1, 6, 32))
    assert (a - b).abs().max() > 1e-4


def test_layer_weights_per_query_softmax():
    conn = _connector(n_taps=4, n_queries=6)
    assert conn.layer_weights.shape == (6, 4)
    assert torch.count_nonzero(conn.layer_weights) == 0  # zero init
    per_tap = [torch.full((1, 6, 32), float(k)) for k in range(4)]
    # zero init -> equal mixing: mean of 0, 1, 2, 3 = 1.5 before the projection
    expected = conn.proj(torch.full((1, 6, 32), 1.5))
    torch.testing.assert_close(conn.mix(per_tap), expected, atol=1e-5, rtol=0)
    # a large weight on tap 3 for query 0 only: query 0 takes tap 3, the others still mix equally
    with torch.no_grad():
        conn.layer_weights[0, 3] = 50.0
    out = conn.mix(per_tap)
    torch.testing.assert_close(out[0, 0], conn.proj(torch.full((32,), 3.0)), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[0, 1:], expected[0, 1:], atol=1e-5, rtol=0)


def test_queries_are_standard_normal_and_per_tap():
    torch.manual_seed(0)
    conn = QformerConnector(64, 4, 8, n_taps=4, n_queries=64, num_layers=1, intermediate=16)
    prompts = torch.stack([p.detach() for p in conn.layer_prompts])
    assert prompts.shape == (4, 1, 64, 64)
    assert abs(prompts.mean().item()) < 0.05 and abs(prompts.std().item() - 1.0) < 0.05
    assert not torch.equal(prompts[0], prompts[1])


def test_dropout_only_in_training():
    conn = _connector(dropout=0.5)
    taps = [torch.randn(1, 7, 32) for _ in range(3)]
    torch.testing.assert_close(conn(taps), conn(taps))
    conn.train()
    torch.manual_seed(0)
    a = conn(taps)
    torch.manual_seed(1)
    assert (a - conn(taps)).abs().max() > 1e-3


def _meta_connector(num_layers: int) -> QformerConnector:
    with torch.device("meta"):
        return QformerConnector(
            1280, 20, 4096, n_taps=4, n_queries=64, num_layers=num_layers, intermediate=3072
        )


@pytest.mark.parametrize(("layers", "count"), [(6, 131_540_224), (2, 47_565_056)])
def test_official_parameter_count(layers, count):
    conn = _meta_connector(layers)
    assert sum(p.numel() for p in conn.parameters()) == count


def test_one_bert_layer_parameter_count():
    conn = _meta_connector(1)
    assert sum(p.numel() for p in conn.qformer.layer[0].parameters()) == 20_993_792


def test_state_dict_names_and_shapes_equal_official():
    conn = _meta_connector(6)
    ours = {f"perception.connector.{k}": tuple(v.shape) for k, v in conn.state_dict().items()}
    official = official_connector_shapes(6)
    assert len(official) == 165
    assert ours == official


def test_official_projection_layernorm_eps():
    conn = _meta_connector(1)
    assert conn.proj[0].eps == 1e-5
    assert conn.qformer.layer[0].output.LayerNorm.eps == 1e-12
