"""Exact tensor bytes of a safetensors file, read from its header only (no weights, no dependency)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from bwdoctor import fileio

# Real headers are a few hundred KB even for the largest shards; a length beyond this is corruption.
MAX_HEADER_BYTES = 100 * 1024 * 1024

DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    # sub-byte types count per element; safetensors stores them packed
    "F4": 0.5,
    "F6_E2M3": 0.75,
    "F6_E3M2": 0.75,
}


class HeaderError(ValueError):
    """A safetensors file whose header cannot be trusted; the message says why."""


def read_header(path: Path) -> dict:
    """Give the parsed JSON header of a safetensors file, validating its framing."""
    try:
        with fileio.open_file(path) as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise HeaderError(f"{path}: shorter than the 8-byte safetensors length prefix")
            (length,) = struct.unpack("<Q", prefix)
            if length == 0 or length > MAX_HEADER_BYTES:
                raise HeaderError(
                    f"{path}: header length {length} bytes is not plausible "
                    f"(limit {MAX_HEADER_BYTES}); not a safetensors file or corrupt"
                )
            raw = f.read(length)
            file_size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise HeaderError(f"{path}: cannot read ({fileio.describe(e)})") from None
    if len(raw) < length:
        raise HeaderError(f"{path}: truncated header ({len(raw)} of {length} bytes)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HeaderError(f"{path}: header is not valid JSON ({e})") from e
    except RecursionError:
        raise HeaderError(f"{path}: header is nested too deeply; not a safetensors header") from None
    if not isinstance(header, dict):
        raise HeaderError(f"{path}: header is not a JSON object")
    header.setdefault("__file_size__", file_size)
    header["__header_len__"] = length
    return header


def tensor_bytes(header: dict, path: Path | str = "") -> dict[str, int]:
    """Give bytes per tensor name computed from dtype × shape (cross-checked with data_offsets)."""
    out: dict[str, int] = {}
    for name, info in header.items():
        if name.startswith("__") or name == "__metadata__":
            continue
        if not isinstance(info, dict) or "dtype" not in info or "shape" not in info:
            raise HeaderError(f"{path}: tensor {name!r} lacks dtype/shape")
        per = DTYPE_BYTES.get(str(info["dtype"]).upper())
        shape = info["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise HeaderError(f"{path}: tensor {name!r} has a bad shape {shape!r}")
        n = 1
        for d in shape:
            n *= d
        offsets = info.get("data_offsets")
        if per is None:
            # unknown dtype: trust the byte range the file itself declares
            if not (isinstance(offsets, list) and len(offsets) == 2):
                raise HeaderError(f"{path}: tensor {name!r} has unknown dtype {info['dtype']!r}")
            out[name] = int(offsets[1]) - int(offsets[0])
            continue
        out[name] = int(n * per + 0.5)
    return out


def file_tensor_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """Give (total tensor bytes, bytes per tensor) of one safetensors file."""
    header = read_header(path)
    per = tensor_bytes(header, path)
    total = sum(per.values())
    data_len = header["__file_size__"] - 8 - header["__header_len__"]
    if total > data_len:
        raise HeaderError(f"{path}: header declares {total} bytes of tensors but the file holds {data_len}; truncated")
    return total, per
