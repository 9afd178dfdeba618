"""Checks of the exercises on the networks: the FAC embeddings (01), one training step (03), deflating a 3D
convolution (05)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..losses import nce
from ..models.deflation import DeflatedConv3d, static_clip
from ..models.heads import EmbeddingGraph
from ..optim import build_optimiser, train_step
from .core import as_tensor, call, close, fn_name, paired_embeddings, randn, register
from .solutions import deflate_conv, fac_embeddings, training_step

_FAC_DIMS = {"d_v": 12, "d_a": 10, "d_t": 9, "d_va": 8, "d_vat": 6}
_FAC_KEYS = ("z_v_va", "z_a_va", "z_v_vat", "z_a_vat", "z_t_vat")
_FAC_SIZES = (
    "here f_v has 12 features, f_a 10, f_t 9; S_va has 8 dimensions, S_vat 6: g_v_to_va maps 12 -> 8, g_a_to_va "
    "10 -> 8, g_va_to_vat 8 -> 6 (it takes an embedding of S_va, not a feature), g_t_to_vat 9 -> 6"
)


def _fac_heads(gen: torch.Generator) -> nn.ModuleDict:
    d = _FAC_DIMS
    shapes = {"g_v_to_va": ("d_v", "d_va"), "g_a_to_va": ("d_a", "d_va"), "g_va_to_vat": ("d_va", "d_vat")}
    shapes["g_t_to_vat"] = ("d_t", "d_vat")
    heads = nn.ModuleDict()
    for name, (i, o) in shapes.items():
        layer = nn.Linear(d[i], d[o])
        with torch.no_grad():
            layer.weight.copy_(randn(gen, d[o], d[i]) / d[i] ** 0.5)
            layer.bias.copy_(0.5 * randn(gen, d[o]))
        heads[name] = layer
    return heads.eval()


def _fac_reference(heads: nn.ModuleDict, f_v, f_a, f_t) -> dict[str, torch.Tensor]:
    """The library's FAC graph (:class:`mmv_lite.models.heads.EmbeddingGraph`) running on these heads, eval mode."""

    graph = EmbeddingGraph("fac", **_FAC_DIMS)
    graph.heads = heads
    graph.eval()
    with torch.no_grad():
        return {**graph.video(f_v), **graph.audio(f_a), **graph.text(f_t)}


def _fac_error(e: Exception) -> str | None:
    if "shape" in str(e) or "size" in str(e):
        return f"a head got an input of the wrong size; {_FAC_SIZES}."
    if isinstance(e, (KeyError, AttributeError)):
        return "the heads are heads['g_v_to_va'], heads['g_a_to_va'], heads['g_va_to_vat'] and heads['g_t_to_vat']."
    return None


