"""Safe writing: single files by rename, output sets as whole folders, inputs never touched.

Three promises, kept here in one place for every writer of the package:

* **A file appears whole or not at all.** :func:`atomic_path` hands out a temporary name
  beside the target and renames it over the target when the writer finished.
* **An output set appears whole or not at all.** :class:`OutputSet` builds a run's files in
  a staging folder beside the target folder and swaps the two folders in one
  ``renameat2(RENAME_EXCHANGE)`` call (Linux); a reader sees the old set or the new one,
  never a mix. The set holds a ``manifest.json`` naming the run (id, time, tool version,
  command, inputs) and listing every file with its size and SHA-256. Runs into the same
  folder take a lock on the parent folder while they swap, so concurrent runs never
  interleave: the last one to finish wins, whole.
* **Inputs are never written.** :func:`refuse_inputs` stops a write whose target is an input
  file, however spelled: relative or absolute, through ``..`` or a symlink (resolved paths),
  or a hard link (same device and inode); a set folder is refused when an input lies inside
  it. Shapefile and SQLite companions (``.dbf``, ``-wal`` …) count as the input too.

Leftovers of killed runs (staging folders, temporary files) are recognised by name and
removed by the next run that writes beside them (:func:`sweep_leftovers`), but only when
no live process holds them: every run holds an exclusive ``flock`` on its temporary file or
on its staging folder's lock file for as long as it writes, and the lock dies with the
process.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servicecircle.errors import ExportError

try:  # POSIX; elsewhere leftovers are only removed when older than a day
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MANIFEST",
    "OutputSet",
    "atomic_path",
    "companions",
    "read_manifest",
    "refuse_inputs",
    "sweep_leftovers",
]

#: File name of the manifest inside every output set.
MANIFEST = "manifest.json"
#: Prefix of the hidden staging folders and lock files beside an output set.
_STAGE_PREFIX = ".servicecircle-"
_STAGE_RE = re.compile(
    r"^\.servicecircle-(?P<name>.+)\.(?P<run>[0-9a-f]{12})\.(?P<kind>staging|old|lock)$"
)
#: Files that belong to an input besides the one named (GDAL reads them with it).
_COMPANIONS = {
    ".shp": (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml"),
    ".gpkg": ("-wal", "-shm", "-journal"),
    ".sqlite": ("-wal", "-shm", "-journal"),
}
_NO_LOCK_MAX_AGE_S = 24 * 3600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------------
# locks: an flock held for as long as a writer lives


def _try_lock(fd: int) -> bool:
    """Take an exclusive flock without waiting; ``True`` when taken."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _lock(fd: int) -> None:
    """Take an exclusive flock on our own new lock file (a sweep probing it lets go at once)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _is_dead(path: Path) -> bool:
    """Whether no live process holds ``path`` (a temporary file or lock file) locked."""
    if fcntl is None:  # pragma: no cover - Windows: fall back to age
        try:
            return (datetime.now().timestamp() - path.stat().st_mtime) > _NO_LOCK_MAX_AGE_S
        except OSError:
            return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # gone already, or a folder without a lock: nobody holds it
    try:
        return _try_lock(fd)  # the lock is released when fd closes
    finally:
        os.close(fd)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on a folder (POSIX flock on its descriptor) while a set is swapped."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# --------------------------------------------------------------------------------------------
# single files


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    A reader never sees a half-written file, and a failed write leaves the old file as it
    was. The new file gets the usual permissions (0666 minus the umask). The temporary file
    is ``.<name>.sc-<token>.tmp`` beside the target, guarded by a lock file
    ``.<name>.sc-<token>.lock`` held for as long as the write lasts (a writer may replace
    the temporary file itself), so :func:`sweep_leftovers` removes them only when this
    process died.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent, names=[path.name])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.sc-", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    lock_path = tmp_path.with_name(tmp_path.name.removesuffix(".tmp") + ".lock")
    lock_fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        _lock(lock_fd)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
        lock_path.unlink(missing_ok=True)
        os.close(lock_fd)


# --------------------------------------------------------------------------------------------
# inputs are never written


def companions(path: str | Path) -> list[Path]:
    """``path`` and the files read with it: a shapefile's ``.dbf``/``.shx``/…, SQLite's ``-wal``."""
    path = Path(path)
    name = path.name.lower()
    out = [path]
    for suffix, extra in _COMPANIONS.items():
        if name.endswith(suffix):
            stem = path.name[: -len(suffix)]
            out += [path.with_name(path.name + e) if e.startswith("-") else
                    path.with_name(stem + e) for e in extra]  # fmt: skip
            if suffix == ".shp":  # upper-case companions on case-sensitive disks
                out += [path.with_name(stem + e.upper()) for e in extra]
    return out


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def refuse_inputs(targets: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """Raise :class:`ExportError` when a target is one of ``inputs`` (or a companion of one).

    Compared by resolved path (relative paths, ``..`` and symlinks) and by device and inode
    (hard links). A target that is a folder (an output set) is refused when an input lies
    inside it, since replacing the set would delete it.
    """
    guarded: list[tuple[Path, Path, tuple[int, int] | None]] = []
    for given in inputs:
        for p in companions(given):
            guarded.append((Path(given), p.resolve(), _identity(p)))
    if not guarded:
        return
    ids = {ident: original for original, _, ident in guarded if ident is not None}
    for target in map(Path, targets):
        resolved = target.resolve()
        for original, guard, _ in guarded:
            if resolved == guard or resolved in guard.parents:
                what = "is" if resolved == guard else "holds"
                raise ExportError(
                    f"{target} {what} an input file ({original}); outputs never replace "
                    "inputs, not even with --overwrite: choose another output name or folder"
                )
        inside = [target] if not target.is_dir() else [target, *_files_below(target)]
        for p in inside:
            ident = _identity(p)
            if ident is not None and ident in ids:
                raise ExportError(
                    f"{p} is an input file ({ids[ident]}, through a hard link); outputs "
                    "never replace inputs, not even with --overwrite: choose another output "
                    "name or folder"
                )


def _files_below(folder: Path) -> Iterator[Path]:
    for root, _dirs, files in os.walk(folder):
        for f in files:
            yield Path(root) / f


# --------------------------------------------------------------------------------------------
# leftovers of killed runs


def sweep_leftovers(folder: str | Path, *, names: Sequence[str] | None = None) -> list[Path]:
    """Remove what killed runs left in ``folder``; return what was removed.

    Staging folders and lock files of :class:`OutputSet` (``.servicecircle-<set>.<run>.*``)
    and temporary files of :func:`atomic_path` (``.<name>.<random>.tmp`` and the GeoPackage
    work files beside them) for the targets ``names`` (default: the names the commands
    write, ``coverage*``, ``gaps*``, ``sites*``, ``demo*``, ``grids*``) are removed when the
    process that made them is gone (its lock is free). A set folder whose swap was
    cut between its two renames (only where the atomic exchange is unavailable) is put back.
    """
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed: list[Path] = []
    runs: dict[tuple[str, str], dict[str, Path]] = {}
    for entry in entries:
        m = _STAGE_RE.match(entry.name)
        if m:
            runs.setdefault((m["name"], m["run"]), {})[m["kind"]] = Path(entry.path)
    for (name, _run), parts in runs.items():
        lock = parts.get("lock")
        if lock is not None and not _is_dead(lock):
            continue
        if lock is None and "staging" in parts and not _older_than_a_day(parts["staging"]):
            continue  # a run that is creating its lock file right now
        old = parts.get("old")
        target = folder / name
        if old is not None and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(old, target)  # cut between the two renames: the old set returns
        for kind in ("staging", "old"):
            p = parts.get(kind)
            if p is not None and p.exists():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        if lock is not None:
            lock.unlink(missing_ok=True)
            removed.append(lock)
    removed += _sweep_temp_files(folder, entries, names)
    return removed


def _older_than_a_day(path: Path) -> bool:
    try:
        return (datetime.now().timestamp() - path.stat().st_mtime) > _NO_LOCK_MAX_AGE_S
    except OSError:
        return False


#: Output names the commands write; their stray temporary files are swept by default.
_OUR_NAMES = re.compile(r"^(coverage|gaps|sites|demo|grids)([_.].*)?$")
_TMP_RE = re.compile(
    r"^\.(?P<name>.+)\.sc-(?P<token>[A-Za-z0-9_]{8})\."
    r"(?P<ext>tmp|lock|gpkg(?:-journal|-wal|-shm)?)$"
)


def _sweep_temp_files(
    folder: Path, entries: list[os.DirEntry[str]], names: Sequence[str] | None
) -> list[Path]:
    groups: dict[tuple[str, str], list[Path]] = {}
    for entry in entries:
        m = _TMP_RE.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        if (_OUR_NAMES.match(m["name"]) is None) if names is None else (m["name"] not in names):
            continue
        groups.setdefault((m["name"], m["token"]), []).append(Path(entry.path))
    removed: list[Path] = []
    for (name, token), paths in groups.items():
        lock = folder / f".{name}.sc-{token}.lock"
        if lock.exists():
            if not _is_dead(lock):
                continue
        elif not all(_older_than_a_day(p) for p in paths):
            continue  # no lock yet (a writer starting) or no more: wait a day
        for p in sorted(paths, key=lambda q: q == lock):  # the lock file last
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# --------------------------------------------------------------------------------------------
# output sets


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of an output set, or ``None`` when ``folder`` is not one."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "servicecircle" else None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2`` exchange); ``False`` if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OutputSet:
    """A folder of outputs that appears whole or not at all.

    Use as a context manager: write every file into :attr:`staging` (or through
    :meth:`path`); when the block ends without an error the set is committed: a
    ``manifest.json`` is added and the staging folder takes the target's place in one atomic
    exchange. On an error (or a kill) the target stays as it was and the staging folder is
    removed (by the next run, for a kill).

    Parameters
    ----------
    target
        The set's folder, e.g. ``maps/coverage``.
    overwrite
        Replace an earlier set in ``target``. Without it an existing set is an error. A
        folder that is not a servicecircle output set (no manifest) is never replaced,
        unless empty.
    inputs
        Files the run read; never written, and ``target`` must not hold one.
    run
        Facts recorded in the manifest (command, settings digest, …).
    """

    def __init__(
        self,
        target: str | Path,
        *,
        overwrite: bool = False,
        inputs: Iterable[str | Path] = (),
        run: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.inputs = [Path(p) for p in inputs]
        self.run_id = uuid.uuid4().hex[:12]
        self.run = dict(run or {})
        self.staging: Path | None = None
        self._lock_fd: int | None = None

    # -- checks before any work

    def check(self) -> None:
        """Refuse now what the commit would refuse later: call before long work."""
        t = self.target
        if t.is_symlink() or (t.exists() and not t.is_dir()):
            raise ExportError(f"{t} exists and is not a folder; choose another output folder")
        refuse_inputs([t], self.inputs)
        if t.is_dir():
            if read_manifest(t) is None:
                if any(t.iterdir()):
                    raise ExportError(
                        f"{t} holds files that servicecircle did not write (no {MANIFEST}); "
                        "they are never replaced: choose another output folder"
                    )
            elif not self.overwrite:
                made = (read_manifest(t) or {}).get("created", "an earlier run")
                raise ExportError(
                    f"{t} already holds the outputs of an earlier run ({made}); pass "
                    "--overwrite to replace them or choose another output folder"
                )
            else:  # replacing a set never takes along a file someone put into it since
                manifest = read_manifest(t) or {}
                listed = {f.get("name") for f in manifest.get("files", [])} | {MANIFEST}
                foreign = sorted(
                    p.relative_to(t).as_posix()
                    for p in _files_below(t)
                    if p.relative_to(t).as_posix() not in listed
                )
                if foreign:
                    raise ExportError(
                        f"{t} holds {len(foreign)} file(s) the earlier run did not write "
                        f"({', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''}); they "
                        "are never replaced: move them out or choose another output folder"
                    )
        parent = t.parent
        if parent.exists() and not parent.is_dir():
            raise ExportError(f"{parent} is a file, not a folder; choose another output folder")
        probe = parent
        while not probe.exists():
            probe = probe.parent
        if not os.access(probe, os.W_OK | os.X_OK):
            raise ExportError(f"cannot write in {probe}: permission denied; choose another folder")

    # -- the context

    def __enter__(self) -> OutputSet:
        self.check()
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            sweep_leftovers(parent)
            base = f"{_STAGE_PREFIX}{self.target.name}.{self.run_id}"
            lock = parent / f"{base}.lock"
            self._lock_fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
            _lock(self._lock_fd)
            self.staging = parent / f"{base}.staging"
            self.staging.mkdir()
            os.chmod(self.staging, 0o777 & ~_umask())
        except OSError as err:
            self._cleanup()
            raise ExportError(
                f"cannot write in {parent}: {err.strerror or err}; check that it is a "
                "writable folder with free space"
            ) from err
        return self

    def path(self, name: str) -> Path:
        """Where to write the set's file ``name`` (inside the staging folder)."""
        if self.staging is None:
            raise RuntimeError("OutputSet.path() is only valid inside its with-block")
        return self.staging / name

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._cleanup()

    # -- commit and clean-up

    def _manifest(self) -> dict[str, Any]:
        from servicecircle import __version__

        assert self.staging is not None
        files = []
        for p in sorted(_files_below(self.staging)):
            rel = p.relative_to(self.staging).as_posix()
            files.append({"name": rel, "bytes": p.stat().st_size, "sha256": _sha256(p)})
        return {
            "tool": "servicecircle",
            "version": __version__,
            "run_id": self.run_id,
            "created": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
            **self.run,
            "inputs": [str(p) for p in self.inputs],
            "files": files,
        }

    def _commit(self) -> None:
        assert self.staging is not None
        t = self.target
        try:
            manifest = self._manifest()
            (self.staging / MANIFEST).write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2, allow_nan=False) + "\n",
                encoding="utf-8",
            )
            with _folder_lock(t.parent):
                self.check()  # again under the lock: another run may have finished meanwhile
                if not t.exists():
                    os.rename(self.staging, t)
                    return
                was_ours = read_manifest(t) is not None
                if _exchange(self.staging, t):
                    old = self.staging  # now holds the previous set
                else:  # two renames; sweep_leftovers puts the old set back if cut between
                    old = self.staging.with_name(self.staging.name.replace(".staging", ".old"))
                    os.rename(t, old)
                    os.rename(self.staging, t)
                if was_ours:
                    shutil.rmtree(old, ignore_errors=True)
                else:  # an empty folder of the user's: removed only if still empty
                    with contextlib.suppress(OSError):
                        old.rmdir()
                    self.staging = None
        except OSError as err:
            raise ExportError(
                f"cannot write {t}: {err.strerror or err}; check that {t.parent} is a "
                "writable folder with free space"
            ) from err

    def _cleanup(self) -> None:
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        parent = self.target.parent
        if self._lock_fd is not None:
            (parent / f"{_STAGE_PREFIX}{self.target.name}.{self.run_id}.lock").unlink(
                missing_ok=True
            )
            os.close(self._lock_fd)
            self._lock_fd = None
