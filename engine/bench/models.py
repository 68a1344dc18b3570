"""Per-model CPU cost: each shipped model as prepared now vs the same graph with PRelu kept.

For every model card: the prepared file (``engine.models.prepare``: dequantized, PRelu
rewritten, dynamic dims) and the "plain" graph (dequantized and dynamic, PRelu as shipped)
run the same random input on ONE ONNX Runtime thread (what the engine gives detectors and
landmarks with several sources; per-call cost, not latency), interleaved call by call so a
VM's speed drift hits both alike. Reported per model: input shape, PRelu nodes rewritten,
median CPU ms per call of each graph, their ratio, and the largest output difference
(the rewrite must not change values beyond float rounding). Detectors without a fixed size
run at ``det_size`` (W, H): 640x384, the real-time default for 1280x720.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from engine.backends.onnxruntime import OrtSession
from engine.models import ModelCard, prepared_model_path, shipped_cards


def _plain_graph(card: ModelCard) -> tuple[bytes, int]:
    """The prepared recipe without the PRelu rewrite; returns (model bytes, PRelu nodes in it)."""
    from engine.models.prepare import prepare_graph

    model = prepare_graph(card, rewrite_prelu=False)
    return model.SerializeToString(), sum(n.op_type == "PRelu" for n in model.graph.node)


def _input_shape(card: ModelCard, det_size: tuple[int, int]) -> tuple[int, ...]:
    w, h = card.input_size if card.input_size is not None else det_size
    return (1, 3, h, w)


def bench_model(card: ModelCard, repeats: int = 30, threads: int = 1,
                det_size: tuple[int, int] = (640, 384), seed: int = 0) -> dict:
    """One card: {input, prelu_rewritten, plain_ms, prepared_ms, speedup, max_abs_diff}."""
    plain_bytes, prelus = _plain_graph(card)
    with tempfile.TemporaryDirectory(prefix="facescope-bench-") as tmp:  # the session keeps what it loaded
        plain_path = Path(tmp) / "plain.onnx"
        plain_path.write_bytes(plain_bytes)
        # the engine's own sessions (engine.backends.onnxruntime): same options as a live run
        sessions = {"plain": OrtSession(plain_path, threads),
                    "prepared": OrtSession(prepared_model_path(card), threads)}
    shape = _input_shape(card, det_size)
    x = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    feeds = {k: {s.input_names[0]: x} for k, s in sessions.items()}
    outs = {k: s.run(feeds[k]) for k, s in sessions.items()}  # also the first-call warm-up
    diff = max((float(np.max(np.abs(v - outs["prepared"][name]))) if v.size else 0.0
                for name, v in outs["plain"].items()), default=0.0)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(repeats):
        for k, s in sessions.items():
            t = time.thread_time()  # this thread's CPU: with threads=1 ORT computes on the caller's thread
            s.run(feeds[k])
            times[k].append(1000.0 * (time.thread_time() - t))
    plain, prepared = (float(np.median(times[k])) for k in ("plain", "prepared"))
    return {"input": list(shape), "prelu_rewritten": prelus, "plain_ms": plain, "prepared_ms": prepared,
            "speedup": plain / prepared if prepared > 0 else float("nan"), "max_abs_diff": diff}


def bench_models(names: list[str] | None = None, repeats: int = 30, threads: int = 1,
                 det_size: tuple[int, int] = (640, 384)) -> dict:
    """Every shipped model (or ``names``): ``{name: bench_model(...)}`` plus ``threads``."""
    cards = shipped_cards()
    chosen = names or sorted(cards)
    unknown = [n for n in chosen if n not in cards]
    if unknown:
        raise ValueError(f"no shipped model named {', '.join(unknown)} (shipped: {', '.join(sorted(cards))})")
    return {"threads": threads, "repeats": repeats,
            "models": {n: bench_model(cards[n], repeats, threads, det_size) for n in chosen}}


def format_models(result: dict) -> str:
    lines = [f"per-model CPU per call, {result['threads']} ONNX Runtime thread(s), median of {result['repeats']}:"]
    for name, r in result["models"].items():
        shape = "x".join(str(v) for v in r["input"])
        lines.append(f"  {name:>18} [{shape}]: prepared {r['prepared_ms']:.2f} ms vs PRelu kept {r['plain_ms']:.2f} ms"
                     f" ({r['speedup']:.2f}x, {r['prelu_rewritten']} PRelu rewritten), max |diff| "
                     f"{r['max_abs_diff']:.1e}")
    return "\n".join(lines)
