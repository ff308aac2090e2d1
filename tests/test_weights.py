"""LongVie 2 published weights <-> LongVieTransformer.

The published key list and the tensor shapes below are written by hand from the release's description
(docs/longvie2.md, "Published weights and their names"), NOT derived from the model or from
``model.published.RENAME_MAP``: otherwise a wrong rename rule would produce a matching wrong file and pass.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from model.published import (
    WeightsMismatchError,
    build_longvie_from_published,
    export_longvie_weights,
    load_longvie_weights,
    load_wan_base,
    to_lv2_name,
    to_published_name,
)
from model.transformer import LongVieTransformer

# A tiny I2V shape with image cross-attention (so k_img / v_img exist) and non-square FFNs (so a transposed
# ffn tensor cannot pass): base width 64, branch width 32.
BASE = dict(
    num_attention_heads=4, attention_head_dim=16, ffn_dim=96, num_layers=4, text_dim=32, freq_dim=32,
    image_dim=24, added_kv_proj_dim=64,
)
CONTROL = dict(control_layers=2, control_num_attention_heads=2, control_ffn_dim=48)
DIM, BRANCH, FFN, BRANCH_FFN, LAYERS, CONTROL_LAYERS = 64, 32, 96, 48, 4, 2
MODALITIES = ("dense", "sparse")
PREFIX = "pipe.dual_controller."


def tiny_model() -> LongVieTransformer:
    return LongVieTransformer(**BASE, **CONTROL)


# ---------------------------------------------------------------- the published layout, by hand


def wan_block_keys(width: int, ffn: int) -> dict[str, tuple[int, ...]]:
    """Original-Wan block parameter -> shape, for a block of ``width`` whose image context is already ``width``."""
    keys: dict[str, tuple[int, ...]] = {}
    for attn in ("self_attn", "cross_attn"):
        for proj in ("q", "k", "v", "o"):
            keys[f"{attn}.{proj}.weight"] = (width, width)
            keys[f"{attn}.{proj}.bias"] = (width,)
        keys[f"{attn}.norm_q.weight"] = (width,)
        keys[f"{attn}.norm_k.weight"] = (width,)
    for proj in ("k_img", "v_img"):
        keys[f"cross_attn.{proj}.weight"] = (width, width)
        keys[f"cross_attn.{proj}.bias"] = (width,)
    keys["cross_attn.norm_k_img.weight"] = (width,)
    keys["norm3.weight"] = (width,)
    keys["norm3.bias"] = (width,)
    keys["ffn.0.weight"] = (ffn, width)
    keys["ffn.0.bias"] = (ffn,)
    keys["ffn.2.weight"] = (width, ffn)
    keys["ffn.2.bias"] = (width,)
    keys["modulation"] = (1, 6, width)
    return keys


def published_control_layout() -> dict[str, tuple[int, ...]]:
    layout: dict[str, tuple[int, ...]] = {}
    for m in MODALITIES:
        for i in range(CONTROL_LAYERS):
            for suffix, shape in wan_block_keys(BRANCH, BRANCH_FFN).items():
                layout[f"control_blocks_{m}.{i}.{suffix}"] = shape
        layout[f"control_initial_combine_linear_{m}.weight"] = (BRANCH, DIM)
        layout[f"control_initial_combine_linear_{m}.bias"] = (BRANCH,)
    for name in ("control_text_linear", "control_t_mod"):
        layout[f"{name}.weight"] = (BRANCH, DIM)
        layout[f"{name}.bias"] = (BRANCH,)
    for i in range(CONTROL_LAYERS):
        layout[f"control_combine_linears.{i}.weight"] = (DIM, BRANCH)
        layout[f"control_combine_linears.{i}.bias"] = (DIM,)
    return layout


def published_dit_layout() -> dict[str, tuple[int, ...]]:
    layout: dict[str, tuple[int, ...]] = {}
    for i in range(LAYERS):
        for proj in ("q", "k", "v", "o"):
            layout[f"blocks.{i}.self_attn.{proj}.weight"] = (DIM, DIM)
            layout[f"blocks.{i}.self_attn.{proj}.bias"] = (DIM,)
        layout[f"blocks.{i}.self_attn.norm_q.weight"] = (DIM,)
        layout[f"blocks.{i}.self_attn.norm_k.weight"] = (DIM,)
    return layout


# Spot checks of the Wan -> diffusers names, one block, written out in full (diffusers' converter semantics).
BLOCK_NAME_PAIRS = {
    "self_attn.q.weight": "attn1.to_q.weight",
    "self_attn.k.bias": "attn1.to_k.bias",
    "self_attn.v.weight": "attn1.to_v.weight",
    "self_attn.o.weight": "attn1.to_out.0.weight",
    "self_attn.norm_q.weight": "attn1.norm_q.weight",
    "self_attn.norm_k.weight": "attn1.norm_k.weight",
    "cross_attn.q.bias": "attn2.to_q.bias",
    "cross_attn.o.bias": "attn2.to_out.0.bias",
    "cross_attn.k_img.weight": "attn2.add_k_proj.weight",
    "cross_attn.v_img.bias": "attn2.add_v_proj.bias",
    "cross_attn.norm_k_img.weight": "attn2.norm_added_k.weight",
    "cross_attn.norm_k.weight": "attn2.norm_k.weight",
    "norm3.weight": "norm2.weight",
    "norm3.bias": "norm2.bias",
    "ffn.0.weight": "ffn.net.0.proj.weight",
    "ffn.2.bias": "ffn.net.2.bias",
    "modulation": "scale_shift_table",
}
CONTAINER_PAIRS = {
    "control_blocks_sparse.1.": "control.branches.sparse.1.",
    "control_initial_combine_linear_dense.": "control.initial_linears.dense.",
    "control_text_linear.": "control.text_linear.",
    "control_t_mod.": "control.time_linear.",
    "control_combine_linears.1.": "control.combine_linears.1.",
    "blocks.3.": "base.blocks.3.",
}


def random_tensors(layout: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=generator) for k, shape in layout.items()}


def write(path: Path, tensors: dict[str, torch.Tensor], prefix: str = "") -> Path:
    save_file({prefix + k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def fingerprint(tensor: torch.Tensor) -> str:
    return hashlib.sha1(tensor.detach().float().contiguous().numpy().tobytes()).hexdigest()


@pytest.fixture()
def published(tmp_path):
    control = random_tensors(published_control_layout(), seed=1)
    dit = random_tensors(published_dit_layout(), seed=2)
    return dict(
        control=control,
        dit=dit,
        control_path=write(tmp_path / "control.safetensors", control, PREFIX),
        dit_path=write(tmp_path / "dit.safetensors", dit, "pipe.dit."),
    )


# ---------------------------------------------------------------- names


def test_hand_written_layout_matches_the_release_counts_at_full_size():
    # The release: 800 control tensors (12 blocks x 2 branches x 32 + 32 others), 400 dit tensors (40 x 10).
    assert len(wan_block_keys(2560, 6912)) == 32
    assert len(published_control_layout()) == 2 * CONTROL_LAYERS * 32 + 4 + 4 + 2 * CONTROL_LAYERS
    assert len(published_dit_layout()) == LAYERS * 10


def test_spot_checked_names_both_ways():
    for container, ours_container in CONTAINER_PAIRS.items():
        if container.startswith(("control_blocks", "blocks")):
            for published_suffix, ours_suffix in BLOCK_NAME_PAIRS.items():
                assert to_lv2_name(container + published_suffix) == ours_container + ours_suffix
                assert to_published_name(ours_container + ours_suffix) == container + published_suffix
        else:
            assert to_lv2_name(container + "weight") == ours_container + "weight"
            assert to_published_name(ours_container + "bias") == container + "bias"


def test_every_published_key_round_trips_through_the_names():
    keys = list(published_control_layout()) + list(published_dit_layout())
    lv2 = [to_lv2_name(k) for k in keys]
    assert len(set(lv2)) == len(keys)  # injective
    assert [to_published_name(n) for n in lv2] == keys
    assert to_lv2_name(PREFIX + keys[0]) == lv2[0]
    assert to_lv2_name("dual_controller." + keys[0]) == lv2[0]
    assert to_lv2_name("pipe.dit.blocks.0.self_attn.q.weight") == to_lv2_name("dit.blocks.0.self_attn.q.weight")


@pytest.mark.parametrize("key", ["patch_embedding.weight", "blocks.0.norm1.weight", "control_blocks_dense.x.ffn.0.weight"])
def test_unknown_published_key_raises(key):
    with pytest.raises(ValueError, match="rule covers|not a Wan block parameter"):
        to_lv2_name(key)


def test_unknown_lv2_name_raises():
    with pytest.raises(ValueError, match="lv2 key 'base.patch_embedding.weight'"):
        to_published_name("base.patch_embedding.weight")


# ---------------------------------------------------------------- loading


def test_strict_load_sets_every_control_and_self_attention_parameter(published):
    model = tiny_model()
    untouched = {n: p.clone() for n, p in model.base.named_parameters() if ".attn1." not in n}
    report = load_longvie_weights(model, published["control_path"], published["dit_path"])
    assert report.ok and len(report.loaded) == len(published["control"]) + len(published["dit"])

    # Independent of the rename map: every written tensor landed in exactly one parameter, and every control /
    # base self-attention parameter holds one of the written tensors.
    written = {fingerprint(t): k for k, t in {**published["control"], **published["dit"]}.items()}
    assert len(written) == len(published["control"]) + len(published["dit"])
    targets = {n: p for n, p in model.named_parameters() if n.startswith("control.") or ".attn1." in n}
    found = {n: written.get(fingerprint(p)) for n, p in targets.items()}
    assert None not in found.values(), [n for n, k in found.items() if k is None]
    assert sorted(found.values()) == sorted(written.values())

    # ... and it landed in the right one (spot-checked names, written out by hand above).
    params = dict(model.named_parameters())
    for published_suffix, ours_suffix in BLOCK_NAME_PAIRS.items():
        for m in MODALITIES:
            for i in range(CONTROL_LAYERS):
                source = published["control"][f"control_blocks_{m}.{i}.{published_suffix}"]
                assert torch.equal(params[f"control.branches.{m}.{i}.{ours_suffix}"], source)
    assert torch.equal(params["control.time_linear.weight"], published["control"]["control_t_mod.weight"])
    assert torch.equal(params["control.initial_linears.sparse.bias"], published["control"]["control_initial_combine_linear_sparse.bias"])
    assert torch.equal(params["base.blocks.2.attn1.to_out.0.weight"], published["dit"]["blocks.2.self_attn.o.weight"])
    assert torch.equal(params["base.blocks.3.attn1.norm_k.weight"], published["dit"]["blocks.3.self_attn.norm_k.weight"])
    for name, before in untouched.items():  # the rest of the base is not the dit file's business
        assert torch.equal(params[f"base.{name}"], before)


def test_missing_key_is_listed(published, tmp_path):
    control = dict(published["control"])
    del control["control_blocks_sparse.1.cross_attn.k_img.weight"]
    path = write(tmp_path / "partial.safetensors", control, PREFIX)
    with pytest.raises(WeightsMismatchError) as error:
        load_longvie_weights(tiny_model(), path)
    assert error.value.missing == ["control.branches.sparse.1.attn2.add_k_proj.weight"]
    assert error.value.unexpected == []
    assert "control.branches.sparse.1.attn2.add_k_proj.weight" in str(error.value)
    assert "control_blocks_sparse.1.cross_attn.k_img.weight" in str(error.value)  # says which published key


def test_missing_dit_key_is_listed(published, tmp_path):
    dit = dict(published["dit"])
    del dit["blocks.3.self_attn.norm_q.weight"]
    path = write(tmp_path / "dit_partial.safetensors", dit)
    with pytest.raises(WeightsMismatchError) as error:
        load_longvie_weights(tiny_model(), published["control_path"], path)
    assert error.value.missing == ["base.blocks.3.attn1.norm_q.weight"]


def test_unexpected_keys_are_listed(published, tmp_path):
    control = dict(published["control"])
    control["control_blocks_dense.7.ffn.0.weight"] = torch.zeros(BRANCH_FFN, BRANCH)  # block 7 does not exist
    control["control_blocks_depth.0.norm3.weight"] = torch.zeros(BRANCH)  # nor does a "depth" branch
    control["some_other_module.weight"] = torch.zeros(3)  # no rule at all
    control["blocks.0.self_attn.q.weight"] = torch.zeros(DIM, DIM)  # a base key has no place in control
    path = write(tmp_path / "extra.safetensors", control, PREFIX)
    with pytest.raises(WeightsMismatchError) as error:
        load_longvie_weights(tiny_model(), path)
    expected = sorted(PREFIX + k for k in (
        "control_blocks_dense.7.ffn.0.weight", "control_blocks_depth.0.norm3.weight",
        "some_other_module.weight", "blocks.0.self_attn.q.weight",
    ))
    assert sorted(error.value.unexpected) == expected
    assert error.value.missing == []
    for key in expected:
        assert key in str(error.value)


def test_non_strict_loads_the_rest_and_reports(published, tmp_path):
    control = dict(published["control"])
    del control["control_combine_linears.0.bias"]
    control["control_combine_linears.9.weight"] = torch.zeros(DIM, BRANCH)
    path = write(tmp_path / "loose.safetensors", control, PREFIX)
    model = tiny_model()
    before = model.control.combine_linears[0].bias.clone()
    report = load_longvie_weights(model, path, published["dit_path"], strict=False)
    assert report.missing == ["control.combine_linears.0.bias"]
    assert report.unexpected == [PREFIX + "control_combine_linears.9.weight"]
    assert not report.ok
    assert torch.equal(model.control.combine_linears[0].bias, before)
    assert torch.equal(model.control.combine_linears[0].weight, control["control_combine_linears.0.weight"])
    assert torch.equal(model.base.blocks[1].attn1.to_q.weight, published["dit"]["blocks.1.self_attn.q.weight"])


def test_shape_mismatch_names_key_and_both_shapes_and_loads_nothing(published, tmp_path):
    control = dict(published["control"])
    control["control_blocks_dense.0.ffn.0.weight"] = torch.zeros(BRANCH, BRANCH_FFN)  # transposed
    path = write(tmp_path / "wrong.safetensors", control, PREFIX)
    model = tiny_model()
    before = {n: p.clone() for n, p in model.control.named_parameters()}
    for strict in (True, False):
        with pytest.raises(WeightsMismatchError) as error:
            load_longvie_weights(model, path, strict=strict)
        message = str(error.value)
        assert "control_blocks_dense.0.ffn.0.weight" in message
        assert f"[{BRANCH}, {BRANCH_FFN}]" in message and f"[{BRANCH_FFN}, {BRANCH}]" in message
        assert error.value.mismatched == [(
            PREFIX + "control_blocks_dense.0.ffn.0.weight", "control.branches.dense.0.ffn.net.0.proj.weight",
            (BRANCH, BRANCH_FFN), (BRANCH_FFN, BRANCH),
        )]
    assert all(torch.equal(p, before[n]) for n, p in model.control.named_parameters())


def test_error_message_groups_thousands_of_keys(published, tmp_path):
    control = {k: v for k, v in published["control"].items() if not k.startswith("control_blocks_")}
    path = write(tmp_path / "no_blocks.safetensors", control, PREFIX)
    with pytest.raises(WeightsMismatchError) as error:
        load_longvie_weights(tiny_model(), path)
    assert len(error.value.missing) == 2 * CONTROL_LAYERS * 32
    assert "control.branches.dense.{i}.attn2.add_k_proj.weight  (2 keys)" in str(error.value)


def test_dtype_is_cast_to_the_parameter(published, tmp_path):
    half = {k: v.to(torch.bfloat16) for k, v in published["control"].items()}
    path = write(tmp_path / "bf16.safetensors", half, PREFIX)
    model = tiny_model()
    load_longvie_weights(model, path)
    assert model.control.text_linear.weight.dtype == torch.float32
    assert torch.equal(model.control.text_linear.weight, half["control_text_linear.weight"].float())


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        load_longvie_weights(tiny_model(), tmp_path / "nowhere.safetensors")


def test_meta_model_needs_assign_and_loads_with_it(published):
    with torch.device("meta"):
        model = tiny_model()
    with pytest.raises(ValueError, match="assign=True"):
        load_longvie_weights(model, published["control_path"])
    load_longvie_weights(model, published["control_path"], published["dit_path"], assign=True)
    assert not any(p.is_meta for p in model.control.parameters())
    assert all(not b.attn1.to_q.weight.is_meta for b in model.base.blocks)
    assert torch.equal(model.control.branches["dense"][1].scale_shift_table, published["control"]["control_blocks_dense.1.modulation"])


# ---------------------------------------------------------------- export


def test_export_writes_the_published_key_set_and_round_trips(published, tmp_path):
    source = tiny_model()
    load_longvie_weights(source, published["control_path"], published["dit_path"])
    control_path, dit_path = export_longvie_weights(source, tmp_path / "export")
    assert (control_path.name, dit_path.name) == ("control.safetensors", "dit.safetensors")
    with safe_open(str(control_path), framework="pt") as handle:
        assert set(handle.keys()) == set(published_control_layout())
    with safe_open(str(dit_path), framework="pt") as handle:
        assert set(handle.keys()) == set(published_dit_layout())
    exported = load_file(str(control_path))
    assert all(torch.equal(exported[k], v) for k, v in published["control"].items())

    target = tiny_model()
    assert load_longvie_weights(target, control_path, dit_path).ok
    mine, theirs = dict(source.named_parameters()), dict(target.named_parameters())
    for name, param in mine.items():
        if name.startswith("control.") or ".attn1." in name:
            assert torch.equal(theirs[name], param), name


# ---------------------------------------------------------------- building from a diffusers-layout base


def test_build_from_a_diffusers_layout_base(published, tmp_path):
    torch.manual_seed(0)
    base = WanTransformer3DModel(**BASE, in_channels=36, out_channels=16)
    base.save_pretrained(tmp_path / "wan" / "transformer")
    saved = {n: p.clone() for n, p in base.named_parameters()}

    model = build_longvie_from_published(
        tmp_path / "wan" / "transformer", published["control_path"], published["dit_path"], control_layers=CONTROL_LAYERS,
    )
    assert not model.training
    assert model.config.control_num_attention_heads == 2 and model.config.control_ffn_dim == BRANCH_FFN
    params = dict(model.named_parameters())
    assert not any(p.is_meta for p in params.values())
    for name, value in saved.items():
        expected = published["dit"][to_published_name(f"base.{name}")] if ".attn1." in name else value
        assert torch.equal(params[f"base.{name}"], expected), name
    assert torch.equal(params["control.combine_linears.1.weight"], published["control"]["control_combine_linears.1.weight"])

    # It runs, and the root of a Wan download (with transformer/ inside) works as well.
    same = build_longvie_from_published(tmp_path / "wan", published["control_path"], published["dit_path"], control_layers=2)
    b, t, h, w = 1, 2, 4, 4
    inputs = dict(
        hidden_states=torch.randn(b, 16, t, h, w), timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(b, 5, 32), condition=torch.randn(b, 20, t, h, w),
        controls={"dense": torch.randn(b, 16, t, h, w), "sparse": torch.randn(b, 16, t, h, w)},
        encoder_hidden_states_image=torch.randn(b, 3, 24),
    )
    with torch.no_grad():
        out = model(**inputs)
        assert torch.equal(out, same(**inputs))
    assert out.shape == (b, 16, t, h, w) and torch.isfinite(out).all()


def test_build_non_strict_fills_missing_with_zeros(published, tmp_path):
    WanTransformer3DModel(**BASE, in_channels=36, out_channels=16).save_pretrained(tmp_path / "transformer")
    control = {k: v for k, v in published["control"].items() if not k.startswith("control_combine_linears.1.")}
    path = write(tmp_path / "partial.safetensors", control, PREFIX)
    with pytest.raises(WeightsMismatchError):
        build_longvie_from_published(tmp_path / "transformer", path, published["dit_path"], control_layers=2)
    model = build_longvie_from_published(tmp_path / "transformer", path, published["dit_path"], control_layers=2, strict=False)
    assert torch.count_nonzero(model.control.combine_linears[1].weight) == 0
    assert torch.count_nonzero(model.control.combine_linears[1].bias) == 0


def test_build_errors_name_the_missing_path(published, tmp_path):
    with pytest.raises(FileNotFoundError, match="no_wan_here"):
        build_longvie_from_published(tmp_path / "no_wan_here", published["control_path"], published["dit_path"])
    with pytest.raises(FileNotFoundError, match="no_control.safetensors"):
        build_longvie_from_published(tmp_path, tmp_path / "no_control.safetensors", published["dit_path"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_longvie_from_published(tmp_path / "empty", published["control_path"], published["dit_path"])


def test_build_rejects_a_text_to_video_base(published, tmp_path):
    WanTransformer3DModel(**{**BASE, "image_dim": None, "added_kv_proj_dim": None}, in_channels=36).save_pretrained(tmp_path / "t2v")
    with pytest.raises(ValueError, match="I2V"):
        build_longvie_from_published(tmp_path / "t2v", published["control_path"], published["dit_path"], control_layers=2)


def test_sharded_base_and_bf16_build(published, tmp_path):
    torch.manual_seed(0)
    base = WanTransformer3DModel(**BASE, in_channels=36, out_channels=16)
    base.save_pretrained(tmp_path / "sharded", max_shard_size="60KB")
    assert (tmp_path / "sharded" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    model = build_longvie_from_published(
        tmp_path / "sharded", published["control_path"], published["dit_path"], control_layers=2, torch_dtype=torch.bfloat16
    )
    # diffusers' rule for Wan, in the base and the branches alike: bf16 except modulation tables and norms.
    assert model.base.blocks[0].ffn.net[0].proj.weight.dtype == torch.bfloat16
    assert model.base.blocks[0].scale_shift_table.dtype == torch.float32
    assert model.control.branches["dense"][0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.control.branches["dense"][0].scale_shift_table.dtype == torch.float32
    assert model.control.branches["dense"][0].norm2.weight.dtype == torch.float32
    assert torch.equal(model.control.text_linear.weight, published["control"]["control_text_linear.weight"].bfloat16())
    assert torch.equal(model.base.patch_embedding.weight, base.patch_embedding.weight.bfloat16())


def test_missing_shard_is_named(tmp_path):
    WanTransformer3DModel(**BASE, in_channels=36).save_pretrained(tmp_path / "sharded", max_shard_size="60KB")
    shard = sorted((tmp_path / "sharded").glob("*-00002-of-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=shard.name):
        load_wan_base(tmp_path / "sharded")


def test_base_with_a_missing_tensor_is_reported(tmp_path):
    WanTransformer3DModel(**BASE, in_channels=36).save_pretrained(tmp_path / "base")
    file = tmp_path / "base" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(file))
    del state["proj_out.weight"]
    save_file(state, str(file))
    with pytest.raises((WeightsMismatchError, ValueError), match="proj_out.weight"):
        load_wan_base(tmp_path / "base")


def test_wan_base_loader_equals_diffusers_from_pretrained(tmp_path):
    WanTransformer3DModel(**BASE, in_channels=36).save_pretrained(tmp_path / "base")
    for dtype in (None, torch.bfloat16):
        theirs = WanTransformer3DModel.from_pretrained(str(tmp_path / "base"), local_files_only=True, torch_dtype=dtype)
        mine = load_wan_base(tmp_path / "base", dtype)
        a, b = theirs.state_dict(), mine.state_dict()
        assert a.keys() == b.keys()
        assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
        buffers = dict(mine.named_buffers())
        assert all(torch.equal(v, buffers[k]) and v.dtype == buffers[k].dtype for k, v in theirs.named_buffers())


def test_published_model_computes_exactly_what_it_was_exported_from(tmp_path):
    torch.manual_seed(3)
    source = tiny_model().eval()
    with torch.no_grad():
        for param in source.control.parameters():  # non-zero fusion layers, so the branches matter
            param.normal_(std=0.05)
    source.base.save_pretrained(tmp_path / "transformer")
    control_path, dit_path = export_longvie_weights(source, tmp_path / "longvie")
    model = build_longvie_from_published(tmp_path / "transformer", control_path, dit_path, control_layers=CONTROL_LAYERS)

    b, t, h, w = 1, 2, 4, 4
    inputs = dict(
        hidden_states=torch.randn(b, 16, t, h, w), timestep=torch.tensor([700.0]),
        encoder_hidden_states=torch.randn(b, 5, 32), condition=torch.randn(b, 20, t, h, w),
        controls={"dense": torch.randn(b, 16, t, h, w), "sparse": torch.randn(b, 16, t, h, w)},
        control_scales={"dense": 0.5}, history=torch.randn(b, 16, 1, h, w),
        encoder_hidden_states_image=torch.randn(b, 3, 24),
    )
    with torch.no_grad():
        expected = source(**inputs)
        without_control = source(**{**inputs, "controls": None})
        assert not torch.allclose(expected, without_control)  # the control part is really exercised
        assert torch.equal(model(**inputs), expected)
