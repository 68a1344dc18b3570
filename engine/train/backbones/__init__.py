"""Face-recognition backbones: (N, 3, 112, 112) float32 aligned faces -> (N, D) embeddings.

One registry, one factory::

    net = create_backbone("resnet18", embedding_size=512, dropout=0.1, width=0.5)
    y1 = create_backbone("mobilefacenet_y1", weights="model-y1-0000.xml")  # pretrained InsightFace

Each backbone expects its own input normalisation (:func:`input_normalisation`, in the model-card
convention: ``(pixel - mean) / std`` on 0-255 pixels in ``color_order``):

- ``resnet18``, ``resnet34``, ``se_resnet18``, ``se_resnet34``, ``mobilefacenet``:
  ``(BGR pixel - 127.5) / 127.5``.
- ``mobilefacenet_y1``: raw BGR pixels 0-255 (its ``(x - 127.5) / 128`` is inside the module).

Outputs are not L2-normalised (margin losses and exporters normalise themselves).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from engine.registry import Registry
from engine.train.backbones import mobilefacenet, mobilefacenet_y1, resnet

BACKBONES: Registry[nn.Module] = Registry("backbone")

_NORMALISATION: dict[str, dict[str, object]] = {}


def _register(name: str, normalisation: dict[str, object]):
    _NORMALISATION[name] = normalisation
    return BACKBONES.register(name)


for _name, _factory in (("resnet18", resnet.resnet18), ("resnet34", resnet.resnet34),
                        ("se_resnet18", resnet.se_resnet18), ("se_resnet34", resnet.se_resnet34)):
    _register(_name, resnet.INPUT_NORMALISATION)(_factory)


@_register("mobilefacenet", mobilefacenet.INPUT_NORMALISATION)
def _mobilefacenet(embedding_size: int = 128) -> nn.Module:
    return mobilefacenet.MobileFaceNet(embedding_size)


@_register("mobilefacenet_y1", mobilefacenet_y1.INPUT_NORMALISATION)
def _mobilefacenet_y1(embedding_size: int = mobilefacenet_y1.EMBEDDING_SIZE,
                      weights: str | Path | None = None) -> nn.Module:
    if embedding_size != mobilefacenet_y1.EMBEDDING_SIZE:
        raise ValueError(f"mobilefacenet_y1 is fixed at {mobilefacenet_y1.EMBEDDING_SIZE}-d (the pretrained "
                         f"InsightFace layout), got embedding_size={embedding_size}; "
                         "use 'mobilefacenet' for other sizes")
    return mobilefacenet_y1.from_ir(weights) if weights is not None else mobilefacenet_y1.MobileFaceNetY1()


def create_backbone(name: str, embedding_size: int | None = None, **kwargs) -> nn.Module:
    """Build backbone ``name`` -> module mapping (N, 3, 112, 112) float32 to (N, embedding_size).

    ``embedding_size=None`` takes the backbone's default (512 for the ResNets, 128 for the
    MobileFaceNets). Other keywords go to the backbone: ``dropout``, ``width`` (ResNets);
    ``weights=path/to/model-y1-0000.xml`` (mobilefacenet_y1). Raises ValueError for an unknown
    name or an invalid size.
    """
    if name not in BACKBONES.names():
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES.names())}")
    if embedding_size is not None:
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or embedding_size <= 0:
            raise ValueError(f"embedding_size must be a positive integer, got {embedding_size!r}")
        kwargs["embedding_size"] = embedding_size
    return BACKBONES.create(name, **kwargs)


def input_normalisation(name: str) -> dict[str, object]:
    """``{"mean": (3 floats), "std": (3 floats), "color_order": "BGR"|"RGB"}`` for backbone ``name``."""
    if name not in _NORMALISATION:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES.names())}")
    return dict(_NORMALISATION[name])


__all__ = ["BACKBONES", "create_backbone", "input_normalisation"]
