"""DIALS reflection tables (`.refl`) in DIALS' msgpack layout, read without DIALS.

DIALS (≥ 2.0) writes `["dials::af::reflection_table", 1, {"identifiers": {id: uuid},
"nrows": n, "data": {column: [type, [n, bytes]]}}]`; each column is a little-endian array
of its C++ element type (dials/array_family/reflection_table_msgpack). Columns of a type not
listed in `COLUMN_TYPES` (shoeboxes) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.errors import InputFileError
from geocal_cli.files import checked_file

#: C++ element type → (numpy dtype, values per row).
COLUMN_TYPES = {
    "double": ("<f8", 1), "int": ("<i4", 1), "std::size_t": ("<u8", 1), "bool": ("?", 1),
    "vec2<double>": ("<f8", 2), "vec3<double>": ("<f8", 3), "mat3<double>": ("<f8", 9),
    "int6": ("<i4", 6), "cctbx::miller::index<>": ("<i4", 3),
}
MAGIC = "dials::af::reflection_table"


@dataclass(frozen=True)
class ReflectionTable:
    """Columns of a reflection table.

    Attributes
    ----------
    columns : dict[str, ndarray]
        Arrays of shape (n,) or (n, k) by column name.
    identifiers : dict[int, str]
        Experiment identifier of each `id` value (empty for tables written without them).
    nrows : int
    """

    columns: dict
    identifiers: dict
    nrows: int


def read_reflections(path: Path) -> ReflectionTable:
    """Read a DIALS msgpack reflection table.

    Raises
    ------
    InputFileError
        Missing file, not msgpack, not a DIALS reflection table, or a column whose byte
        count does not match its type and the row count.
    """
    import msgpack

    path = Path(path)
    checked_file(path, "reflection table")
    what = f"{path}: not a DIALS reflection table (msgpack ['{MAGIC}', 1, {{...}}])"
    try:
        doc = msgpack.unpackb(path.read_bytes(), strict_map_key=False, raw=False)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as exc:
        raise InputFileError(f"{what}: {exc}") from None
    if not (isinstance(doc, (list, tuple)) and len(doc) == 3 and doc[0] == MAGIC
            and isinstance(doc[2], dict) and isinstance(doc[2].get("data"), dict)):
        raise InputFileError(what)
    if doc[1] != 1:
        raise InputFileError(f"{path}: DIALS reflection table version {doc[1]}; geocal reads version 1")
    body = doc[2]
    nrows = int(body.get("nrows", 0))
    columns = {}
    for name, entry in body["data"].items():
        try:
            typ, (n, blob) = entry
        except (TypeError, ValueError):
            raise InputFileError(f"{path}: column {name!r} is malformed") from None
        if typ not in COLUMN_TYPES:
            continue
        dtype, width = COLUMN_TYPES[typ]
        if n != nrows or len(blob) != nrows * width * np.dtype(dtype).itemsize:
            raise InputFileError(f"{path}: column {name!r} holds {len(blob)} bytes, not {nrows} "
                                 f"rows of {typ}")
        arr = np.frombuffer(blob, dtype=dtype)
        columns[name] = arr.reshape(nrows, width) if width > 1 else arr
    ids = {int(k): str(v) for k, v in (body.get("identifiers") or {}).items()}
    return ReflectionTable(columns=columns, identifiers=ids, nrows=nrows)
