"""``lv2 play``: steer a world with the keyboard in a pygame window (:class:`agents.play.KeyboardPlayer`)."""

from __future__ import annotations

import argparse

from lv2_env import UNLIMITED_EPISODE_STEPS
from lv2_env.cli.options import (
    ENVS,
    add_generation_options,
    readable_dir,
    readable_file,
    world_env_kwargs,
    writable_dir,
    writable_output,
)
from lv2_env.envs.keys import KEYS_HELP


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play", help="steer a world with the keyboard in a pygame window",
        description=KEYS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", choices=sorted(ENVS), default="world", help="world (generated, default) or groundtruth")
    p.add_argument("--compare", action="store_true", help="world: show the ground-truth render of the same path beside it")
    p.add_argument("--checkpoint", default=None, help="world: model directory (default: the shipped tiny model)")
    p.add_argument("--control-source", choices=["scene", "cache"], default="scene")
    p.add_argument("--image", default=None, help="world: start from this picture (implies --control-source cache)")
    p.add_argument("--prompt", default=None, help="world: the first prompt (default: the scene's caption)")
    add_generation_options(p, decoder=True, world_only=True, conditioning=True)
    p.add_argument("--seed", type=int, default=None, help="seed of the first world (default: random)")
    p.add_argument("--scale", type=int, default=4, help="window pixels per frame pixel (default 4)")
    p.add_argument("--record-dir", default="recordings", help="where V writes recordings (default ./recordings)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many clips (scripted demos)")
    p.add_argument("--screenshot", default=None, help="save the window as PNG when stopping")
    p.add_argument("--record", action="store_true", help="start recording at the first frame (as V does; scripted demos)")
    p.add_argument("--agent", default=None,
                   help="the pixel agent G switches on: truth-trained (default), world-trained, or a directory")
    p.add_argument("--autopilot", action="store_true", help="start with the agent walking to the goal (as G does)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import lv2_env  # noqa: F401  (registers the environments)
    from agents.play import KeyboardPlayer

    if args.compare and (args.env != "world" or args.image):
        raise ValueError("--compare needs --env world on a procedural scene (no --image): it shows that scene's render")
    readable_dir(args.checkpoint, "--checkpoint")
    readable_file(args.image, "--image")
    writable_dir(args.record_dir, "--record-dir", create=False)  # made by the first recording, not before
    writable_output(args.screenshot, "--screenshot")
    if args.env == "world":
        env = gym.make(ENVS["world"], goal_radius=None, **world_env_kwargs(args))
    else:
        env = gym.make(ENVS["groundtruth"], goal_radius=None, max_episode_steps=UNLIMITED_EPISODE_STEPS)
    options = {}
    if args.image:
        options["image"] = args.image
    if args.prompt:
        options["prompt"] = args.prompt
    from agents.pixel import AGENT_NAMES

    if args.agent is not None and args.agent not in AGENT_NAMES:
        readable_dir(args.agent, "--agent")
    player = KeyboardPlayer(env, scale=args.scale, compare=args.compare, record_dir=args.record_dir, seed=args.seed,
                            options=options or None, agent=args.agent, autopilot=args.autopilot)
    player.run(max_steps=args.max_steps, screenshot=args.screenshot, record=args.record)
    return 0
