"""What one frame costs with each preset and image budget: prompt tokens and seconds per frame of the
LVLM with 2k = 6 questions (3 classes), and of the preset's CLIP, so a user knows before starting how
long a video takes.

    python -m benchmarks.bench_presets [--device cpu cuda] [--presets cpu light] [--budgets full base]
                                       [--frame 426x240] [--repeats 3] [--tune 1 4 8]

The models are random-weight models built with the REAL dimensions of each preset's checkpoints (the
numbers below, written down from their published configs; nothing is downloaded) and the real
tokenizers of tests/data/tokenizers, scored through the engine's own `LVLMScorer` (prefix caching,
packed questions, the budget applied through the processor's options) on one frame of --frame pixels.
Random weights cost what trained ones cost: the arithmetic is the same.

On the CPU a model too big for this machine's memory in float32 (LLaVA-OneVision 7B: ~32 GB) is built
with --cpu-layers of its language model's layers; the time spent inside those layers is measured (hooks)
and the missing layers are added at the measured time per layer. Those rows say so. On CUDA every model
is built whole, in bfloat16, and the rows add frames per second, prompt tokens per second and peak GPU
memory; --tune N... measures frames per second of the `balanced` preset at frames_per_batch N.

One line per (preset, budget), exactly
    preset=<name> budget=<b> tokens_per_frame=<n> s_per_frame=<x> device=<cpu|cuda>
and one per CLIP (`clip=<model> s_per_frame=<x> device=<d>`) and per compared candidate LVLM
(`candidate=<name> ...`, same fields). `main(argv)` returns the rows.
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks import common

QUESTIONS_K = 3            # classes per frame: 2k = 6 questions, what CLIP filtering keeps (top 3)
CPU_MAX_PARAMS = 2.0e9     # larger models are built with --cpu-layers language-model layers on the CPU
CLIP_FRAMES = {"cpu": 4, "cuda": 16}  # frames per embed_images call (16 = the pipeline's chunk)
# open_clip towers that do not fit this machine's memory in float32 (EVA02-E-14-plus: a 4.4B-parameter
# image tower, ~18 GB): measured on CUDA only.
CLIP_CPU_SKIP = ("EVA02-E-14-plus",)
SECONDS_PER_HOUR = 3600.0
FRAMES_PER_VIDEO_HOUR = 3600  # sampled at 1 fps


# --------------------------------------------------------------------------------------------------
# The checkpoints' dimensions. Sources (published config files and model cards, read without
# downloading any weights):
#  [ov7b]  llava-hf/llava-onevision-qwen2-7b-ov-hf config.json, as republished with the quantized copy
#          https://huggingface.co/mgoin/llava-onevision-qwen2-7b-ov-hf-bnb-full-4bit/blob/main/config.json
#          (model_type llava_onevision, the 36 anyres grid points 384..2304, image_token_index 151646) and
#          the text model of lmms-lab/llava-onevision-qwen2-7b-ov (config.json: hidden_size 3584,
#          intermediate_size 18944, 28 layers, 28 heads, 4 key/value heads), the Qwen2-7B-Instruct sizes.
#  [ov05b] llava-hf/llava-onevision-qwen2-0.5b-ov-hf: Qwen2-0.5B text model (config.json of Qwen2-0.5B /
#          Qwen2.5-0.5B: hidden_size 896, intermediate_size 4864, 24 layers, 14 heads, 2 key/value heads,
#          tied embeddings) with the same vision tower and grid as [ov7b].
#  [siglip] the SigLIP-so400m-patch14-384 tower as llava-hf converts it (vision_config of
#          https://huggingface.co/llava-hf/llava-interleave-qwen-7b-hf/blob/main/config.json, the same
#          conversion: hidden_size 1152, intermediate_size 4304, 26 layers, 16 heads, 384 px, patch 14),
#          vision_feature_layer -1, vision_feature_select_strategy "full", vision_aspect_ratio anyres_max_9;
#          the image processor's defaults in transformers (LlavaOnevisionImageProcessor: 384x384 crops,
#          the same 36 grid points) are those of the checkpoints' preprocessor_config.json.
#  [smol256] HuggingFaceTB/SmolVLM-256M-Instruct (model card: Idefics3 architecture, SigLIP
#          base-patch16-512 93M tower, 64 visual tokens per 512x512 patch, SmolLM2-135M-Instruct text model;
#          https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct), the SmolLM2-135M-Instruct config.json
#          (hidden_size 576, intermediate_size 1536, 30 layers, 9 heads, 3 key/value heads, head_dim 64),
#          google/siglip-base-patch16-512 (hidden_size 768, intermediate_size 3072, 12 layers, 12 heads,
#          512 px, patch 16), scale_factor 4 (1024 patches -> 64 tokens), processor_config.json image_seq_len
#          64 (tests/data/tokenizers/smolvlm-256m), image splitting into 512 px tiles of frames resized to a
#          longest edge of 4 x 512 (the transformers SmolVLM documentation's defaults).
#  [smol500] HuggingFaceTB/SmolVLM-500M-Instruct: the same tower and processor with the SmolLM2-360M text
#          model (hidden_size 960, intermediate_size 2560, 32 layers, 15 heads, 5 key/value heads; the
#          text_config of the SmolVLM2-500M config.json).


@dataclass(frozen=True)
class LVLMDims:
    name: str
    arch: str                    # "llava_onevision" or "idefics3"
    vision: dict[str, Any]
    text: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


SIGLIP_SO400M_384 = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                         image_size=384, patch_size=14)  # [siglip]
SIGLIP_B16_512 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                      image_size=512, patch_size=16)  # [smol256]
SMOLVLM_PROCESSOR = dict(scale_factor=4, image_seq_len=64, longest_edge=4 * 512, tile=512)  # [smol256]
DIMS = {
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": LVLMDims(
        "LLaVA-OneVision-7B", "llava_onevision", SIGLIP_SO400M_384,
        dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
             num_key_value_heads=4, tie_word_embeddings=False)),  # [ov7b]
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": LVLMDims(
        "LLaVA-OneVision-0.5B", "llava_onevision", SIGLIP_SO400M_384,
        dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
             num_key_value_heads=2, tie_word_embeddings=True)),  # [ov05b]
    "HuggingFaceTB/SmolVLM-500M-Instruct": LVLMDims(
        "SmolVLM-500M-Instruct", "idefics3", SIGLIP_B16_512,
        dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
             num_key_value_heads=5, head_dim=64, tie_word_embeddings=False), SMOLVLM_PROCESSOR),  # [smol500]
}
# Compared for the cpu preset (not a preset): the next size down.
CANDIDATES = {
    "HuggingFaceTB/SmolVLM-256M-Instruct": LVLMDims(
        "SmolVLM-256M-Instruct", "idefics3", SIGLIP_B16_512,
        dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
             num_key_value_heads=3, head_dim=64, tie_word_embeddings=False), SMOLVLM_PROCESSOR),  # [smol256]
}


def approx_params(dims: LVLMDims, vocab: int) -> float:
    """Parameters of the language model and vision tower (weights of the linear layers and embeddings)."""
    def tower(d: dict[str, Any], kv_heads: int | None = None) -> float:
        h, inter, layers = d["hidden_size"], d["intermediate_size"], d["num_hidden_layers"]
        head_dim = d.get("head_dim") or h // d["num_attention_heads"]
        kv = (kv_heads or d["num_attention_heads"]) * head_dim
        mlp = (3 if kv_heads else 2) * h * inter
        return layers * (2 * h * h + 2 * h * kv + mlp)

    text = dims.text
    embeddings = vocab * text["hidden_size"] * (1 if text.get("tie_word_embeddings", True) else 2)
    return tower(dims.vision) + tower(text, text["num_key_value_heads"]) + embeddings


# --------------------------------------------------------------------------------------------------
# Building random-weight models of those dimensions


def _tokenizer(arch: str):
    from tests import tiny_models

    if arch == "llava_onevision":
        return tiny_models._qwen2_tokenizer(("<image>", "<video>"))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_models.DATA / "smolvlm-256m"))


def build(dims: LVLMDims, device: str, dtype, text_layers: int | None = None):
    """(model, processor) of these dimensions with random weights on `device` in `dtype`; text_layers:
    build only that many language-model layers (and tie the embeddings, which costs no time per frame)."""
    import json

    import torch
    import transformers as tf

    from tests import tiny_models

    tok = _tokenizer(dims.arch)
    text = dict(dims.text, vocab_size=len(tok), max_position_embeddings=32768)
    if text_layers is not None:
        text.update(num_hidden_layers=text_layers, tie_word_embeddings=True)
    if dims.arch == "llava_onevision":
        image_id, video_id = tok.convert_tokens_to_ids(["<image>", "<video>"])
        config = tf.LlavaOnevisionConfig(
            vision_config=tf.SiglipVisionConfig(**dims.vision), text_config=tf.Qwen2Config(**text),
            image_token_index=image_id, video_token_index=video_id, vision_feature_select_strategy="full",
            vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9",
            tie_word_embeddings=text.get("tie_word_embeddings", False))
        model_class = tf.LlavaOnevisionForConditionalGeneration
        side = dims.vision["image_size"]
        processor = tf.LlavaOnevisionProcessor(
            image_processor=tf.LlavaOnevisionImageProcessor(), tokenizer=tok,
            video_processor=tf.LlavaOnevisionVideoProcessor(),
            num_image_tokens=(side // dims.vision["patch_size"]) ** 2, vision_feature_select_strategy="full",
            chat_template=tiny_models.LLAVA_OV_TEMPLATE, vision_aspect_ratio="anyres_max_9")
    else:
        config = tf.Idefics3Config(
            vision_config=tf.Idefics3VisionConfig(**dims.vision),
            text_config=tf.LlamaConfig(**text, pad_token_id=tok.pad_token_id, rope_theta=100000.0),
            image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=dims.extra["scale_factor"],
            tie_word_embeddings=text.get("tie_word_embeddings", False))
        model_class = tf.Idefics3ForConditionalGeneration
        template = json.loads((tiny_models.DATA / "smolvlm-256m" / "chat_template.json").read_text())["chat_template"]
        processor = tf.Idefics3Processor(
            image_processor=tf.Idefics3ImageProcessor(do_image_splitting=True,
                                                      size={"longest_edge": dims.extra["longest_edge"]},
                                                      max_image_size={"longest_edge": dims.extra["tile"]}),
            tokenizer=tok, chat_template=template, image_seq_len=dims.extra["image_seq_len"])
    torch.manual_seed(0)
    with torch.device(device):
        model = model_class._from_config(config, dtype=dtype)
    return model.eval(), processor


def text_layers_of(model):
    """The language model's decoder layers (a ModuleList)."""
    inner = getattr(model, "model", model)
    text = getattr(inner, "language_model", None) or getattr(inner, "text_model", None)
    return text.layers


