"""Your own videos: every clip window of a folder embedded once, then searched with words or with a sound.

    python -m mmv_lite embed  --checkpoint data_samples/mmv_lite_fac.pt --videos ~/clips --out clips.npz
    python -m mmv_lite search --checkpoint data_samples/mmv_lite_fac.pt --videos ~/clips "a dog runs on grass"
    python -m mmv_lite search --checkpoint data_samples/mmv_lite_fac.pt --videos ~/clips --sound bark.wav

The folder holds media files of any format PyAV reads (mp4, mkv, webm, mov, avi, ...; audio-only files too), with or
without sound, at any frame rate and size. Each video is tiled with the checkpoint's clip windows (``num_frames`` frames
at ``fps``: 1.6 s for ``lite``, 3.2 s for the paper's networks), cut the way training cuts them: frames by timestamp,
display rotation applied, the sound of the same span (``mmv_lite.data.media``). Files that cannot be read are skipped
and listed with the reason; nothing else is left out.

The embedding file (``.npz``; ``np.load(path)`` reads it, and ``pd.DataFrame`` takes its columns) holds one row per
window: ``video_id``, ``path`` (the media file), ``start``, ``end`` (seconds), ``has_audio``, the backbone features
``f_v (N, d_v)``, ``f_a (N, d_a)`` and the embeddings ``z_v_* / z_a_* (N, D)`` of every space of the graph; plus
``skipped`` (one line per file or window left out, with the reason) and ``info`` (JSON: checkpoint, clip settings, the
files and their versions). ``search`` reuses it while the checkpoint and the folder are unchanged.

Released MMV weights (``mmv_s3d.pkl``, ...; see docs/OFFICIAL_WEIGHTS.md) work too; their text tower comes without a
vocabulary, so text queries need ``--word-vectors GoogleNews-vectors-negative300.bin``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .checkpoints import load_model, load_official
from .cli import check_at_least
from .config import Config
from .data.audio import LogMel, num_audio_samples
from .data.clips import BadClipError, ClipDataset, default_cache_dir, media_files
from .data.media import cut_clip, decode
from .data.text import WordVectors, tokenize_words
from .embedding import embed_dataset, subset_embeddings
from .graphs import embedding_key
from .models.layers import eval_mode
from .retrieval import cosine_similarity
from .runtime import to_numpy
from .search import encode_text, model_word_vectors

log = logging.getLogger(__name__)
EMBEDDINGS_VERSION = 1


# --------------------------------------------------------------------------------------------------- the network
@dataclass
class Embedder:
    """A trained network and what it needs to read a folder: its config (clip settings) and its words."""

    model: torch.nn.Module
    cfg: Config
    word_vectors: WordVectors | None  # None: the network's text tower has no vocabulary (released weights)
    checkpoint: Path


def load_embedder(
    checkpoint: str | os.PathLike, word_vectors: str | os.PathLike | None = None, device: str = "cpu"
) -> Embedder:
    """An mmv_lite checkpoint (``.pt``, from ``train``) or released MMV weights (``.pkl``, via ``load_official``).

    ``word_vectors``: a word2vec file whose words name the released text tower's rows (ignored for mmv_lite
    checkpoints, which carry their vocabulary)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if zipfile.is_zipfile(path):  # torch.save's format: an mmv_lite checkpoint
        model, cfg, vocab = load_model(path, device=device)
        words = model_word_vectors(model, vocab) if vocab else None
        return Embedder(model, cfg, words, path)
    words = WordVectors.load(word_vectors) if word_vectors is not None else None
    model = load_official(path, word_vectors=words, device=device)
    return Embedder(model, model.cfg, words, path)


