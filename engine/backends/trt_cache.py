"""Where TensorRT plans live, and when one may be reused.

A serialized TensorRT engine is only valid for the exact network, TensorRT version (and its
CUDA build, cu12 or cu13), GPU model and compute capability it was built for, and it bakes in
the precision and the optimisation profile; the graph TensorRT saw also depends on the onnxslim
version that prepared it. :class:`EngineKey` holds all of these; its digest names the plan file
(``<cache>/trt/<model>-<digest16>.plan``) and a JSON sidecar records the fields. ``lookup``
returns a plan only when the sidecar matches the key field for field, so a stale or foreign
plan (other GPU, upgraded TensorRT, re-exported ONNX) is rebuilt, never deserialised.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.config import PRECISIONS
from engine.models.prepare import cache_dir
from engine.util.fsio import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class Profile:
    """One optimisation profile: per input name, (min, opt, max) shapes."""

    shapes: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]

    def __post_init__(self) -> None:
        for name, lo, opt, hi in self.shapes:
            if not (len(lo) == len(opt) == len(hi)) or not all(
                    0 < a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
                raise ValueError(f"profile for {name!r} needs 0 < min <= opt <= max per dim, got {lo}, {opt}, {hi}")

    def as_dict(self) -> dict[str, list[list[int]]]:
        return {name: [list(lo), list(opt), list(hi)] for name, lo, opt, hi in self.shapes}

    def covers(self, name: str, shape: tuple[int, ...]) -> bool:
        for n, lo, _, hi in self.shapes:
            if n == name:
                return len(shape) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True))
        return False


@dataclass(frozen=True)
class EngineKey:
    """Everything a plan depends on. ``onnx_sha256`` is the hash of the prepared ONNX file."""

    model: str
    onnx_sha256: str
    tensorrt: str
    gpu: str
    compute_capability: str
    precision: str
    profile: Profile
    calibration_sha256: str = ""   # int8 only: the calibration cache the scales came from
    tensorrt_build: str = "unknown"  # "cu12" | "cu13": which CUDA the TensorRT wheels target
    onnxslim: str = ""             # onnxslim version that prepared the graph ("" = not installed)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if len(self.onnx_sha256) != 64:
            raise ValueError("onnx_sha256 must be a sha256 hex digest")
        if self.precision == "int8" and not self.calibration_sha256:
            raise ValueError("an int8 engine key needs the calibration cache's sha256")

    def fields(self) -> dict:
        d = asdict(self)
        d["profile"] = self.profile.as_dict()
        return d

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()


def trt_cache_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "trt"


def plan_path(key: EngineKey, cache: Path | None = None) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key.model)
    return trt_cache_dir(cache) / f"{safe}-{key.precision}-{key.digest[:16]}.plan"


def lookup(key: EngineKey, cache: Path | None = None) -> Path | None:
    """The cached plan for ``key``, or None when absent, unreadable or built for something else."""
    plan = plan_path(key, cache)
    meta = plan.with_suffix(".json")
    if not plan.is_file() or not meta.is_file():
        return None
    try:
        recorded = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return plan if recorded.get("key") == key.fields() else None


def store(key: EngineKey, plan: bytes, cache: Path | None = None, build_seconds: float | None = None) -> Path:
    """Write the plan, then its sidecar (the sidecar last: a plan without one is never used)."""
    path = plan_path(key, cache)
    atomic_write_bytes(path, bytes(plan))
    meta = {"key": key.fields(), "bytes": len(plan), "build_seconds": build_seconds}
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def entries(cache: Path | None = None) -> list[dict]:
    """Every plan in the cache with its recorded key (``key`` None for an orphan plan)."""
    out = []
    for plan in sorted(trt_cache_dir(cache).glob("*.plan")):
        try:
            meta = json.loads(plan.with_suffix(".json").read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        out.append({"path": str(plan), "bytes": plan.stat().st_size, **meta, "key": meta.get("key")})
    return out


def clear(cache: Path | None = None) -> int:
    """Remove every plan, sidecar and calibration cache; returns how many files went."""
    root = trt_cache_dir(cache)
    n = 0
    for f in [f for pattern in ("*.plan", "*.json", "*.calib", "*.tmp") for f in root.glob(pattern)]:
        f.unlink(missing_ok=True)
        n += 1
    return n