@register("fac", "01_model", "FAC embeddings", fac_embeddings, "the same five embeddings as the library's FAC graph")
def _check_fac(fn: Callable) -> str | None:
    gen = torch.Generator().manual_seed(1)
    for B, K in ((4, 3), (3, 1)):
        heads = _fac_heads(gen)
        f_v, f_a = randn(gen, B, _FAC_DIMS["d_v"]), randn(gen, B, _FAC_DIMS["d_a"])
        f_t = randn(gen, B, K, _FAC_DIMS["d_t"])
        ref = _fac_reference(heads, f_v, f_a, f_t)
        with torch.no_grad():
            got = call(fn, heads, f_v, f_a, f_t, on_error=_fac_error)
        if not isinstance(got, dict):
            return f"{fn_name(fn)} should return a dict with the keys {', '.join(_FAC_KEYS)}; got {type(got).__name__}."
        missing = [k for k in _FAC_KEYS if k not in got]
        if missing == ["z_a_vat"]:
            return (
                "z_a_vat is missing. In FAC the audio reaches S_vat through the video's path: "
                "z_a_vat = g_va_to_vat(relu(z_a_va)). No loss compares audio with text; this path is what makes "
                "zero-shot audio->text retrieval possible (notebook 06)."
            )
        if missing:
            return f"the result has no {', '.join(missing)}; expected the keys {', '.join(_FAC_KEYS)}."
        g = heads["g_va_to_vat"]
        with torch.no_grad():
            for key in _FAC_KEYS:
                z = as_tensor(got[key], key)
                want = ref[key].double()
                if close(z, want):
                    continue
                if z.shape != want.shape:
                    extra = ""
                    if key == "z_t_vat" and z.shape == want.shape[:1] + want.shape[2:]:
                        extra = (
                            " Keep the K candidates: g_t_to_vat works on the last axis, so f_t (B, K, d_t) gives "
                            "(B, K, d_vat); MIL-NCE needs every candidate separately."
                        )
                    return f"{key} has shape {tuple(z.shape)}, expected {tuple(want.shape)}.{extra}"
                if close(z, F.normalize(want, dim=-1)):
                    return (
                        f"{key} is L2-normalised. The heads leave embeddings unnormalised (the losses and the "
                        "retrieval normalise when they compare), so return the heads' outputs as they are."
                    )
                src = "z_v_va" if key == "z_v_vat" else "z_a_va"
                if key in ("z_v_vat", "z_a_vat"):
                    z_src = ref[src]
                    if close(z, g(z_src).double()):
                        return (
                            f"{key} = g_va_to_vat({src}) has no ReLU: the composed path is "
                            f"{key} = g_va_to_vat(relu({src}))."
                        )
                    if close(z, torch.relu(g(z_src)).double()) or close(z, torch.relu(g(torch.relu(z_src))).double()):
                        return (
                            f"the ReLU goes before g_va_to_vat, not after it: {key} = g_va_to_vat(relu({src})); "
                            "embeddings may be negative."
                        )
                    if key == "z_a_vat" and close(z, ref["z_v_vat"].double()):
                        return "z_a_vat is the video's z_v_vat: start from the audio, g_va_to_vat(relu(z_a_va))."
                    if key == "z_a_vat" and close(z, g(torch.relu(ref["z_v_va"])).double()):
                        return "z_a_vat was computed from z_v_va: start from the audio, g_va_to_vat(relu(z_a_va))."
                return f"{key} differs from the library's FAC graph ({_FAC_SIZES})."
    return None


class _TwoTowers(nn.Module):
    """A toy video-audio model for the training-step check: ``(video (B, 6), audio (B, 5)) -> z_v_va, z_a_va``."""

    def __init__(self):
        super().__init__()
        self.video = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
        self.audio = nn.Linear(5, 4)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"z_v_va": self.video(video), "z_a_va": self.audio(audio)}


def _step_loss(out: dict[str, torch.Tensor]) -> torch.Tensor:

    return nce(out["z_v_va"], out["z_a_va"], tau=0.2)