def _version(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def default_embeddings_path(videos: str | os.PathLike, checkpoint: str | os.PathLike) -> Path:
    """Where ``search`` keeps a folder's embeddings by default: the folder's cache, one file per checkpoint."""
    ck = Path(checkpoint).resolve()
    key = hashlib.sha1(f"{ck}|{Path(videos).resolve()}".encode()).hexdigest()[:12]
    return default_cache_dir(Path(videos)) / "embeddings" / f"{ck.stem}-{key}.npz"


# --------------------------------------------------------------------------------------------------- embedding
class _EachWindowOnce(Dataset):
    """Every window of a :class:`ClipDataset` once, in order. A window that cannot be loaded gives a placeholder with
    ``index = -1`` (dropped after embedding) instead of the dataset's replacement by the next good window."""

    def __init__(self, ds: ClipDataset, bar: Any):
        self.ds, self.bar = ds, bar
        cfg = ds.cfg
        first = ds.collate([ds[0]])  # the shapes of one item (raises when nothing in the folder loads)
        self.placeholder = {k: (torch.zeros_like(v[0]) if torch.is_tensor(v) else v[0]) for k, v in first.items()}
        self.placeholder.update(index=-1, video_id="", start=0.0, end=cfg.clip_seconds)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.ds[i]
        self.bar.update(1)
        return item if item["index"] == i else dict(self.placeholder)  # replaced: window i failed


def embed_folder(
    embedder: Embedder,
    videos: str | os.PathLike,
    batch_size: int = 8,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Embed every clip window of every media file in ``videos``.

    Returns the table of the embedding file: ``video_id``, ``path`` (lists of N str), ``start``, ``end`` (N,) float64,
    ``has_audio (N,)`` bool, ``f_*`` and ``z_*`` ``(N, D)`` float32 (video and audio), ``skipped`` (list of str).
    Raises :class:`BadClipError` when no file of the folder can be read.
    """
    from tqdm.auto import tqdm

    ds = ClipDataset(
        videos, "all", embedder.cfg.data, skip_bad=True, cache_dir=cache_dir, annotations=False, train=False
    )
    if not ds.windows:
        why = "; ".join(ds.skipped) or "it holds no media file"
        raise BadClipError(f"{videos}: no video could be read ({why})")
    device = next(embedder.model.parameters()).device
    with tqdm(total=len(ds), unit="clip", desc="embedding", disable=not progress, dynamic_ncols=True) as bar:
        emb = embed_dataset(
            embedder.model, _EachWindowOnce(ds, bar), batch_size=batch_size, device=device, modalities="va"
        )
    emb = subset_embeddings(emb, emb["index"] >= 0)
    table: dict[str, Any] = {k: to_numpy(v) for k, v in emb.items() if k.startswith(("f_", "z_"))}
    table.update(
        video_id=list(emb["video_id"]),
        path=[str(ds.videos[v].path) for v in emb["video_id"]],
        start=to_numpy(emb["start"].double()),
        end=to_numpy(emb["end"].double()),
        has_audio=to_numpy(emb["has_audio"].bool()),
        skipped=list(dict.fromkeys(ds.skipped)),
    )
    return table


def describe(embedder: Embedder, videos: str | os.PathLike) -> dict[str, Any]:
    """What an embedding file was made from: checkpoint, clip settings, and every media file with its version."""
    return {
        "version": EMBEDDINGS_VERSION,
        "checkpoint": str(embedder.checkpoint.resolve()),
        "checkpoint_version": _version(embedder.checkpoint),
        "graph": embedder.cfg.model.graph,
        "data": asdict(embedder.cfg.data),
        "videos": str(Path(videos).resolve()),
        "files": {vid: [p.name, *_version(p)] for vid, p in media_files(videos).items()},
    }


def save_embeddings(path: str | os.PathLike, table: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write the table and its ``info`` to one ``.npz`` (written to a temporary name, then renamed)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"--out {str(path)!r}: the embedding file is a NumPy archive; give it the suffix .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v, dtype=str) if isinstance(v, list) else v for k, v in table.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, info=np.asarray(json.dumps(info)), **arrays)
    os.replace(tmp, path)
    return path


def load_embeddings(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(table, info)`` of an embedding file written by :func:`save_embeddings`."""
    with np.load(path, allow_pickle=False) as z:
        table = {k: (z[k].tolist() if z[k].dtype.kind == "U" else z[k]) for k in z.files if k != "info"}
        info = json.loads(str(z["info"]))
    if info.get("version") != EMBEDDINGS_VERSION:
        raise ValueError(f"{path}: embedding file version {info.get('version')}; expected {EMBEDDINGS_VERSION}")
    return table, info


def embeddings_for(
    embedder: Embedder,
    videos: str | os.PathLike,
    path: str | os.PathLike,
    batch_size: int = 8,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    keep_others: bool = False,
) -> tuple[dict[str, Any], bool]:
    """The folder's table from ``path`` when it was made from the same checkpoint and files; else embed the folder
    again and write ``path``. Returns ``(table, reused)``.

    ``keep_others``: ``path`` is the user's file (``search --embeddings``): it is rewritten only when it was made from
    this checkpoint and folder with these clip settings (files of the folder added or changed since); a file made from
    other inputs, or one that is not an embedding file, raises ``ValueError`` and stays as it is."""
    path, info = Path(path), describe(embedder, videos)
    if path.is_file():
        try:
            table, saved = load_embeddings(path)
        except (OSError, ValueError, KeyError) as e:
            if keep_others:
                raise ValueError(
                    f"--embeddings {path}: not an embedding file that embed or search wrote ({e}); it is not "
                    "replaced: give another file name"
                ) from e
            log.warning("%s cannot be read (%s): embedding %s again", path, e, videos)
        else:
            if {k: saved.get(k) for k in info} == json.loads(json.dumps(info)):
                return table, True
            other = _other_inputs(saved, info)
            if keep_others and other:
                raise ValueError(
                    f"--embeddings {path} was made from {other}; it is not replaced: give another --embeddings file "
                    "for this checkpoint and folder (or delete that one)"
                )
            log.warning("%s was made from another checkpoint or other files: embedding %s again", path, videos)
    table = embed_folder(embedder, videos, batch_size=batch_size, progress=progress, cache_dir=cache_dir)
    save_embeddings(path, table, info)
    return table, False


def _other_inputs(saved: dict[str, Any], info: dict[str, Any]) -> str:
    """How the inputs an embedding file was made from differ from ``info``'s, besides the folder's files ("" if not)."""
    if saved.get("videos") != info["videos"]:
        return f"another folder ({saved.get('videos')}, not {info['videos']})"
    if saved.get("checkpoint") != info["checkpoint"]:
        return f"another checkpoint ({saved.get('checkpoint')}, not {info['checkpoint']})"
    if saved.get("checkpoint_version") != info["checkpoint_version"]:
        return f"an earlier version of the checkpoint {info['checkpoint']} (it was rewritten since)"
    if saved.get("graph") != info["graph"] or saved.get("data") != json.loads(json.dumps(info["data"])):
        return "other clip settings"
    return ""


# --------------------------------------------------------------------------------------------------- search
@dataclass
class Hit:
    """One ranked window."""

    rank: int
    score: float  # cosine similarity of the query with the window's embedding
    video_id: str
    path: str  # the media file
    start: float
    end: float


def _ranked(table: dict[str, Any], query: torch.Tensor, key: str, k: int) -> list[Hit]:
    if key not in table:
        raise ValueError(f"the embedding file has no {key!r}; it holds {sorted(x for x in table if x[:2] == 'z_')}")
    sim = cosine_similarity(query.reshape(1, -1), torch.as_tensor(table[key]))[0]
    top = torch.topk(sim, min(k, len(sim)))
    return [
        Hit(r + 1, float(s), table["video_id"][i], table["path"][i], float(table["start"][i]), float(table["end"][i]))
        for r, (s, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()))
    ]


def unknown_words(word_vectors: WordVectors, query: str) -> list[str]:
    """The words of ``query`` (stop words aside) that the vocabulary lacks: the text tower cannot read them."""
    return [w for w in tokenize_words(query) if w not in word_vectors]


@torch.no_grad()
def text_query(embedder: Embedder, query: str) -> tuple[torch.Tensor, str]:
    """``(z (D,), key)``: the embedding of ``query`` in the text-video space and the key of the windows' video
    embedding it is compared with. Checked before anything else: raises ``ValueError`` when the query has no word to
    search with (empty, or only stop words), when none of its words is in the vocabulary, or without a vocabulary."""
    if embedder.word_vectors is None:
        raise ValueError(
            f"{embedder.checkpoint.name} has no vocabulary for its text tower (released weights): pass "
            "--word-vectors with the word2vec file it was trained with (GoogleNews-vectors-negative300.bin)"
        )
    words = tokenize_words(query)
    if not words:
        raise ValueError(f"the query {query!r} has no word to search with (stop words are dropped); e.g. 'red ball'")
    missing = unknown_words(embedder.word_vectors, query)
    if len(missing) == len(words):
        raise ValueError(f"none of the words of {query!r} is in the checkpoint's vocabulary: {', '.join(missing)}")
    graph = embedder.cfg.model.graph
    z = encode_text(embedder.model, embedder.word_vectors, query)[embedding_key(graph, "t", "v")]
    return z.float().cpu().reshape(-1), embedding_key(graph, "v", "t")


def search_text(table: dict[str, Any], embedder: Embedder, query: str, k: int = 10) -> list[Hit]:
    """Windows ranked by how well their video matches ``query`` (text -> video, in the graph's space for the pair).

    Raises ``ValueError`` naming the words when none of them is in the checkpoint's vocabulary (:func:`text_query`)."""
    return _ranked(table, *text_query(embedder, query), k)


@torch.no_grad()
def sound_embedding(embedder: Embedder, sound: str | os.PathLike) -> torch.Tensor:
    """``(D,)``: the mean unit-length audio embedding (video-audio space) of the clip-long windows of a sound file."""
    cfg = embedder.cfg.data
    d = decode(sound, cfg.sample_rate, 16)
    if d.audio is None or not len(d.audio):
        raise ValueError(f"{sound}: no audio stream to search with")
    span = len(d.audio) / d.audio_rate
    starts = d.audio_t0 + np.arange(max(1, int(span // cfg.clip_seconds))) * cfg.clip_seconds
    n = num_audio_samples(cfg)
    waves = torch.stack([torch.from_numpy(cut_clip(d, float(s), 1, cfg.fps, n)[1]) for s in starts])
    model = embedder.model
    with eval_mode(model):
        out = model.embed_audio(LogMel(cfg)(waves).to(next(model.parameters()).device))
    z = out[embedding_key(embedder.cfg.model.graph, "a", "v")].float().cpu()
    return torch.nn.functional.normalize(z, dim=-1).mean(0)


def search_sound(table: dict[str, Any], embedder: Embedder, sound: str | os.PathLike, k: int = 10) -> list[Hit]:
    """Windows ranked by how well their video matches the sound of a file (audio -> video)."""
    key = embedding_key(embedder.cfg.model.graph, "v", "a")
    return _ranked(table, sound_embedding(embedder, sound), key, k)


def format_hits(hits: Sequence[Hit]) -> str:
    lines = [f"{'rank':>4}  {'score':>6}  {'start-end (s)':>13}  video"]
    lines += [f"{h.rank:>4}  {h.score:>6.3f}  {h.start:>6.2f}-{h.end:<6.2f}  {h.video_id} ({h.path})" for h in hits]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- command line
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="an mmv_lite checkpoint (.pt) or released MMV weights (.pkl)")
    p.add_argument("--videos", required=True, help="folder of media files (or with a videos/ subfolder)")
    p.add_argument("--word-vectors", help="word2vec file naming the released text tower's rows (text queries)")
    p.add_argument("--cache", help="where decoded clips are kept (default: the folder's .cache, as for training)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _summary(table: dict[str, Any]) -> str:
    n_videos = len(set(table["video_id"]))
    silent = int((~np.asarray(table["has_audio"], bool)).sum())
    lines = [f"{len(table['video_id'])} windows of {n_videos} videos ({silent} without sound)"]
    if table["skipped"]:
        lines.append(f"skipped {len(table['skipped'])}:")
        lines += [f"  {why}" for why in table["skipped"]]
    return "\n".join(lines)


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return name


def _folder(path: str) -> str:
    if not Path(path).is_dir():
        raise FileNotFoundError(f"--videos {path!r}: no such folder")
    return path


def embed_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmv_lite embed --checkpoint CK --videos DIR --out FILE.npz``."""
    p = argparse.ArgumentParser(prog="python -m mmv_lite embed", description=__doc__.split("\n\n")[0])
    _common(p)
    p.add_argument("--out", required=True, help="the embedding file to write (.npz)")
    args = p.parse_args(argv)
    check_at_least(args, batch_size=1)
    _folder(args.videos)
    if not args.out.endswith(".npz"):
        raise ValueError(f"--out {args.out!r}: the embedding file is a NumPy archive; give it the suffix .npz")
    embedder = load_embedder(args.checkpoint, args.word_vectors, _device(args.device))
    table = embed_folder(embedder, args.videos, args.batch_size, not args.no_progress, args.cache)
    save_embeddings(args.out, table, describe(embedder, args.videos))
    print(f"{_summary(table)}\nwrote {args.out}")
    return 0


def search_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmv_lite search --checkpoint CK --videos DIR "a query"`` or ``... --sound FILE``."""
    p = argparse.ArgumentParser(prog="python -m mmv_lite search", description=__doc__.split("\n\n")[0])
    _common(p)
    p.add_argument("query", nargs="?", help="words describing what to find")
    p.add_argument("--sound", help="a media file whose sound to find matching pictures for")
    p.add_argument("--embeddings", help="embedding file to reuse or write (default: in the folder's cache)")
    p.add_argument("-k", "--top", type=int, default=10, help="how many windows to show (default 10)")
    args = p.parse_args(argv)
    check_at_least(args, batch_size=1, top=1)
    _folder(args.videos)
    if (args.query is None) == (args.sound is None):
        raise ValueError('give either a text query ("a red ball bounces") or --sound FILE')
    if args.embeddings is not None and not args.embeddings.endswith(".npz"):
        raise ValueError(f"--embeddings {args.embeddings!r}: the embedding file is a NumPy archive (.npz)")
    embedder = load_embedder(args.checkpoint, args.word_vectors, _device(args.device))
    # the query first: a query that cannot be searched with fails before the folder is embedded
    if args.sound is not None:
        z, key = sound_embedding(embedder, args.sound), embedding_key(embedder.cfg.model.graph, "v", "a")
    else:
        z, key = text_query(embedder, args.query)
    path = args.embeddings or default_embeddings_path(args.videos, args.checkpoint)
    table, reused = embeddings_for(
        embedder, args.videos, path, args.batch_size, not args.no_progress, args.cache, args.embeddings is not None
    )
    print(f"{'reusing' if reused else 'wrote'} {path}: {_summary(table)}")
    missing = unknown_words(embedder.word_vectors, args.query) if args.query is not None else []
    if missing:
        print(f"not in the checkpoint's vocabulary, left out of the query: {', '.join(missing)}")
    print(format_hits(_ranked(table, z, key, args.top)))
    return 0
