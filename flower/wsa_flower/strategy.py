"""WsaFedAvg: FedAvg (or FedProx's aggregation, the same average) by sample count, plus WSA's
target scope: broadcast with the global model each round and fused from the scopes the clients
return, never from the averaged model (averaging shrinks the spread round after round)."""

from __future__ import annotations

import json
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable
from logging import INFO, WARNING
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from . import bridge, checkpoint, packing
from .scopes import fuse, weighted_average


class WsaFedAvg(FedAvg):
    """FedAvg whose rounds carry a WSA target scope and end in WSA Lab's evaluation.

    The clients reply with their model, `num-examples`, `partition-id` and their scope per layer
    (`scope-mean`, `scope-std`). Each round the server averages the models, fuses the scopes with
    the config's fusion rule, and hands both to `wsa-lab flower round`, which evaluates the model
    on the test set and writes the results to `out_dir` as `wsa-lab fed` does, then the round's
    checkpoint (checkpoint.py) from which a run with `resume=true` goes on.

    `rounds_done` rounds of an earlier, interrupted run precede this one: Flower counts this run's
    rounds from 1, the clients, the results and the logs count the federation's.
    """

    def __init__(
        self,
        *,
        program: str,
        model_layout: str,
        config_path: Path,
        device: str,
        out_dir: Path,
        layers: list[str],
        target: list[tuple[float, float]],
        min_clients: int,
        rounds: int,
        rounds_done: int = 0,
        seconds_before: float = 0.0,
    ) -> None:
        config_text = Path(config_path).read_text()
        config = json.loads(config_text)
        super().__init__(
            fraction_train=float(config.get("fraction", 1.0)),
            fraction_evaluate=0.0,  # the server evaluates on its own test set
            min_train_nodes=min_clients,
            min_available_nodes=min_clients,
        )
        self.program = program
        self.config_path = Path(config_path)
        self.config_text = config_text
        self.fusion = config.get("wsa", {}).get("fusion", "moment-matching")
        self.device = device
        self.out_dir = Path(out_dir)
        self.layers = layers
        self.target = target
        self.rounds = rounds
        self.rounds_done = rounds_done
        # Wall time of the federation: this run's plus that of the run it resumes.
        self.started = time.monotonic() - seconds_before
        self.round_started = self.started
        self.history: list[dict] = []
        # Who was asked this round, and which client of the split each node has been so far:
        # for saying who is missing.
        self.asked: set[int] = set()
        # The packed model's layout (packing.py), from the initial model: sent with every
        # round's model, and every reply's model must unpack by it.
        self.model_layout = model_layout
        self.layout_names = [entry["name"] for entry in json.loads(model_layout)]
        self.client_of_node: dict[int, int] = {}

    def summary(self) -> None:
        super().summary()
        log(INFO, "\t└──> WSA: %d layers with a scope, fusion %s", len(self.layers), self.fusion)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.rounds_done
        self.round_started = time.monotonic()
        # Every client gets the config (they derive the same split from its seed) and the target.
        config["fed-config"] = self.config_text
        config["device"] = self.device
        config["target-layers"] = self.layers
        config["target-mean"] = [mean for mean, _ in self.target]
        config["target-std"] = [std for _, std in self.target]
        config[packing.LAYOUT_KEY] = self.model_layout
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.asked = {msg.metadata.dst_node_id for msg in messages}
        return messages

    def _node(self, node_id: int) -> str:
        client = self.client_of_node.get(node_id)
        return f"node {node_id}" + (f" (client {client})" if client is not None else "")

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        server_round += self.rounds_done
        replies = list(replies)
        valid, failed = self._check_and_log_replies(replies, is_train=True)
        for msg in valid:
            self.client_of_node[msg.metadata.src_node_id] = int(msg.content["metrics"]["partition-id"])

        # A node that died gets its error reply from the SuperLink, not from itself: what such
        # replies say is told of every node that was asked and did not answer.
        def reason_of(msg):
            return " ".join(msg.error.reason.split()) or "no reason given"

        on_behalf = sorted({reason_of(msg) for msg in failed if msg.metadata.src_node_id not in self.asked})
        for msg in failed:
            if msg.metadata.src_node_id in self.asked:
                log(
                    WARNING,
                    "round %d: %s left out: %s",
                    server_round,
                    self._node(msg.metadata.src_node_id),
                    reason_of(msg),
                )
        for node_id in sorted(self.asked - {msg.metadata.src_node_id for msg in replies}):
            why = "; ".join(on_behalf) or "no answer within the round's timeout"
            log(WARNING, "round %d: %s left out: %s", server_round, self._node(node_id), why)
        # Client order as the engine's: by index in the split.
        valid.sort(key=lambda msg: int(msg.content["metrics"]["partition-id"]))
        names = self.layout_names
        models, weights, scopes, replies_json = [], [], [], []
        for msg in valid:
            metrics = msg.content["metrics"]
            client_scopes = list(zip(metrics["scope-mean"], metrics["scope-std"]))
            try:
                model = packing.unpack(msg.content["arrays"], self.model_layout)
            except ValueError as ex:
                log(
                    WARNING,
                    "round %d: %s left out: its model is not the packed model it was sent: %s",
                    server_round,
                    self._node(msg.metadata.src_node_id),
                    ex,
                )
                continue
            if len(client_scopes) != len(self.layers):
                log(
                    WARNING,
                    "round %d: %s left out: it returned %d scopes; expected %d",
                    server_round,
                    self._node(msg.metadata.src_node_id),
                    len(client_scopes),
                    len(self.layers),
                )
                continue
            models.append(list(model.values()))
            weights.append(float(metrics["num-examples"]))
            scopes.append(client_scopes)
            replies_json.append(
                {
                    "client": int(metrics["partition-id"]),
                    "round": server_round,
                    "samples": int(metrics["num-examples"]),
                    "scopes": [{"mean": m, "std": s} for m, s in client_scopes],
                    "seconds": float(metrics["train-seconds"]),
                }
            )
        if not models:
            log(
                WARNING,
                "round %d: no client replied; the global model and target stay as they were",
                server_round,
            )
            return None, None
        averaged = OrderedDict(zip(names, weighted_average(models, weights)))
        self.target = fuse(scopes, weights, self.fusion)
        with tempfile.TemporaryDirectory(prefix="wsa-flower-round-") as work:
            work = Path(work)
            bridge.write_safetensors(work / "global.safetensors", averaged)
            bridge.write_json(work / "replies.json", replies_json)
            bridge.write_json(
                work / "target.json",
                {"layers": self.layers, "scopes": [{"mean": m, "std": s} for m, s in self.target]},
            )
            evaluation = bridge.run_step(
                self.program,
                "round",
                "--config",
                str(self.config_path),
                "--device",
                self.device,
                "--round",
                str(server_round),
                "--global",
                str(work / "global.safetensors"),
                "--replies",
                str(work / "replies.json"),
                "--target",
                str(work / "target.json"),
                "--seconds",
                f"{time.monotonic() - self.started:.3f}",
                "--out",
                str(self.out_dir),
            )
        self.history.append(evaluation)
        checkpoint.save(
            self.out_dir,
            config_text=self.config_text,
            round=server_round,
            rounds=self.rounds,
            model=averaged,
            layers=self.layers,
            target=self.target,
            seconds=time.monotonic() - self.started,
        )
        log(
            INFO,
            "round %d: %d clients, test accuracy %.4f, loss %.4f, mean client spread %.3g; %.2f s",
            server_round,
            len(valid),
            evaluation["test_accuracy"],
            evaluation["test_loss"],
            evaluation["mean_client_spread"],
            time.monotonic() - self.round_started,
        )
        for layer, (mean, std) in zip(self.layers, self.target):
            log(INFO, "\t  next target %s: N(%.4g, %.4g²)", layer, mean, std)
        arrays, _ = packing.pack(averaged)
        metrics = MetricRecord(
            {
                "test-accuracy": evaluation["test_accuracy"],
                "test-loss": evaluation["test_loss"],
                "mean-client-spread": evaluation["mean_client_spread"],
                "clients": len(valid),
            }
        )
        return arrays, metrics
