"""What each U-Net width costs on this machine: parameters, one training step and one inference pass.

    .venv/bin/python bench/unet_cost.py [--widths 16 32 64] [--device cpu] [--threads 2]

Training step: a batch of 16 crops of 128 x 128 (the shipped recipe), forward + backward + Adam.
Inference: one ACDC-sized stack of 10 slices at 192 x 192, the network alone (no resampling or I/O;
``bench/segment_speed.py`` times the whole ``segment``). The paper's design is width 64 (Baumgartner
et al. 2017); the shipped model is width 16. Prints one line per width and a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from CardiacMTLLib.models.device import describe_device, resolve_device
from CardiacMTLLib.models.nets.unet import UNet2D


def timed(fn, repeats: int, device) -> float:
    fn()  # warm-up (kernel selection)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch threads {torch.get_num_threads()}")
    rows = []
    for width in args.widths:
        torch.manual_seed(0)
        net = UNet2D(in_channels=1, num_classes=4, base_channels=width, depth=4)
        net = net.to(device, memory_format=torch.channels_last)
        params = sum(p.numel() for p in net.parameters())
        optimizer = torch.optim.Adam(net.parameters())
        x = torch.randn(16, 1, 128, 128, device=device).to(memory_format=torch.channels_last)
        y = torch.randint(0, 4, (16, 128, 128), device=device)

        def step(net=net, x=x, y=y, optimizer=optimizer):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        train_s = timed(step, args.repeats, device)
        net.eval()
        stack = torch.randn(10, 1, 192, 192, device=device).to(memory_format=torch.channels_last)

        def infer(net=net, stack=stack):
            with torch.inference_mode():
                net(stack)

        infer_s = timed(infer, args.repeats, device)
        rows.append((width, params, train_s, infer_s))
        print(
            f"width {width}: {params / 1e6:.2f} M parameters, training step {train_s:.2f} s, "
            f"inference of 10 slices {infer_s:.2f} s",
            flush=True,
        )
    print("\n| width | parameters | training step (16 x 128^2) | network on 10 x 192^2 |")
    print("|---|---|---|---|")
    for width, params, train_s, infer_s in rows:
        print(f"| {width} | {params / 1e6:.2f} M | {train_s:.2f} s | {infer_s:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
