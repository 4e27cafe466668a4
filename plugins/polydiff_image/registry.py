"""What the image plugin registers: the modality, datasets, the U-Net, metrics and mask strategies."""

from __future__ import annotations

from typing import Any

from polydiff import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec
from polydiff.diffusion import DiffusionDataset, harmonic_fill

from . import data, masks, metrics, plots
from .baselines import BASELINES
from .unet import UNet

MODALITIES = [ModalitySpec(
    name="image", description="images [B, C, H, W] in [-1, 1]: generation, CFG, inpainting, super-resolution",
    default_dataset="digits", default_backbone="unet", primary_metric="classifier_fd",
    plot_samples=plots.plot_samples, plot_trajectory=plots.plot_trajectory, save_samples=plots.save_samples,
    baselines=BASELINES, plot_imputation=plots.plot_imputation, prior_fill=harmonic_fill)]

DATASETS = [
    DatasetSpec(name="digits", modality="image", build=data.load_digits,
                description="scikit-learn's 1797 real handwritten digits, 8x8 upsampled to 16x16, 10 classes",
                options={"n": 0, "size": 16, "lowres": 0}),
    DatasetSpec(name="fashion_mnist", modality="image", build=data.load_fashion_mnist,
                description="Fashion-MNIST 28x28, 10 classes (apt-get install dataset-fashion-mnist)",
                options={"split": "train", "n": 0, "size": 28, "lowres": 0, "root": str(data.FASHION_DIR)}),
    DatasetSpec(name="folder", modality="image", build=data.load_folder,
                description="your images under data.path, one sub-folder per class (size/channels 0: inferred)",
                options={"path": "", "size": 0, "channels": 0, "n": 0, "lowres": 0}),
]

METRICS = [
    MetricSpec(name="classifier_fd", modality="image", fn=metrics.classifier_fd, direction="lower",
               classifier=metrics.classifier_info,
               description="Frechet distance in the features of a small CNN trained on the same dataset "
                           "(NOT Inception FID; cached in $POLYDIFF_CACHE)"),
    MetricSpec(name="classifier_accuracy", modality="image", fn=metrics.classifier_accuracy, direction="higher",
               classifier=metrics.classifier_info,
               description="fraction of class-conditional samples the dataset's reference CNN labels as asked "
                           "(NaN without labels)"),
]


def build_unet(dataset: DiffusionDataset, *, channels: int = 32, channel_mult: str = "1,2,2",
               num_res_blocks: int = 1, attention_resolution: int = 8, heads: int = 4, dropout: float = 0.0,
               embedding: str = "fourier", class_cond: bool = False, conditional: bool = False,
               lowres_cond: bool = False, patch: int = 1) -> UNet:
    shape = tuple(dataset.sample_shape)
    if len(shape) != 3:
        raise ValueError(f"the unet backbone needs images [C, H, W], got per-sample shape {list(shape)}")
    if class_cond and not dataset.num_classes:
        raise ValueError("model.class_cond = true needs a labelled dataset (a folder needs one sub-folder per class)")
    if lowres_cond and int(getattr(dataset, "lowres", 0)) < 2:
        raise ValueError("model.lowres_cond = true needs low-resolution inputs: set data.lowres to a factor >= 2 "
                         "(e.g. data.lowres=2)")
    return UNet(in_channels=shape[0], resolution=(shape[1], shape[2]), channels=channels, channel_mult=channel_mult,
                num_res_blocks=num_res_blocks, attention_resolution=attention_resolution, heads=heads,
                dropout=dropout, embedding=embedding, num_classes=dataset.num_classes if class_cond else None,
                conditional=conditional, lowres_channels=shape[0] if lowres_cond else 0, patch=patch)


UNET_OPTIONS: dict[str, Any] = {"channels": 32, "channel_mult": "1,2,2", "num_res_blocks": 1,
                                "attention_resolution": 8, "heads": 4, "dropout": 0.0, "embedding": "fourier",
                                "class_cond": False, "conditional": False, "lowres_cond": False, "patch": 1}

BACKBONES = [
    BackboneSpec(name="unet", modality="image", build=build_unet, options=UNET_OPTIONS,
                 description="U-Net: residual blocks, group norm, low-res attention, class/mask/low-res conditioning"),
]


def _mask_spec(name: str) -> MaskStrategySpec:
    fn, options, description = masks.STRATEGIES[name]
    return MaskStrategySpec(name=name, fn=fn, description=description, options=options)


MASK_STRATEGIES = [_mask_spec(name) for name in masks.STRATEGIES]