def _step_setup() -> tuple[_TwoTowers, list[dict[str, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)  # the model's initialisation (inside fork_rng: the caller's generator is untouched)
    model = _TwoTowers()
    batches = []
    for _ in range(3):
        v, a = paired_embeddings(gen, 8, 4)
        batches.append({"video": torch.cat([v, v[:, :2]], dim=1), "audio": torch.cat([a, a[:, :1]], dim=1)})
    return model, batches


def _step_optimiser(model: nn.Module):
    return build_optimiser(model.parameters(), TrainConfig(lr=0.05, amp=False), "cpu", amp=False, schedule=False)


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).double()


def _step_variant(kind: str) -> Callable:
    """A wrong training step of the given kind (to recognise a student's mistake by the same trajectory)."""

    def step(model, inputs, loss_fn, optimizer):
        if kind == "eval":
            model.eval()
        out = model(**inputs)
        loss = loss_fn(out)
        if kind not in ("no_zero_grad", "zero_grad_late"):
            optimizer.zero_grad()
        (-loss if kind == "ascent" else loss).backward()
        if kind == "zero_grad_late":
            optimizer.zero_grad()
        optimizer.step()
        if kind == "two_steps":
            optimizer.step()
        return loss.item()

    return step


_STEP_MISTAKES = (
    (
        "no_zero_grad",
        "the first step is right, the next ones are not: the gradients of earlier steps were added in. backward() ADDS "
        "to every parameter's .grad, so call optimizer.zero_grad() before loss.backward() in every step.",
    ),
    (
        "ascent",
        "the parameters moved the wrong way (gradient ascent): backward on the loss itself, loss.backward(), and let "
        "the optimizer subtract.",
    ),
    (
        "eval",
        "the model ran in evaluation mode (model.eval()): BatchNorm then uses its running statistics instead of the "
        "batch's. A training step leaves the mode alone; the model is already in training mode.",
    ),
    ("two_steps", "optimizer.step() was called twice: one step per batch."),
)


@register(
    "train_step",
    "03_pretraining",
    "one training step",
    training_step,
    "the parameters move exactly as mmv_lite.optim.train_step moves them, three steps in a row",
)
def _check_train_step(fn: Callable) -> str | None:

    model, batches = _step_setup()
    student, reference = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    opt_s, opt_r = _step_optimiser(student), _step_optimiser(reference)
    start = _flat(student)

    def on_error(e: Exception) -> str | None:
        text = str(e)
        if "does not require grad" in text:
            return (
                "the loss has no gradient to follow: the forward pass ran under torch.no_grad() (or the loss was "
                "detached, e.g. with .item()) before backward."
            )
        if "backward through the graph a second time" in text:
            return "backward was called twice on the same loss: once per step."
        if "positional argument" in text or "keyword argument" in text:
            return "call the model with the batch's entries by name, model(**inputs), and the loss as loss_fn(output)."
        return None

    path, returned, ref_losses = [], [], []
    for inputs in batches:
        returned.append(call(fn, student, inputs, _step_loss, opt_s.optimizer, on_error=on_error))
        path.append(_flat(student))
        ref_losses.append(train_step(reference, inputs, lambda out: {"loss": _step_loss(out)}, opt_r)["loss"].item())
        if not close(path[-1], _flat(reference), rtol=1e-5, atol=1e-6):
            break
    else:
        if not student.training:
            return "the model was left in evaluation mode: a training step must not change the mode."
        for got, want in zip(returned, ref_losses):
            if got is None:
                return f"the parameters move as they should, but {fn_name(fn)} returns None: return loss.item()."
            value = as_tensor(got, "the returned loss")
            if value.numel() != 1 or not math.isclose(value.item(), want, rel_tol=1e-4, abs_tol=1e-6):
                return (
                    "the parameters move as they should, but the returned value is not this batch's loss "
                    f"(yours {value.flatten()[:3].tolist()}, expected {want:.4f}): return loss.item()."
                )
        return None

    n = len(path)
    if torch.equal(path[0], start):
        grads = [p.grad for p in student.parameters()]
        if any(g is not None and g.abs().sum() > 0 for g in grads):
            return (
                "the parameters did not move, although they have gradients: call optimizer.step() after "
                "loss.backward()."
            )
        return (
            "the parameters did not move, and they hold no gradients when the step ends: loss.backward() must run, "
            "and optimizer.zero_grad() must come BEFORE it (zero_grad after backward throws the gradients away). "
            "The order: forward, loss, zero_grad, backward, step."
        )
    for kind, hint in _STEP_MISTAKES:
        twin = copy.deepcopy(model).train()
        opt = _step_optimiser(twin)
        twin_path = []
        for inputs in batches[:n]:
            _step_variant(kind)(twin, inputs, _step_loss, opt.optimizer)
            twin_path.append(_flat(twin))
        if all(close(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(path, twin_path)):
            return hint
    where = "the first step" if n == 1 else f"step {n}"
    return f"after {where} the parameters differ from the reference step's (mmv_lite.optim.train_step)."


def _deflation_target(conv3d: nn.Conv3d, images: torch.Tensor) -> torch.Tensor:
    """What the deflated conv must give: the library's DeflatedConv3d where it is exact (no temporal padding), else
    the 3D conv on a long static clip (mmv_lite.models.deflation.static_clip) at a frame its window sees no padding."""

    with torch.no_grad():
        if conv3d.padding[0] == 0:
            return DeflatedConv3d(conv3d)(images)
        kT, pT, sT = conv3d.kernel_size[0], conv3d.padding[0], conv3d.stride[0]
        out = conv3d(static_clip(images, 4 * kT * sT + 2 * pT))
        frame = -(-pT // sT)  # the first output frame whose window lies inside the clip
        return out[:, :, frame]


def _deflation_cases(gen: torch.Generator) -> list[tuple[nn.Conv3d, torch.Tensor]]:
    cases = []
    for cin, cout, k, stride, pad, bias in (
        (3, 5, (3, 3, 3), (1, 1, 1), (0, 1, 1), True),
        (4, 6, (5, 3, 3), (1, 2, 2), (2, 1, 1), True),
        (2, 3, (3, 5, 5), (2, 1, 1), (1, 2, 2), False),
    ):
        conv = nn.Conv3d(cin, cout, k, stride=stride, padding=pad, bias=bias)
        with torch.no_grad():
            conv.weight.copy_(randn(gen, *conv.weight.shape) / (cin * k[0] * k[1] * k[2]) ** 0.5)
            if bias:
                conv.bias.copy_(randn(gen, cout))
        cases.append((conv.eval(), torch.rand(2, cin, 9, 11, generator=gen)))
    return cases


def _image_conv_error(e: Exception) -> str | None:
    if "Expected" in str(e) or "dim" in str(e) or "size" in str(e):
        return (
            "the deflated convolution takes images (B, C, H, W): build an nn.Conv2d (not an nn.Conv3d) with "
            "kernel_size=conv3d.kernel_size[1:] and a weight of shape (out, in, kH, kW)."
        )
    return None


@register(
    "deflate",
    "05_deflation",
    "deflating a 3D convolution",
    deflate_conv,
    "on static clips it gives what the 3D convolution gives (mmv_lite.models.deflation)",
)
def _check_deflate(fn: Callable) -> str | None:
    for conv3d, images in _deflation_cases(torch.Generator().manual_seed(6)):
        before = {k: v.clone() for k, v in conv3d.state_dict().items()}
        conv2d = call(fn, conv3d)
        if any(not torch.equal(before[k], v) for k, v in conv3d.state_dict().items()):
            return (
                "the 3D convolution was changed in place: the video network must stay as it was; build a new "
                "nn.Conv2d and copy the summed kernel into it (conv3d.weight.sum(dim=2) makes a new tensor)."
            )
        if isinstance(conv2d, torch.Tensor):
            return (
                f"{fn_name(fn)} returned a tensor of shape {tuple(conv2d.shape)}; return a module (an nn.Conv2d) that "
                "takes images (B, C, H, W), with that kernel as its weight."
            )
        if conv2d is None:
            return f"{fn_name(fn)} returned None: did you forget `return conv2d`?"
        want = _deflation_target(conv3d, images)
        with torch.no_grad():
            got = call(conv2d, images, on_error=_image_conv_error)
        got = as_tensor(got, "the deflated convolution's output")
        kT = conv3d.kernel_size[0]
        desc = (
            f"(a Conv3d with kernel {tuple(conv3d.kernel_size)}, stride {tuple(conv3d.stride)}, padding "
            f"{tuple(conv3d.padding)}, bias {conv3d.bias is not None})"
        )
        if got.shape != want.shape:
            return (
                f"on images {tuple(images.shape)} the output has shape {tuple(got.shape)}, expected "
                f"{tuple(want.shape)} {desc}: keep the SPATIAL stride and padding, conv3d.stride[1:] and "
                "conv3d.padding[1:]; only the temporal ones disappear."
            )
        if close(got, want.double(), rtol=1e-4, atol=1e-5):
            continue
        w, b = conv3d.weight.detach(), conv3d.bias
        s = dict(stride=conv3d.stride[1:], padding=conv3d.padding[1:])

        def out(weight, bias=b, images=images, s=s):
            return F.conv2d(images, weight, None if bias is None else bias.detach(), **s).double()

        if close(got, out(w.mean(dim=2))):
            return (
                f"the kernel was averaged over time. On a static clip all {kT} time steps see the same image and their "
                f"responses ADD UP: sum over time (an average gives 1/{kT} of the video network's response)."
            )
        if any(close(got, out(w[:, :, i])) for i in range(kT)):
            return (
                "one time slice of the kernel was kept. Each of the kT slices sees the same image on a static clip, "
                "so all of them contribute: sum the kernel over its time axis, weight.sum(dim=2)."
            )
        if b is not None and close(got, out(w.sum(dim=2), bias=None)):
            return "the bias is missing: copy conv3d.bias into the 2D convolution."
        if b is not None and close(got, out(w.sum(dim=2), bias=b * kT)):
            return "the bias was multiplied by kT: it is added once per output position, not once per time step."
        return f"the output differs from the 3D convolution on a static clip {desc}."
    return None
