"""Audio: decoding with PyAV and the log-mel front-end.

The front-end follows the one used around MMV: magnitude STFT with a Hann window, 80 mel bins between
``f_min`` and ``f_max``, then ``log(mel + 1e-6)``. All sizes come from :class:`mmv_lite.config.DataConfig`
(paper: 48 kHz, window 2048, hop 1024; ``lite``: 16 kHz, window 512, hop 256).

    >>> cfg = get_config("lite").data
    >>> logmel = LogMel(cfg)
    >>> logmel(torch.zeros(num_audio_samples(cfg))).shape     # (1, F, n_mels)
    torch.Size([1, 101, 80])
"""

from __future__ import annotations

import os

import av
import numpy as np
import torch
import torchaudio
from torch import nn

from ..config import DataConfig

LOG_OFFSET = 1e-6  # log(mel + 1e-6): the offset of the MMV/DMVR front-end


def num_audio_samples(cfg: DataConfig) -> int:
    """Samples in one clip's audio window: exactly the clip's span ``num_frames / fps`` seconds."""
    return int(round(cfg.clip_seconds * cfg.sample_rate))


def num_audio_frames(cfg: DataConfig) -> int:
    """F, the number of spectrogram frames of one clip (centred STFT: one frame per hop, plus one)."""
    return num_audio_samples(cfg) // cfg.hop_length + 1


class LogMel(nn.Module):
    """Waveform -> log-mel spectrogram laid out as a one-channel image (time, mel).

    Input: ``(samples,)`` or ``(B, samples)`` float waveform at ``cfg.sample_rate``.
    Output: ``(1, F, n_mels)`` or ``(B, 1, F, n_mels)`` float32, F = ``samples // hop_length + 1``.
    """

    def __init__(self, cfg: DataConfig):
        super().__init__()
        if cfg.f_max > cfg.sample_rate / 2:
            raise ValueError(
                f"data.f_max={cfg.f_max} Hz is above the Nyquist frequency of data.sample_rate={cfg.sample_rate} Hz"
            )
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            n_mels=cfg.n_mels,
            power=1.0,  # magnitude, not power
            window_fn=torch.hann_window,
            center=True,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() not in (1, 2):
            raise ValueError(f"LogMel expects a waveform (samples,) or (B, samples); got shape {tuple(waveform.shape)}")
        mel = self.mel(waveform.float())  # (..., n_mels, F)
        return torch.log(mel + LOG_OFFSET).transpose(-1, -2).unsqueeze(-3).contiguous()


def decode_audio(path: str | os.PathLike, sample_rate: int) -> tuple[np.ndarray | None, float]:
    """Decode a file's first audio stream to mono float32 at ``sample_rate`` with PyAV.

    Returns ``(waveform (samples,) float32 in [-1, 1], start_seconds)``, where sample 0 plays at ``start_seconds``
    of the file's timeline (usually 0); ``(None, 0.0)`` when the file has no audio stream.
    Raises ``av.error.FFmpegError`` (or ``OSError``) on an unreadable file: callers add the file name.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None, 0.0
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        start = None
        for frame in container.decode(stream):
            if start is None and frame.pts is not None:
                start = float(frame.pts * frame.time_base)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return np.zeros(0, np.float32), 0.0
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    start = start or 0.0
    if start < 0:  # samples before the timeline's zero (encoder priming not trimmed by the demuxer): drop them
        wave, start = wave[int(round(-start * sample_rate)) :], 0.0
    return wave, start
