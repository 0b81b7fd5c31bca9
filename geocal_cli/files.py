"""Input files: what geocal agrees to open, and the sizes it agrees to work on.

Every reader calls `checked_file` before it opens anything, so a FIFO, a device, a folder or a
symlink loop is refused before a read could block or fail, and a text file too large for what
it claims to be is refused before it is parsed. The limits are stated in README.md
("Bounded work") and in each error.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import yaml

from geocal_cli.errors import InputFileError

#: Largest image accepted, pixels (the largest area detectors have ~36 M; a header declaring
#: more is a corrupt or hostile file, refused before anything is allocated).
MAX_PIXELS = 64 * 2**20
#: Largest text file read as a geometry, config, calibrant list or spline, bytes.
MAX_TEXT_BYTES = 16 * 2**20
#: Most d-spacings a calibrant file may list (pyFAI's largest calibrant has a few hundred).
MAX_D_SPACINGS = 10_000
#: Most reflections a CIF may generate down to the smallest d-spacing used.
MAX_REFLECTIONS = 2_000_000
#: Most characters of a value quoted in an error message.
QUOTE_CHARS = 80


def quote(value) -> str:
    """`repr(value)`, cut to `QUOTE_CHARS` characters: error messages never format unbounded
    values (a 5000-digit number, a deep or aliased structure)."""
    if isinstance(value, (dict, list, tuple, set)) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value)[: QUOTE_CHARS + 1]
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def checked_file(path: Path | str, what: str, max_bytes: int | None = None,
                 error=InputFileError) -> Path:
    """The path of an existing regular file, or an error that says what is wrong with it.

    Parameters
    ----------
    path : Path or str
    what : str
        What the file should be ("image", "PONI file" …), for the message.
    max_bytes : int, optional
        Refuse larger files.
    error : type of GeocalError
        Raised (InputFileError; ConfigError for a config file).

    Returns
    -------
    Path

    Raises
    ------
    error
        Missing, a folder, a FIFO/device/socket, a symlink loop, unreadable, or too large.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        reason = "a symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise error(f"{what} {path}: {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is not a regular file (a FIFO, device or socket): geocal "
                    "reads files only")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {path}: permission denied")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{what} {path} is {st.st_size / 2**20:.1f} MiB; a {what} is at most "
                    f"{max_bytes / 2**20:.0f} MiB")
    return path


def read_text(path: Path | str, what: str, error=InputFileError) -> str:
    """A checked text file's content (UTF-8; undecodable bytes are refused).

    Raises
    ------
    error
        See `checked_file`; or the file is not UTF-8 text.
    """
    path = checked_file(path, what, MAX_TEXT_BYTES, error)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start}): is it the right file?") from None
    except OSError as exc:
        raise error(f"{what} {path}: {exc.strerror or exc}") from None


class _AliasFound(Exception):
    pass


class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: a few hundred bytes of them expand to gigabytes,
    and geocal's files never need them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _AliasFound
        return super().compose_node(parent, index)


#: Deepest bracket nesting accepted in a JSON or YAML file (real ones nest < 10 deep; parsers
#: recurse per level and YAML's slows quadratically).
MAX_NESTING = 64


def parse_structured(text: str, where, what: str, json_only: bool = False, error=InputFileError):
    """Parse JSON (or YAML, a superset) safely: bounded nesting, no YAML aliases or tags beyond
    plain data, bounded messages.

    Parameters
    ----------
    text : str
    where : Path or str
        The file, for messages.
    what : str
        What the file should be, for messages.
    json_only : bool
        Parse as JSON only.
    error : type of GeocalError

    Returns
    -------
    object
        The parsed document.

    Raises
    ------
    error
        Nested deeper than `MAX_NESTING`, aliases, unparsable, or values Python refuses (an
        integer of more than 4300 digits).
    """
    import json

    import numpy as np

    codes = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)
    depth = np.cumsum(np.isin(codes, (91, 123)).astype(np.int32) - np.isin(codes, (93, 125)))
    if depth.size and depth.max() > MAX_NESTING:
        raise error(f"{what} {where}: brackets nested {int(depth.max())} deep; geocal reads at most "
                    f"{MAX_NESTING} levels")
    try:
        if json_only:
            return json.loads(text)
        return yaml.load(text, Loader=_PlainLoader)
    except _AliasFound:
        raise error(f"{what} {where}: YAML aliases (*name) are not accepted; write the values out") from None
    except yaml.YAMLError as exc:
        raise error(f"{where}: not a {what} (not valid YAML: {str(exc).splitlines()[0][:200]})") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{where}: not a {what} (unparsable: {exc.__class__.__name__}: {str(exc)[:200]})") from None
