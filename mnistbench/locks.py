"""Snakemake's locks, kept while any process of the call that took them may still run.

A hard kill leaves `.snakemake/locks` behind, and then every later call refuses to start until
`snakemake --unlock`; but a lock may only go when nothing of its call still runs: not the
snakemake that took it, nor its jobs, supervisors and trainers (a snakemake killed alone, as
htop or a dropped SSH session does, leaves them running), nor its cluster jobs. And Snakemake
itself removes every call's locks when any call in the folder ends (it deletes the whole lock
folder), so a call that starts later would train a run beside the call that trains it.

So each call marks its processes and keeps a record of its own (one file per call):
- the main snakemake puts a random token in its environment before it starts any job: every
  process of the call inherits it, and the kernel shows it in /proc/<pid>/environ (the main
  process itself is known by pid and the kernel's start ticks, which no clock step moves);
- once it holds its lock (onstart) it records who it is (host, boot, PID namespace, user, pid,
  start ticks, executor) and which files it locked.

Before planning, a call settles the folder: a lock goes only when its call is provably over
(same host, boot and PID namespace, a user whose processes this one may see, a local executor,
and no process left with its token); a lock of a call that is provably alive and that another
call's end removed is written back; anything else stays, with one line saying what holds it
and how to unlock. Safety comes first: where nothing can be proven, the lock stays.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from pathlib import Path

from mnistbench.files import write_json

log = logging.getLogger("mnistbench")

TOKEN_VARIABLE = "MNISTBENCH_CALL"
HOLDERS = Path(".snakemake") / "mnistbench" / "holders"
LOCKS = Path(".snakemake") / "locks"
UNLOCK_ADVICE = "if nothing of it runs any more, run `snakemake --unlock` once"


class HolderError(ValueError):
    """A holder record that cannot be read as one."""


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (kernel's count: no clock step moves it)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name in () may hold spaces


def call_token() -> str:
    """A new token for this call (the main snakemake), which its jobs then inherit; never one
    inherited from another call's process (a snakemake started from a job)."""
    os.environ[TOKEN_VARIABLE] = uuid.uuid4().hex
    return os.environ[TOKEN_VARIABLE]


def identity() -> dict:
    """This process, as a later call on any host can tell whether it may still run."""
    return {
        "host": socket.gethostname(),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": _pid_namespace(),
        "uid": os.getuid(),
        "pid": os.getpid(),
        "start_ticks": start_ticks(os.getpid()),
    }


def _record_path(workdir, token: str) -> Path:
    return Path(workdir) / HOLDERS / f"{token}.json"


def record_holder(workdir, token: str, locked: dict[str, list[str]], executor: str) -> None:
    """Called once snakemake holds its lock (onstart): who holds it, and what it locked."""
    record = {**identity(), "token": token, "executor": executor, "locks": locked}
    write_json(_record_path(workdir, token), record)


def forget_holder(workdir, token: str) -> None:
    """Called when the call ends (its jobs are over, Snakemake releases its lock next)."""
    _record_path(workdir, token).unlink(missing_ok=True)


def conflicts(workdir, own_token: str, locked: dict[str, list[str]]) -> list[str]:
    """Called once this call holds its lock: the calls that may still run whose locks overlap
    ours by Snakemake's rule (their outputs against our inputs and outputs, their inputs against
    our outputs). Their locks are written back first: another call's end may have removed them
    after we planned."""
    ours_in, ours_out = set(locked.get("input", [])), set(locked.get("output", []))
    alive, _ = _classify(_other_holders(workdir, own_token)[0])
    _restore_all(workdir, [record for record, _ in alive])
    found = []
    for record, why in alive:
        theirs_in, theirs_out = set(record["locks"].get("input", [])), set(record["locks"].get("output", []))
        if theirs_out & (ours_in | ours_out) or theirs_in & ours_out:
            found.append(f"{Path(workdir).resolve()} is locked by {why}; {UNLOCK_ADVICE}")
    return found


