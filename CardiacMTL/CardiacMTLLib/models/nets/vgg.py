"""The landmark regression network of the MESA atlas paper (Appendix A): a VGG16 trunk and a small head.

VGG16 (Simonyan & Zisserman) trained from scratch on one-channel cardiac images: thirteen padded 3x3
convolutions in five blocks with max pooling, then two fully connected layers of 2048 units (the paper
halves VGG's 4096) and a 4-unit output, the two landmarks' ``(x, y)`` in normalised image coordinates.
``width`` is the number of channels of the first block (VGG: 64, doubled per block up to 8x); it is a
constructor argument so the paper's network and a narrow one for a CPU share one class.
"""

from __future__ import annotations

import torch
from torch import nn

# channels per block as multiples of ``width``, and convolutions per block (VGG16 configuration "D")
VGG16_BLOCKS = ((1, 2), (2, 2), (4, 3), (8, 3), (8, 3))


class VGGLandmarkNet(nn.Module):
    """``(N, in_channels, size, size) -> (N, 2 * num_points)`` landmark coordinates in [0, 1] units.

    ``size`` must be a multiple of 32 (five poolings); the paper uses 256 and ``width=64``.
    ``batch_norm`` is off in the paper (plain VGG); it helps the narrow network train in few epochs.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_points: int = 2,
        width: int = 64,
        dense_units: int = 2048,
        size: int = 256,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if size % 32 or size <= 0:
            raise ValueError(f"size must be a positive multiple of 32, got {size}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        layers: list[nn.Module] = []
        channels = in_channels
        for multiple, convolutions in VGG16_BLOCKS:
            out = width * multiple
            for _ in range(convolutions):
                layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU(inplace=True))
                channels = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        flat = channels * (size // 32) ** 2
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(flat, dense_units), nn.ReLU(inplace=True)]
        if dropout:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(dense_units, dense_units), nn.ReLU(inplace=True)]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(dense_units, 2 * num_points))
        self.head = nn.Sequential(*head)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # start from the image centre: the landmarks are near it after centring on the heart
        nn.init.zeros_(self.head[-1].weight)
        nn.init.constant_(self.head[-1].bias, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
