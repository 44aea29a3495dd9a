"""The ClientApp: one round of local training by WSA Lab's engine (`wsa-lab flower train`).

The SuperNode's node config says which client of the split this is (`partition-id`) and may
name a folder with its own data (`data-dir`); `wsa-lab` (the program's path) may be set there
or in $WSA_LAB.
"""

from __future__ import annotations

import json
import tempfile
from collections import OrderedDict
from pathlib import Path

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from . import bridge, packing

app = ClientApp()

#: The run this process's engine prepared its data for. A warm client (warm.py) outlives a run:
#: a new run gets a new engine, so that data edited between runs is read afresh.
_engine_run: int | None = None


@app.train()
def train(msg: Message, context: Context) -> Message:
    node = context.node_config
    if "partition-id" not in node:
        raise bridge.BridgeError(
            "this SuperNode has no partition-id: start it with --node-config 'partition-id=K num-partitions=N'"
        )
    client = int(node["partition-id"])
    program = bridge.find_program(str(node.get("wsa-lab", "")))
    global _engine_run
    if _engine_run != context.run_id:
        bridge.close_engines()
        _engine_run = context.run_id
    config = msg.content["config"]
    received = packing.unpack(msg.content["arrays"], str(config[packing.LAYOUT_KEY]))
    with tempfile.TemporaryDirectory(prefix=f"wsa-flower-client-{client}-") as work:
        work = Path(work)
        bridge.write_atomic(work / "fed-config.json", str(config["fed-config"]).encode())
        bridge.write_safetensors(work / "global.safetensors", received)
        bridge.write_json(
            work / "target.json",
            {
                "layers": list(config["target-layers"]),
                "scopes": [
                    {"mean": m, "std": s} for m, s in zip(config["target-mean"], config["target-std"])
                ],
            },
        )
        args = [
            "--config",
            str(work / "fed-config.json"),
            "--device",
            str(config.get("device", "auto")),
            "--client",
            str(client),
            "--round",
            str(int(config["server-round"])),
            "--global",
            str(work / "global.safetensors"),
            "--target",
            str(work / "target.json"),
            "--out",
            str(work / "reply"),
        ]
        if node.get("data-dir"):
            args += ["--own-data", str(node["data-dir"])]
        bridge.run_step(program, "train", *args)
        trained = bridge.read_safetensors(work / "reply" / "params.safetensors")
        reply = json.loads((work / "reply" / "reply.json").read_text())
    for name, values in received.items():
        # The server unpacks the reply by the layout it sent, so a tensor must come back in its shape.
        if name not in trained or trained[name].shape != values.shape:
            found = list(trained[name].shape) if name in trained else "nothing"
            raise bridge.BridgeError(
                f"the engine returned {found} for {name}; the server sent {list(values.shape)}"
            )
    arrays, _ = packing.pack(OrderedDict((name, trained[name]) for name in received))
    metrics = MetricRecord(
        {
            "num-examples": int(reply["samples"]),
            "partition-id": client,
            "scope-mean": [float(s["mean"]) for s in reply["scopes"]],
            "scope-std": [float(s["std"]) for s in reply["scopes"]],
            "train-seconds": float(reply["seconds"]),
        }
    )
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)
