"""Perception: encoder taps equal HF hidden states (last tap before the final LayerNorm), tap defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desta.errors import ConfigError
from desta.model.config import DeSTAConfig, default_target_layers
from desta.model.perception import WhisperPerception
from helpers import SR, sine, tiny_whisper


@pytest.fixture(scope="module")
def whisper():
    return tiny_whisper(d_model=48, encoder_layers=4, heads=4, seed=3)


def _mel(perception, seconds=(2.0, 0.7)):
    windows = [sine(s, 300.0 + 200 * i) for i, s in enumerate(seconds)]
    return perception.features(windows)


def test_taps_equal_hf_hidden_states(whisper):
    perception = WhisperPerception(whisper, taps=(0, 1, 2, 3))
    mel = _mel(perception)
    assert mel.shape == (2, 80, 3000)
    with torch.no_grad():
        out = perception.encode(mel)
        hf = whisper.model.encoder(mel, output_hidden_states=True)
    assert len(out.taps) == 4 and out.taps[0].shape == (2, 1500, 48)
    # inner taps i equal hidden_states[i + 1]
    for i in range(3):
        torch.testing.assert_close(out.taps[i], hf.hidden_states[i + 1], atol=1e-5, rtol=0)
    # the last tap is taken before the final LayerNorm: HF's final entry is post-LN
    assert (out.taps[3] - hf.last_hidden_state).abs().max() > 1e-2
    with torch.no_grad():
        torch.testing.assert_close(
            whisper.model.encoder.layer_norm(out.taps[3]), hf.last_hidden_state, atol=1e-5, rtol=0
        )
    torch.testing.assert_close(out.last, hf.last_hidden_state, atol=1e-5, rtol=0)


def test_tap_subset_order(whisper):
    perception = WhisperPerception(whisper, taps=(1, 3))
    mel = _mel(perception, (1.0,))
    with torch.no_grad():
        out = perception.encode(mel)
        hf = whisper.model.encoder(mel, output_hidden_states=True)
    assert len(out.taps) == 2
    torch.testing.assert_close(out.taps[0], hf.hidden_states[2], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        whisper.model.encoder.layer_norm(out.taps[1]), hf.last_hidden_state, atol=1e-5, rtol=0
    )


def test_tap_out_of_range(whisper):
    with pytest.raises(ValueError, match="out of range"):
        WhisperPerception(whisper, taps=(0, 4))


def test_features_real_length(whisper):
    perception = WhisperPerception(whisper, taps=(0, 1, 2, 3), pad_to_30s=False)
    mel = _mel(perception, (2.0, 0.7))
    # padded to the longest window (2 s = 200 frames), even frame count
    assert mel.shape == (2, 80, 200)
    with torch.no_grad():
        out = perception.encode(mel)
    assert out.taps[0].shape == (2, 100, 48)


def test_features_truncate_beyond_30s(whisper):
    perception = WhisperPerception(whisper, taps=(0, 1, 2, 3))
    long = np.ones(31 * SR, dtype=np.float32) * 0.1
    assert perception.features([long]).shape == (1, 80, 3000)


@pytest.mark.parametrize(
    ("layers", "taps"),
    [(4, (0, 1, 2, 3)), (6, (1, 2, 4, 5)), (12, (2, 5, 8, 11)), (24, (5, 11, 17, 23)), (32, (7, 15, 23, 31))],
)
def test_default_target_layers(layers, taps):
    assert default_target_layers(layers) == taps
    assert DeSTAConfig(encoder_layers=layers).taps == taps


def test_default_target_layers_odd_sizes():
    assert default_target_layers(2) == (0, 1)
    assert default_target_layers(8) == (1, 3, 5, 7)
    assert default_target_layers(32, n_taps=2) == (15, 31)
    with pytest.raises(ConfigError):
        default_target_layers(0)


def test_config_tap_validation():
    with pytest.raises(ConfigError, match="exceed"):
        DeSTAConfig(encoder_layers=4, target_layer_ids=(0, 4))
    with pytest.raises(ConfigError, match="encoder_layers is unknown"):
        _ = DeSTAConfig().taps
    assert DeSTAConfig(target_layer_ids=[1, 2]).taps == (1, 2)
