"""Multi-task 3D DenseNet of the thesis (seed ``000``): diagnosis, handcrafted features and ED/ES segmentation.

Input: a three-channel volume ``(ED, ED - ES, ES)`` of ``slices`` consecutive short-axis slices,
``(N, 3, slices, H, W)``. Three branches, as in the thesis' Table 2:

- main branch (shared): a 7x7x7 convolution with stride 2 in-plane, then dense blocks separated by
  transitions (BN-ReLU-1x1x1 convolution halving the maps, 2x2x1 average pooling);
- classification branch: transitions with max pooling (now also along z), dense blocks, a global max pool
  and two linear outputs: the 5 class logits and the 13 handcrafted features;
- segmentation branch (no skip connections, so segmentation cannot bypass the shared bottleneck): transposed
  convolutions up to the input size, one dense block shared by ED and ES, then separate ED and ES paths.

Every size is a constructor argument: the defaults are the thesis' (growth rate 12, main blocks 6-6-12,
classification blocks 48-32, 64 initial maps); :data:`CPU_CONFIG` is the reduced network that trains in
minutes on a laptop CPU. ``tasks`` removes branches for the thesis' ablation (diagnosis only, + segmentation,
+ features).
"""

from __future__ import annotations

import torch
from torch import nn

CPU_CONFIG = {
    "growth": 8,
    "init_features": 16,
    "main_blocks": (3, 3, 4),
    "cls_blocks": (6, 4),
    "seg_blocks": (1, 1),
    "seg_downsampling": 2,
    "dropout": 0.2,
}


class DenseLayer(nn.Module):
    """BN-ReLU-3x3x3 convolution producing ``growth`` maps, concatenated to its input."""

    def __init__(self, channels: int, growth: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm3d(channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, growth, 3, padding=1, bias=False),
            nn.Dropout3d(dropout) if dropout > 0 else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


def dense_block(channels: int, layers: int, growth: int, dropout: float) -> tuple[nn.Sequential, int]:
    block = nn.Sequential(*[DenseLayer(channels + i * growth, growth, dropout) for i in range(layers)])
    return block, channels + layers * growth


def bottleneck(channels: int) -> tuple[nn.Sequential, int]:
    """BN-ReLU-1x1x1 convolution halving the number of maps."""
    out = max(1, channels // 2)
    return nn.Sequential(nn.BatchNorm3d(channels), nn.ReLU(inplace=True), nn.Conv3d(channels, out, 1)), out


class MultiTaskDenseNet3D(nn.Module):
    """``forward(x) -> {"logits": (N, classes), "features": (N, n_features), "seg_ed"/"seg_es": (N, 4, S, H, W)}``
    (only the outputs of the branches named in ``tasks``)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 5,
        num_features: int = 13,
        num_labels: int = 4,
        growth: int = 12,
        init_features: int = 64,
        main_blocks: tuple[int, ...] = (6, 6, 12),
        cls_blocks: tuple[int, int] = (48, 32),
        seg_blocks: tuple[int, int] = (6, 6),
        dropout: float = 0.0,
        tasks: tuple[str, ...] = ("diagnosis", "segmentation", "features"),
        seg_downsampling: int = 1,
    ) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        main: list[nn.Module] = [
            nn.Conv3d(in_channels, init_features, 7, stride=(1, 2, 2), padding=3, bias=False)
        ]
        channels = init_features
        for i, layers in enumerate(main_blocks):
            block, channels = dense_block(channels, layers, growth, dropout)
            main.append(block)
            if i < len(main_blocks) - 1:
                trans, channels = bottleneck(channels)
                main += [trans, nn.AvgPool3d((1, 2, 2))]
        self.main = nn.Sequential(*main)
        shared = channels
        self.num_downsamplings = len(main_blocks)  # stride-2 stem + pools
        # 1: segmentation at the input size (thesis); 2: at half size, which saves most of the branch's
        # cost on a CPU (targets are subsampled to match, see training.losses.thesis_loss)
        self.seg_stages = self.num_downsamplings - 1 - {1: 0, 2: 1}[seg_downsampling]

        cls: list[nn.Module] = []
        for layers in cls_blocks:
            trans, channels = bottleneck(channels)
            cls += [trans, nn.MaxPool3d((2, 2, 2), ceil_mode=True)]
            block, channels = dense_block(channels, layers, growth, dropout)
            cls.append(block)
        cls += [nn.BatchNorm3d(channels), nn.ReLU(inplace=True), nn.AdaptiveMaxPool3d(1), nn.Flatten()]
        self.classifier = nn.Sequential(*cls)
        self.diagnosis_head = nn.Linear(channels, num_classes)
        self.features_head = nn.Linear(channels, num_features)

        if "segmentation" in self.tasks:
            trans, channels = bottleneck(shared)
            up = [trans, nn.ConvTranspose3d(channels, channels, (1, 2, 2), stride=(1, 2, 2))]
            block, channels = dense_block(channels, seg_blocks[0], growth, dropout)
            self.seg_shared = nn.Sequential(*up, block)
            self.seg_ed = self._seg_path(channels, seg_blocks[1], growth, dropout, num_labels)
            self.seg_es = self._seg_path(channels, seg_blocks[1], growth, dropout, num_labels)
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def _seg_path(self, channels: int, layers: int, growth: int, dropout: float, num_labels: int):
        """Up-sample back to the input size: transition + deconvolution, dense blocks, 1x1x1 to labels."""
        path: list[nn.Module] = []
        for _ in range(self.seg_stages):
            trans, channels = bottleneck(channels)
            path += [trans, nn.ConvTranspose3d(channels, channels, (1, 2, 2), stride=(1, 2, 2))]
            block, channels = dense_block(channels, layers, growth, dropout)
            path.append(block)
        path += [nn.BatchNorm3d(channels), nn.ReLU(inplace=True), nn.Conv3d(channels, num_labels, 1)]
        return nn.Sequential(*path)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.main(x)
        out: dict[str, torch.Tensor] = {}
        pooled = self.classifier(shared)
        out["logits"] = self.diagnosis_head(pooled)
        if "features" in self.tasks:
            out["features"] = self.features_head(pooled)
        if "segmentation" in self.tasks:
            s = self.seg_shared(shared)
            out["seg_ed"], out["seg_es"] = self.seg_ed(s), self.seg_es(s)
        return out
