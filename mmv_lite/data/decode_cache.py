"""The decode cache of ``ClipDataset``: every video decoded once, then memory-mapped.

The first time a video is read its frames (uint8, shorter side at most ``resize_to``) with their timestamps and its
waveform (mono int16 at the stream's rate) are written to the cache folder as ``.npy`` files, through a temporary
name and an atomic rename, so several DataLoader workers can fill it at once; a ``.json`` written last marks the
entry complete. Later reads memory-map them: no video is decoded again. The key holds the file's path, size and
modification time and the decoding settings; writing the entry of a rewritten file deletes the entries of its
earlier versions. An entry of a damaged file holds what decoded and lists the damaged spans (``"salvaged": true``).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .media import BadClipError, Damage, Decoded, decode

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 2: frames with their timestamps, audio by its own, damage listed; 3: audio runs on the packet grid
_ENTRY_ARRAYS = (".frames.npy", ".times.npy", ".audio.npy")  # a cache entry: these and its .json


CACHE_ENV = "MMV_LITE_CACHE_DIR"  # one folder for every video folder's cache (the test suites set it to a temp folder)


def media_folder(root: str | os.PathLike) -> Path:
    """The folder that holds a dataset's media files: ``ROOT/videos/`` if it exists, else ``ROOT`` itself."""
    root = Path(root)
    return root / "videos" if (root / "videos").is_dir() else root


def default_cache_dir(root: str | os.PathLike) -> Path:
    """Where the decode cache of the dataset or video folder ``root`` lives by default.

    One cache per folder of media files (:func:`media_folder`), so that a dataset (``ClipDataset("data_samples")``)
    and its videos searched on their own (``search --videos data_samples/videos``) share their decoded clips.
    ``$MMV_LITE_CACHE_DIR/<folder>-<hash of its path>`` when that variable is set; else ``FOLDER/.cache`` when the
    folder is writable; else a folder under the user's cache (``$XDG_CACHE_HOME``).
    """
    folder = media_folder(root)
    tag = f"{folder.name}-{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]}"
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / tag
    if os.access(folder, os.W_OK):
        return folder / ".cache"
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "mmv_lite" / tag


class DecodeCache:
    """Decoded videos in ``folder``, for one decoding setting (``sample_rate``, ``resize_to``)."""

    def __init__(self, folder: Path, sample_rate: int, resize_to: int):
        self.folder, self.sample_rate, self.resize_to = Path(folder), sample_rate, resize_to
        self._mmaps: dict[str, Decoded] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_mmaps"] = {}  # memory maps are per process: each DataLoader worker opens its own
        return state

    def stem(self, path: Path) -> Path:
        """Where ``path``'s entry lives: ``folder/<name>-<key>`` + ``.json`` / ``.frames.npy`` / ..."""
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.sample_rate}|{self.resize_to}|{CACHE_VERSION}"
        return self.folder / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"

    def load(self, path: Path) -> Decoded:
        """The whole video, memory-mapped from the cache; decoded and written there on first use."""
        if str(path) in self._mmaps:
            return self._mmaps[str(path)]
        stem = str(self.stem(path))  # file names are stem + suffix (video ids may contain dots)
        meta_path = Path(stem + ".json")
        for attempt in range(2):
            if not meta_path.is_file():
                self._write(path, stem)
            try:
                d = self._read(stem, json.loads(meta_path.read_text()))
                break
            except (OSError, ValueError, KeyError, TypeError) as e:  # a damaged entry (disk full, deleted by hand)
                if attempt:
                    raise BadClipError(f"{path}: cache entry {stem}.* cannot be read after rewriting ({e})") from e
                log.warning("cache entry %s.* of %s is damaged (%s); decoding again", stem, path, e)
                for suffix in (".json", *_ENTRY_ARRAYS):
                    Path(stem + suffix).unlink(missing_ok=True)
        self._mmaps[str(path)] = d
        return d

    @staticmethod
    def _read(stem: str, meta: dict) -> Decoded:
        d = Decoded(
            frames=np.load(stem + ".frames.npy", mmap_mode="r") if meta["has_frames"] else None,
            times=np.load(stem + ".times.npy") if meta["has_frames"] else None,
            audio=np.load(stem + ".audio.npy", mmap_mode="r") if meta["has_audio"] else None,
            audio_t0=meta["audio_t0"],
            audio_rate=meta["audio_rate"],
            sample_rate=meta["sample_rate"],
            damage=[Damage(**x) for x in meta["damage"]],
        )
        if d.frames is not None and len(d.frames) != len(d.times):
            raise ValueError(f"{len(d.frames)} frames but {len(d.times)} timestamps")
        return d

    def _write(self, path: Path, stem: str) -> None:
        d = decode(path, self.sample_rate, self.resize_to)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "audio_t0": d.audio_t0,
            "audio_rate": d.audio_rate,
            "sample_rate": d.sample_rate,
            "has_frames": d.frames is not None,
            "has_audio": d.audio is not None,
            "salvaged": bool(d.damage),  # True: some spans failed to decode; the entry holds what did
            "damage": [asdict(x) for x in d.damage],
            "source": str(path.resolve()),
            "source_version": _source_version(path),
        }
        if d.damage:
            log.warning("%s: cached what decodes; damaged: %s", path, "; ".join(x.describe() for x in d.damage[:5]))
        if d.frames is not None:
            atomic_write(stem + ".frames.npy", lambda f: np.save(f, d.frames))
            atomic_write(stem + ".times.npy", lambda f: np.save(f, d.times))
        if d.audio is not None:
            atomic_write(stem + ".audio.npy", lambda f: np.save(f, d.audio))
        atomic_write(stem + ".json", json.dumps(meta))  # written last: its presence marks a complete entry
        self._drop_stale_entries(path, meta["source_version"])

    def _drop_stale_entries(self, path: Path, version: list[int]) -> None:
        """Delete the entries of earlier versions of ``path`` (the file was rewritten since), so the cache does not
        grow with every regeneration. Entries of the same version under other settings (``resize_to``,
        ``sample_rate``) stay, and so do entries of other files that share the stem."""
        source = str(path.resolve())
        for meta_path in self.folder.glob(f"{glob.escape(path.stem)}-*.json"):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue  # being written or damaged: load deals with it
            if meta.get("source") != source or meta.get("source_version") == version:
                continue
            entry = str(meta_path)[: -len(".json")]
            meta_path.unlink(missing_ok=True)  # first: an entry without its .json is incomplete, never read
            for suffix in _ENTRY_ARRAYS:
                Path(entry + suffix).unlink(missing_ok=True)


def _source_version(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]
