"""Small, careful file io: hardened JSON reads and atomic writes.

Every JSON file the engine reads goes through :func:`read_json` (one document) or
:func:`read_jsonl` (a log, one object a line), so that no reader can forget a case: a missing
file, a folder or a device in its place, a file larger than :data:`MAX_JSON_BYTES`, bytes that are
not UTF-8, malformed JSON, numbers too long to convert and nesting deeper than
:data:`MAX_JSON_DEPTH` each become one :class:`UserError` that names the file.

Readers never see a half-written file: writes go to a temporary file in the same folder
(``.<name>.<random>.tmp``), are flushed to disk, then renamed over the target; the temporary file
gets the permissions a plain ``open()`` would give. Temporaries that a killed process left behind
are removed by :func:`remove_stale_temps`. Knows nothing about models or Qt.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.errors import UserError

#: Largest JSON file read (configs, circuits, tokenizers, task files, logs are all far smaller).
MAX_JSON_BYTES = 256 << 20
#: Deepest nesting of arrays and objects accepted (the engine's own files need fewer than 10).
MAX_JSON_DEPTH = 64
#: Longest name that becomes part of a path (a task's folder, a circuit's file).
MAX_NAME_CHARS = 100


def _read_bytes(path: Path, what: str, max_bytes: int | None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (default :data:`MAX_JSON_BYTES`), else a
    UserError naming it."""
    max_bytes = MAX_JSON_BYTES if max_bytes is None else max_bytes
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {path} is a folder, not a file; give the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {path} is not a regular file")
    if st.st_size > max_bytes:
        raise UserError(f"{what} {path} is {st.st_size:,} bytes, more than the {max_bytes:,} a {what} may have; "
                        f"is it the right file?")
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise UserError(f"{what} {path} is larger than the {max_bytes:,} bytes a {what} may have")
    return data


