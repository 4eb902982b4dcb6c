"""LVLM scoring per frame: prefix-cached batched `LVLMScorer.p_yes` against the ways it is usually done.

For one frame and 2k questions (k classes, a start and an end question each), seconds per frame of:
  ours      LVLMScorer.p_yes: the image prefix once, then the 2k suffixes packed as one prefix-tree
            sequence on its cached keys/values (4-D mask), only the yes/no rows of the output head
  batched   the previous way of `ours`: the suffixes as a right-padded batch on per-text copies of the
            cached keys/values, full-vocabulary head (LVLMScorer's fallback for mask-less attention)
  forward   (a) one plain full forward per question (LVLMScorer.p_yes_reference)
  generate  (b) the published code's way: one generate(max_new_tokens=1, output_scores=True) per question
  floor     the cost of ONE single-question forward (the limit: the image prefix has to be paid once)
Targets at k = 3: ours >= 5x faster than (a), and within 1.3x of the floor.

The model is random-weight but of realistic proportions: LLaVA (LlavaForConditionalGeneration) with a
SigLIP tower at 384x384 px, patch 14 -> 729 image tokens, a Qwen2 language model and the real Qwen2
tokenizer; questions of about 30 tokens. It is built once into benchmarks/out/models/.

Run: python -m benchmarks.bench_scoring [--ks 1 3 10] [--repeats 5] [--device cpu cuda]
`main(argv)` returns the rows (one dict per device and k) for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from tests import tiny_models  # noqa: E402
from zeal.scorers.local import LVLMScorer  # noqa: E402
from zeal.queries import prompt_text  # noqa: E402

MODEL_DIR = ROOT / "benchmarks" / "out" / "models" / "llava_384_bench"
IMAGE_SIDE = 384
PATCH = 14                        # 384 // 14 = 27 -> 27 x 27 = 729 image tokens
VISION = dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4)
TEXT = dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=8,
            num_key_value_heads=2)
TARGET_VS_FORWARD = 5.0           # at k = 3: ours at least this many times faster than (a)
TARGET_VS_FLOOR = 1.3             # at k = 3: ours at most this many times one single-question forward
TARGET_K = 3
# (class, start question, end question): realistic lengths, ~30 tokens with the prompt template
QUERIES = [
    ("CliffDiving", "Is the person standing on the edge of a cliff above water?",
     "Is the person submerged in or breaking the surface of the water?"),
    ("LongJump", "Is the athlete sprinting down the runway towards the take-off board?",
     "Is the athlete landing in the sand pit with both feet?"),
    ("PoleVault", "Is the athlete running with the pole held at an angle in front?",
     "Is the athlete falling onto the landing mat after clearing the bar?"),
    ("BasketballDunk", "Is the player jumping towards the basket with the ball in hand?",
     "Is the player hanging from the rim after putting the ball through?"),
    ("GolfSwing", "Is the golfer standing still over the ball with the club behind it?",
     "Is the golfer holding the finish pose with the club over the shoulder?"),
    ("HammerThrow", "Is the athlete spinning inside the circle holding the hammer handle?",
     "Is the hammer flying away while the athlete stays inside the circle?"),
    ("JavelinThrow", "Is the athlete running with the javelin raised above the shoulder?",
     "Is the javelin in the air after leaving the athlete's hand?"),
    ("Shotput", "Is the athlete crouching at the back of the circle with the shot at the neck?",
     "Is the athlete's arm fully extended after pushing the shot away?"),
    ("SoccerPenalty", "Is the player running up towards the ball placed on the penalty spot?",
     "Is the goalkeeper diving or the ball crossing the goal line?"),
    ("TennisSwing", "Is the player drawing the racket back as the ball approaches?",
     "Is the racket crossing the body after hitting the ball?"),
]


def build_bench_model(out_dir: Path = MODEL_DIR) -> Path:
    """LLaVA with a 384 px SigLIP tower (729 image tokens), a 4-layer Qwen2 LM, the Qwen2 tokenizer."""
    from transformers import (LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, Qwen2Config,
                              SiglipImageProcessor, SiglipVisionConfig)

    marker = out_dir / ".complete"
    if marker.exists():
        return out_dir
    tok = tiny_models._qwen2_tokenizer(("<image>",))
    torch.manual_seed(tiny_models.SEED)
    config = LlavaConfig(
        vision_config=SiglipVisionConfig(image_size=IMAGE_SIDE, patch_size=PATCH, **VISION),
        text_config=Qwen2Config(vocab_size=len(tok), max_position_embeddings=4096, **TEXT),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    model = LlavaForConditionalGeneration(config).eval()
    tiny_models._widen_init(model)
    processor = LlavaProcessor(
        image_processor=SiglipImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}),
        tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="full",
        num_additional_image_tokens=0, chat_template=tiny_models.LLAVA_OV_TEMPLATE)
    tiny_models._save(model, processor, out_dir)
    marker.write_text("built")
    return out_dir


def questions(k: int) -> list[str]:
    """2k full user texts: the start and end question of k classes."""
    texts = []
    for label, start, end in QUERIES[:k]:
        texts += [prompt_text(label, start), prompt_text(label, end)]
    return texts


def p_yes_generate(scorer: LVLMScorer, image, texts: list[str]) -> np.ndarray:
    """Baseline (b): one generate() per question, P(yes) from the generation scores of the first step
    over the lowercase "yes"/"no" ids, as the published code did. -> [len(texts)]"""
    tok = scorer.tokenizer
    yes_id, no_id = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    out = []
    for text in texts:
        enc = scorer._to_device(scorer._encode([scorer.render(text)], [image]))
        gen = scorer.model.generate(**enc, max_new_tokens=1, do_sample=False, output_scores=True,
                                    return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
        pair = gen.scores[0][0, [yes_id, no_id]].double()
        out.append(torch.softmax(pair, dim=0)[0].item())
    return np.array(out)


def batched_scorer(scorer: LVLMScorer) -> LVLMScorer:
    """The same model scored the previous way: padded suffix batch, full output head."""

    class Batched(LVLMScorer):
        def _packing_possible(self) -> bool:
            return False

        def _head_rows_possible(self) -> bool:
            return False

    return Batched(scorer.model, scorer.processor, scorer.model_id, frames_per_batch=scorer.frames_per_batch)


def _median_seconds(runs: dict[str, Callable[[], object]], repeats: int, device: str) -> dict[str, float]:
    """Median wall seconds of each callable. The callables take turns within each repeat, so a load
    that comes and goes on a shared machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_device(device: str, ks: list[int], repeats: int) -> list[dict]:
    from PIL import Image

    dtype = "bfloat16" if device == "cuda" else "float32"
    scorer = LVLMScorer.from_pretrained(str(build_bench_model()), device=device, dtype=dtype,
                                        frames_per_batch=1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    pil = Image.fromarray(image)
    n_image_tokens = int((scorer._encode([scorer.render("x")], [pil])["input_ids"]
                          == scorer.model.config.image_token_index).sum())
    rows = []
    for k in ks:
        texts = questions(k)
        lengths = [len(scorer.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        ours = scorer.p_yes([image], texts)  # warm-up, and the check that all ways agree
        batched = batched_scorer(scorer)
        old = batched.p_yes([image], texts)
        reference = scorer.p_yes_reference([image], texts)
        generated = p_yes_generate(scorer, pil, texts)
        med = _median_seconds({"ours": lambda: scorer.p_yes([image], texts),
                               "batched": lambda: batched.p_yes([image], texts),
                               "forward": lambda: scorer.p_yes_reference([image], texts),
                               "generate": lambda: p_yes_generate(scorer, pil, texts),
                               "floor": lambda: scorer.p_yes_reference([image], texts[:1])}, repeats, device)
        t_ours, t_forward, t_generate, t_floor = med["ours"], med["forward"], med["generate"], med["floor"]
        rows.append({
            "device": device if device != "cuda" else torch.cuda.get_device_name(),
            "dtype": dtype, "threads": torch.get_num_threads(), "k": k, "questions": len(texts),
            "image_tokens": n_image_tokens, "mean_question_tokens": float(np.mean(lengths)),
            "ours_s": t_ours, "forward_s": t_forward, "generate_s": t_generate, "floor_s": t_floor,
            "speedup_vs_forward": t_forward / t_ours, "speedup_vs_generate": t_generate / t_ours,
            "ours_vs_floor": t_ours / t_floor,
            "batched_s": med["batched"], "batched_vs_ours": med["batched"] / t_ours,
            "max_abs_diff_batched_vs_forward": float(np.abs(old - reference).max()),
            "max_abs_diff_vs_forward": float(np.abs(ours - reference).max()),
            "max_abs_diff_generate_lowercase_only": float(np.abs(generated - reference).max()),
        })
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"LVLM scoring, seconds per frame (median); {rows[0]['image_tokens']} image tokens, "
          f"~{rows[0]['mean_question_tokens']:.0f} tokens per question")
    header = (f"{'device':<24}{'k':>3}{'2k':>4}{'ours':>9}{'(a) fwd':>9}{'(b) gen':>9}{'floor':>9}"
              f"{'a/ours':>8}{'b/ours':>8}{'ours/fl':>8}{'|ours-a|':>10}{'batched':>9}{'bat/ours':>9}")
    print(header)
    for r in rows:
        print(f"{r['device'][:23]:<24}{r['k']:>3}{r['questions']:>4}{r['ours_s']:>9.3f}{r['forward_s']:>9.3f}"
              f"{r['generate_s']:>9.3f}{r['floor_s']:>9.3f}{r['speedup_vs_forward']:>7.1f}x"
              f"{r['speedup_vs_generate']:>7.1f}x{r['ours_vs_floor']:>7.2f}x{r['max_abs_diff_vs_forward']:>10.1e}"
              f"{r['batched_s']:>9.3f}{r['batched_vs_ours']:>8.2f}x")
    print(f"targets at k={TARGET_K}: a/ours >= {TARGET_VS_FORWARD:.0f}x, ours/floor <= {TARGET_VS_FLOOR}x")
    for r in rows:
        if r["k"] == TARGET_K:
            ok_a = r["speedup_vs_forward"] >= TARGET_VS_FORWARD
            ok_f = r["ours_vs_floor"] <= TARGET_VS_FLOOR
            print(f"  {r['device']}: vs (a) {'met' if ok_a else 'MISSED'}, vs floor {'met' if ok_f else 'MISSED'}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", nargs="+", default=None,
                        help="devices to run on (default: cpu, plus cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads on the CPU")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = []
    with torch.inference_mode():
        for device in devices:
            rows += bench_device(device, args.ks, args.repeats)
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
