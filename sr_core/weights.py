"""Weights files: file -> state dict + metadata -> built model, and back.

Our format is safetensors whose header metadata holds the architecture config,
normalisation stats, the input resize filter and a training summary, so a model
is rebuilt from stated parameters rather than guessed.  fastai v1 checkpoints
(``learn.save()``: ``{"model": state_dict, "opt": ...}``) are imported through
``fastai_to_native_keys``, the only place key names are translated.  Pickles
are only ever read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import site
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sr_core.arch import SuperResUNet, UNetConfig, build_unet
from sr_core.errors import (
    CorruptWeightsError,
    WeightsMismatchError,
    WeightsNotFoundError,
)

log = logging.getLogger(__name__)

FORMAT_NAME = "upscaler-weights"
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_ENV = "UPSCALER_WEIGHTS"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")


@dataclass(frozen=True)
class WeightsInfo:
    """Metadata stored beside the tensors.

    Attributes:
        arch: architecture config the tensors belong to.
        name: human-readable model name.
        created: ISO date the file was written.
        resize_filter: Pillow filter used to resize inputs to the output size
            during training ("bicubic", "bilinear", "lanczos"); inference uses it too.
        mean, std: normalisation applied to inputs and undone on outputs.
        training: free-form training summary (recipe, steps, hours, metrics).
    """

    arch: UNetConfig = field(default_factory=UNetConfig)
    name: str = "upscaler-unet"
    created: str = ""
    resize_filter: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    training: Mapping[str, object] = field(default_factory=dict)

    def to_header(self) -> dict[str, str]:
        return {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "arch": json.dumps(self.arch.to_dict()),
            "name": self.name,
            "created": self.created,
            "resize_filter": self.resize_filter,
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "training": json.dumps(dict(self.training)),
        }

    @classmethod
    def from_header(cls, header: Mapping[str, str], path: Path) -> WeightsInfo:
        if header.get("format") != FORMAT_NAME:
            raise CorruptWeightsError(
                f"{path} is a safetensors file but not an Upscaler weights file "
                f"(no '{FORMAT_NAME}' metadata). Export weights with "
                "'python -m sr_core.training export'."
            )
        version = int(header.get("format_version", "0"))
        if version > FORMAT_VERSION:
            raise CorruptWeightsError(
                f"{path} uses weights format {version}; this Upscaler reads up to "
                f"{FORMAT_VERSION}. Update Upscaler."
            )
        try:
            return cls(
                arch=UNetConfig.from_dict(json.loads(header["arch"])),
                name=header.get("name", path.stem),
                created=header.get("created", ""),
                resize_filter=header.get("resize_filter", "bicubic"),
                mean=tuple(json.loads(header["mean"])),  # type: ignore[arg-type]
                std=tuple(json.loads(header["std"])),  # type: ignore[arg-type]
                training=json.loads(header.get("training", "{}")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptWeightsError(f"{path}: unreadable metadata ({exc}).") from exc


# fastai DynamicUnet positional prefixes -> our module names (spec §7).
_FASTAI_PREFIXES = {
    "layers.0.": "encoder.",
    "layers.1.": "bottleneck_bn.",
    "layers.3.": "middle.",
    "layers.4.": "blocks.0.",
    "layers.5.": "blocks.1.",
    "layers.6.": "blocks.2.",
    "layers.7.": "blocks.3.",
    "layers.8.": "final_shuffle.",
    "layers.10.": "residual.",
    "layers.11.": "head.",
}
_WEIGHT_NORM_SUFFIXES = {
    ".weight_g": ".parametrizations.weight.original0",
    ".weight_v": ".parametrizations.weight.original1",
}


def fastai_to_native_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a fastai v1 DynamicUnet state dict to this package's key names.

    Raises:
        WeightsMismatchError: a key matches no known fastai prefix.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        prefix = next((p for p in _FASTAI_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            raise WeightsMismatchError(
                f"Key {key!r} is not part of a fastai ResNet U-Net "
                "(unet_learner with norm_type=NormType.Weight, no self-attention)."
            )
        new = _FASTAI_PREFIXES[prefix] + key[len(prefix) :]
        for old_suffix, new_suffix in _WEIGHT_NORM_SUFFIXES.items():
            if new.endswith(old_suffix):
                new = new[: -len(old_suffix)] + new_suffix
        out[new] = tensor
    return out


def _infer_fastai_config(state: Mapping[str, torch.Tensor]) -> UNetConfig:
    """Pick the encoder from tensor shapes (the checkpoint carries no config)."""
    bottleneck = state["bottleneck_bn.weight"].shape[0]
    if bottleneck == 2048:
        return UNetConfig(encoder="resnet50", icnr=False)
    depth3 = {k.split(".")[2] for k in state if k.startswith("encoder.6.")}
    encoder = "resnet34" if len(depth3) == 6 else "resnet18"
    # fastai <= 1.0.55 blurred the final shuffle too; we cannot tell, assume 1.0.61.
    return UNetConfig(encoder=encoder, icnr=False)


def _sniff(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(16)
    if len(head) < 8:
        raise CorruptWeightsError(f"{path} is empty or truncated ({len(head)} bytes).")
    # safetensors first: its leading header length can begin with b"PK" or 0x80.
    header_len = int.from_bytes(head[:8], "little")
    if head[8:9] == b"{" and header_len < 100_000_000:
        return "safetensors"
    if head[:2] == b"PK":
        return "torch-zip"
    if head[0] == 0x80:
        return "pickle"
    return "unknown"


def read_weights(
    path: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    """Read tensors (native key names) and metadata from a weights file.

    Accepts our safetensors files and fastai v1 ``learn.save()`` checkpoints.

    Raises:
        WeightsNotFoundError: no such file.
        CorruptWeightsError: truncated, unknown format, or unsafe pickle.
        WeightsMismatchError: a torch checkpoint that is not a fastai U-Net.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError(
            f"Weights file not found: {p}. Pass --weights FILE, set {WEIGHTS_ENV}, or "
            "train and export weights (see README, 'Training')."
        )
    kind = _sniff(p)
    if kind == "safetensors":
        try:
            state = load_file(str(p))
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as fh:
                header = fh.metadata() or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CorruptWeightsError(
                f"{p} is damaged or truncated ({exc}). Download or export it again."
            ) from exc
        return state, WeightsInfo.from_header(header, p)
    if kind in ("torch-zip", "pickle"):
        # "pickle": torch's format before 1.6, as the lesson's files; the
        # weights-only unpickler reads it as safely as the zip format.
        return _read_torch_checkpoint(p)
    raise CorruptWeightsError(
        f"{p} is not a weights file (neither safetensors nor a PyTorch checkpoint)."
    )


