"""What the video plugin registers: the modality, datasets, the space-time U-Net, metrics, masks."""

from __future__ import annotations

from polydiff import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec

from . import data, masks, media, metrics, plots
from .backbone import VIDEO_UNET_OPTIONS, build_video_unet
from .baselines import BASELINES
from .fill import motion_fill

MODALITIES = [ModalitySpec(
    name="video", description="clips [B, T, C, H, W] in [-1, 1]: generation, frame prediction, interpolation",
    default_dataset="moving_digits", default_backbone="video_unet", primary_metric="frame_fd",
    plot_samples=plots.plot_samples, plot_trajectory=plots.plot_trajectory, save_samples=plots.save_samples,
    plot_imputation=plots.plot_imputation, prior_fill=motion_fill, baselines=BASELINES,
    save_imputation=media.save_imputation, trajectory_items=4)]  # the trajectory picture shows clip 0

DATASETS = [
    DatasetSpec(name="moving_digits", modality="video", build=data.load_moving_digits,
                description="real scikit-learn digits bouncing in a canvas (seeded), label = digit",
                options={"n": 1000, "frames": 8, "size": 32, "digit_size": 16, "speed": 3.0, "seed": 0}),
    DatasetSpec(name="opencv_sample", modality="video", build=data.load_opencv_sample,
                description="OpenCV's vtest.avi: 795 real frames of pedestrians, downscaled "
                            "(apt-get install opencv-doc)",
                options={"frames": 8, "size": 32, "channels": 1, "every": 2, "stride": 2, "path": str(data.VTEST)}),
    DatasetSpec(name="files", modality="video", build=data.load_files,
                description="your video file(s) or folder(s) of frame images under data.path (imageio + PyAV)",
                options={"path": "", "frames": 8, "size": 32, "channels": 0, "every": 1, "stride": 4, "fps": 0.0}),
]

BACKBONES = [
    BackboneSpec(name="video_unet", modality="video", build=build_video_unet, options=VIDEO_UNET_OPTIONS,
                 description="factorized space-time U-Net: the image U-Net per frame + temporal attention/conv"),
]

METRICS = [
    MetricSpec(name="frame_fd", modality="video", fn=metrics.frame_fd, direction="lower",
               classifier=metrics.classifier_info,
               description="per-frame Frechet distance in a small CNN trained on the dataset's frames "
                           "(NOT FVD, NOT Inception; cached in $POLYDIFF_CACHE)"),
    MetricSpec(name="frame_accuracy", modality="video", fn=metrics.frame_accuracy, direction="higher",
               classifier=metrics.class_classifier_info,
               description="fraction of frames of class-conditional samples classified as the requested class"),
    MetricSpec(name="frame_diff_w1", modality="video", fn=metrics.frame_diff_w1, direction="lower",
               description="temporal consistency: W1 between per-clip mean |frame change| of samples and data"),
    MetricSpec(name="digit_identity", modality="video", fn=metrics.digit_identity, direction="higher", task="impute",
               classifier=metrics.class_classifier_info,
               description="fraction of predicted frames the frame classifier labels as the clip's class"),
    MetricSpec(name="centroid_error", modality="video", fn=metrics.centroid_error, direction="lower", task="impute",
               description="pixels between intensity centres of predicted and true frames (object position)"),
]

MASK_STRATEGIES = [MaskStrategySpec(name=name, fn=fn, description=description, options=options)
                   for name, (fn, options, description) in masks.STRATEGIES.items()]
