"""Model cards, shipped model files and their preparation (dequantization, caching)."""
from engine.models.card import ModelCard, find_card, load_card, shipped_cards
from engine.models.prepare import cache_dir, prepared_model_path

__all__ = ["ModelCard", "find_card", "load_card", "shipped_cards", "cache_dir", "prepared_model_path"]
