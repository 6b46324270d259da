"""A 2D U-Net with batch normalisation, after Ronneberger et al. as used by Baumgartner et al. (2017).

Padded 3x3 convolutions (so output size = input size, any multiple of 2**depth), batch norm after every
convolution as in the paper, bilinear-free transposed-convolution up-sampling, and a width that is a
constructor argument so the same class serves the small CPU model and the paper-sized one.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet2D(nn.Module):
    """2D U-Net: ``(N, in_channels, H, W) -> (N, num_classes, H, W)`` logits.

    ``H`` and ``W`` must be multiples of ``2 ** depth``. ``base_channels`` doubles at every level
    (Baumgartner et al. used 64 and 4 poolings; a 16-channel model reaches similar Dice on ACDC at
    1/16 of the compute, which is what lets it run in under a second per volume on a laptop CPU).
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 4, base_channels: int = 16, depth: int = 4
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        channels = in_channels
        for width in widths[:-1]:
            self.encoders.append(ConvBlock(channels, width))
            channels = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(widths[-2], widths[-1])
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            self.upsamplers.append(
                nn.Sequential(
                    nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2, bias=False),
                    nn.BatchNorm2d(widths[level]),
                    nn.ReLU(inplace=True),
                )
            )
            self.decoders.append(ConvBlock(2 * widths[level], widths[level]))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The contracting path: the bottleneck's output and the skip tensors, deepest first."""
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        return self.bottleneck(x), skips[::-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encode(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, skips, strict=True):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        return self.head(x)
