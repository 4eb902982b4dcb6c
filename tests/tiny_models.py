"""Tiny random-weight models of the real architectures, for tests and benchmarks: vision-language
models (below) and an open_clip CLIP (`build_tiny_clip`), plus `TinyModels` (the set the tests share,
built once per session by the `tiny` fixture of conftest.py) and `tiny_config` (the configuration that
points the engine at them).

Each builder makes a model from the REAL config class, the REAL processor classes and a REAL tokenizer
(copied into tests/data/tokenizers/ with its LICENSE; Pixtral's tekken file ships inside the pinned
`mistral-common` package), saves everything with `save_pretrained` into a folder and returns that folder,
so the scorer loads it exactly as it loads a user's local or hub model.

Sizes are chosen so that a forward pass takes milliseconds on a CPU: hidden width 32-64, one or two
layers, images of 28-56 px at patch 14. The text weights are initialised wider than the transformers
default (see _widen_init) so that the logits, and hence P(yes), spread across images and texts: an
equality test between two code paths is then meaningful (a wrong position or a wrong mask moves P(yes)
by far more than the 1e-4 tolerance).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

DATA = Path(__file__).resolve().parent / "data" / "tokenizers"
SEED = 0
# transformers initialises with std 0.02; at a hidden width of 64 that gives logits of ~0.1 and a P(yes)
# nearly flat at 0.5. Unit-gain weights and a wider output head spread the logits over a few units.
LOGIT_GAIN = 4.0
PATCH = 14

# LLaVA-OneVision's own template (llava-hf), written out here: a default system turn, the user turn with
# every image first (one "<image>\n" each) and then the text, and the assistant generation prompt.
LLAVA_OV_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The Qwen2 folder's chat_template.json is the BASE model's (it joins content parts, no roles). The
# instruct models (Qwen2-VL-*-Instruct, Qwen2.5-VL-*-Instruct) render the layout quoted in
# shared/data/tokenizers/README.md; this template is written to produce exactly that layout.
QWEN2_VL_INSTRUCT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'video' %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Pixtral (mistral-community/pixtral-12b) layout, as mistral-common renders it:
# <s>[INST][IMG]...[IMG_END]question[/INST] -- image first, then the text, no system turn.
PIXTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST]' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '[IMG]' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '[/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{{ eos_token }}{% endif %}{% endfor %}"
)


def _qwen2_tokenizer(extra_special: tuple[str, ...] = ()):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(DATA / "qwen2"))
    if extra_special:
        tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in extra_special],
                       special_tokens=True)
    return tok


def _widen_init(model) -> None:
    """Re-draw every weight matrix with unit gain (std 1/sqrt(fan_in)) and the output head with
    LOGIT_GAIN, so activations keep their scale through the layers and logits spread over a few units.
    Norm weights stay at 1 and biases at 0."""
    import torch

    head = model.get_output_embeddings().weight
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim < 2:
                continue
            fan_in = param[0].numel()
            gain = LOGIT_GAIN if param is head else 1.0
            param.normal_(0.0, gain / fan_in ** 0.5)


def _save(model, processor, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny_llava_onevision(out_dir: str | Path) -> Path:
    """LLaVA-OneVision (SigLIP tower, Qwen2 LM, anyres tiling) with the Qwen2 tokenizer. -> folder."""
    import torch
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                              LlavaOnevisionVideoProcessor, Qwen2Config, SiglipVisionConfig)

    image_size = 2 * PATCH
    # The real checkpoints add "<image>" and "<video>" to the Qwen2 vocabulary (as 151646/151647); the
    # shared Qwen2 files give those ids to other tokens, so here they are appended after the last one.
    tok = _qwen2_tokenizer(("<image>", "<video>"))
    image_id, video_id = tok.convert_tokens_to_ids(["<image>", "<video>"])
    pinpoints = [[image_size * a, image_size * b] for a in (1, 2) for b in (1, 2)]
    torch.manual_seed(SEED)
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=image_size, patch_size=PATCH),
        text_config=Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=4096, tie_word_embeddings=False),
        image_token_index=image_id, video_token_index=video_id, image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full", vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9",
    )
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    _widen_init(model)
    image_processor = LlavaOnevisionImageProcessor(size={"height": image_size, "width": image_size},
                                                   crop_size={"height": image_size, "width": image_size},
                                                   image_grid_pinpoints=pinpoints)
    video_processor = LlavaOnevisionVideoProcessor(size={"height": image_size, "width": image_size})
    processor = LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok,
                                        video_processor=video_processor,
                                        num_image_tokens=(image_size // PATCH) ** 2,
                                        vision_feature_select_strategy="full", chat_template=LLAVA_OV_TEMPLATE,
                                        vision_aspect_ratio="anyres_max_9")
    return _save(model, processor, Path(out_dir))


def _build_qwen_vl(out_dir: str | Path, version: str) -> Path:
    import torch
    import transformers as tf

    tok = _qwen2_tokenizer()
    torch.manual_seed(SEED)
    head_dim = 16
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=64 // head_dim, num_key_value_heads=2, max_position_embeddings=4096,
                # M-RoPE sections (temporal, height, width) sum to head_dim / 2
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    special = dict(image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
                   video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
                   vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
                   vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"))
    if version == "2":
        vision = dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, patch_size=PATCH,
                      spatial_merge_size=2, temporal_patch_size=2, mlp_ratio=2)
        config = tf.Qwen2VLConfig(vision_config=vision, text_config=text, **special)
        model_class, processor_class = tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
    else:
        # window attention over 2x2 merged patches in layer 0, full attention in layer 1
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                      patch_size=PATCH, spatial_merge_size=2, temporal_patch_size=2,
                      window_size=2 * 2 * PATCH, fullatt_block_indexes=[1])
        config = tf.Qwen2_5_VLConfig(vision_config=vision, text_config=text, **special)
        model_class, processor_class = tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor
    model = model_class(config).eval()
    _widen_init(model)
    # min/max pixels pin the dynamic resolution to small grids: at most 4x4 patches, i.e. 2x2 tokens
    # after the 2x2 merge.
    image_processor = tf.Qwen2VLImageProcessor(min_pixels=(2 * PATCH) ** 2, max_pixels=(4 * PATCH) ** 2,
                                               patch_size=PATCH, merge_size=2, temporal_patch_size=2)
    processor = processor_class(image_processor=image_processor, tokenizer=tok,
                                video_processor=tf.Qwen2VLVideoProcessor(),
                                chat_template=QWEN2_VL_INSTRUCT_TEMPLATE)
    return _save(model, processor, Path(out_dir))


def build_tiny_qwen2_vl(out_dir: str | Path) -> Path:
    """Qwen2-VL (M-RoPE, dynamic resolution) with the Qwen2 tokenizer and the instruct layout. -> folder."""
    return _build_qwen_vl(out_dir, "2")


def build_tiny_qwen2_5_vl(out_dir: str | Path) -> Path:
    """Qwen2.5-VL (M-RoPE, windowed vision attention) with the Qwen2 tokenizer. -> folder."""
    return _build_qwen_vl(out_dir, "2.5")


def build_tiny_idefics3(out_dir: str | Path) -> Path:
    """Idefics3 / SmolVLM (image splitting, pixel shuffle) with SmolVLM-256M's tokenizer and template. -> folder."""
    import torch
    from transformers import (AutoTokenizer, Idefics3Config, Idefics3ForConditionalGeneration,
                              Idefics3ImageProcessor, Idefics3Processor, Idefics3VisionConfig, LlamaConfig)

    source = DATA / "smolvlm-256m"
    tok = AutoTokenizer.from_pretrained(str(source))
    template = json.loads((source / "chat_template.json").read_text())["chat_template"]
    image_size, scale_factor = 4 * PATCH, 2
    torch.manual_seed(SEED)
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=image_size, patch_size=PATCH),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                                pad_token_id=tok.pad_token_id),
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=scale_factor,
    )
    model = Idefics3ForConditionalGeneration(config).eval()
    _widen_init(model)
    # Splitting on: an image larger than one tile becomes a grid of tiles plus the global view.
    image_processor = Idefics3ImageProcessor(do_image_splitting=True, size={"longest_edge": 2 * image_size},
                                             max_image_size={"longest_edge": image_size})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, chat_template=template,
                                  image_seq_len=(image_size // PATCH) ** 2 // scale_factor ** 2)
    return _save(model, processor, Path(out_dir))


def tekken_tokenizer(chat_template: str | None = PIXTRAL_TEMPLATE):
    """Pixtral's tekken tokenizer from the pinned mistral-common package, converted by transformers."""
    import mistral_common
    from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

    path = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
    return convert_tekken_tokenizer(str(path), chat_template=chat_template)


def build_tiny_pixtral(out_dir: str | Path) -> Path:
    """Pixtral: LlavaForConditionalGeneration with a Pixtral vision tower (2-D RoPE, [IMG_BREAK] rows)
    and a Mistral LM, with the tekken tokenizer. -> folder."""
    import torch
    from transformers import (LlavaConfig, LlavaForConditionalGeneration, MistralConfig, PixtralImageProcessor,
                              PixtralProcessor, PixtralVisionConfig)

    tok = tekken_tokenizer()
    image_size = 4 * PATCH
    torch.manual_seed(SEED)
    config = LlavaConfig(
        vision_config=PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=2, image_size=image_size, patch_size=PATCH),
        text_config=MistralConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  head_dim=16, max_position_embeddings=4096, sliding_window=None),
        image_token_index=tok.convert_tokens_to_ids("[IMG]"), vision_feature_layer=-1,
        vision_feature_select_strategy="full", projector_hidden_act="gelu", multimodal_projector_bias=True,
    )
    model = LlavaForConditionalGeneration(config).eval()
    _widen_init(model)
    image_processor = PixtralImageProcessor(size={"longest_edge": image_size}, patch_size=PATCH)
    processor = PixtralProcessor(image_processor=image_processor, tokenizer=tok, patch_size=PATCH,
                                 spatial_merge_size=1, chat_template=PIXTRAL_TEMPLATE)
    return _save(model, processor, Path(out_dir))


