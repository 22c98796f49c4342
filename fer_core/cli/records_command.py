"""``fer people`` and ``fer sessions``: the records database from the command line (the
same database as the app: ``--db URL``, else ``$FER_DB_URL``, else ``records.sqlite`` in
the runs folder). The command line acts as an administrator: whoever can run it can read
the database file anyway. Names, notes and file names are printed through ``terminal_safe``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fer_core.data.media import VIDEO_SUFFIXES
from fer_core.errors import FerError
from fer_core.recognition.predict import check_out
from fer_core.records import (
    ADMIN_CLI,
    Records,
    RecordsError,
    database_url,
    open_records,
    retention_days,
)
from fer_core.records.history import person_json_bytes, session_csv_bytes
from fer_core.safe_text import terminal_safe
from fer_core.storage import atomic_writer
from fer_core.training.runs import runs_dir

VIEWER = ADMIN_CLI


def _db_argument(parser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the records database (default: $FER_DB_URL, else records.sqlite in the runs folder)",
    )


def _yes_argument(parser) -> None:
    parser.add_argument(
        "--yes",
        action="store_true",
        help="delete without asking (for scripts); without it, the command asks on a terminal "
        "and deletes nothing when there is no terminal to ask on",
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def open_database(db: str | None) -> Records:
    """``--db``, else ``$FER_DB_URL``, else the runs folder's SQLite (``$FER_RUNS_DIR`` or
    ``runs``): the app's database."""
    return open_records(db or database_url(runs=runs_dir("runs")))


def _open(args) -> Records:
    return open_database(args.db)


def person_of(records: Records, who: str):
    """A person by number (``3`` or ``#3``) or by exact name."""
    text = who.strip()
    number = text[1:] if text.startswith("#") else text
    if number.isdigit():
        return records.person(int(number), VIEWER)
    return records.person_by_name(text, VIEWER)


def _write(out: str, data: bytes, suffixes: tuple[str, ...]) -> Path:
    """Write an export through the same checks as ``fer predict --out`` (no symbolic link,
    no folder, a folder that can be written), atomically."""
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise FerError(
            f"--out must end in {' or '.join(suffixes)}, not {terminal_safe(path.name)!r}."
        )
    path = check_out(path)
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return path


def _when(value) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


# ----------------------------------------------------------------------------- people


def _people_add(args) -> int:
    records = _open(args)
    person = records.add_person(args.name, VIEWER, note=args.note or "")
    print(f"added #{person.id} {terminal_safe(person.name)} (id {person.uid})")
    return 0


def _people_list(args) -> int:
    records = _open(args)
    people = records.people(VIEWER)
    counts: dict[int, int] = {}
    for session in records.sessions(VIEWER):
        if session.person_id is not None:
            counts[session.person_id] = counts.get(session.person_id, 0) + 1
    for person in people:
        note = f"  ({terminal_safe(person.note)})" if person.note else ""
        print(
            f"#{person.id:<4} {terminal_safe(person.name)}  sessions: "
            f"{counts.get(person.id, 0)}  added {_when(person.created_at)}{note}"
        )
    print(
        f"{len(people)} {'person' if len(people) == 1 else 'people'} in {terminal_safe(records.location)}"
    )
    return 0


def _people_rename(args) -> int:
    records = _open(args)
    person = person_of(records, args.who)
    renamed = records.rename_person(person.id, args.name, VIEWER)
    print(f"#{person.id}: {terminal_safe(person.name)} -> {terminal_safe(renamed.name)}")
    return 0


def _people_note(args) -> int:
    records = _open(args)
    person = person_of(records, args.who)
    records.set_note(person.id, args.note, VIEWER)
    print(f"#{person.id} {terminal_safe(person.name)}: note saved")
    return 0


