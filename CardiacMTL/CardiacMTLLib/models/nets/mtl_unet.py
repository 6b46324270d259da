"""Multi-task U-Net: segmentation plus per-structure area regression, split at the last up-sampling stage.

After the multi-task network of the uncertainty-weighting paper (seed ``001``): the encoder, bottleneck and
all but the last decoder stage are shared; the last up-sampling + concatenation + convolution stage exists
twice, once for the segmentation path (1x1 convolution to class logits, exactly as :class:`UNet2D`) and once
for the regression path. The paper down-samples the regression path's last feature map by max-pooling to a
quarter of its size and feeds it to a fully connected layer; here the fully connected layer is applied at
every pooled location with shared weights and summed (a non-negative area density per structure), which is
the same linear map restricted to translation-invariant weights and, unlike a plain fully connected layer,
works at any input size (training crops of 128 pixels, inference fields of 192).

The log task uncertainties ``log_sigma`` (segmentation, regression) are parameters of the module, so they are
saved and restored with the weights; :func:`CardiacMTLLib.training.losses.uncertainty_weighted_loss` uses
them as in the paper's eq. (5).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from CardiacMTLLib.models.nets.unet import UNet2D

# structures whose areas the regression path predicts, in this order (label values of the label maps)
AREA_LABELS = (1, 2, 3)  # RV cavity, LV myocardium, LV cavity
AREA_UNIT_MM2 = 100.0  # the regression outputs cm^2: targets of order 1-30 keep the L1 loss well scaled


class MTLUNet2D(UNet2D):
    """``forward(x) -> logits``; ``forward(x, return_areas=True) -> (logits, areas)``.

    ``areas`` is ``(N, len(AREA_LABELS))`` in units of ``pixel_area_mm2 / AREA_UNIT_MM2``: multiply by
    ``pixel_area_mm2`` of the input grid to get cm^2 (see :func:`areas_mm2`).
    """

    regresses_areas = True

    def __init__(
        self, in_channels: int = 1, num_classes: int = 4, base_channels: int = 16, depth: int = 4
    ) -> None:
        super().__init__(in_channels, num_classes, base_channels, depth)
        self.reg_upsampler = copy.deepcopy(self.upsamplers[-1])
        self.reg_decoder = copy.deepcopy(self.decoders[-1])
        self.reg_pool = nn.MaxPool2d(2)
        self.reg_density = nn.Conv2d(base_channels, len(AREA_LABELS), 1)
        nn.init.normal_(self.reg_density.weight, std=1e-3)
        nn.init.constant_(self.reg_density.bias, -4.0)
        # s = log(sigma) of the segmentation (softmax temperature) and regression (Laplacian) likelihoods
        self.log_sigma = nn.Parameter(torch.zeros(2))

    def init_from_unet(self, state_dict: dict) -> None:
        """Start from a trained plain :class:`UNet2D`: shared layers and both last stages take its weights."""
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        if unexpected:
            raise ValueError(f"weights do not fit this network: unexpected keys {unexpected[:5]}")
        last = len(self.decoders) - 1
        self.reg_upsampler.load_state_dict(self.upsamplers[last].state_dict())
        self.reg_decoder.load_state_dict(self.decoders[last].state_dict())

    def forward(self, x: torch.Tensor, return_areas: bool = False, return_density: bool = False):
        """Logits; with ``return_areas`` also the areas summed over the whole input; with
        ``return_density`` instead the area density ``(N, 3, H/2, W/2)`` (each value covers 4 pixels, in the
        units of the areas), so a caller can sum it over a window the size of the training crops."""
        x, skips = self.encode(x)
        last = len(self.decoders) - 1
        for level in range(last):
            x = self.decoders[level](torch.cat([self.upsamplers[level](x), skips[level]], dim=1))
        seg = self.decoders[last](torch.cat([self.upsamplers[last](x), skips[last]], dim=1))
        logits = self.head(seg)
        if not (return_areas or return_density):
            return logits
        reg = self.reg_decoder(torch.cat([self.reg_upsampler(x), skips[last]], dim=1))
        density = nn.functional.softplus(self.reg_density(self.reg_pool(reg)).float())
        # each pooled location stands for 4 input pixels
        density = 4.0 * density / AREA_UNIT_MM2
        if return_density:
            return logits, density
        return logits, density.sum(dim=(2, 3))


def areas_mm2(areas: torch.Tensor, pixel_area_mm2: float) -> torch.Tensor:
    """Network area outputs to mm^2 on an input grid whose pixels cover ``pixel_area_mm2``."""
    return areas * AREA_UNIT_MM2 * pixel_area_mm2