class LayerClock:
    """Seconds spent inside the language model's layers (forward hooks), for extrapolating a model
    built with fewer layers."""

    def __init__(self, layers) -> None:
        self.seconds, self._t0 = 0.0, {}
        self._handles = []
        for layer in layers:
            self._handles.append(layer.register_forward_pre_hook(self._start))
            self._handles.append(layer.register_forward_hook(self._stop))

    def _start(self, module, args) -> None:
        self._t0[id(module)] = time.perf_counter()

    def _stop(self, module, args, output) -> None:
        self.seconds += time.perf_counter() - self._t0.pop(id(module))

    def close(self) -> None:
        for h in self._handles:
            h.remove()


# --------------------------------------------------------------------------------------------------
# Measuring


def questions(template: str) -> list[str]:
    from benchmarks.bench_scoring import QUERIES
    from zeal.queries import prompt_text

    texts = []
    for label, start, end in QUERIES[:QUESTIONS_K]:
        texts += [prompt_text(label, start, template), prompt_text(label, end, template)]
    return texts


def prompt_tokens(scorer, frame, text: str) -> int:
    """Prompt tokens of one frame and one question (image tokens + template + question)."""
    from PIL import Image

    return int(scorer._encode([scorer.render(text)], [Image.fromarray(frame)])["input_ids"].shape[1])


