"""Torch modules only: no I/O, explicit constructor arguments, so a checkpoint can rebuild them."""

from .unet import UNet2D

NETWORKS = {"UNet2D": UNet2D}

__all__ = ["NETWORKS", "UNet2D"]
