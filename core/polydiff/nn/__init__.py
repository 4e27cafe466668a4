"""Network building blocks any backbone may reuse: noise-level and label embeddings, a residual MLP."""

from __future__ import annotations

from .layers import FourierEmbedding, LabelEmbedding, MLPBackbone, ResidualMLPBlock, build_mlp

__all__ = ["FourierEmbedding", "LabelEmbedding", "MLPBackbone", "ResidualMLPBlock", "build_mlp"]
