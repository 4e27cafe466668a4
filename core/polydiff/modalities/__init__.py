"""The core's own modality, ``points`` (N-D Gaussian mixtures with an exact denoiser): plain functions;
:mod:`polydiff.plugins.builtin` makes its specs, like any plugin's registry does."""
