"""Read a legacy (pre-zip) PyTorch ``.pth`` state dict with numpy, without PyTorch.

The legacy format is a sequence of pickles followed by raw bytes: a magic number,
the protocol version, a system-info dict, then the state dict (an ``OrderedDict``
whose tensors point at storages through *persistent ids*), then the list of storage
keys, then, for each key in that order, the storage's element count (int64,
little-endian) followed by its raw bytes.

Only what a state dict needs is unpickled: ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types. Anything else
in the file raises :class:`~tlcourse.errors.ModelError`, so a weight file can never
run arbitrary code.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tlcourse.errors import ModelError

__all__ = ["load_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name])


@dataclass
class _TensorRef:
    """A tensor whose storage bytes have not been read yet."""

    storage_key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, tuple[np.dtype, int]]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise ModelError(
            f"The weight file asks to unpickle {module}.{name}, which a state dict never needs.",
            hint="Only plain PyTorch state dicts (tensors in an OrderedDict) can be read without PyTorch.",
        )

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, view_metadata = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType) or view_metadata is not None:
            raise ModelError(
                f"Unsupported storage reference in the weight file: {pid!r}.",
                hint="The file is not a legacy PyTorch state dict this reader understands.",
            )
        self._storages[key] = (storage_type.dtype, int(numel))
        return key


def load_state_dict(source: str | Path | BinaryIO) -> dict[str, np.ndarray]:
    """Read a legacy PyTorch state dict into numpy arrays (names kept as in the file).

    Parameters
    ----------
    source : str, Path or binary file object
        A ``.pth`` file (or an open, seekable file) written by ``torch.save(..., _use_new_zipfile_serialization=False)``
        (the format of PyTorch < 1.6).

    Returns
    -------
    dict of str to numpy.ndarray

    Examples
    --------
    >>> import io, pickle, struct, tempfile
    >>> from pathlib import Path
    >>> buf = io.BytesIO()
    >>> for head in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
    ...     pickle.dump(head, buf, protocol=2)
    >>> state_pickle = bytes.fromhex(  # OrderedDict(w=tensor([1., 2.])) as torch pickles it
    ...     "800263636f6c6c656374696f6e730a4f726465726564446963740a29522858010000007763746f72"
    ...     "63682e5f7574696c730a5f72656275696c645f74656e736f725f76320a2828580700000073746f72"
    ...     "61676563746f7263680a466c6f617453746f726167650a58010000003058030000006370754b024e"
    ...     "74514b004b02854b01858963636f6c6c656374696f6e730a4f726465726564446963740a29527452"
    ...     "752e")
    >>> _ = buf.write(state_pickle)
    >>> pickle.dump(["0"], buf, protocol=2)
    >>> _ = buf.write(struct.pack("<q", 2) + np.array([1, 2], "<f4").tobytes())
    >>> path = Path(tempfile.mkdtemp()) / "tiny.pth"
    >>> _ = path.write_bytes(buf.getvalue())
    >>> load_state_dict(path)["w"]
    array([1., 2.], dtype=float32)
    """
    if hasattr(source, "read"):
        return _read(source, getattr(source, "name", "the weight file"))
    with open(source, "rb") as file:
        return _read(file, Path(source).name)


def _read(file: BinaryIO, label: str) -> dict[str, np.ndarray]:
    if file.read(2) == b"PK":
        raise ModelError(
            f"{label} is a zip-format PyTorch file, not the legacy format.",
            hint="Re-save it with torch.save(..., _use_new_zipfile_serialization=False).",
        )
    file.seek(0)
    try:
        magic = pickle.load(file)
        protocol = pickle.load(file)
        pickle.load(file)  # system info: endianness and type sizes
    except Exception as exc:
        raise ModelError(f"{label} is not a PyTorch weight file ({exc}).") from None
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
        raise ModelError(
            f"{label} is not a legacy PyTorch weight file (magic {magic!r}, protocol {protocol!r}).",
            hint="Only files written by torch.save in the pre-1.6 format are supported.",
        )
    storages: dict[str, tuple[np.dtype, int]] = {}
    state = _RestrictedUnpickler(file, storages).load()
    keys = _RestrictedUnpickler(file, storages).load()
    data: dict[str, np.ndarray] = {}
    for key in keys:
        dtype, numel = storages[key]
        (count,) = np.frombuffer(file.read(8), "<i8")
        if count != numel:
            raise ModelError(f"Storage {key} of {label} has {count} elements, expected {numel}.")
        raw = file.read(int(count) * dtype.itemsize)
        data[key] = np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype)
    if not isinstance(state, dict):
        raise ModelError(f"{label} holds a {type(state).__name__}, not a state dict.")
    tensors = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            continue
        storage = data[ref.storage_key]
        itemsize = storage.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[ref.offset :],
            shape=ref.shape,
            strides=tuple(s * itemsize for s in ref.stride),
            writeable=False,
        )
        tensors[name] = np.array(view)
    return tensors