def _decode(data: bytes, path: Path, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                        f"is it the right file?") from None


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects nest more than ``limit`` deep in ``value`` (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        obj, depth = stack.pop()
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text; every problem (malformed, too deep, a number too long) is a UserError that
    starts with ``where`` (e.g. ``"run config /x/config.json"``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise UserError(f"{where} nests arrays or objects more than {MAX_JSON_DEPTH} deep") from None
    except ValueError:  # an integer of more than 4300 digits
        raise UserError(f"{where} is not valid JSON (it holds a number with thousands of digits)") from None
    if json_depth_exceeds(value):
        raise UserError(f"{where} nests arrays or objects more than {MAX_JSON_DEPTH} deep")
    return value


def read_json(path: Path, what: str = "file", max_bytes: int | None = None) -> Any:
    """Read one JSON document; any problem with the file is a UserError that names it."""
    path = Path(path)
    return parse_json(_decode(_read_bytes(path, what, max_bytes), path, what), f"{what} {path}")


def jsonl_objects(data: bytes) -> list[tuple[str, dict]]:
    """(line, object) for every line of JSON-lines bytes that holds a JSON object; other lines (a torn
    last line after a crash, bytes that are not UTF-8, a list, a number, nesting too deep) are skipped."""
    out = []
    for raw in data.split(b"\n"):
        try:
            line = raw.decode("utf-8").strip()
            obj = json.loads(line) if line else None
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            continue
        if isinstance(obj, dict) and not json_depth_exceeds(obj):
            out.append((line, obj))
    return out


def read_jsonl_lines(path: Path, what: str = "log", max_bytes: int | None = None) -> list[tuple[str, dict]]:
    """:func:`jsonl_objects` of a file. A missing file has no lines; a folder in its place, or a file
    too large, is a UserError."""
    path = Path(path)
    if not os.path.lexists(path):
        return []
    return jsonl_objects(_read_bytes(path, what, max_bytes))


def read_jsonl(path: Path, what: str = "log", max_bytes: int | None = None) -> list[dict]:
    """The objects of a JSON-lines file (see :func:`read_jsonl_lines`)."""
    return [obj for _, obj in read_jsonl_lines(path, what, max_bytes)]


def check_name(name: Any, what: str = "name") -> str:
    """``name`` if it can be one path component (a file or folder name), else a UserError: a
    non-empty string of at most :data:`MAX_NAME_CHARS` characters without ``/``, ``\\``, NUL or
    control characters, that is not ``.`` or ``..`` and does not start with a dot."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"the {what} must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_CHARS:
        raise UserError(f"the {what} {name[:40]!r}... is {len(name)} characters; use at most {MAX_NAME_CHARS}")
    bad = [c for c in name if c in "/\\\x00" or ord(c) < 32 or ord(c) == 127]
    if bad or name.startswith("."):
        raise UserError(f"the {what} {name!r} cannot be a file name (it becomes one): use letters, digits, "
                        f"'_', '-' and spaces, without '/', '\\', control characters or a leading '.'")
    return name


def check_output_file(path: Path | str, what: str = "output file", create_folder: bool = False) -> Path:
    """``path`` if a file can be written there, else a UserError saying why (a folder in its place, a
    missing or unwritable folder); checked before any work. ``create_folder``: a missing folder is
    fine (it is created by the write) when the nearest existing one above it is writable."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"cannot write the {what} {path}: that is a folder; give a file name")
    folder = path.parent
    if not folder.exists() and not create_folder:
        raise UserError(f"cannot write the {what} {path}: the folder {folder} does not exist; create it or "
                        f"choose another folder")
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot write the {what} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the {what} {path}: the folder {folder} is not writable (permission "
                        f"denied); choose another folder")
    return path


def check_free_space(path: Path | str, need: int, what: str, advice: str) -> None:
    """UserError when the disk that will hold ``path`` has less than ``need`` bytes free."""
    folder = Path(path).expanduser().parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need > free:
        raise UserError(f"{what} needs about {need / 2**30:,.1f} GiB but the disk of {folder} has "
                        f"{free / 2**30:,.1f} GiB free; {advice}")


def temp_glob(name: str) -> str:
    """The glob of the temporary files an atomic write of ``name`` makes (``name`` may be a glob)."""
    return f".{name}.*.tmp"


def remove_stale_temps(folder: Path, names: Iterable[str], min_age_s: float = 0.0) -> list[Path]:
    """Delete the temporaries of atomic writes of ``names`` (globs allowed) in ``folder`` that are
    at least ``min_age_s`` old: what a killed writer leaves. Returns the files removed."""
    removed = []
    now = time.time()
    for name in names:
        for p in Path(folder).glob(temp_glob(name)):
            try:
                if p.is_file() and (now - p.stat().st_mtime >= min_age_s or _writer_gone(p)):
                    p.unlink()
                    removed.append(p)
            except OSError:
                continue
    return removed


#: Age after which a temporary of an atomic write is surely left over from a killed writer (one on
#: another machine sharing the folder, whose process this one cannot see).
STALE_TEMP_S = 600.0
#: Temporaries carry their writer: ``w<pid>@<host>``. One of this host whose process is gone is a
#: killed writer's, removed at once whatever its age.
_WRITER = f"w{os.getpid()}@{socket.gethostname().replace('.', '-')[:40]}"


def _writer_gone(temp: Path) -> bool:
    """Whether ``temp`` was made by a process of this host that no longer runs."""
    for part in temp.name.split("."):
        if part.startswith("w") and "@" in part:
            pid, _, host = part[1:].partition("@")
            if not pid.isdigit() or host != _WRITER.partition("@")[2]:
                return False
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, OverflowError, ValueError):
                return False
            return False
    return False


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The permissions ``open()`` gives a new file: 0666 minus the umask (0644 under the usual 022)."""
    return 0o666 & ~_umask()


def _new_temp(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` with the permissions a plain ``open()`` would give (0666 minus
    the umask): mkstemp makes it 0600, which would keep colleagues out of a shared run folder. Stale
    temporaries of the same target (a killed writer's) are removed first."""
    remove_stale_temps(path.parent, [glob_escape(path.name)], STALE_TEMP_S)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_WRITER}.", suffix=".tmp")
    os.fchmod(fd, file_mode())
    return fd, tmp


def glob_escape(name: str) -> str:
    """``name`` with glob characters escaped, so that it matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (for binary writers). The result
    gets the permissions of ``open()`` even when ``write`` replaces the file (safetensors makes it 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(path)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        with open(tmp, "rb") as fh:  # on disk before the rename, so a crash never leaves it empty
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_out(out: Path) -> None:
    """``out`` must not exist, or be an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; choose a new --out folder")


def write_new_folder(out: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary folder beside ``out``, then rename it to ``out`` (which must
    not exist or be empty); on any error or cancellation the temporary folder is removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a plain mkdir would not
        check_out(out)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
