"""CLIP frame embedding throughput (frames/s) by batch size, through `ClipScorer.embed_images`.

    python -m benchmarks.bench_clip [--batch-sizes 1 8 32 64] [--frames 64] [--repeats 3] [--device cpu cuda]

The model is open_clip's own ViT-B-16 architecture (86M-parameter image tower, 224x224 input,
patch 16 -> 196 tokens) created with random weights (`pretrained=None`): the arithmetic of the
real model without downloading it. Frames are 640x360 RGB uint8 arrays, as the pipeline hands
them over, so the measured time includes open_clip's preprocessing (PIL resize, crop, normalise).

For each batch size the same --frames frames are embedded with `scorer.batch_size` set to it; the
batch sizes take turns within each repeat (fair under a varying load) and the table shows medians.
Baseline: batch size 1. A second column gives the share of the time spent in preprocessing alone.
On CPU the default torch thread count is used; on CUDA the scorer runs in bf16 autocast.
`main(argv)` returns one dict per (device, batch size) for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse


from benchmarks import common  # noqa: E402

MODEL = "ViT-B-16"
FRAME_SHAPE = (360, 640, 3)  # a 640x360 frame, HxWx3


def build_scorer(device: str, model: str = MODEL):
    """A ClipScorer over open_clip's `model` architecture with random weights on `device`."""
    import open_clip
    import torch

    from zeal.scorers.clip import ClipScorer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None, device=device)
    if device.startswith("cuda"):
        net = net.to(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    tokenizer = open_clip.get_tokenizer(model)
    return ClipScorer(net, preprocess, tokenizer, f"{model}/random", device=device)


def bench_device(device: str, batch_sizes: list[int], n_frames: int, repeats: int, model: str) -> list[dict]:
    import numpy as np
    import torch

    scorer = build_scorer(device, model)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, FRAME_SHAPE, dtype=np.uint8) for _ in range(n_frames)]
    sync = torch.cuda.synchronize if device.startswith("cuda") else None

    def embed_with(bs: int):
        def run() -> None:
            scorer.batch_size = bs
            scorer.embed_images(frames)
        return run

    def preprocess_only() -> None:
        from PIL import Image

        torch.stack([scorer.preprocess(Image.fromarray(f)) for f in frames])

    runs = {bs: embed_with(bs) for bs in batch_sizes}
    runs["preprocess"] = preprocess_only
    scorer.embed_images(frames[:2])  # warm-up: allocator, kernels; a full warm-up round would double the cost
    times = common.median_times(runs, repeats, warmup=0, sync=sync)
    t_pre = common.median(times.pop("preprocess"))
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
    base_bs = batch_sizes[0]
    base_fps = n_frames / common.median(times[base_bs])
    rows = []
    for bs in batch_sizes:
        t = common.median(times[bs])
        rows.append({"device": name, "model": model, "batch_size": bs, "frames": n_frames, "seconds": t,
                     "frames_per_s": n_frames / t, "ratio_vs_baseline": (n_frames / t) / base_fps,
                     "baseline_batch_size": base_bs, "preprocess_share": t_pre / t, "runs": times[bs]})
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"\nCLIP {rows[0]['model']} (random weights, 224 px) embed_images on 640x360 frames; "
          f"median of repeats; baseline: batch size {rows[0]['baseline_batch_size']}")
    common.print_table(["device", "batch", "frames", "seconds", "frames/s", "vs batch 1", "preprocess share"],
                       [[r["device"], r["batch_size"], r["frames"], r["seconds"], r["frames_per_s"],
                         f"{r['ratio_vs_baseline']:.2f}x", f"{100 * r['preprocess_share']:.0f}%"] for r in rows])


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table, return its rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--frames", type=int, default=64, help="frames embedded per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=MODEL, help="an open_clip architecture name (random weights)")
    ap.add_argument("--device", nargs="+", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--quick", action="store_true", help="batch sizes 1 and 8, 16 frames, 1 repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.frames, args.repeats = [1, 8], 16, 1
    import torch

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = []
    for device in devices:
        rows += bench_device(device, args.batch_sizes, args.frames, args.repeats, args.model)
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main()