def time_scorer(scorer, frames: list, texts: list[str], repeats: int, device: str,
                clock: LayerClock | None = None, warmup: int = 1) -> tuple[float, float]:
    """(median wall seconds of one p_yes call, median seconds inside the text layers during it)."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        scorer.p_yes(frames, texts)
    walls, inside = [], []
    for _ in range(repeats):
        before = clock.seconds if clock else 0.0
        sync()
        t0 = time.perf_counter()
        scorer.p_yes(frames, texts)
        sync()
        walls.append(time.perf_counter() - t0)
        inside.append((clock.seconds - before) if clock else 0.0)
    return common.median(walls), common.median(inside)


def bench_lvlm(key: str, dims: LVLMDims, cfg_lvlm, budgets: list[str], device: str, frame, repeats: int,
               cpu_layers: int, tune: list[int], label: tuple[str, str]) -> list[dict]:
    """Rows of one checkpoint: one per budget (and per frames_per_batch when tuning on CUDA)."""
    import torch

    from zeal.scorers.local import LVLMScorer, _pick_dtype

    dtype = _pick_dtype(cfg_lvlm.dtype, torch.device(device))  # the preset's: bf16 on CUDA
    vocab = len(_tokenizer(dims.arch))
    truncate = device == "cpu" and approx_params(dims, vocab) > CPU_MAX_PARAMS
    layers_real = dims.text["num_hidden_layers"]
    model, processor = build(dims, device, dtype, cpu_layers if truncate else None)
    clock = LayerClock(text_layers_of(model)) if truncate else None
    texts = questions(cfg_lvlm.prompt_template)
    rows = []
    try:
        scorers = {b: LVLMScorer(model, processor, f"bench/{dims.name}", frames_per_batch=1,
                                 answer_spellings=cfg_lvlm.answer_spellings, image_budget=b) for b in budgets}
        if truncate:  # one run each (minutes), the layers' time measured inside
            measured = {}
            for budget, scorer in scorers.items():
                _activate(scorer)
                wall, inside = time_scorer(scorer, [frame], texts, 1, device, clock, warmup=0)
                measured[budget] = wall + (inside / cpu_layers) * (layers_real - cpu_layers)
        else:  # the budgets take turns in every repeat, so a load that comes and goes hits all alike
            sync = torch.cuda.synchronize if device == "cuda" else None
            runs = {b: (lambda s=s: (_activate(s), s.p_yes([frame], texts))) for b, s in scorers.items()}
            measured = {b: common.median(t) for b, t in common.median_times(runs, repeats, 1, sync).items()}
        for budget, scorer in scorers.items():
            seconds, tokens = measured[budget], prompt_tokens(scorer, frame, texts[0])
            row = {label[0]: label[1], "checkpoint": key, "model": dims.name, "budget": str(budget),
                   "tokens_per_frame": tokens, "s_per_frame": seconds, "device": device,
                   "questions": len(texts), "frame": f"{frame.shape[1]}x{frame.shape[0]}",
                   "dtype": str(dtype).replace("torch.", ""), "threads": torch.get_num_threads(),
                   "extrapolated_from_layers": f"{cpu_layers} of {layers_real}" if truncate else None,
                   "frames_per_s": 1.0 / seconds, "prompt_tokens_per_s": tokens / seconds}
            if device == "cuda":
                _activate(scorer)
                torch.cuda.reset_peak_memory_stats()
                scorer.p_yes([frame], texts)
                row.update(gpu=torch.cuda.get_device_name(), peak_gpu_gb=torch.cuda.max_memory_allocated() / 2 ** 30)
            rows.append(row)
            print(f"{label[0]}={label[1]} budget={budget} tokens_per_frame={tokens} s_per_frame={seconds:.3f} "
                  f"device={device}", flush=True)
            if device == "cuda" and tune and label == ("preset", "balanced") and budget == str(cfg_lvlm.image_budget):
                _activate(scorer)
                rows += tune_batch(scorer, frame, texts, tune, repeats)
    finally:
        if clock:
            clock.close()
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def _activate(scorer) -> None:
    """Scorers of several budgets share one model here: give the model this scorer's anyres grid
    (LLaVA-OneVision reads it from its config) before the scorer runs."""
    from zeal.scorers.image_budget import _share_grid

    points = getattr(scorer.processor.image_processor, "image_grid_pinpoints", None)
    if points:
        _share_grid(scorer.model, points)


def tune_batch(scorer, frame, texts: list[str], sizes: list[int], repeats: int) -> list[dict]:
    """Frames per second of one p_yes call over n frames at frames_per_batch n, on CUDA."""
    import torch

    rows = []
    for n in sizes:
        scorer.frames_per_batch = n
        torch.cuda.reset_peak_memory_stats()
        wall, _ = time_scorer(scorer, [frame] * n, texts, repeats, "cuda")
        fps = n / wall
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        rows.append({"tune": "balanced", "frames_per_batch": n, "frames_per_s": fps, "peak_gpu_gb": peak,
                     "device": "cuda"})
        print(f"tune preset=balanced frames_per_batch={n} frames_per_s={fps:.2f} peak_gpu_gb={peak:.1f} "
              "device=cuda", flush=True)
    scorer.frames_per_batch = 1
    return rows


def bench_clip(name: str, device: str, frame, repeats: int) -> dict | None:
    """Seconds per frame of the preset's CLIP (real architecture, random weights) embedding frames."""
    if device == "cpu" and name in CLIP_CPU_SKIP:
        print(f"clip={name} skipped on the cpu: its image tower does not fit this machine's memory", flush=True)
        return None
    from benchmarks.bench_clip import build_scorer

    scorer = build_scorer(device, name)
    frames = [frame] * CLIP_FRAMES[device]
    wall, _ = time_scorer(_ClipCall(scorer), frames, [], repeats, device)
    seconds = wall / len(frames)
    del scorer
    gc.collect()
    print(f"clip={name} s_per_frame={seconds:.3f} device={device}", flush=True)
    return {"clip": name, "s_per_frame": seconds, "device": device}


