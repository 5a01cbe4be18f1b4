"""How far does tiled Restormer inference drift from a full-frame pass?

Runs ``distill.teacher.restore`` on a few images once on the whole frame and once per
tile setting, and prints max / mean absolute difference and PSNR (tiled vs full), plus
the size of the network's own correction (mean |full - input|) for scale.

To split the drift into its two causes, every tile setting is also run a second time
with each attention layer forced to use the channel-attention map recorded during the
full-frame pass ("global maps"). What remains then is only the missing convolution
context at tile borders; the difference between the two runs is what the per-tile
attention statistics (L2 normalization over the tile instead of the frame) cost.

    python scripts/restormer_tiling.py                      # random-init `small` preset
    python scripts/restormer_tiling.py --checkpoint motion_deblurring.pth --size 384

Without ``--checkpoint`` the model is a preset with PyTorch's default random init
(seeded), which exercises the same global-statistics effect but is not a trained model.
Results go to stdout as a Markdown table (see docs/restormer-tiling.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.restormer import ChannelAttention, Restormer, preset_config, restormer_macs_per_pixel  # noqa: E402
from distill.official_weights import load_official_checkpoint  # noqa: E402
from distill.teacher import load_teacher, restore  # noqa: E402

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"


def load_image(path: Path, long_side: int) -> torch.Tensor:
    """RGB float NCHW in [0, 1], resized so the long side is ``long_side`` (area filter)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    h, w = bgr.shape[:2]
    scale = long_side / max(h, w)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1], dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def attention_layers(model: torch.nn.Module) -> list[ChannelAttention]:
    return [m for m in model.modules() if isinstance(m, ChannelAttention)]


def full_pass_recording_maps(model: torch.nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Full-frame ``restore`` that also returns every attention layer's map."""
    maps: dict[ChannelAttention, torch.Tensor] = {}
    for layer in attention_layers(model):

        def record(q: torch.Tensor, k: torch.Tensor, layer: ChannelAttention = layer) -> torch.Tensor:
            maps[layer] = ChannelAttention.attention_map(layer, q, k)
            return maps[layer]

        layer.attention_map = record  # instance attribute shadows the method
    try:
        return restore(model, image), maps
    finally:
        for layer in attention_layers(model):
            del layer.attention_map


def tiled_with_maps(model: torch.nn.Module, image: torch.Tensor, maps: dict, tile: int, overlap: int) -> torch.Tensor:
    """Tiled ``restore`` where every tile uses the full frame's attention maps."""
    for layer in attention_layers(model):
        layer.attention_map = lambda q, k, fixed=maps[layer]: fixed
    try:
        return restore(model, image, tile=tile, overlap=overlap)
    finally:
        for layer in attention_layers(model):
            del layer.attention_map


def build_model(args: argparse.Namespace) -> tuple[torch.nn.Module, str]:
    if args.checkpoint:
        path = Path(args.checkpoint)
        model = load_teacher(path) if path.suffix == ".safetensors" else load_official_checkpoint(path)
        return model, f"checkpoint {path.name}"
    torch.manual_seed(args.seed)
    model = Restormer(**preset_config(args.preset)).eval()
    return model, f"preset `{args.preset}`, PyTorch default random init, seed {args.seed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of images")
    parser.add_argument("--count", type=int, default=3, help="how many images (sorted by name)")
    parser.add_argument("--size", type=int, default=384, help="long side after resizing, px")
    parser.add_argument("--preset", default="small", help="Restormer preset when no checkpoint is given")
    parser.add_argument("--checkpoint", help="released .pth or kdcam teacher .safetensors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiles", default="128:16,128:48,256:32", help="comma-separated tile:overlap settings"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, model_desc = build_model(args)
    settings = [tuple(int(v) for v in item.split(":")) for item in args.tiles.split(",")]
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[: args.count]
    if not paths:
        raise SystemExit(f"no images in {args.images}")

    macs = restormer_macs_per_pixel(model.config)["total"]
    print(f"model: {model_desc}; {macs:,.0f} MAC/px; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"images: {len(paths)} from {args.images}, long side {args.size} px\n")
    print(
        "| image | size | tile:overlap | tiles | max abs diff | mean abs diff | PSNR vs full (dB) "
        "| global maps: max | global maps: mean | global maps: PSNR | mean abs correction |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    totals: dict[tuple[int, int], list[tuple[float, ...]]] = {s: [] for s in settings}
    start = time.perf_counter()
    for path in paths:
        image = load_image(path, args.size)
        h, w = image.shape[-2:]
        full, maps = full_pass_recording_maps(model, image)
        correction = (full - image).abs().mean().item()
        for tile, overlap in settings:
            tiled = restore(model, image, tile=tile, overlap=overlap)
            fixed = tiled_with_maps(model, image, maps, tile, overlap)
            diff, diff_fixed = (tiled - full).abs(), (fixed - full).abs()
            ph, pw = h + (-h % 8), w + (-w % 8)
            n_tiles = _count_tiles(ph, tile, overlap) * _count_tiles(pw, tile, overlap)
            row = (
                diff.max().item(), diff.mean().item(), psnr(tiled, full),
                diff_fixed.max().item(), diff_fixed.mean().item(), psnr(fixed, full),
            )  # fmt: skip
            totals[(tile, overlap)].append(row)
            print(
                f"| {path.stem} | {w}x{h} | {tile}:{overlap} | {n_tiles} | {row[0]:.4f} | {row[1]:.5f} "
                f"| {row[2]:.2f} | {row[3]:.4f} | {row[4]:.5f} | {row[5]:.2f} | {correction:.4f} |"
            )
    print("\nOver all images (max: worst image; mean abs diff and PSNR: average):\n")
    print(
        "| tile:overlap | max abs diff | mean abs diff | PSNR (dB) "
        "| global maps: max | global maps: mean | global maps: PSNR |"
    )
    print("|---|---|---|---|---|---|---|")
    for (tile, overlap), rows in totals.items():
        cols = [max(r[i] for r in rows) if i in (0, 3) else sum(r[i] for r in rows) / len(rows) for i in range(6)]
        print(
            f"| {tile}:{overlap} | {cols[0]:.4f} | {cols[1]:.5f} | {cols[2]:.2f} "
            f"| {cols[3]:.4f} | {cols[4]:.5f} | {cols[5]:.2f} |"
        )
    print(f"\nelapsed {time.perf_counter() - start:.1f} s")


def _count_tiles(length: int, tile: int, overlap: int) -> int:
    if tile >= length:
        return 1
    return len(range(0, length - tile, tile - overlap)) + 1


if __name__ == "__main__":
    main()