def _read_torch_checkpoint(p: Path) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        # weights_only refuses unknown globals with an UnpicklingError (a RuntimeError
        # subclass in recent torch); truncation shows up as RuntimeError/EOFError.
        raise CorruptWeightsError(
            f"{p} could not be read safely ({type(exc).__name__}: {exc}). It may be "
            "truncated, or contain Python objects other than tensors."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - pickle.UnpicklingError and friends
        raise CorruptWeightsError(f"{p} could not be read safely: {exc}") from exc
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise WeightsMismatchError(
            f"{p} is a PyTorch file but holds no state dict (expected a fastai "
            "learn.save() checkpoint or a plain state dict)."
        )
    native = (
        fastai_to_native_keys(state)
        if any(k.startswith("layers.") for k in state)
        else dict(state)
    )
    if "bottleneck_bn.weight" not in native:
        raise WeightsMismatchError(f"{p} does not look like a U-Net checkpoint.")
    info = WeightsInfo(
        arch=_infer_fastai_config(native),
        name=p.stem,
        resize_filter="bilinear",
        training={"source": "fastai v1 checkpoint"},
    )
    return native, info


def build_model_from_weights(
    state: Mapping[str, torch.Tensor], info: WeightsInfo, source: str = "weights"
) -> SuperResUNet:
    """Rebuild the architecture from ``info`` and load ``state`` strictly.

    Raises:
        WeightsMismatchError: missing, unexpected or mis-shaped tensors.
    """
    model = build_unet(info.arch)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {wrong[:2]})")
        raise WeightsMismatchError(
            f"{source} does not match a {info.arch.encoder} U-Net: "
            + "; ".join(parts)
            + ". The file was made for another architecture or is incomplete."
        )
    cast = {
        k: v.to(expected[k].dtype) if v.is_floating_point() else v
        for k, v in state.items()
    }
    model.load_state_dict(cast, strict=True)
    return model


def save_weights(
    path: str | os.PathLike[str],
    model: SuperResUNet,
    info: WeightsInfo,
    half: bool = True,
) -> Path:
    """Write ``model``'s tensors and ``info`` to a safetensors file atomically.

    Args:
        half: store floating tensors as fp16 (halves the file; compute stays fp32/bf16).
    """
    p = Path(path)
    state = {}
    for k, v in model.state_dict().items():
        t = v.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.to(torch.float16)
        state[k] = t.contiguous()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=info.to_header())
        # mkstemp makes the file owner-only; give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def bundled_weights_dirs() -> list[Path]:
    """Folders searched for shipped weights, in order.

    Frozen app (PyInstaller): ``<bundle>/weights``.  Source checkout or editable
    install: ``<repo>/weights``.  Installed package:
    ``<prefix>/share/upscaler/weights``, or under ``site.USER_BASE`` for
    ``pip install --user``.
    """
    dirs = []
    if getattr(sys, "frozen", False):
        dirs.append(
            Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "weights"
        )
    dirs.append(Path(__file__).resolve().parent.parent / "weights")
    for base in (sys.prefix, site.USER_BASE):
        if base:  # USER_BASE is None where user site-packages are disabled
            dirs.append(Path(base) / "share" / "upscaler" / "weights")
    return list(dict.fromkeys(dirs))  # frozen: the first two are the same folder


def default_weights_path() -> Path:
    """The weights file used when none is given.

    ``$UPSCALER_WEIGHTS`` wins; otherwise the file named in ``manifest.json`` (or
    the only weights file) in the first bundled folder that has one.

    Raises:
        WeightsNotFoundError: nothing found; the message says how to get weights.
    """
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    searched = bundled_weights_dirs()
    for d in searched:
        manifest = d / "manifest.json"
        if manifest.is_file():
            try:
                default = json.loads(manifest.read_text())["default"]
            except (ValueError, KeyError) as exc:
                raise CorruptWeightsError(f"{manifest} is not valid: {exc}") from exc
            if (d / default).is_file():
                return d / default
        files = sorted(f for f in d.glob("*") if f.suffix in WEIGHT_SUFFIXES)
        if files:
            return files[0]
    raise WeightsNotFoundError(
        "No trained weights found (looked in "
        + ", ".join(str(d) for d in searched)
        + "). Pass --weights FILE or set UPSCALER_WEIGHTS, or train and export "
        "them: python -m sr_core.training train ... then "
        "python -m sr_core.training export (see README, 'Training')."
    )
