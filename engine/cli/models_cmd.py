"""``facescope models``: the shipped models and their cards."""
from __future__ import annotations

import argparse

from engine.models import shipped_cards


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list shipped models with their model cards")
    p.add_argument("--verify", action="store_true", help="also check every file's sha256 against its card")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name, card in shipped_cards().items():
        size = "any" if card.input_size is None else "x".join(map(str, card.input_size))
        line = (f"{name:<8} {card.family:<9} {card.architecture:<22} input {size:<8} {card.color_order} "
                f"{card.quantization:<10} licence {card.licence:<11} sha256 {card.sha256[:12]}")
        if card.family == "embedder":
            line += f"  dim {card.embedding_size} threshold {card.threshold}"
        if args.verify:
            card.verify()
            line += "  [sha256 ok]"
        print(line)
    return 0
