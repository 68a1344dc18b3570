"""Learning-rate schedules as ``LambdaLR`` multipliers, stepped once per iteration."""
from __future__ import annotations

import math


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.01):
    """Linear warmup from ~0 to 1 over ``warmup_steps``, then cosine down to ``min_ratio``."""
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}), total > 0")

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f