def confirmed(args, what: str) -> bool:
    """Deleting asks first, as the app asks for a tick: ``--yes`` answers for a script; on a
    terminal the question is asked (yes or y deletes); with neither, nothing is deleted."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(
            f"error: this deletes {what}, and cannot be undone. Nothing was deleted: there is "
            "no terminal to ask on; add --yes to delete without asking.",
            file=sys.stderr,
        )
        return False
    try:
        answer = input(f"This deletes {what}, and cannot be undone. Delete? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in {"y", "yes"}:
        return True
    print("Nothing was deleted.")
    return False


def _people_delete(args) -> int:
    records = _open(args)
    person = person_of(records, args.who)
    sessions = records.sessions(VIEWER, person_id=person.id)
    captures = sum(records.capture_counts(VIEWER, person_id=person.id).values())
    what = (
        f"#{person.id} {terminal_safe(person.name)} with {_count(len(sessions), 'session')} "
        f"({_count(sum(s.rows for s in sessions), 'result row')}) and "
        f"{_count(captures, 'captured face')}"
    )
    if not confirmed(args, what):
        return 1 if sys.stdin.isatty() else 2
    deleted = records.delete_person(person.id, VIEWER)
    print(f"deleted #{person.id} {terminal_safe(person.name)}: {deleted.describe()}")
    return 0


def _people_export(args) -> int:
    records = _open(args)
    person = person_of(records, args.who)
    data = person_json_bytes(records, person.id, VIEWER)
    _write(args.out, data, (".json",))
    print(f"wrote everything about #{person.id} to {terminal_safe(args.out)} ({len(data):,} bytes)")
    return 0


# ----------------------------------------------------------------------------- sessions


def _sessions_list(args) -> int:
    records = _open(args)
    person_id = person_of(records, args.person).id if args.person else None
    sessions = records.sessions(VIEWER, person_id=person_id)
    for s in sessions:
        who = terminal_safe(s.person_name) if s.person_name else "-"
        name = f"  {terminal_safe(s.name)}" if s.name else ""
        print(
            f"#{s.id:<5} {_when(s.started_at)}  {s.source:<6} {s.status:<11} rows: {s.rows:<7,} "
            f"faces: {s.faces:<7,} person: {who}  detector: {s.detector or '-'}{name}"
        )
    print(f"{len(sessions)} session{'s' if len(sessions) != 1 else ''}")
    return 0


def _session_number(text: str) -> int:
    text = text.strip().lstrip("#")
    if not text.isdigit():
        raise RecordsError(
            f"A session is given by its number (fer sessions list), not {terminal_safe(text)!r}."
        )
    return int(text)


def _sessions_export(args) -> int:
    records = _open(args)
    number = _session_number(args.session)
    if Path(args.out).suffix.lower() == ".json":
        data = records.session_rows(number, VIEWER).to_json(orient="records", indent=1).encode()
    else:
        data = session_csv_bytes(records, number, VIEWER)
    out = _write(args.out, data, (".csv", ".json"))
    print(f"wrote session #{number} to {terminal_safe(out)} ({len(data):,} bytes)")
    return 0


def _sessions_delete(args) -> int:
    records = _open(args)
    number = _session_number(args.session)
    session = records.session(number, VIEWER)
    what = f"session #{number} ({_count(session.rows, 'result row')})"
    if not confirmed(args, what):
        return 1 if sys.stdin.isatty() else 2
    print(f"deleted session #{number}: {records.delete_session(number, VIEWER).describe()}")
    return 0


def _sessions_purge(args) -> int:
    records = _open(args)
    days = args.days if args.days is not None else retention_days()
    if days is None or days <= 0:
        print("error: give --days N (above 0) or set FER_RETENTION_DAYS", file=sys.stderr)
        return 2
    print(f"purged what is older than {days:g} days: {records.purge(days).describe()}")
    return 0


def add_records_parsers(sub) -> None:
    people = sub.add_parser("people", help="people whose sessions and captured faces are kept")
    verbs = people.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("add", help="add a person")
    p.add_argument("name")
    p.add_argument("--note", default="")
    p.set_defaults(func=_people_add)
    p = verbs.add_parser("list", help="everyone, with their number")
    p.set_defaults(func=_people_list)
    p = verbs.add_parser("rename", help="rename a person (by number or name)")
    p.add_argument("who")
    p.add_argument("name")
    p.set_defaults(func=_people_rename)
    p = verbs.add_parser("note", help="set a person's note")
    p.add_argument("who")
    p.add_argument("note")
    p.set_defaults(func=_people_note)
    p = verbs.add_parser(
        "delete", help="delete a person and every row about them (sessions, faces, captures)"
    )
    p.add_argument("who")
    _yes_argument(p)
    p.set_defaults(func=_people_delete)
    p = verbs.add_parser("export", help="everything about a person, as JSON")
    p.add_argument("who")
    p.add_argument("--out", required=True, help="a .json file")
    p.set_defaults(func=_people_export)
    for parser in verbs.choices.values():
        _db_argument(parser)

    sessions = sub.add_parser(
        "sessions", help="saved live recordings, video analyses and photo batches"
    )
    verbs = sessions.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("list", help="saved sessions, newest first, with their row counts")
    p.add_argument("--person", default=None, help="only those about this person (number or name)")
    p.set_defaults(func=_sessions_list)
    p = verbs.add_parser("export", help="a session's rows as CSV or JSON")
    p.add_argument("session", help="its number (fer sessions list)")
    p.add_argument("--out", required=True, help="a .csv or .json file")
    p.set_defaults(func=_sessions_export)
    p = verbs.add_parser("delete", help="delete a session and its rows")
    p.add_argument("session")
    _yes_argument(p)
    p.set_defaults(func=_sessions_delete)
    p = verbs.add_parser("purge", help="delete sessions and captured faces older than --days")
    p.add_argument("--days", type=float, default=None, help="default: $FER_RETENTION_DAYS")
    p.set_defaults(func=_sessions_purge)
    for parser in verbs.choices.values():
        _db_argument(parser)


def save_prediction(
    rows: list[dict], *, person: str | None, db: str | None, detector: str, model: str
) -> list[tuple[int, str, int]]:
    """``fer predict --save``: each video as a session of its own, the photos together as
    one; returns (session number, what, rows) for each."""
    records = open_database(db)
    person_id = person_of(records, person).id if person else None
    videos: dict[str, list[dict]] = {}
    photos: list[dict] = []
    for row in rows:
        file = str(row.get("file") or "")
        (
            videos.setdefault(file, []) if Path(file).suffix.lower() in VIDEO_SUFFIXES else photos
        ).append(row)
    saved = []
    for file, video_rows in videos.items():
        number = records.save_session(
            "video",
            video_rows,
            VIEWER,
            person_id=person_id,
            name=Path(file).name,
            detector=detector,
            model=model,
        )
        saved.append((number, Path(file).name, len(video_rows)))
    if photos:
        name = (
            Path(photos[0]["file"]).name
            if len(photos) == 1
            else f"{len({r['file'] for r in photos})} photos"
        )
        number = records.save_session(
            "photos", photos, VIEWER, person_id=person_id, name=name, detector=detector, model=model
        )
        saved.append((number, name, len(photos)))
    return saved


__all__ = ["add_records_parsers", "save_prediction", "person_of", "open_database"]
