"""Two CPU processes (gloo, launched by torchrun) train a few steps; DDP must leave both with the same weights."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from lv2_env.data.procedural import SequenceSpec, build_procedural


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_end_with_identical_weights(tmp_path):
    build_procedural(tmp_path / "data", "train", 1, SequenceSpec(clips_per_sequence=1, history_frames=4), progress=False)
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "agents.cli", "train", "vae", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
           "--steps", "3", "--checkpoint-every", "3", "--eval-every", "1000", "--warmup-steps", "1",
           "--batch-size", "1", "--crop", "32", "--frames", "5", "--precision", "fp32", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = json.loads((tmp_path / "run" / "ranks.json").read_text())
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["first_batch_sha256"] != ranks[1]["first_batch_sha256"]  # each rank drew its own data
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # yet gradients were averaged
    assert (tmp_path / "run" / "final" / "vae" / "config.json").is_file()
