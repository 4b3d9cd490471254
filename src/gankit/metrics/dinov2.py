"""DINOv2 features (Oquab et al. 2023), which Stein et al. 2023 found to agree with human judgement of generated
images better than Inception-v3's; EDM2 reports FD-DINOv2 beside FID.

The ViTs are timm's (an optional extra: pip install 'gankit[dinov2]'), the weights a file the user names or keeps in
torch's hub cache under Meta's name (dinov2_vits14_pretrain.pth, ...), in Meta's layout or timm's. Images are resized
to 224x224 with antialiased bicubic filtering (PIL's, as clean-fid recommends) and normalised as for ImageNet; the
feature is the class token after the final norm, as in Stein et al.'s dgm-eval.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from gankit.errors import GankitError
from gankit.metrics.features import EXTRACTORS, Extractor, weights_file
from gankit.resizing import resize_like_pil

if TYPE_CHECKING:
    from gankit.config import DataConfig

SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MODELS = {  # gankit's name -> (timm's architecture, Meta's file name)
    "dinov2-vits14": ("vit_small_patch14_dinov2", "dinov2_vits14_pretrain.pth"),
    "dinov2-vitb14": ("vit_base_patch14_dinov2", "dinov2_vitb14_pretrain.pth"),
    "dinov2-vitl14": ("vit_large_patch14_dinov2", "dinov2_vitl14_pretrain.pth"),
    "dinov2-vitg14": ("vit_giant_patch14_dinov2", "dinov2_vitg14_pretrain.pth"),
}
URL = "https://dl.fbaipublicfiles.com/dinov2/{stem}/{file}"


def build_vit(name: str) -> torch.nn.Module:
    """The randomly initialised ViT of `name` at 224x224, without a classifier head."""
    try:
        import timm
    except ImportError:
        raise GankitError(f"{name} features need timm: pip install 'gankit[dinov2]'") from None
    return timm.create_model(MODELS[name][0], pretrained=False, num_classes=0, img_size=SIZE)


class DinoExtractor(Extractor):
    """A DINOv2 ViT's class token; it knows no classes, so its probabilities are empty (N, 0)."""

    batch_size = 32  # a ViT's activations at 224x224 for 500 images would take gigabytes

    def __init__(self, name: str, weights: Path | None):
        file = MODELS[name][1]
        path = weights_file(weights, file, name, URL.format(stem=file.rsplit("_", 1)[0], file=file))
        self.name, self.net = name, build_vit(name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: nothing in it runs
            from timm.models.vision_transformer import checkpoint_filter_fn

            self.net.load_state_dict(checkpoint_filter_fn(state, cast(Any, self.net)))  # Meta's layout or timm's
        except Exception as exc:  # noqa: BLE001 - a wrong or damaged file fails in torch's or timm's code in many ways
            raise GankitError(
                f"{path} is not a {name} weights file ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
            ) from None
        self.net.eval()
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(STD).view(1, 3, 1, 1)

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # grey -> RGB
        features = self.net((resize_like_pil(images, SIZE) - self.mean) / self.std)
        return features, features.new_zeros(len(features), 0)


def _register(name: str) -> None:
    @EXTRACTORS.register(name)
    def dinov2_features(data: DataConfig, weights: Path | None, progress: bool) -> Extractor:
        return DinoExtractor(name, weights)


for _name in MODELS:
    _register(_name)
