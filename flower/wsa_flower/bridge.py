"""The bridge to the `wsa-lab` program: its steps run in one long-lived `wsa-lab flower serve`
process per app process, everything through files.

That process keeps the config's data, split and device between steps, so a client that stays
warm between rounds (`flower/wsa_flower/warm.py`) reads and splits its data once; a ClientApp
that Flower starts afresh every round starts it every round, as it would a one-shot step.
Models travel as safetensors (our parameter paths as names); this module reads and writes
them with NumPy only, so the apps need nothing beyond Flower.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np


class BridgeError(RuntimeError):
    """A `wsa-lab flower` step failed; the message is the program's own explanation."""


def find_program(configured: str = "") -> str:
    """The wsa-lab program: `configured`, else $WSA_LAB, else `wsa-lab` on the PATH."""
    candidate = configured or os.environ.get("WSA_LAB", "") or shutil.which("wsa-lab") or ""
    if not candidate or not Path(candidate).is_file():
        raise BridgeError(
            "cannot find the wsa-lab program: build it (cargo build --release) and set WSA_LAB to "
            "target/release/wsa-lab, or put it on the PATH, or set the app's `wsa-lab` config"
            + (f" (tried {candidate!r})" if candidate else "")
        )
    return candidate


def run_step(program: str, step: str, *args: str):
    """Runs `wsa-lab flower <step> <args>` in this process's engine and returns what the
    one-shot command prints, as the JSON value it is (None for a step that prints nothing)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.setdefault(program, Engine(program))
    return engine.run(step, *args)


class Engine:
    """One `wsa-lab flower serve` process: a request line in, a reply line out, a step at a time.

    Started on the first step; one that died (killed, or a panic) is reported with its exit
    status and started again on the next step. It ends when this process closes its input.
    """

    def __init__(self, program: str) -> None:
        self.program = program
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def run(self, step: str, *args: str):
        request = json.dumps({"step": [step, *args]}) + "\n"
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [self.program, "flower", "serve"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    encoding="utf-8",
                    bufsize=1,
                )
            process = self._process
            try:
                process.stdin.write(request)
                process.stdin.flush()
                line = process.stdout.readline()
            except (OSError, ValueError):
                line = ""
            if not line:
                status = process.wait()
                self._process = None
                raise BridgeError(
                    f"wsa-lab flower {step}: the engine process stopped (exit status {status}); "
                    "its error is in this app's log above, and the next step starts it again"
                )
            try:
                reply = json.loads(line)
                reply["ok"]
            except (ValueError, TypeError, KeyError):
                # Not a reply: whatever else it wrote, the next reply could not be told from it.
                self._stop(process)
                raise BridgeError(
                    f"wsa-lab flower {step}: the engine answered {line[:200]!r}, not a reply; "
                    "it was stopped, and the next step starts it again"
                ) from None
        if not reply["ok"]:
            raise BridgeError(f"wsa-lab flower {step}: error: {reply['error']}")
        return reply.get("output")

    def _stop(self, process: subprocess.Popen) -> None:
        process.kill()
        process.wait()
        self._process = None

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


@atexit.register
def close_engines() -> None:
    """Ends this process's engine processes (they would end with it anyway, when their input
    closes)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.close()


def default_config(program: str) -> str:
    """wsa-lab's default federated config, as JSON text."""
    return _run(program, "fed", "--print-config")


def _run(program: str, *args: str) -> str:
    done = subprocess.run([program, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip() or f"exit status {done.returncode}"
        raise BridgeError(f"wsa-lab {' '.join(args[:2])}: {reason}")
    return done.stdout


_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path: Path) -> OrderedDict[str, np.ndarray]:
    """The tensors of a safetensors file, in file order."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise BridgeError(f"{path}: not a safetensors file (too short)")
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    header.pop("__metadata__", None)
    body = raw[8 + header_len :]
    tensors: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        if info["dtype"] not in _DTYPES:
            raise BridgeError(f"{path}: tensor {name} has type {info['dtype']}; expected float")
        start, end = info["data_offsets"]
        values = np.frombuffer(body[start:end], dtype=_DTYPES[info["dtype"]])
        tensors[name] = values.astype(np.float32).reshape(info["shape"])
    return tensors


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Writes float32 tensors as safetensors, atomically (a temporary file and a rename)."""
    header: dict = {}
    chunks = []
    offset = 0
    for name, values in tensors.items():
        data = np.ascontiguousarray(values, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(np.shape(values)),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    write_atomic(Path(path), len(encoded).to_bytes(8, "little") + encoded + b"".join(chunks))


def write_json(path: Path, value) -> None:
    write_atomic(Path(path), json.dumps(value).encode())


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
