"""Log-mel front-end and audio decoding (mmv_lite.data.audio)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmv_lite.config import get_config
from mmv_lite.data.audio import LOG_OFFSET, LogMel, decode_audio, num_audio_frames, num_audio_samples


def test_shapes_follow_the_config(lite_data_cfg):
    cfg = lite_data_cfg
    assert num_audio_samples(cfg) == 25_600  # 8 frames at 5 fps = 1.6 s at 16 kHz
    assert num_audio_frames(cfg) == 25_600 // 256 + 1
    logmel = LogMel(cfg)
    out = logmel(torch.zeros(num_audio_samples(cfg)))
    assert out.shape == (1, num_audio_frames(cfg), 80) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, float(np.log(LOG_OFFSET))))  # silence: log(0 + 1e-6)
    assert logmel(torch.randn(3, num_audio_samples(cfg))).shape == (3, 1, num_audio_frames(cfg), 80)
    paper = get_config("s3dg").data
    assert num_audio_frames(paper) == 151  # 3.2 s at 48 kHz, hop 1024
    with pytest.raises(ValueError, match="waveform"):
        logmel(torch.zeros(1, 2, 100))


def test_a_tone_lands_in_the_right_mel_bin_at_the_right_time(lite_data_cfg):
    cfg = lite_data_cfg
    n = num_audio_samples(cfg)
    t = torch.arange(n) / cfg.sample_rate
    wave = torch.where(t >= 0.8, torch.sin(2 * torch.pi * 1000 * t), torch.zeros(n))
    spec = LogMel(cfg)(wave)[0]  # (F, 80)
    energy = spec.max(dim=1).values
    onset = int(torch.nonzero(energy > energy.min() + 5)[0])
    assert abs(onset * cfg.hop_length / cfg.sample_rate - 0.8) <= cfg.n_fft / 2 / cfg.sample_rate
    import torchaudio

    centres = (
        torchaudio.functional.melscale_fbanks(
            cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate
        ).argmax(0)
        * cfg.sample_rate
        / cfg.n_fft
    )
    peak_bin = int(spec[-10:].mean(0).argmax())
    assert abs(float(centres[peak_bin]) - 1000) < 120


def test_f_max_above_nyquist_is_rejected():
    cfg = get_config("lite", **{"data.sample_rate": 8000}).data
    with pytest.raises(ValueError, match="Nyquist"):
        LogMel(cfg)


def test_decode_audio_resamples_to_mono(tmp_path):
    from mmv_lite.data.synth import write_mp4

    sr = 16_000
    t = np.arange(sr * 2) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "tone.mp4"
    write_mp4(path, np.zeros((20, 32, 32, 3), np.uint8), tone, fps=10, sample_rate=sr)
    wave, start = decode_audio(path, 48_000)
    assert start == 0.0 and wave.dtype == np.float32
    assert 0 <= len(wave) - 2 * 48_000 <= 1024 * 3  # AAC pads the last frame (1024 samples at 16 kHz)
    spectrum = np.abs(np.fft.rfft(wave[:48_000]))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s at 48 kHz: bin = Hz
    silent = tmp_path / "silent.mp4"
    write_mp4(silent, np.zeros((5, 32, 32, 3), np.uint8), None)
    assert decode_audio(silent, 16_000) == (None, 0.0)