BUILDERS: dict[str, Callable[[str | Path], Path]] = {
    "llava_onevision": build_tiny_llava_onevision,
    "qwen2_vl": build_tiny_qwen2_vl,
    "qwen2_5_vl": build_tiny_qwen2_5_vl,
    "idefics3": build_tiny_idefics3,
    "pixtral": build_tiny_pixtral,
}


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block. The tiny models do microseconds of work per op;
    on a shared 2-core machine a second thread costs far more in synchronisation than it saves
    (measured 100x slower per op under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ensure_tiny_models(root: str | Path, archs: list[str] | None = None) -> dict[str, Path]:
    """Build each tiny model into root/<arch>/ unless a complete build is already there.

    Returns {arch: folder}. A marker file written last makes an interrupted build count as missing.
    """
    root = Path(root)
    out: dict[str, Path] = {}
    for arch in archs or list(BUILDERS):
        folder = root / arch
        marker = folder / ".complete"
        if not marker.exists():
            with single_thread():
                BUILDERS[arch](folder)
            marker.write_text(json.dumps({"arch": arch, "seed": SEED}))
        out[arch] = folder
    return out


# --- a tiny open_clip CLIP ----------------------------------------------------------------------------
# A real open_clip CLIP architecture (ViT image tower, transformer text tower, the real BPE tokenizer) at
# toy size with random weights, saved to a checkpoint file so that it loads through
# `ClipScorer.from_pretrained(model_name, checkpoint_path)`, the path a user with local weights takes.
TINY_CLIP_NAME = "zeal-tiny-ViT"
# Real open_clip config keys; sizes chosen to build in well under a second on a CPU.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CLIP_WEIGHTS_SEED = 1234


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


def build_tiny_clip(directory: str | Path, seed: int = CLIP_WEIGHTS_SEED) -> tuple[str, str]:
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


# --- the shared set and the configuration that uses it ------------------------------------------------
@dataclass
class TinyModels:
    """The tiny CLIP (built at once) and tiny LVLMs (each built on first use) under one folder.

    clip_model: the registered open_clip name; clip_config: its config JSON (for --clip-config);
    clip_ckpt: the weights file; lvlm(arch): the folder of that architecture's tiny LVLM.
    """

    root: Path
    clip_model: str = ""
    clip_config: str = ""
    clip_ckpt: str = ""
    _lvlms: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        folder = Path(self.root) / "clip"
        checkpoint, marker = folder / "tiny_clip.pt", folder / ".complete"
        if marker.exists():
            self.clip_model = register_tiny_clip(folder)
        else:
            self.clip_model, _ = build_tiny_clip(folder)
            marker.write_text("ok")
        self.clip_config, self.clip_ckpt = str(folder / f"{TINY_CLIP_NAME}.json"), str(checkpoint)

    def lvlm(self, arch: str = "qwen2_vl") -> str:
        if arch not in self._lvlms:
            self._lvlms[arch] = str(ensure_tiny_models(Path(self.root) / "lvlm", [arch])[arch])
        return self._lvlms[arch]

    def app_flags(self, arch: str = "qwen2_vl") -> dict[str, str]:
        """The values of the app's model flags (--lvlm, --clip-model, --clip-pretrained, --clip-config)."""
        return {"lvlm": self.lvlm(arch), "clip_model": self.clip_model, "clip_pretrained": self.clip_ckpt,
                "clip_config": self.clip_config}


def tiny_config(models: TinyModels, cache_dir: str | Path, arch: str = "qwen2_vl", **sections: dict[str, Any]):
    """The ZealConfig of the tests: the tiny CLIP and the tiny LVLM of `arch` on the CPU, the score cache
    in cache_dir; `sections` override settings, e.g. video={"fps": 2}, lvlm={"frames_per_batch": 2}
    (preset=... starts from a preset instead of the defaults)."""
    from zeal.config import ZealConfig, get_preset, with_overrides

    preset = sections.pop("preset", None)
    base = get_preset(preset) if preset else ZealConfig()
    clip = {"model": models.clip_model, "pretrained": models.clip_ckpt, "device": "cpu", **sections.pop("clip", {})}
    lvlm = {"model": models.lvlm(arch), "device": "cpu", **sections.pop("lvlm", {})}
    config = with_overrides(base, clip=clip, lvlm=lvlm, **sections)
    config.cache_dir = str(cache_dir)
    return config
