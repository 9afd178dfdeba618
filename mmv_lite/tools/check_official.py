"""Check that :func:`mmv_lite.official.load_official` reproduces the official MMV networks.

    pip install jax dm-haiku optax            # optional, only for this check (CPU is enough)
    git clone https://github.com/google-deepmind/deepmind-research   # or any checkout holding its mmv/ folder
    python -m mmv_lite.tools.check_official --official-repo deepmind-research

For each released backbone (S3D-G, TSM-ResNet50, TSM-ResNet50x2) this builds the official Haiku model from the
checkout, with the released configuration (``mmv/config.py``; single device: ``use_xreplica_bn=False``) and random
parameters; perturbs the BatchNorm scales and offsets and the biases (they are initialised to 1 and 0, which would
hide a swapped mapping; offsets are centred on +1, see ``OfficialRun.build``); sets the BatchNorm moving averages
from one training-mode pass on a calibration batch; saves ``{"params", "state"}`` as the release does (Haiku
``FlatMapping`` of numpy arrays, BatchNorm modules named as in multi-device training); loads that file with
``load_official``; runs both networks in eval mode on the same inputs and prints the maximum absolute and relative
difference of every output, with both networks in float32 and again in float64 (the same float32 parameters), next
to the official model's own float32-vs-float64 difference:

    f_v, f_a            video and audio representations (official ``vid_repr``, ``aud_repr``)
    z_v_va, z_a_va      the fine space S_va (official ``vid_embd/toaud``, ``aud_embd/tovid``)
    z_v_vat, z_a_vat    the coarse space S_vat (official ``vid_embd/totxt``, ``aud_embd/totxt``)
    f_t, z_t_vat        text representation and embedding (official ``txt_embd/tovid``)

The relative difference is ``max |ours - official| / max |official|`` over the whole output. Float64 shows whether
the mapping is exact (differences at rounding level, ~1e-13); float32 shows what a user sees. Exit status 0 when
every relative difference, in both precisions, is at most ``--tol`` (default 1e-4).

Nothing of the official repository is copied into this project: it is imported from ``--official-repo`` at run time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmv_lite.official import load_official
from mmv_lite.runtime import to_numpy

BACKBONES = {"s3d": "mmv_s3d.pkl", "tsm_x1": "mmv_tsm_resnet_x1.pkl", "tsm_x2": "mmv_tsm_resnet_x2.pkl"}
OUTPUTS = ("f_v", "f_a", "f_t", "z_v_va", "z_a_va", "z_v_vat", "z_a_vat", "z_t_vat")


def _import_official(repo: Path):
    """Import the official ``mmv`` package (and jax, haiku) from a checkout; clear errors when something is missing."""
    if not (repo / "mmv" / "models" / "mm_embeddings.py").is_file():
        raise SystemExit(
            f"--official-repo {repo}: no mmv/models/mm_embeddings.py there; pass the root of a checkout of "
            "https://github.com/google-deepmind/deepmind-research (the folder that contains mmv/)"
        )
    missing = [m for m in ("jax", "haiku") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"check_official needs {', '.join(missing)}: pip install jax dm-haiku optax "
            "(optional tools for this check only; CPU builds are enough)"
        )
    sys.path.insert(0, str(repo))
    config = importlib.import_module("mmv.config")
    mm_embeddings = importlib.import_module("mmv.models.mm_embeddings")
    return config, mm_embeddings


def space_to_depth(video: np.ndarray) -> np.ndarray:
    """``[B, T, H, W, C] -> [B, T/2, H/2, W/2, 8C]``, as the official ``eval_ucf101.space_to_depth_batch``."""
    b, t, h, w, c = video.shape
    x = video.reshape(b, t // 2, 2, h // 2, 2, w // 2, 2, c)
    x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, t // 2, h // 2, w // 2, 8 * c)


class OfficialRun:
    """The official model of one backbone, with random parameters, its release-format pickle and its outputs."""

    def __init__(self, repo: Path, backbone: str, num_frames: int, vocab_size: int, seed: int):
        # jax and haiku are optional (this check only needs them): imported when the check runs
        import haiku as hk
        import jax
        import jax.numpy as jnp

        # 64-bit types on, so that the same parameters can also run in float64 (float32 arrays stay float32).
        jax.config.update("jax_enable_x64", True)
        config, mm_embeddings = _import_official(repo)
        self.backbone = backbone
        cfg = config.get_model_config(BACKBONES[backbone])
        cfg["use_xreplica_bn"] = False  # one device: plain BatchNorm (renamed to the release's names when saved)
        cfg["vision_model_kwargs"]["n_frames"] = num_frames
        rng = np.random.default_rng(seed)
        # Word vectors: the release carries a [65536, 300] matrix; a smaller random one has the same role here.
        self.word_matrix = rng.normal(0, 0.3, (vocab_size, 300)).astype(np.float32)

        def forward(images, audio, word_ids, is_training):
            model = mm_embeddings.AudioTextVideoEmbedding(**cfg, word_embedding_matrix=jnp.asarray(self.word_matrix))
            return model(images=images, audio_spectrogram=audio, word_ids=word_ids, is_training=is_training)

        # Eager (not jitted): compiling the whole S3D-G with XLA on CPU takes longer than running it op by op.
        t = hk.transform_with_state(forward)
        self._init, self._apply, self._jax = t.init, t.apply, jax

    def _prepare(self, video: np.ndarray, audio: np.ndarray, word_ids: np.ndarray, dtype=np.float32):
        """Our layouts -> the official ones: video (B,3,T,H,W) -> [B,T,H,W,3] (space-to-depth for S3D-G),
        audio (B,1,F,M) -> [B,F,M,1]."""
        v = np.ascontiguousarray(video.transpose(0, 2, 3, 4, 1), dtype=dtype)
        if self.backbone == "s3d":
            v = space_to_depth(v)  # the released S3D-G was trained on space-to-depth input
        a = np.ascontiguousarray(audio.transpose(0, 2, 3, 1), dtype=dtype)
        return v, a, word_ids.astype(np.int32)

    @staticmethod
    def _cast(tree, dtype):
        return {
            m: {
                k: (np.asarray(x).astype(dtype) if np.asarray(x).dtype.kind == "f" else np.asarray(x))
                for k, x in v.items()
            }
            for m, v in tree.items()
        }

    def build(self, calib: tuple[np.ndarray, ...], seed: int) -> None:
        """Random float32 parameters, perturbed BN affine and biases, BN moving averages from a pass over ``calib``."""
        v, a, w = self._prepare(*calib)
        params, state = self._init(self._jax.random.PRNGKey(seed), v, a, w, is_training=True)
        rng = np.random.default_rng(seed + 1)
        self.params = self._cast(params, np.float32)
        for leaves in self.params.values():
            for name, x in leaves.items():
                if name == "scale":
                    leaves[name] = x * rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
                elif name == "offset":
                    # Offsets around +1 keep most ReLUs active. With zero offsets a random S3D-G is chaotic enough
                    # that float32 rounding alone moves its output by ~1e-4 (in both implementations alike).
                    leaves[name] = x + rng.normal(1.0, 0.1, x.shape).astype(np.float32)
                elif name == "b":
                    leaves[name] = x + rng.normal(0.0, 0.1, x.shape).astype(np.float32)
        # Haiku's moving averages are zero-debiased: after one update the average is exactly the batch statistic.
        _, state = self._apply(self.params, state, None, v, a, w, is_training=True)
        self.state = self._cast(state, np.float32)

    def save(self, path: Path) -> None:
        """Write ``{"params", "state"}`` as the release does: FlatMappings of numpy arrays, multi-device BN names."""
        from haiku._src.data_structures import FlatMapping  # optional, as in __init__

        def rename(tree):
            return FlatMapping(
                {m.replace("/__batch_norm", "/__cross_replica_batch_norm"): dict(v) for m, v in tree.items()}
            )

        with open(path, "wb") as f:
            pickle.dump({"params": rename(self.params), "state": rename(self.state)}, f, protocol=4)

    def outputs(self, video: np.ndarray, audio: np.ndarray, word_ids: np.ndarray, dtype=np.float32) -> dict:
        """Eval-mode outputs, computed in ``dtype`` (the saved float32 parameters cast to it)."""
        v, a, w = self._prepare(video, audio, word_ids, dtype)
        params, state = self._cast(self.params, dtype), self._cast(self.state, dtype)
        out, _ = self._apply(params, state, None, v, a, w, is_training=False)
        # The official text tower's representation is not returned (z_t_vat is): f_t is rebuilt here from the same
        # parameters (Conv1D of width 1 = per-token linear, ReLU, max over tokens).
        conv = params["text_audio_video/text_module/~/text_conv1"]
        words = params["text_audio_video/text_module/~/embed"]["embeddings"][w]
        f_t = np.maximum(np.einsum("bld,kdo->blo", words, conv["w"]) + conv["b"], 0).max(axis=1)
        return {
            "f_v": np.asarray(out["vid_repr"]),
            "f_a": np.asarray(out["aud_repr"]),
            "f_t": f_t,
            "z_v_va": np.asarray(out["vid_embd"]["toaud"]),
            "z_a_va": np.asarray(out["aud_embd"]["tovid"]),
            "z_v_vat": np.asarray(out["vid_embd"]["totxt"]),
            "z_a_vat": np.asarray(out["aud_embd"]["totxt"]),
            "z_t_vat": np.asarray(out["txt_embd"]["tovid"]),
        }


def ours_outputs(
    path: Path, video: np.ndarray, audio: np.ndarray, word_ids: np.ndarray, float64: bool = False
) -> dict[str, np.ndarray]:
    """Load ``path`` with :func:`load_official` and run it in eval mode on the same inputs."""
    model = load_official(path)
    assert not model.training
    dtype = torch.float64 if float64 else torch.float32
    model = model.to(dtype)
    ids = torch.from_numpy(word_ids).long()[:, None, :]  # (B, K=1, L)
    with torch.no_grad():
        out = model(
            video=torch.from_numpy(video).to(dtype),
            audio=torch.from_numpy(audio).to(dtype),
            text_ids=ids,
            text_mask=torch.ones_like(ids, dtype=torch.bool),
        )
    res = {k: to_numpy(out[k]) for k in OUTPUTS if k in out}
    for k in ("f_t", "z_t_vat"):
        if k in res and res[k].ndim == 3:
            res[k] = res[k][:, 0]  # drop the candidate axis K = 1
    return res


def compare(official: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """``{output: (max abs diff, max abs official, relative diff)}``; a missing or misshapen output is an error."""
    rows = {}
    for k in OUTPUTS:
        if k not in ours:
            raise SystemExit(f"our model returned no {k!r} (outputs: {sorted(ours)})")
        a, b = official[k].astype(np.float64), ours[k].astype(np.float64)
        if a.shape != b.shape:
            raise SystemExit(f"{k}: official shape {a.shape}, ours {b.shape}")
        diff = float(np.abs(a - b).max())
        scale = float(np.abs(a).max())
        rows[k] = (diff, scale, diff / max(scale, 1e-30))
    return rows


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}")
    repo = Path(args.official_repo).resolve()
    b, t, s = args.batch, args.frames, args.size
    rng = np.random.default_rng(args.seed)

    def inputs(n):
        return (
            rng.uniform(0, 1, (n, 3, t, s, s)).astype(np.float32),
            rng.normal(0, 1, (n, 1, args.audio_frames, args.mels)).astype(np.float32),
            rng.integers(1, args.vocab, (n, args.words)).astype(np.int64),
        )

    calib, test = inputs(args.calib_batch), inputs(b)
    worst = {"float32": 0.0, "float64": 0.0}
    print(f"inputs: video {test[0].shape} in [0, 1], audio {test[1].shape}, words {test[2].shape}; tol {args.tol:g}")
    for backbone in args.backbones:
        t0 = time.time()
        off = OfficialRun(repo, backbone, num_frames=t, vocab_size=args.vocab, seed=args.seed)
        off.build(calib, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(args.keep or tmp) / BACKBONES[backbone]
            path.parent.mkdir(parents=True, exist_ok=True)
            off.save(path)
            ref32, ref64 = off.outputs(*test), off.outputs(*test, dtype=np.float64)
            ours32, ours64 = ours_outputs(path, *test), ours_outputs(path, *test, float64=True)
        tables = {"float32": compare(ref32, ours32), "float64": compare(ref64, ours64)}
        floor = compare(ref64, ref32)  # the official float32 result against its own float64 result
        print(f"\n{backbone} ({BACKBONES[backbone]}), {time.time() - t0:.0f} s")
        print(f"  {'':<9}{'':>14}{'':>16}{'float32':>26}{'float64':>26}{'official':>14}")
        cols = f"{'max abs diff':>15}{'relative':>11}"
        print(f"  {'output':<9}{'shape':>14}{'max |official|':>16}{cols}{cols}{'f32 vs f64':>14}")
        for k in OUTPUTS:
            row = f"  {k:<9}{str(ref32[k].shape):>14}{float(np.abs(ref32[k]).max()):>16.4g}"
            for precision, table in tables.items():
                diff, _, rel = table[k]
                row += f"{diff:>15.3g}{rel:>11.2e}"
                worst[precision] = max(worst[precision], rel)
            print(row + f"{floor[k][2]:>14.2e}")
    ok = True
    for precision, w in worst.items():
        passed = w <= args.tol
        ok &= passed
        print(f"\n{precision}: worst relative difference {w:.2e}: {'PASS' if passed else 'FAIL'} (tol {args.tol:g})")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmv_lite.tools.check_official", description=__doc__.split("\n\n")[0])
    p.add_argument("--official-repo", required=True, help="checkout of google-deepmind/deepmind-research (has mmv/)")
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    p.add_argument("--batch", type=int, default=2, help="clips compared")
    p.add_argument("--calib-batch", type=int, default=4, help="clips whose statistics become the BN moving averages")
    p.add_argument("--frames", type=int, default=8, help="T (even: S3D-G input is folded 2x2x2)")
    p.add_argument("--size", type=int, default=64, help="H = W (even)")
    p.add_argument("--audio-frames", type=int, default=32, help="log-mel frames F")
    p.add_argument("--mels", type=int, default=80)
    p.add_argument("--words", type=int, default=16, help="words per narration")
    p.add_argument("--vocab", type=int, default=1000, help="rows of the random word matrix (the release has 65536)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--keep", help="folder to keep the generated release-format pickles in")
    args = p.parse_args(argv)
    if args.frames % 2 or args.size % 2:
        p.error("--frames and --size must be even (S3D-G's input is folded 2 x 2 x 2 as in the release)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