def _checked(record) -> dict:
    """The record, if it has the shape record_holder gives it (a crafted one is refused)."""
    if not isinstance(record, dict):
        raise HolderError("not a JSON object")
    for key, kind in (("pid", int), ("token", str), ("locks", dict), ("host", str)):
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise HolderError(f"its {key!r} is not a {kind.__name__}")
    if record["pid"] <= 0 or not record["token"].isalnum():
        raise HolderError("its pid or token is not a valid one")
    if not isinstance(record.get("start_ticks"), int | None) or isinstance(record.get("start_ticks"), bool):
        raise HolderError("its start_ticks is not a number")
    for kind, paths in record["locks"].items():
        if kind not in ("input", "output") or not isinstance(paths, list):
            raise HolderError("its locks are not lists of files")
        if not all(isinstance(path, str) and "\n" not in path for path in paths):
            raise HolderError("its locks are not lists of file names")
    return record


def read_holders(workdir) -> tuple[list[dict], list[str]]:
    """The readable holder records, and one line per record that is not one."""
    records, unreadable = [], []
    folder = Path(workdir) / HOLDERS
    for path in sorted(folder.glob("[!.]*.json")) if folder.is_dir() else []:  # not temporaries
        try:
            record = _checked(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            unreadable.append(f"{path} is not a holder record ({error})")
            continue
        records.append({**record, "path": str(path)})
    return records, unreadable


def _processes_with_token(token: str, uid: int, since_ticks: int = 0) -> tuple[int, bool]:
    """How many processes of this host carry `token`, and whether some could not be read.
    Only processes started at or after `since_ticks` (when the call began) can be the call's."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    found, unreadable = 0, False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.getuid() != 0 and entry.stat().st_uid != uid:
                continue  # the call's processes all run as its user
            if (start_ticks(int(entry.name)) or 0) < since_ticks:
                continue  # older than the call (init, daemons)
            environ = Path(entry.path, "environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile, or a kernel thread
        except OSError:
            unreadable = True  # one we may not read: it may belong to the call
            continue
        if needle in environ.split(b"\0"):
            found += 1
    return found, unreadable


def why_it_may_run(record: dict) -> str | None:
    """None when nothing of the call can still run; else why it may (one phrase)."""
    here = identity()
    who = f"snakemake pid {record['pid']} on {record['host']}"
    for key, where in (
        ("host", "on another host"),
        ("boot_id", "in an earlier boot"),
        ("pid_namespace", "in another PID namespace (a container?)"),
    ):
        if record.get(key) is None or record.get(key) != here[key]:
            return f"{who}, {where}, which cannot be checked from here"
    if record.get("uid") != here["uid"] and here["uid"] != 0:
        return f"{who}, run by user {record.get('uid')}, whose processes cannot be checked from here"
    if record.get("executor", "local") != "local":
        return (
            f"{who}, whose {record.get('executor')} jobs may still be queued or running "
            "(check the scheduler's queue)"
        )
    if start_ticks(record["pid"]) == record.get("start_ticks"):
        return f"{who}, which still runs"
    count, unreadable = _processes_with_token(
        record["token"], record.get("uid", here["uid"]), record.get("start_ticks") or 0
    )
    if count:
        return f"{who}, which ended, but {count} of its processes (jobs, trainers) still run"
    if unreadable:
        return f"{who}, which ended, but some processes of its user could not be checked"
    return None


def call_is_over(token: str | None, workdir=".") -> bool:
    """Whether nothing of the call with this token can still run (results made before calls had
    tokens have none: theirs is over)."""
    if not token or not token.isalnum():
        return True  # not a token of ours
    try:
        record = _checked(json.loads(_record_path(workdir, token).read_text()))
    except FileNotFoundError:
        count, unreadable = _processes_with_token(token, os.getuid())
        return count == 0 and not unreadable
    except (OSError, ValueError):
        return False
    return why_it_may_run(record) is None


def _read_lock(path: Path) -> tuple[str, frozenset[str]] | None:
    """A Snakemake lock file as (input or output, the files it locks); None if unreadable."""
    kind = path.name.split(".")[-2] if path.name.count(".") >= 2 else ""
    try:
        return kind, frozenset(line.strip() for line in path.read_text().splitlines())
    except OSError:
        return None


def _lock_files(workdir) -> dict[Path, tuple[str, frozenset[str]]]:
    folder = Path(workdir) / LOCKS
    paths = sorted(folder.glob("*.lock")) if folder.is_dir() else []
    return {path: lock for path in paths if (lock := _read_lock(path)) is not None}


def _other_holders(workdir, own_token: str | None) -> tuple[list[dict], list[str]]:
    """The readable records of other calls, and one line per record that is not one."""
    records, problems = read_holders(workdir)
    return [record for record in records if record["token"] != own_token], problems


def _classify(records: list[dict]) -> tuple[list[tuple[dict, str]], list[dict]]:
    """(record, why it may run) for the calls that may still run, and the records of those over."""
    alive, gone = [], []
    for record in records:
        why = why_it_may_run(record)
        if why:
            alive.append((record, why))
        else:
            gone.append(record)
    return alive, gone


def _owner(lock: tuple[str, frozenset[str]], records: list[dict]) -> dict | None:
    kind, paths = lock
    for record in records:
        if frozenset(record["locks"].get(kind, [])) == paths:
            return record
    return None


def _restore_all(workdir, records: list[dict]) -> None:
    present = set(_lock_files(workdir).values())
    for record in records:
        _restore(workdir, record, present)


def _restore(workdir, record: dict, present: set[tuple[str, frozenset[str]]]) -> None:
    """Write back the locks of a call that may still run, where another call's end removed them."""
    folder = Path(workdir) / LOCKS
    for kind, paths in record["locks"].items():
        if not paths or (kind, frozenset(paths)) in present:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(10_000):
            try:
                with open(folder / f"{number}.{kind}.lock", "x") as lock:
                    print(*paths, sep="\n", file=lock)
                break
            except FileExistsError:
                continue
        log.warning(
            "restored the %s lock of snakemake pid %s (another call's end had removed it)",
            kind,
            record["pid"],
        )


def settle_locks(workdir, own_token: str | None = None, unlocking: bool = False) -> list[str]:
    """Before a call plans: remove the locks of calls that are provably over, write back those
    of calls that may still run, and return one line per holder that still holds the folder."""
    workdir = Path(workdir).resolve()
    records, problems = _other_holders(workdir, own_token)
    if unlocking:  # the user has checked that nothing runs: forget every record
        folder = workdir / HOLDERS
        for path in folder.glob("*.json") if folder.is_dir() else []:
            if path.name != f"{own_token}.json":
                path.unlink(missing_ok=True)
        return []
    alive, gone = _classify(records)  # first: the scans of /proc take a moment
    for path, lock in _lock_files(workdir).items():
        owner = _owner(lock, gone)
        # Read again just before: another call may have taken that file name meanwhile.
        if owner is not None and _read_lock(path) == lock:
            path.unlink(missing_ok=True)
            log.warning(
                "removed the lock left by snakemake pid %s, of which nothing runs any more", owner["pid"]
            )
    for record in gone:
        Path(record["path"]).unlink(missing_ok=True)
    _restore_all(workdir, [record for record, _ in alive])
    held = [f"{workdir} is locked by {why}; {UNLOCK_ADVICE}" for _, why in alive]
    owners = [record for record, _ in alive]
    if any(_owner(lock, owners) is None for lock in _lock_files(workdir).values()):
        held.append(f"{workdir} is locked by a snakemake that left no record of itself; {UNLOCK_ADVICE}")
    return held + problems