class _ClipCall:
    """embed_images behind the p_yes signature, so one timing helper serves both."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer

    def p_yes(self, frames, texts):
        return self.scorer.embed_images(frames)


def summary(rows: list[dict]) -> list[list[Any]]:
    """Per preset row: LVLM and CLIP seconds per frame, and hours per video-hour at 1 frame per second."""
    clip = {(r["clip"], r["device"]): r["s_per_frame"] for r in rows if "clip" in r}
    from zeal.config import get_preset

    out = []
    for r in rows:
        if "preset" not in r:
            continue
        c = clip.get((get_preset(r["preset"]).clip.model, r["device"]))
        total = r["s_per_frame"] + (c or 0.0)
        # at 1 fps an hour of video is 3600 frames: hours per video-hour = seconds per frame
        out.append([r["preset"], r["budget"], r["device"], r["tokens_per_frame"], r["s_per_frame"], c,
                    total, total * FRAMES_PER_VIDEO_HOUR / SECONDS_PER_HOUR,
                    r.get("extrapolated_from_layers") or ""])
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    from zeal.config import IMAGE_BUDGETS, get_preset, list_presets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda when there is one")
    ap.add_argument("--presets", nargs="+", default=None, choices=list_presets())
    ap.add_argument("--budgets", nargs="+", default=list(IMAGE_BUDGETS), help="full, base and/or pixel counts")
    ap.add_argument("--frame", default="426x240", help="WxH of the frame (the app samples 720p at 768x432)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-layers", type=int, default=2, help="language-model layers built for a model too big "
                                                              "for the CPU's memory (the rest extrapolated)")
    ap.add_argument("--no-candidates", action="store_true", help="skip the LVLMs compared for the cpu preset")
    ap.add_argument("--no-clip", action="store_true")
    ap.add_argument("--tune", type=int, nargs="*", default=[], help="CUDA: frames_per_batch values for balanced")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads on the CPU")
    ap.add_argument("--quick", action="store_true", help="the cpu preset only, one repeat")
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.presets, args.repeats, args.no_candidates = ["cpu"], 1, True
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    presets = args.presets or list_presets()
    width, height = (int(v) for v in args.frame.lower().split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    print(f"{common.machine_line()}; frame {width}x{height}, {2 * QUESTIONS_K} questions", flush=True)
    rows: list[dict] = []
    with torch.inference_mode():
        for device in devices:
            for name in presets:
                cfg = get_preset(name)
                budgets = list(dict.fromkeys([str(cfg.lvlm.image_budget), *args.budgets]))
                rows += bench_lvlm(cfg.lvlm.model, DIMS[cfg.lvlm.model], cfg.lvlm, budgets, device, frame,
                                   args.repeats, args.cpu_layers, args.tune, ("preset", name))
            if not args.no_candidates:
                cpu = get_preset("cpu").lvlm
                for key, dims in CANDIDATES.items():
                    rows += bench_lvlm(key, dims, cpu, [str(cpu.image_budget)], device, frame, args.repeats,
                                       args.cpu_layers, [], ("candidate", dims.name))
            if not args.no_clip:
                for clip in dict.fromkeys(get_preset(n).clip.model for n in presets):
                    row = bench_clip(clip, device, frame, args.repeats)
                    rows += [row] if row else []
    print()
    common.print_table(["preset", "budget", "device", "tokens", "LVLM s/frame", "CLIP s/frame", "s/frame",
                        "h per video-h at 1 fps", "LM layers built"], summary(rows))
    return rows


if __name__ == "__main__":
    main()
