"""The server's checkpoint: what a federation needs to go on after its ServerApp died.

Flower 1.42 runs the ServerApp under the SuperLink and keeps none of its state: when the
SuperLink dies the run ends, and a restarted SuperLink marks it failed. Everything after a round
is a function of the global model and the target scope that round produced (the clients derive
their data and randomness from the config and the round number), so the server writes those two
after every round and a new run with `resume=true` continues from there with the same numbers.

In `out_dir/flower-checkpoint/`: `round-R.safetensors` (the global model after round R) and
`latest.json`, written last, which names it; a SuperLink killed between the two leaves the
previous round's checkpoint whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import bridge

FOLDER = "flower-checkpoint"
ROUNDS_FILE = "flower-rounds.json"


@dataclass
class Checkpoint:
    round: int
    rounds: int
    model: OrderedDict[str, np.ndarray]
    target: list[tuple[float, float]]
    seconds: float
    complete: bool


def config_digest(config_text: str) -> str:
    return hashlib.sha256(config_text.encode()).hexdigest()


def clear(out_dir: Path) -> None:
    """Forgets an earlier federation's checkpoint (a run that starts at round 1)."""
    shutil.rmtree(Path(out_dir) / FOLDER, ignore_errors=True)


def save(
    out_dir: Path,
    *,
    config_text: str,
    round: int,
    rounds: int,
    model: OrderedDict[str, np.ndarray],
    layers: list[str],
    target: list[tuple[float, float]],
    seconds: float,
    complete: bool = False,
) -> None:
    folder = Path(out_dir) / FOLDER
    model_file = f"round-{round}.safetensors"
    bridge.write_safetensors(folder / model_file, model)
    bridge.write_json(
        folder / "latest.json",
        {
            "round": round,
            "rounds": rounds,
            "model": model_file,
            "layers": layers,
            "target": [[mean, std] for mean, std in target],
            "seconds": seconds,
            "config-sha256": config_digest(config_text),
            "complete": complete,
        },
    )
    for old in folder.glob("round-*.safetensors"):
        if old.name != model_file:
            old.unlink(missing_ok=True)


def mark_complete(out_dir: Path) -> None:
    latest = Path(out_dir) / FOLDER / "latest.json"
    if latest.is_file():
        state = json.loads(latest.read_text())
        state["complete"] = True
        bridge.write_json(latest, state)


def load(out_dir: Path, config_text: str, layers: list[str]) -> Checkpoint | None:
    """The checkpoint in `out_dir`, or None when there is none; refuses one of another config."""
    folder = Path(out_dir) / FOLDER
    latest = folder / "latest.json"
    if not latest.is_file():
        return None
    state = json.loads(latest.read_text())
    if state["config-sha256"] != config_digest(config_text) or state["layers"] != layers:
        raise bridge.BridgeError(
            f"{latest} belongs to a federation with another config: resume with the config it ran, "
            "or start afresh (resume=false, or another out-dir)"
        )
    return Checkpoint(
        round=int(state["round"]),
        rounds=int(state["rounds"]),
        model=bridge.read_safetensors(folder / state["model"]),
        target=[(float(mean), float(std)) for mean, std in state["target"]],
        seconds=float(state["seconds"]),
        complete=bool(state["complete"]),
    )


def keep_rounds_up_to(out_dir: Path, last_round: int) -> list[int]:
    """Drops the records after `last_round` from the rounds file (a round whose record was
    written but whose checkpoint was not, when the SuperLink died in between; it runs again);
    returns the rounds dropped."""
    rounds_file = Path(out_dir) / ROUNDS_FILE
    if not rounds_file.is_file():
        return []
    records = json.loads(rounds_file.read_text())
    kept = [r for r in records if int(r["round"]) <= last_round]
    if len(kept) != len(records):
        bridge.write_json(rounds_file, kept)
    return [int(r["round"]) for r in records if int(r["round"]) > last_round]
