"""facescope headless engine: detection, alignment, embedding, gallery, metrics. Never imports Qt."""
