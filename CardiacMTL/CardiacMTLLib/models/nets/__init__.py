"""Torch modules only: no I/O, explicit constructor arguments, so a checkpoint can rebuild them."""

from CardiacMTLLib.models.nets.mtl_unet import MTLUNet2D
from CardiacMTLLib.models.nets.unet import UNet2D
from CardiacMTLLib.models.nets.vgg import VGGLandmarkNet

NETWORKS = {"UNet2D": UNet2D, "MTLUNet2D": MTLUNet2D, "VGGLandmarkNet": VGGLandmarkNet}

__all__ = ["NETWORKS", "MTLUNet2D", "UNet2D", "VGGLandmarkNet"]
