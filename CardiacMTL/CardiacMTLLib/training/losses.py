"""The training losses (the networks in :mod:`CardiacMTLLib.models.nets` hold no losses): soft Dice of the
U-Nets, the area targets and the uncertainty weighting of the multi-task U-Net, and the thesis' loss of the
multi-task 3D DenseNet."""

from __future__ import annotations

import torch
from torch import nn

from CardiacMTLLib.models.nets.mtl_unet import AREA_LABELS, AREA_UNIT_MM2


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``1 -`` the mean soft Dice of the foreground classes over the batch (2D logits ``(N, C, H, W)``)."""
    probs = torch.softmax(logits.float(), dim=1)
    onehot = nn.functional.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)[1:]
    denominator = (probs + onehot).sum(dims)[1:]
    return 1 - ((2 * intersection + 1e-5) / (denominator + 1e-5)).mean()


def area_targets(labels: torch.Tensor) -> torch.Tensor:
    """Pixel counts of each :data:`AREA_LABELS` structure per slice, in the network's output units."""
    return torch.stack([(labels == k).sum(dim=(1, 2)).float() for k in AREA_LABELS], dim=1) / AREA_UNIT_MM2


def uncertainty_weighted_loss(
    seg_loss: torch.Tensor, reg_l1: torch.Tensor, log_sigma: torch.Tensor
) -> torch.Tensor:
    """Eq. (5) of the paper: ``seg / sigma1^2 + reg / sigma2 + log sigma1 + log sigma2``.

    ``seg_loss`` is the segmentation loss (cross-entropy, here plus soft Dice as in the plain U-Net
    recipe); ``reg_l1`` the mean absolute error of the areas; ``log_sigma = (s1, s2)`` learned.
    """
    s_seg, s_reg = log_sigma[0], log_sigma[1]
    return seg_loss * torch.exp(-2 * s_seg) + reg_l1 * torch.exp(-s_reg) + s_seg + s_reg


def weighted_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, weights=(0.1, 0.3, 0.3, 0.3)
) -> torch.Tensor:
    """Eq. (4.2) of the thesis: ``1 - sum_m w_m * 2 sum(v g) / (sum v^2 + sum g^2)`` per label."""
    probs = torch.softmax(logits.float(), dim=1)
    onehot = nn.functional.one_hot(target, probs.shape[1]).movedim(-1, 1).float()
    dims = (0, 2, 3, 4)
    dice = 2 * (probs * onehot).sum(dims) / ((probs**2).sum(dims) + (onehot**2).sum(dims) + 1e-5)
    w = torch.tensor(weights, dtype=dice.dtype, device=dice.device)
    return 1 - (w * dice).sum()


def thesis_loss(out: dict, y_class, y_features, y_seg_ed, y_seg_es, alpha: float = 0.3, beta: float = 0.6):
    """Eq. (4.1): ``alpha * L_seg + (1 - alpha) * (beta * L_features + (1 - beta) * L_diagnosis)``.

    Branches a model does not have drop out of the sum with their weight (so the diagnosis-only model is
    trained on cross-entropy alone, as the thesis' baseline).
    """
    diag = nn.functional.cross_entropy(out["logits"].float(), y_class)
    if "features" in out:
        head = beta * nn.functional.mse_loss(out["features"].float(), y_features) + (1 - beta) * diag
    else:
        head = diag
    if "seg_ed" in out:
        step = y_seg_ed.shape[-1] // out["seg_ed"].shape[-1]  # a half-size segmentation branch
        y_seg_ed, y_seg_es = y_seg_ed[..., ::step, ::step], y_seg_es[..., ::step, ::step]
        seg = 0.5 * (
            weighted_dice_loss(out["seg_ed"], y_seg_ed) + weighted_dice_loss(out["seg_es"], y_seg_es)
        )
        return alpha * seg + (1 - alpha) * head
    return head
