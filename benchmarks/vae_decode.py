"""Seconds to decode one clip with the shipped VAE in float32, by convolution path.

    python benchmarks/vae_decode.py                 # stock kernels, channels-last-3d, oneDNN (what lv2 runs)
    python benchmarks/vae_decode.py --compile       # also torch.compile of the stock decoder (minutes to compile)
    python benchmarks/vae_decode.py --decoder fast  # the distilled decoder (model/shipped/vae-fast)

One 17-frame clip at 128x128 (5 latent frames), best of ``--repeats`` after a warm-up. "stock" is torch's own
kernel choice for every Conv3d (for a batch of one that is its unblocked ``slow_conv3d``); "oneDNN" is the
oneDNN-routed subclass of ``WanCausalConv3d`` that ``model/vae.py`` swaps in, what generation uses. Run it under
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` to see a CPU without AVX-512.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

from model.vae import VideoVAE
from model.world_model import SHIPPED_DIR


@contextmanager
def stock_kernels(vae: VideoVAE):
    """Every oneDNN-routed causal conv of ``vae`` (the subclass of diffusers' ``WanCausalConv3d`` that
    ``model/vae.py`` swaps in) back to diffusers' class while inside."""
    swapped = [(m, type(m)) for m in vae.modules() if isinstance(m, WanCausalConv3d) and type(m) is not WanCausalConv3d]
    for module, _ in swapped:
        module.__class__ = WanCausalConv3d
    try:
        yield
    finally:
        for module, routed in swapped:
            module.__class__ = routed


def set_conv_layout(vae: VideoVAE, layout: torch.memory_format) -> None:
    """Every Conv3d weight of ``vae`` in ``layout`` (the 2D convs and norms are left as they are)."""
    for module in vae.modules():
        if isinstance(module, torch.nn.Conv3d):
            module.weight.data = module.weight.data.contiguous(memory_format=layout)


def best_seconds(decode, latents: torch.Tensor, repeats: int) -> float:
    decode(latents)
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        decode(latents)
        times.append(time.perf_counter() - tick)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoder", choices=["full", "fast"], default="full")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the stock decoder")
    args = parser.parse_args()
    vae = VideoVAE.from_pretrained(SHIPPED_DIR / ("vae" if args.decoder == "full" else "vae-fast")).eval()
    latents = torch.randn(1, vae.z_dim, 5, 16, 16, generator=torch.Generator().manual_seed(0))
    print(f"capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, float32, "
          f"{args.decoder} decoder, one 17-frame 128x128 clip, best of {args.repeats}")
    with torch.no_grad():
        with stock_kernels(vae):
            print(f"stock kernels          {best_seconds(vae.decode, latents, args.repeats):.3f} s")
            set_conv_layout(vae, torch.channels_last_3d)
            last = latents.contiguous(memory_format=torch.channels_last_3d)
            print(f"stock, channels-last-3d {best_seconds(vae.decode, last, args.repeats):.3f} s")
            set_conv_layout(vae, torch.contiguous_format)
        print(f"oneDNN (lv2)           {best_seconds(vae.decode, latents, args.repeats):.3f} s")
        if args.compile:
            with stock_kernels(vae):
                decoder = vae.model.decoder
                vae.model.decoder = torch.compile(decoder, dynamic=False)
                tick = time.perf_counter()
                vae.decode(latents)
                compile_seconds = time.perf_counter() - tick
                print(f"stock, torch.compile    {best_seconds(vae.decode, latents, args.repeats):.3f} s "
                      f"(first call, compiling: {compile_seconds:.0f} s)")
                vae.model.decoder = decoder


if __name__ == "__main__":
    main()
