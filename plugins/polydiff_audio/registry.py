"""What the audio plugin registers: the modality, datasets, backbones, metrics and mask strategies."""

from __future__ import annotations

from polydiff import BackboneSpec, DatasetSpec, MetricSpec, ModalitySpec

from . import media, metrics, plots
from .backbones import build_mel_conv1d, build_mel_unet
from .baselines import BASELINES
from .data import CODEC_OPTIONS, load_folder, load_tones
from .fill import interpolate_frames
from .masks import MASK_STRATEGIES
from .speech import ASTERISK_ROOT, load_asterisk_digits, load_espeak_digits

MODALITIES = [ModalitySpec(
    name="audio", description="log-mel spectrograms x[1, n_mels, frames] (padded in time), WAV via Griffin-Lim",
    default_dataset="tones", default_backbone="mel_conv1d", primary_metric="audio_fd",
    plot_samples=plots.plot_samples, plot_trajectory=plots.plot_trajectory, save_samples=plots.save_samples,
    plot_imputation=plots.plot_imputation, prior_fill=interpolate_frames, baselines=BASELINES,
    save_imputation=media.save_imputation)]

DATASETS = [
    DatasetSpec(name="tones", modality="audio", build=load_tones,
                description="synthetic harmonic tones, class = pitch contour (generated from a seed; no files)",
                options={"n": 400, "classes": 4, "seed": 0, **CODEC_OPTIONS}),
    DatasetSpec(name="asterisk_digits", modality="audio", build=load_asterisk_digits,
                description="spoken digits 0-9, 6 real voices of the Asterisk prompts (apt-get install "
                            "asterisk-core-sounds-*-wav)",
                options={"voices": "all", "root": str(ASTERISK_ROOT), **CODEC_OPTIONS}),
    DatasetSpec(name="espeak_digits", modality="audio", build=load_espeak_digits,
                description="spoken digits 0-9 synthesised by espeak-ng over voices x variants x speeds x pitches "
                            "(apt-get install espeak-ng)",
                options={"voices": "en-us,en-gb,en-gb-scotland,en-029", "variants": "m1,m3,f2,f4",
                         "speeds": "140,175,210", "pitches": "35,50,65", **CODEC_OPTIONS}),
    DatasetSpec(name="folder", modality="audio", build=load_folder,
                description="your clips under data.path/<class>/*.wav (resampled to data.sample_rate)",
                options={"path": "", **CODEC_OPTIONS}),
]

METRICS = [
    MetricSpec(name="audio_fd", modality="audio", fn=metrics.audio_fd, direction="lower",
               classifier=metrics.classifier_info,
               description="Frechet distance in the features of a small classifier trained on the dataset's "
                           "spectrograms (FAD-like, NOT VGGish FAD; cached in $POLYDIFF_CACHE)"),
    MetricSpec(name="audio_accuracy", modality="audio", fn=metrics.audio_accuracy, direction="higher",
               classifier=metrics.classifier_info,
               description="fraction of class-conditional samples the dataset's classifier labels as asked"),
    MetricSpec(name="lsd_db", modality="audio", task="impute", fn=metrics.impute_lsd, direction="lower",
               description="log-spectral distance (dB) of the sample median on the hidden frames"),
    MetricSpec(name="spectral_convergence", modality="audio", task="impute", fn=metrics.impute_sc,
               direction="lower", description="spectral convergence of the sample median on the hidden frames"),
]

BACKBONES = [
    BackboneSpec(name="mel_conv1d", modality="audio", build=build_mel_conv1d,
                 description="1D residual net over time (mel bands as channels), dilations + masked attention",
                 options={"width": 128, "depth": 8, "emb_dim": 128, "heads": 4, "attention_every": 4,
                          "class_cond": False, "conditional": False}),
    BackboneSpec(name="mel_unet", modality="audio", build=build_mel_unet,
                 description="the image plugin's 2D U-Net over (mel, time) (needs polydiff[image])",
                 options={"channels": 32, "channel_mult": "1,2,2", "num_res_blocks": 1, "attention_resolution": 8,
                          "heads": 4, "dropout": 0.0, "class_cond": False, "conditional": False}),
]

__all__ = ["BACKBONES", "DATASETS", "MASK_STRATEGIES", "METRICS", "MODALITIES"]
