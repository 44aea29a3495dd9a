"""A model as one array in a message: its tensors end to end, and where each one lies.

Flower 1.42 sends every `Array` of a message as objects of their own (the array and its chunks),
each one a request to the SuperLink, which records it in its SQLite state (and clears expired
task tokens) before answering. With one array per tensor a reply of a 3-layer MLP was 15 objects;
ten clients' replies queue at the SuperLink one request at a time. Packed, a model is one array
and a message about a third as many objects. The tensors' names and shapes travel beside it in
the config of the server's message (`LAYOUT_KEY`), as JSON; a client packs its reply in the same
order and the server unpacks it by the layout it sent. The values are float32, as the engine's
files.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict

import numpy as np
from flwr.app import Array, ArrayRecord

#: The one array of a packed model's ArrayRecord.
MODEL_KEY = "model"
#: The config entry with the packed model's layout: `[{"name": ..., "shape": [...]}, ...]`.
LAYOUT_KEY = "model-layout"


def pack(tensors: dict[str, np.ndarray]) -> tuple[ArrayRecord, str]:
    """The tensors as one float32 array (in their order) and the layout that unpacks it."""
    layout = [{"name": name, "shape": [int(n) for n in np.shape(values)]} for name, values in tensors.items()]
    parts = [np.ascontiguousarray(values, dtype=np.float32).ravel() for values in tensors.values()]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return ArrayRecord(OrderedDict([(MODEL_KEY, Array(flat))])), json.dumps(layout)


def unpack(record: ArrayRecord, layout_json: str) -> OrderedDict[str, np.ndarray]:
    """The tensors of a packed model, by the layout `pack` gave; a record that is not one (other
    arrays, another type or rank), or whose length differs from the layout's, raises ValueError
    naming what differs."""
    layout = json.loads(layout_json)
    if list(record.keys()) != [MODEL_KEY]:
        raise ValueError(
            f"expected one array named {MODEL_KEY!r} (a packed model), got {list(record.keys())}"
        )
    array = record[MODEL_KEY]
    if array.dtype != "float32" or len(array.shape) != 1:
        raise ValueError(
            f"the packed model is {array.dtype} of shape {list(array.shape)}; expected float32 of one axis"
        )
    flat = array.numpy()
    sizes = [math.prod(entry["shape"]) for entry in layout]
    if sum(sizes) != flat.size:
        raise ValueError(
            f"the packed model has {flat.size} values; its layout ({len(layout)} tensors) needs {sum(sizes)}"
        )
    tensors: OrderedDict[str, np.ndarray] = OrderedDict()
    offset = 0
    for entry, size in zip(layout, sizes):
        tensors[entry["name"]] = flat[offset : offset + size].reshape(entry["shape"])
        offset += size
    return tensors
