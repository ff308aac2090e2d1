"""The LongVie 2 control DiT: a Wan2.1-I2V base with control branches and history context.

Built from diffusers' Wan components: the base is a real :class:`diffusers.WanTransformer3DModel` (so a
Wan2.1-I2V checkpoint in diffusers layout loads into ``self.base`` unchanged), and every control branch is a
stack of diffusers ``WanTransformerBlock`` at a reduced width. Only the forward pass is written here, because
LongVie 2 interleaves the branches with the base blocks and prepends history tokens.

How the branches are wired (docs/longvie2.md):

* each control video is encoded by the VAE and concatenated with the I2V conditioning (4-channel first-frame
  mask + first-frame latent) to 36 channels, patchified by the *base* patch embedding (frozen in training),
  and mapped into its branch by a zero-initialised linear (``control.initial_linears[name]``);
* the text (and image) context and the timestep modulation are projected into the branch width
  (``control.text_linear``, ``control.time_linear``), shared by all branches;
* after base block ``i < control_layers``: ``x += W_i(sum_m scale_m * branch_m_i)`` with zero-initialised
  ``W_i`` (``control.combine_linears[i]``); the dense scale is LongVie 2's ``lambda``.

At initialisation the model therefore computes exactly what its base computes. The branches are a configured
list of named modalities (published: ``("dense", "sparse")``); another modality is one more name in
``control_modalities`` with its own weights.

History context: latents of the last frames of the previous clip enter as extra tokens *before* the clip's
tokens, with the I2V input slots filled as the reference does (ones in the noisy-latent and mask slots, the
history latent in the condition slot), so the temporal rotary positions run over history then clip. Control
residuals go to the clip's tokens only, and the history tokens are dropped before the output head.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.utils.checkpoint
from diffusers import ModelMixin, WanTransformer3DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.transformers.transformer_wan import WanTransformerBlock
from torch import nn

from model.clips import CONTROL_MODALITIES

LATENT_CHANNELS = 16
CONDITION_CHANNELS = 20  # 4-channel first-frame mask + 16-channel latent of [first frame, zeros...]


class Float32RMSNorm(nn.RMSNorm):
    """``nn.RMSNorm`` computed in float32 on purpose, returning the input's dtype.

    Under bf16 autocast (or with a bf16 checkpoint, whose norms diffusers keeps in float32) the attention's q/k
    norms receive bf16 activations and float32 weights; torch's fused kernel refuses mixed dtypes, warns
    ("Mismatch dtype between input and weight") and falls back. A mean of squares is also where bf16's 8-bit
    mantissa hurts most, so the norm is done in float32 and only its result is cast back.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        return nn.functional.rms_norm(x.float(), self.normalized_shape, weight, self.eps).to(x.dtype)


def _norms_in_float32(model: nn.Module) -> None:
    for module in model.modules():
        if type(module) is nn.RMSNorm:
            module.__class__ = Float32RMSNorm


def _zero_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ControlBranches(nn.Module):
    """Named control branches at ``branch_dim`` width, plus the shared projections and fusion layers."""

    def __init__(
        self,
        modalities: tuple[str, ...],
        dim: int,
        branch_dim: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        qk_norm: str | None,
        cross_attn_norm: bool,
        eps: float,
        added_kv_proj_dim: int | None,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.initial_linears = nn.ModuleDict({m: _zero_linear(dim, branch_dim) for m in self.modalities})
        self.branches = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    WanTransformerBlock(branch_dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim)
                    for _ in range(num_layers)
                )
                for m in self.modalities
            }
        )
        self.text_linear = nn.Linear(dim, branch_dim)
        self.time_linear = nn.Linear(dim, branch_dim)
        self.combine_linears = nn.ModuleList(_zero_linear(branch_dim, dim) for _ in range(num_layers))


