"""A run's outputs: default names, ownership, and one atomic commit for all of them.

Rules (DESIGN.md, "Outputs"):

- a default name is the input's whole name minus its last suffix (and a compression suffix)
  plus the output's suffix: `run.0001.edf` → `run.0001.poni`;
- an output is never one of the run's inputs (exit 3);
- a file geocal did not write is replaced only with `--overwrite` (exit 3 otherwise); geocal's
  own files are recognised by a marker in their first bytes (PONI/YAML comment, report
  schema, PNG text chunk, HDF5 attribute, EDF header key) or, for formats without room for
  one (GSAS-II `.imctrl`, ImageD11 `.par`, DIALS `.expt`, TIFF), by their SHA-256 in the
  geocal report that the same run replaces;
- every output is written into a private temporary folder (created with `mkdtemp`: exclusive,
  mode 0700) beside its target, and all are renamed onto their targets together once the last
  one is complete. Any failure or signal before that removes the temporaries and leaves the
  existing files byte-identical; temporaries that a killed run left behind are removed by the
  next run that writes to the same folder;
- the report, which vouches for the run's other outputs, is renamed first: a SIGKILL between
  two renames (nothing can block it) never leaves a PONI or a plot without the report that
  states its quality, nor a file without a marker whose ownership no report records.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

from geocal_cli import __version__
from geocal_cli.errors import ConfigError, GeocalError, OutputFileError
from geocal_cli.files import parse_structured, read_text

#: Suffixes of compressed files that readers open transparently (dropped with the format's).
COMPRESSION = (".gz", ".bz2", ".xz", ".lzma", ".zst", ".z")
#: In-file markers of geocal's outputs: a "written by geocal" comment (PONI, YAML, EDF header,
#: PNG text chunk) or a report's version key. HDF5 files carry a root attribute instead.
MARKS = (b"written by geocal", b'"geocal_version":')
#: How much of a file's head is searched for the marker.
HEAD_BYTES = 64 * 1024
#: What geocal writes where a format has room for a comment or an attribute.
SIGNATURE = f"written by geocal {__version__}"
TERMINATING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_COMMITS = 0
_TMP = re.compile(r"^\.geocal-(\d+)-[^/]*\.tmp$")
_ACTIVE: contextvars.ContextVar[Outputs | None] = contextvars.ContextVar("geocal_outputs", default=None)


def default_name(source: Path | str, suffix: str) -> Path:
    """The default output name for `source`: its whole name minus its last suffix (and a
    compression suffix), plus `suffix`, in the current folder.

    Parameters
    ----------
    source : Path or str
        An input file.
    suffix : str
        E.g. ".poni", ".calib.json".

    Returns
    -------
    Path
        Relative to the current folder: `run.0001.edf` → `run.0001.poni`,
        `lab6_17.5keV.cbf.gz` → `lab6_17.5keV.poni`, `.hidden.edf` → `.hidden.poni`.
    """
    name = Path(source).name
    for _ in range(2):
        base, dot, ext = name.rpartition(".")
        if not dot or not base or base == ".":
            break
        name = base
        if "." + ext.lower() not in COMPRESSION:
            break
    return Path(name + suffix)


def sha256_of(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def _marked(path: Path) -> bool:
    """True if the file's head carries geocal's marker (an HDF5 file: a root attribute)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return False
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        try:
            import h5py

            with h5py.File(path, "r") as h5:
                return str(h5.attrs.get("creator", "")).startswith(SIGNATURE)
        except Exception:  # not a readable HDF5 file: not one of ours
            return False
    return any(mark in head for mark in MARKS)


def _recorded(path: Path, ledger: Path | None) -> bool:
    """True if the geocal report `ledger` lists `path` among its outputs with its SHA-256."""
    if ledger is None or not ledger.is_file():
        return False
    try:
        report = parse_structured(read_text(ledger, "report"), ledger, "report", json_only=True)
        outputs = report["outputs"] if str(report["schema"]["name"]).startswith("geocal.") else []
        digest = sha256_of(path)
        return any(_same_file(Path(o["path"]), path) and o["sha256"] == digest for o in outputs)
    except (GeocalError, OSError, KeyError, TypeError):
        # Not a readable geocal report: it vouches for nothing.
        return False


