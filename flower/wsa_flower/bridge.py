"""The bridge to the `wsa-lab` program: one process per step, everything through files.

Models travel as safetensors (our parameter paths as names); this module reads and writes
them with NumPy only, so the apps need nothing beyond Flower.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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


def run_step(program: str, step: str, *args: str) -> str:
    """Runs `wsa-lab flower <step> <args>` and returns its standard output."""
    return _run(program, "flower", step, *args)


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