class LongVieTransformer(ModelMixin, ConfigMixin):
    """Wan2.1-I2V DiT + LongVie 2 control branches + history context. A pure function of its inputs.

    The first arguments are :class:`diffusers.WanTransformer3DModel`'s; the ``control_*`` ones shape the
    branches (width = ``control_num_attention_heads * attention_head_dim``, i.e. half the base when the heads
    are halved, as published).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 36,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = 1280,
        added_kv_proj_dim: int | None = 5120,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        control_modalities: tuple[str, ...] = CONTROL_MODALITIES,
        control_layers: int = 12,
        control_num_attention_heads: int = 20,
        control_ffn_dim: int = 6912,
    ) -> None:
        super().__init__()
        if in_channels != LATENT_CHANNELS + CONDITION_CHANNELS:
            raise ValueError(f"in_channels must be {LATENT_CHANNELS + CONDITION_CHANNELS} (I2V), got {in_channels}")
        if not 0 <= control_layers <= num_layers:
            raise ValueError(f"control_layers must be in [0, num_layers={num_layers}], got {control_layers}")
        if len(set(control_modalities)) != len(control_modalities) or not all(control_modalities):
            raise ValueError(f"control_modalities must be distinct non-empty names, got {control_modalities!r}")
        self.base = WanTransformer3DModel(
            patch_size=tuple(patch_size),
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        dim = num_attention_heads * attention_head_dim
        # Branches share the base's head size, so the base rotary embedding serves them too.
        branch_dim = control_num_attention_heads * attention_head_dim
        branch_kv = None if added_kv_proj_dim is None else branch_dim
        self.control = ControlBranches(
            tuple(control_modalities), dim, branch_dim, control_layers, control_num_attention_heads,
            control_ffn_dim, qk_norm, cross_attn_norm, eps, branch_kv,
        )
        _norms_in_float32(self)
        self.gradient_checkpointing = False

    # ------------------------------------------------------------------ initialisation

    @torch.no_grad()
    def init_control_from_base(self) -> None:
        """LongVie 2's "half copy": branch ``m``'s block ``i`` takes base block ``i``'s weights, keeping every
        other channel (even channels for the first modality, odd for the second, alternating after that) of each
        dimension that the branch halves. The zero-initialised fusion layers are left as they are."""
        for index, name in enumerate(self.control.modalities):
            offset = index % 2
            for i, block in enumerate(self.control.branches[name]):
                source = dict(self.base.blocks[i].named_parameters())
                for pname, param in block.named_parameters():
                    param.copy_(_half_copy(source[pname], param.shape, offset, pname))

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        condition: torch.Tensor,
        controls: Mapping[str, torch.Tensor] | None = None,
        control_scales: Mapping[str, float | torch.Tensor] | None = None,
        history: torch.Tensor | None = None,
        encoder_hidden_states_image: torch.Tensor | None = None,
        control_conditions: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predict the flow-matching velocity of a clip.

        Args:
            hidden_states: ``[B, 16, T, h, w]`` noisy latent of the clip.
            timestep: ``[B]`` timesteps in ``[0, 1000]``.
            encoder_hidden_states: ``[B, L, text_dim]`` text embeddings.
            condition: ``[B, 20, T, h, w]`` I2V conditioning: first-frame mask (4) + latent of [first frame, 0...] (16).
            controls: modality name -> ``[B, 16, T, h, w]`` latent of its control video; missing names are off.
            control_scales: modality name -> scale (float or ``[B]``); LongVie 2's ``lambda`` is ``{"dense": l}``.
            history: ``[B, 16, T_h, h, w]`` clean latents of the previous clip's last frames, or None.
            encoder_hidden_states_image: ``[B, 257, image_dim]`` CLIP features when the base has image attention.
            control_conditions: modality name -> ``[B, 20, T, h, w]``, that branch's own I2V conditioning (mask +
                latent of [its control video's first frame, 0...], as LongVie 2's published code builds it); a
                modality not named here takes ``condition``. Each branch's input is then
                ``[control latent (16), its conditioning (20)]``, 36 channels like the base's.

        Returns:
            ``[B, 16, T, h, w]`` velocity prediction for the clip (history excluded).
        """
        base = self.base
        b, _, t, h, w = hidden_states.shape
        p_t, p_h, p_w = base.config.patch_size
        self._check_inputs(hidden_states, condition, controls, history, control_conditions)

        # 1. I2V input [B, 36, T, h, w]; history goes first along time, as a known (conditioning) frame.
        clip_input = torch.cat([hidden_states, condition], dim=1)
        full_input = clip_input
        if history is not None and history.shape[2] > 0:
            slots = history.new_ones(b, LATENT_CHANNELS + 4, *history.shape[2:])
            full_input = torch.cat([torch.cat([slots, history], dim=1), clip_input], dim=2)

        # 2. Rotary positions: history then clip for the base; the clip alone for the branches.
        rotary = base.rope(full_input)
        control_rotary = base.rope(clip_input) if full_input is not clip_input else rotary

        # 3. Patchify: [B, N, D] tokens, the clip's N_clip tokens last.
        x = base.patch_embedding(full_input).flatten(2).transpose(1, 2).contiguous()
        n_clip = (t // p_t) * (h // p_h) * (w // p_w)

        # 4. Timestep and text (and image) conditioning.
        temb, timestep_proj, context, context_image = base.condition_embedder(
            timestep, encoder_hidden_states, encoder_hidden_states_image
        )
        timestep_proj = timestep_proj.unflatten(1, (6, -1))  # [B, 6, D]
        if context_image is not None:
            context = torch.cat([context_image, context], dim=1)

        # 5. Control branch inputs.
        features = self._control_inputs(controls, condition, control_conditions)
        if features:
            control_context = self.control.text_linear(context)
            control_time = self.control.time_linear(timestep_proj)  # [B, 6, D_branch]
            scales = {m: self._scale(control_scales, m, x) for m in features}

        # 6. Blocks, with the control residual added to the clip's tokens after each of the first blocks.
        for i, block in enumerate(base.blocks):
            x = self._run(block, x, context, timestep_proj, rotary)
            if features and i < len(self.control.combine_linears):
                for m in features:
                    features[m] = self._run(self.control.branches[m][i], features[m], control_context, control_time, control_rotary)
                fused = sum(scales[m] * features[m] for m in features)
                residual = self.control.combine_linears[i](fused)
                x = x + residual if x.shape[1] == n_clip else torch.cat([x[:, :-n_clip], x[:, -n_clip:] + residual], dim=1)

        # 7. Drop history tokens; output norm, projection and unpatchify (as the base does).
        x = x[:, -n_clip:]
        shift, scale = (base.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (base.norm_out(x.float()) * (1 + scale) + shift).type_as(x)
        x = base.proj_out(x)
        x = x.reshape(b, t // p_t, h // p_h, w // p_w, p_t, p_h, p_w, -1)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)

    # ------------------------------------------------------------------ helpers

    def _run(self, block: nn.Module, *args) -> torch.Tensor:
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def _control_inputs(self, controls: Mapping[str, torch.Tensor] | None, condition: torch.Tensor,
                        control_conditions: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        if not controls or not len(self.control.combine_linears):
            return {}
        features = {}
        for name in self.control.modalities:
            if name in controls and controls[name] is not None:
                own = (control_conditions or {}).get(name)
                branch_input = torch.cat([controls[name], condition if own is None else own], dim=1)  # [B, 36, T, h, w]
                tokens = self.base.patch_embedding(branch_input)
                features[name] = self.control.initial_linears[name](tokens.flatten(2).transpose(1, 2))
        return features

    @staticmethod
    def _scale(control_scales, name: str, like: torch.Tensor):
        value = 1.0 if control_scales is None else control_scales.get(name, 1.0)
        if isinstance(value, torch.Tensor) and value.ndim == 1:
            return value.to(like.dtype).view(-1, 1, 1)  # per-sample [B] -> [B, 1, 1]
        return value

    def _check_inputs(self, hidden_states, condition, controls, history, control_conditions=None) -> None:
        if hidden_states.ndim != 5 or hidden_states.shape[1] != LATENT_CHANNELS:
            raise ValueError(f"hidden_states must be [B, {LATENT_CHANNELS}, T, h, w], got {tuple(hidden_states.shape)}")
        expected = (hidden_states.shape[0], CONDITION_CHANNELS, *hidden_states.shape[2:])
        if tuple(condition.shape) != expected:
            raise ValueError(f"condition must be {expected} to match hidden_states {tuple(hidden_states.shape)}, got {tuple(condition.shape)}")
        for name, value in (controls or {}).items():
            if name not in self.control.modalities:
                raise ValueError(f"unknown control modality {name!r}; this model has {list(self.control.modalities)}")
            if value is not None and tuple(value.shape) != tuple(hidden_states.shape):
                raise ValueError(
                    f"control {name!r} latent {tuple(value.shape)} does not match hidden_states {tuple(hidden_states.shape)}"
                )
        for name, value in (control_conditions or {}).items():
            if name not in self.control.modalities:
                raise ValueError(f"control_conditions names {name!r}; this model has {list(self.control.modalities)}")
            if tuple(value.shape) != expected:
                raise ValueError(f"control_conditions[{name!r}] must be {expected} like condition, got {tuple(value.shape)}")
        if history is not None:
            b, c, _, h, w = hidden_states.shape
            if history.ndim != 5 or (history.shape[0], history.shape[1], *history.shape[3:]) != (b, c, h, w):
                raise ValueError(f"history must be [{b}, {c}, T_h, {h}, {w}], got {tuple(history.shape)}")
        p_t, p_h, p_w = self.base.config.patch_size
        _, _, t, h, w = hidden_states.shape
        if t % p_t or h % p_h or w % p_w:
            raise ValueError(f"latent {t}x{h}x{w} is not divisible by the patch size {(p_t, p_h, p_w)}")

    def num_parameters_by_part(self) -> dict[str, int]:
        """Parameter counts of the base and of the control part (works on the ``meta`` device)."""
        count = lambda module: sum(math.prod(p.shape) for p in module.parameters())  # noqa: E731
        return {"base": count(self.base), "control": count(self.control)}


def _half_copy(source: torch.Tensor, shape: torch.Size, offset: int, name: str) -> torch.Tensor:
    """Slice ``source`` down to ``shape``, keeping channels ``offset::2`` of every halved dimension."""
    out = source
    for axis, (have, want) in enumerate(zip(source.shape, shape)):
        if have == want:
            continue
        if have != 2 * want:
            raise ValueError(f"half copy of {name}: base size {have} is not twice the branch size {want} (axis {axis})")
        out = out.narrow(axis, 0, have).index_select(axis, torch.arange(offset, have, 2, device=out.device))
    return out