def written_by_geocal(path: Path, ledger: Path | None = None) -> bool:
    """Whether `path` is a file geocal wrote (see the module's rules).

    Parameters
    ----------
    path : Path
        An existing file.
    ledger : Path, optional
        The report the same run writes: files it lists with their SHA-256 are geocal's.
    """
    return _marked(path) or _recorded(path, ledger)


def _remove_stale(folder: Path) -> None:
    """Remove temporary folders of geocal runs that no longer exist (killed runs)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        m = _TMP.match(entry.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass


def _output_error(path: Path, exc: OSError) -> OutputFileError:
    reason = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
              errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.ENOENT: "folder does not exist", errno.ENOTDIR: "a parent is not a folder",
              errno.EISDIR: "it is a folder", errno.EDQUOT: "disk quota exceeded",
              errno.ENAMETOOLONG: "name too long"}.get(exc.errno, exc.strerror or str(exc))
    return OutputFileError(f"cannot write {path}: {reason}")


class Outputs:
    """The outputs of one run: checked before the work, staged while it runs, committed
    together at the end.

    Parameters
    ----------
    inputs : iterable of Path or None
        Every file the run reads (None entries ignored): no output may be one of them.
    overwrite : bool
        Replace files geocal did not write.
    ledger : Path, optional
        The report this run writes (see `written_by_geocal`).
    """

    def __init__(self, inputs, overwrite: bool = False, ledger: Path | None = None):
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.overwrite = overwrite
        self.ledger = Path(ledger) if ledger is not None else None
        self._staged: dict[Path, Path] = {}
        self._folders: dict[Path, Path] = {}

    @classmethod
    def planned(cls, inputs, overwrite: bool, report: Path, *others: Path | None) -> Outputs:
        """The outputs of a run that writes `report` (its ledger) and `others`, checked.

        Raises
        ------
        ConfigError, OutputFileError
            As `check`.
        """
        outputs = cls(inputs, overwrite, ledger=report)
        outputs.check(report, *others)
        return outputs

    def check(self, *targets: Path | None) -> None:
        """Refuse, before any work, outputs that are inputs, folders, foreign files, or in an
        unwritable folder; and two outputs of one run at one path.

        Raises
        ------
        ConfigError
            An output is an input, or a file geocal did not write (without `overwrite`), or
            two outputs share a path.
        OutputFileError
            The output is a folder or its folder is missing or not writable.
        """
        given = [Path(t) for t in targets if t is not None]
        for i, target in enumerate(given):
            self._check_one(target, given[:i])

    def _check_one(self, target: Path, others) -> None:
        """`check` for one output, `others` being the run's outputs already checked."""
        if any(_same_file(target, other) for other in others):
            raise ConfigError(f"two outputs of this run are both {target}: give them different names")
        for source in self.inputs:
            if _same_file(target, source):
                raise ConfigError(f"output {target} is one of this run's inputs ({source}): "
                                  "geocal never writes over an input; choose another name")
        if target.is_dir():
            raise OutputFileError(f"cannot write {target}: it is a folder")
        folder = target.parent
        if not folder.is_dir():
            raise OutputFileError(f"cannot write {target}: folder {folder} does not exist"
                                  if not folder.exists() else
                                  f"cannot write {target}: {folder} is not a folder")
        self._probe(target)
        if (target.exists() or target.is_symlink()) and not self.overwrite:
            if not target.is_file() or not written_by_geocal(target, self.ledger):
                raise ConfigError(f"{target} exists and was not written by geocal: give "
                                  "--overwrite to replace it, or choose another name")

    @staticmethod
    def _probe(target: Path) -> None:
        """Create and remove a temporary folder beside `target`: the one test of writability
        that permissions, read-only mounts, /proc and quotas all answer truly."""
        try:
            os.rmdir(tempfile.mkdtemp(prefix=f".geocal-{os.getpid()}-", suffix=".tmp", dir=target.parent))
        except OSError as exc:
            raise _output_error(target, exc) from None

    def stage(self, target: Path) -> Path:
        """A path in this run's private temporary folder beside `target`, to write into.

        Raises
        ------
        ConfigError, OutputFileError
            As `check`.
        """
        target = Path(target)
        if target in self._staged:
            return self._staged[target]
        self._check_one(target, list(self._staged))
        folder = target.parent.resolve()
        if folder not in self._folders:
            _remove_stale(folder)
            try:
                self._folders[folder] = Path(tempfile.mkdtemp(prefix=f".geocal-{os.getpid()}-",
                                                              suffix=".tmp", dir=folder))
            except OSError as exc:
                raise _output_error(target, exc) from None
        self._staged[target] = self._folders[folder] / target.name
        return self._staged[target]

    def staged(self, target: Path) -> Path:
        """Where `target`'s content is now: its staged file, or `target` itself."""
        return self._staged.get(Path(target), Path(target))

    def target_of(self, filename) -> Path:
        """The output whose staged file is `filename` (else `filename` itself)."""
        for target, tmp in self._staged.items():
            if filename is not None and Path(filename) in (tmp, tmp.parent):
                return target
        return Path(filename or "output")

    def describe(self) -> list[dict]:
        """The staged outputs so far, each with its path, size and SHA-256 (for the report)."""
        return [{"path": str(t), "bytes": s.stat().st_size, "sha256": sha256_of(s)}
                for t, s in self._staged.items() if s.exists()]

    def commit(self) -> None:
        """Rename every staged file onto its target, the ledger (the report) first, then
        remove the temporary folders.

        All or nothing: each replaced file is first hard-linked into the temporary folder, and
        if a later rename fails the earlier ones are undone from those links.

        Raises
        ------
        OutputFileError
            A rename failed (every target is as it was before the run).
        """
        global _COMMITS
        done: list[tuple[Path, Path | None]] = []
        # A Ctrl-C or SIGTERM waits for the renames rather than leave half of them done.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING)
        try:
            # The ledger first (module rules); sorted() is stable, the others keep their order.
            for target, tmp in sorted(self._staged.items(), key=lambda kv: kv[0] != self.ledger):
                if not tmp.exists():
                    continue
                os.chmod(tmp, 0o666 & ~_umask())
                backup = None
                if target.is_file():
                    backup = tmp.with_name(tmp.name + ".previous")
                    try:
                        os.link(target, backup)
                    except OSError:  # a file system without hard links
                        shutil.copy2(target, backup)
                os.replace(tmp, target)
                done.append((target, backup))
        except OSError as exc:
            for old, backup in reversed(done):
                with contextlib.suppress(OSError):
                    os.replace(backup, old) if backup is not None else os.unlink(old)
            raise _output_error(target, exc) from None
        else:
            _COMMITS += 1
        finally:
            self.abort()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def abort(self) -> None:
        """Remove the temporary folders and everything in them."""
        for folder in self._folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        self._folders.clear()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def committing(outputs: Outputs):
    """Make `outputs` the run's active set: writes inside stage into it; on leaving without an
    exception everything is committed, on any exception or signal nothing is.

    Raises
    ------
    OutputFileError
        A write failed for lack of space, permission, … (names the output).
    """
    token = _ACTIVE.set(outputs)
    try:
        yield outputs
    except OSError as exc:
        outputs.abort()
        raise _output_error(outputs.target_of(exc.filename), exc) from None
    except BaseException:
        outputs.abort()
        raise
    finally:
        _ACTIVE.reset(token)
    outputs.commit()


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield the path to write `target`'s content to.

    Inside `committing`, that is the run's staged file (renamed at the commit); outside it, a
    one-file run of its own, committed when the block ends.
    """
    active = _ACTIVE.get()
    if active is not None:
        yield active.stage(Path(target))
        return
    with committing(Outputs([], overwrite=True)) as own:
        yield own.stage(Path(target))


def write_text(target: Path, text: str) -> None:
    """Write text to `target` (UTF-8) through `atomic_path`."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def commits() -> int:
    """How many runs of this process have committed their outputs (a signal that arrives
    after a commit interrupts a run whose files are complete)."""
    return _COMMITS


def active() -> Outputs | None:
    """The outputs of the run being committed (inside `committing`), else None."""
    return _ACTIVE.get()
