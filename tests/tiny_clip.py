"""A tiny open_clip model for tests and benchmarks: a real open_clip CLIP architecture (ViT image tower,
transformer text tower, the real BPE tokenizer) at toy size with random weights, saved to a checkpoint
file so that it loads through `ClipScorer.from_pretrained(model_name, checkpoint_path)`, the path a
user with local weights takes."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP_NAME = "zeal-tiny-ViT"
# Real open_clip config keys; sizes chosen to build in well under a second on a CPU.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
WEIGHTS_SEED = 1234


def register_tiny_clip(directory: str | Path) -> str:
    """Write the config json into `directory` and register it with open_clip; returns the model name."""
    import open_clip

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / f"{TINY_CLIP_NAME}.json"
    config_path.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2))
    if TINY_CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(config_path)
    return TINY_CLIP_NAME


def build_tiny_clip(directory: str | Path, seed: int = WEIGHTS_SEED) -> tuple[str, str]:
    """Register the tiny config and save seeded random weights to `directory/tiny_clip.pt`.

    Returns (model_name, checkpoint_path). The global torch RNG is left untouched.
    """
    import open_clip
    import torch

    name = register_tiny_clip(directory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(name, pretrained=None)
        checkpoint = Path(directory) / "tiny_clip.pt"
        torch.save(model.state_dict(), checkpoint)
    return name, str(checkpoint)
