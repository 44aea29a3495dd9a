"""The ServerApp: starts the federation from WSA Lab's initial model and target scope (or, with
`resume=true`, from the checkpoint an interrupted run left in out-dir) and runs the config's
rounds with WsaFedAvg."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable
from logging import INFO
from pathlib import Path

from flwr.app import Context, Message
from flwr.common import log
from flwr.serverapp import Grid, ServerApp

from . import bridge, checkpoint, packing
from .strategy import WsaFedAvg

app = ServerApp()


class PromptGrid:
    """The run's Grid, collecting replies every `interval` seconds: Flower 1.42's
    `send_and_receive` sleeps 3 s between its pulls, which adds up to 3 s to every round whose
    clients answer in less (a digits round takes well under a second of training). Everything
    else is the Grid's own."""

    def __init__(self, grid: Grid, interval: float = 0.25) -> None:
        self._grid = grid
        self._interval = interval

    def __getattr__(self, name: str):
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> list[Message]:
        """Pushes the messages and pulls their replies until all came or `timeout` seconds passed
        (None: until all came), as the Grid's own method does."""
        waiting = set(self._grid.push_messages(messages))
        end = time.monotonic() + (timeout or 0.0)
        replies: list[Message] = []
        while timeout is None or time.monotonic() < end:
            pulled = list(self._grid.pull_messages(waiting))
            replies.extend(pulled)
            waiting.difference_update(reply.metadata.reply_to_message_id for reply in pulled)
            if not waiting:
                break
            time.sleep(self._interval)
        return replies


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = context.run_config
    program = bridge.find_program(str(settings.get("wsa-lab", "")))
    device = str(settings.get("device", "auto"))
    out_dir = Path(str(settings.get("out-dir", "out/flower"))).resolve()
    with tempfile.TemporaryDirectory(prefix="wsa-flower-server-") as work:
        work = Path(work)
        config_path = Path(str(settings.get("fed-config", "")))
        if not str(settings.get("fed-config", "")):
            # wsa-lab's defaults, written out so that clients receive the same text.
            config_path = work / "fed-config.json"
            bridge.write_atomic(config_path, bridge.default_config(program).encode())
        elif not config_path.is_file():
            raise bridge.BridgeError(f"fed-config {config_path} does not exist (give an absolute path)")
        start = bridge.run_step(
            program, "init", "--config", str(config_path), "--device", device, "--out", str(work)
        )
        target = json.loads((work / "target.json").read_text())
        initial = bridge.read_safetensors(work / "global.safetensors")
        config_text = config_path.read_text()
        rounds = int(json.loads(config_text).get("rounds", 10))
        log(
            INFO,
            "WSA Lab federation: %s, %d clients in the split (%d take part), %d rounds; results in %s",
            start["run"],
            start["clients"],
            len(start["active"]),
            rounds,
            out_dir,
        )
        target_scopes = [(s["mean"], s["std"]) for s in target["scopes"]]
        done, seconds_before = 0, 0.0
        saved = None
        if bool(settings.get("resume", False)):
            saved = checkpoint.load(out_dir, config_text, target["layers"])
            if saved is None:
                log(INFO, "resume: no checkpoint in %s, so the federation starts at round 1", out_dir)
        else:
            checkpoint.clear(out_dir)
        if saved is not None:
            done, seconds_before = saved.round, saved.seconds
            if done >= rounds:
                log(INFO, "resume: all %d rounds are already in %s; nothing to do", rounds, out_dir)
                checkpoint.mark_complete(out_dir)
                return
            initial, target_scopes = saved.model, saved.target
            dropped = checkpoint.keep_rounds_up_to(out_dir, done)
            log(
                INFO,
                "resuming after round %d of %d from the checkpoint in %s: rounds %d..%d follow "
                "(Flower counts them from 1)%s",
                done,
                rounds,
                out_dir,
                done + 1,
                rounds,
                f"; round(s) {dropped} had no checkpoint and run again" if dropped else "",
            )
        initial_arrays, model_layout = packing.pack(initial)
        strategy = WsaFedAvg(
            program=program,
            model_layout=model_layout,
            config_path=config_path,
            device=device,
            out_dir=out_dir,
            layers=target["layers"],
            target=target_scopes,
            min_clients=int(settings.get("min-clients", 2)),
            rounds=rounds,
            rounds_done=done,
            seconds_before=seconds_before,
        )
        strategy.start(
            grid=PromptGrid(grid),
            initial_arrays=initial_arrays,
            num_rounds=rounds - done,
            timeout=float(settings.get("round-timeout", 600)),
        )
        checkpoint.mark_complete(out_dir)
    log(INFO, "WSA Lab federation finished: %s", out_dir)
