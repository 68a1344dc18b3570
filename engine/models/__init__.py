"""Model cards, shipped model files and their preparation (dequantization, caching)."""
from engine.models.card import ModelCard, ModelSource, find_card, load_card, model_source, shipped_cards
from engine.models.prepare import cache_dir, prepared_model_path

__all__ = ["ModelCard", "ModelSource", "find_card", "load_card", "model_source", "shipped_cards", "cache_dir",
           "prepared_model_path"]
