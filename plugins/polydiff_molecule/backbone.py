"""An E(3)-equivariant denoiser backbone built with e3nn.

Node features are irreps ``S x 0e + V x 1o`` (invariant scalars and polar vectors). Each layer sends
messages on the fully connected graph of real atoms (padding masked out):

* edge geometry: spherical harmonics ``0e + 1o`` of the unit relative position and a Gaussian
  radial basis of the distance (e3nn ``soft_one_hot_linspace``);
* message ``m_ij = TP(f_j, Y(r_ij); w(d_ij, s_i, s_j, e_ij))``: a depthwise ("uvu") tensor product
  whose weights come from an MLP of invariants (distance basis, both atoms' scalars, noise level and,
  for conformers, the bond / graph-distance class of the pair), as NequIP (Batzner et al. 2022);
* update: summed messages -> linear -> gated nonlinearity (Weiler et al. 2018) with a residual.

Outputs: per atom one ``1o`` vector (the position part of ``F``: rotates and reflects with the input,
ignores translations) and ``0e`` scalars (atom-type and charge logits: invariant). Only relative
positions enter, so the function is E(3)- and permutation-equivariant by construction; the tests
prove it to ~1e-6 with :func:`polydiff.testing.check_equivariance`.

Why fully connected: molecules here have at most ~30 atoms including hydrogens, so all N^2 pairs are
cheap and no cutoff can cut a bond of a noisy sample.
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import Gate
from torch import Tensor, nn

from polydiff.diffusion import StateSpec
from polydiff.nn import FourierEmbedding

N_EDGE_CLASSES = 9  # conformer graphs: 0 no pair / self, 1-4 bond order class, 5-8 graph distance 2, 3, 4, >4


class Interaction(nn.Module):
    """One message-passing layer on irreps features over an edge list (see module docstring)."""

    def __init__(self, hidden: o3.Irreps, scalars: int, vectors: int, basis: int, width: int) -> None:
        super().__init__()
        sh = o3.Irreps("1x0e + 1x1o")
        mid: list[tuple[int, o3.Irrep]] = []
        instructions = []
        for i, (mul, ir_in) in enumerate(hidden):
            for j, (_, ir_sh) in enumerate(sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in (o3.Irrep("0e"), o3.Irrep("1o")):
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        irreps_mid = o3.Irreps(mid)
        self.tp = o3.TensorProduct(hidden, sh, irreps_mid, instructions, shared_weights=False, internal_weights=False)
        # the first layer of the radial MLP acts on [rbf, s_i, s_j, context]; written as a sum of
        # per-part projections so that atom terms are computed per atom, then gathered per edge
        self.w_rbf = nn.Linear(basis, width)
        self.w_dst = nn.Linear(scalars, width, bias=False)
        self.w_src = nn.Linear(scalars, width, bias=False)
        self.radial = nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                    nn.Linear(width, self.tp.weight_numel))
        self.gate = Gate(f"{scalars}x0e", [nn.functional.silu], f"{vectors}x0e", [torch.sigmoid], f"{vectors}x1o")
        self.lin_msg = o3.Linear(irreps_mid, self.gate.irreps_in)
        self.lin_self = o3.Linear(hidden, self.gate.irreps_in)
        self.n_scalars = scalars

    def forward(self, f: Tensor, sh: Tensor, rbf: Tensor, ctx: Tensor, dst: Tensor, src: Tensor, norm: float) -> Tensor:
        s = f[:, :self.n_scalars]
        w = self.radial(self.w_rbf(rbf) + self.w_dst(s)[dst] + self.w_src(s)[src] + ctx)
        msg = self.tp(f[src], sh, w)  # message from atom src (j) to atom dst (i)
        agg = torch.zeros(f.shape[0], msg.shape[1], dtype=msg.dtype, device=msg.device).index_add_(0, dst, msg) / norm
        return f + self.gate(self.lin_msg(agg) + self.lin_self(f))


def _edge_geometry(flat: Tensor, dst: Tensor, src: Tensor, r_max: float, basis: int) -> tuple[Tensor, Tensor]:
    """Spherical harmonics ``0e + 1o`` of the unit vectors ``r_ij = x_i - x_j`` (translation-invariant,
    rotating with the input) and a Gaussian basis of their lengths."""
    rel = flat[dst] - flat[src]
    dist = torch.sqrt((rel ** 2).sum(-1) + 1e-8)
    sh = o3.spherical_harmonics([0, 1], rel / dist[:, None], normalize=False, normalization="component")
    return sh, soft_one_hot_linspace(dist, 0.0, r_max, basis, basis="gaussian", cutoff=False)


class EquivariantDenoiser(nn.Module):
    """``F(x_in, c_noise, *, padding=None, **cond)`` on a molecule state (see module docstring).

    Args:
        spec: the state; its ``com_free`` field holds positions, the other per-atom fields are
            invariant features that are both input and output (atom types, charges).
        scalars, vectors: multiplicities of ``0e`` and ``1o`` hidden features.
        layers: interaction layers.
        width: hidden width of the radial MLPs and embeddings.
        basis: radial basis functions over ``[0, r_max]`` (in the network's input units, ``c_in * x``).
        graph_cond: conformer generation: atom types come from ``cond["atom_types"]`` ``[B, N, T]``
            and pair classes from ``cond["edges"]`` ``[B, N, N]`` (bond / graph-distance classes).
        cond_types: width of ``cond["atom_types"]`` when ``graph_cond``.
        aggregation_norm: messages are summed and divided by this (about sqrt of typical neighbours).
        update_positions: after every layer but the last, move each atom by an equivariant vector of
            its features and recompute the edge geometry from the moved atoms (iterative refinement as
            in EGNN, Satorras et al. 2021, and EDM's EGNN dynamics); the position output is the total
            move plus the last layer's vector. Off: the geometry of the input is used throughout.
        readout: hidden width of an MLP that reads the invariant outputs (atom types, charges) from
            the last layer's scalars and vector norms (as MACE's nonlinear readout); 0: a linear map
            of the scalars.
        self_condition: take ``self_cond``, an earlier x0 estimate (self-conditioning): its atom
            types (not its charges) join each atom's embedding and a radial basis of its interatomic
            distances joins every edge MLP, so only invariants of the estimate enter.
    """

    def __init__(self, spec: StateSpec, *, scalars: int = 32, vectors: int = 8, layers: int = 3, width: int = 64,
                 basis: int = 24, r_max: float = 8.0, graph_cond: bool = False, cond_types: int = 0,
                 aggregation_norm: float = 4.0, update_positions: bool = False, readout: int = 0,
                 self_condition: bool = False) -> None:
        super().__init__()
        pos = [f for f in spec.fields if f.noise == "com_free"]
        if len(pos) != 1:
            raise ValueError(f"EquivariantDenoiser needs exactly one com_free position field, got {spec!r}")
        self.spec, self.pos_name = spec, pos[0].name
        self.feat = [(f.name, int(f.shape[-1])) for f in spec.fields if f.noise != "com_free"]  # type: ignore[arg-type]
        feat_dim = sum(d for _, d in self.feat)
        self.graph_cond, self.basis, self.r_max, self.norm = graph_cond, basis, r_max, aggregation_norm
        # the estimate's charges stay out: in the bundled data every charge is 0, and fed back the
        # untrained response to a non-zero estimate made 3 of 100 samples diverge below 0.3 A
        self.self_feat = [name for name, _ in self.feat if name != "charges"] if self_condition else []
        in_dim = (feat_dim + (cond_types if graph_cond else 0)
                  + sum(d for name, d in self.feat if name in self.self_feat))
        if in_dim == 0:
            raise ValueError("no invariant atom features: give atom types as fields or, with graph_cond, cond_types")
        # a small scale keeps the features smooth across noise levels (~0.5 cycles per unit of
        # c_noise = ln(sigma)/4): with 4 they decorrelated within one doubling of sigma, and a small
        # network trained briefly had to learn every octave apart
        self.noise_emb = FourierEmbedding(width, scale=0.5)
        self.embed = nn.Sequential(nn.Linear(in_dim + width, width), nn.SiLU(), nn.Linear(width, scalars))
        self.hidden = o3.Irreps(f"{scalars}x0e + {vectors}x1o")
        self.n_scalars = scalars
        self.ctx = nn.Linear(width, width)  # the noise level's part of every edge MLP
        self.edge_class = nn.Embedding(N_EDGE_CLASSES, width) if graph_cond else None
        self.supports_self_condition = self_condition
        self.self_edges = nn.Linear(basis, width, bias=False) if self_condition else None
        self.layers = nn.ModuleList(Interaction(self.hidden, scalars, vectors, basis, width) for _ in range(layers))
        self.out_pos = o3.Linear(self.hidden, o3.Irreps("1x1o"))
        moves = [o3.Linear(self.hidden, o3.Irreps("1x1o")) for _ in range(layers - 1)] if update_positions else []
        for move in moves:  # start as the fixed-geometry network; the moves are learnt
            nn.init.zeros_(move.weight)
        self.moves = nn.ModuleList(moves) if update_positions else None
        self.out_feat = o3.Linear(self.hidden, o3.Irreps(f"{feat_dim}x0e")) if feat_dim and not readout else None
        self.readout = (nn.Sequential(nn.Linear(scalars + vectors, readout), nn.SiLU(), nn.Linear(readout, feat_dim))
                        if feat_dim and readout else None)

    def forward(self, x: Tensor, c_noise: Tensor, *, padding: Tensor | None = None,
                atom_types: Tensor | None = None, edges: Tensor | None = None, x_cond: Tensor | None = None,
                cond_mask: Tensor | None = None, self_cond: Tensor | None = None) -> Tensor:
        if x_cond is not None or cond_mask is not None:
            raise ValueError("the e3nn backbones are unconditional in the state: fix atoms by replacement "
                             "(`polydiff impute` on a model trained with train.conditional = false)")
        fields = self.spec.unpack(x)
        pos = fields[self.pos_name]
        b, n, _ = pos.shape
        mask = (self.spec.unpack(padding)[self.pos_name][..., 0] if padding is not None
                else pos.new_ones(b, n)).to(pos.dtype)
        feats = [fields[name] for name, _ in self.feat]
        if self.graph_cond:
            if atom_types is None or edges is None:
                raise ValueError("a graph-conditional backbone needs cond atom_types [B, N, T] and edges [B, N, N] "
                                 "(the molecular graph); `polydiff sample` does not pass a dataset's graphs: "
                                 "sample with polydiff_molecule.generate_conformers(denoiser, mol, n, max_atoms=...)")
            feats.append(atom_types.to(pos.dtype))
        est = None
        if self.self_edges is not None:
            if self_cond is None:
                raise ValueError("this backbone was built self_condition=True: pass self_cond (zeros for none)")
            est = self.spec.unpack(self_cond.to(pos.dtype))
            feats.extend(est[name] for name in self.self_feat)
        emb = self.noise_emb(c_noise.reshape(b)).to(pos.dtype)
        h = torch.cat([*feats, emb[:, None, :].expand(b, n, emb.shape[1])], dim=-1)
        s = self.embed(h).reshape(b * n, -1)
        f = torch.cat([s, s.new_zeros(b * n, self.hidden.dim - self.n_scalars)], dim=-1)

        # edges: all ordered pairs of distinct real atoms of the same molecule (padding never enters)
        pair = mask[:, :, None] * mask[:, None, :] * (1 - torch.eye(n, dtype=pos.dtype, device=pos.device))
        eb, ei, ej = pair.nonzero(as_tuple=True)
        dst, src = eb * n + ei, eb * n + ej
        flat = pos.reshape(b * n, 3)
        real = mask.reshape(b * n, 1)
        ctx = self.ctx(emb)[eb]
        if self.edge_class is not None:
            assert edges is not None
            ctx = ctx + self.edge_class(edges.long().clamp(0, N_EDGE_CLASSES - 1)[eb, ei, ej])
        if est is not None and self.self_edges is not None:  # distances of the estimated geometry
            _, rbf_est = _edge_geometry(est[self.pos_name].reshape(b * n, 3), dst, src, self.r_max, self.basis)
            ctx = ctx + self.self_edges(rbf_est)
        moved = torch.zeros_like(flat)
        for k, layer in enumerate(self.layers):
            if k == 0 or self.moves is not None:
                sh, rbf = _edge_geometry(flat + moved, dst, src, self.r_max, self.basis)
            f = layer(f, sh, rbf, ctx, dst, src, self.norm)
            if self.moves is not None and k < len(self.moves):
                moved = moved + self.moves[k](f) * real
        out = {self.pos_name: ((moved + self.out_pos(f)) * real).reshape(b, n, 3)}
        if self.out_feat is not None or self.readout is not None:
            o = (self._invariant_out(f) * real).reshape(b, n, -1)
            start = 0
            for name, d in self.feat:
                out[name] = o[..., start:start + d]
                start += d
        return self.spec.pack(out)

    def _invariant_out(self, f: Tensor) -> Tensor:
        if self.readout is None:
            assert self.out_feat is not None
            return self.out_feat(f)
        vec = f[:, self.n_scalars:].reshape(f.shape[0], -1, 3)  # e3nn's "V x 1o" layout: V blocks of (x, y, z)
        norms = torch.sqrt((vec ** 2).sum(-1) + 1e-8)  # rotation- and reflection-invariant
        return self.readout(torch.cat([f[:, :self.n_scalars], norms], dim=-1))
