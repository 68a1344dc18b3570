"""``facescope gallery list|rename|merge|delete|forget|export|import|reembed|audit|encrypt|decrypt|rekey``.

Every change is recorded in the gallery's audit trail with front end "cli".
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from engine.cli.common import add_model_args, build_recognizer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gallery", help="list and edit a gallery: persons, faces, export/import, re-embedding")
    g = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, func, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        a = g.add_parser(name, help=help, aliases=list(aliases))
        a.add_argument("--gallery", required=True, help="gallery file")
        a.set_defaults(func=func)
        return a

    a = action("list", "persons with face counts (or every face with --faces)", run_list)
    a.add_argument("--faces", action="store_true", help="list every stored face")
    a.add_argument("--search", default="", help="only names containing this text (case-insensitive)")
    a = action("rename", "rename a person", run_rename)
    a.add_argument("old")
    a.add_argument("new")
    a = action("merge", "move all faces of SRC to DST and delete SRC", run_merge)
    a.add_argument("src")
    a.add_argument("dst")
    a = action("delete", "delete a person (all faces) or single faces by id; the erased data is scrubbed from "
                         "the gallery files (forget is the same command)", run_delete, aliases=("forget",))
    a.add_argument("name", nargs="?", help="person to delete")
    a.add_argument("--face", type=int, action="append", default=[], metavar="ID", help="delete this face id")
    a = action("export", "write the whole gallery as one self-contained file", run_export)
    a.add_argument("path")
    a.add_argument("--overwrite", action="store_true")
    a = action("import", "add (or, with --replace, substitute) a gallery file's persons and faces", run_import)
    a.add_argument("path")
    a.add_argument("--replace", action="store_true", help="replace this gallery's contents instead of merging")
    a = action("reembed", "recompute every embedding from its stored crop with another embedder", run_reembed)
    add_model_args(a)
    a = action("not-person", "this sighting is NOT this person: remember it as a negative example, so faces "
                             "closer to it than to the person's own faces are not matched to them", run_not_person)
    a.add_argument("--sighting", type=int, required=True, metavar="ID", help="sighting id (facescope sightings list)")
    a.add_argument("--person", required=True, metavar="NAME")
    a = action("audit", "list the audit trail of changes (ids and counts, never names or faces)", run_audit)
    a.add_argument("--verify", action="store_true",
                   help="recompute the hash chain; exit 1 naming the first removed or edited entry")
    a.add_argument("--json", action="store_true", help="print the entries (and verification) as one JSON object")
    key_help = ("the key: a passphrase (FACESCOPE_GALLERY_PASSPHRASE, else asked on the terminal; stretched with "
                "scrypt) or, with --keyring, a random key kept in the OS keyring. Needs the secure extra.")
    a = action("encrypt", f"encrypt the gallery in place (SQLCipher); {key_help}", run_encrypt)
    a.add_argument("--keyring", action="store_true", help="keep a random key in the OS keyring, not a passphrase")
    action("decrypt", "store the gallery unencrypted again, in place (needs its current key)", run_decrypt)
    a = action("rekey", "change the key of an encrypted gallery in place (the new passphrase: "
                        "FACESCOPE_GALLERY_NEW_PASSPHRASE, else asked)", run_rekey)
    a.add_argument("--keyring", action="store_true", help="switch to a random key in the OS keyring")


def _open(path: str):
    from engine.gallery import Gallery

    meta = Gallery.inspect(path)
    return Gallery.open(path, meta.embedder_id, meta.embedding_dim, create=False, frontend="cli")


def run_not_person(args: argparse.Namespace) -> int:
    from engine.gallery.negatives import not_person_sighting

    with _open(args.gallery) as g:
        nid = not_person_sighting(g, args.sighting, args.person)
    print(f"sighting {args.sighting} is not {args.person}: stored as negative example {nid}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from engine.gallery import Gallery

    meta = Gallery.inspect(args.gallery)
    print(f"{args.gallery}: {meta.persons} persons, {meta.faces} faces, embedder {meta.embedder_id} "
          f"({meta.embedding_dim}-d), schema v{meta.schema_version}")
    with Gallery.open_for_reembed(args.gallery, frontend="cli") as gallery:
        needle = args.search.casefold()
        if args.faces:
            for f in gallery.faces():
                if needle in f.person_name.casefold():
                    q = "-" if f.quality is None else f"{f.quality:.2f}"
                    print(f"  face {f.id:>6}  {f.person_name:<30} quality {q:<5} {f.created_at}  {f.source or ''}")
        else:
            for person in gallery.persons():
                if needle in person.name.casefold():
                    print(f"  {person.name:<30} {person.face_count:>4} face(s)  since {person.created_at}")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    with _open(args.gallery) as gallery:
        gallery.rename_person(args.old, args.new)
    print(f"renamed {args.old!r} to {args.new!r}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    with _open(args.gallery) as gallery:
        moved = gallery.merge_persons(args.src, args.dst)
    print(f"merged {args.src!r} into {args.dst!r} ({moved} face(s) moved)")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    if not args.name and not args.face:
        raise ValueError("give a person's name or --face ID")
    with _open(args.gallery) as gallery:
        for face_id in args.face:
            gallery.delete_face(face_id)
            print(f"deleted face {face_id}")
        if args.name:
            n = gallery.delete_person(args.name)
            print(f"deleted {args.name!r} and {n} face(s)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    with _open(args.gallery) as gallery:
        gallery.export(args.path, overwrite=args.overwrite)
    print(f"exported {args.gallery} to {args.path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    with _open(args.gallery) as gallery:
        s = gallery.import_from(args.path, mode="replace" if args.replace else "merge")
    print(f"imported {args.path}: {s.faces_added} face(s), {s.persons_created} new person(s), "
          f"{s.persons_merged} merged into existing")
    return 0


def run_reembed(args: argparse.Namespace) -> int:
    from engine.gallery import Gallery

    embedder = build_recognizer(args).embedder
    with Gallery.open_for_reembed(args.gallery, frontend="cli") as gallery:
        if gallery.embedder_id == embedder.id:
            print(f"{args.gallery} is already embedded with {embedder.id}; nothing to do")
            return 0
        old = gallery.embedder_id
        bar = tqdm(total=len(gallery.faces()), desc="re-embedding", unit="face")

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        n = gallery.reembed(embedder.embed_crops, embedder.id, embedder.dim, progress=progress)
        bar.close()
    print(f"re-embedded {n} face(s): {old} -> {embedder.id}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """Read-only: a v1 gallery (no trail yet) is reported, not migrated."""
    from engine.gallery import Gallery, audit
    from engine.gallery.schema import read_only

    meta = Gallery.inspect(args.gallery)
    if meta.schema_version < 2:
        raise ValueError(f"{args.gallery} is a schema v{meta.schema_version} gallery without an audit trail; it gets "
                         "one when facescope next changes it")
    with read_only(args.gallery) as conn:
        entries = audit.entries(conn)
        check = audit.verify(conn) if args.verify else None
    if args.json:
        out = {"gallery": str(args.gallery), "entries": [e.to_json() for e in entries],
               "head": entries[-1].hash if entries else audit.GENESIS}
        if check is not None:
            out["verified"] = check.ok
            out["problems"] = check.problems
            out["first_bad_entry"] = check.first_bad
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for e in entries:
            who = f"person {e.person_id}" if e.person_id is not None else "-"
            details = " ".join(f"{k}={v}" for k, v in e.details.items() if v is not None)
            print(f"{e.seq:>6}  {e.at}  {e.action:<13} {e.frontend:<3} {e.user or '?':<12} {who:<12} {details}")
        if check is not None:
            if check.ok:
                print(f"audit trail verified: {check.entries} entries, head {check.head[:16]}")
            else:
                for line in check.problems:
                    print(f"audit trail BROKEN: {line}")
    return 0 if check is None or check.ok else 1


def _change_key(path: str, target: str | None, *, encrypted: bool | None) -> int:
    """``encrypted``: what the gallery must be before (None: either)."""
    from engine.gallery import crypto, rekey

    if encrypted is False and crypto.is_encrypted(Path(path)):
        raise ValueError(f"gallery {path} is already encrypted; `facescope gallery rekey` changes its key")
    if encrypted is True and not crypto.is_encrypted(Path(path)):
        raise ValueError(f"gallery {path} is not encrypted; `facescope gallery encrypt` encrypts it")
    action = rekey.change_key(path, target, frontend="cli")
    where = {"passphrase": "a passphrase", "keyring": "a key in the OS keyring", None: ""}[target]
    print({"encrypt": f"encrypted {path} with {where} (key file {path}{crypto.SIDECAR_SUFFIX}: back it up with the "
                      "gallery; it holds the salt, not the key)",
           "decrypt": f"decrypted {path}: it is stored unencrypted now",
           "rekey": f"re-keyed {path}: it is encrypted with {where} now"}[action])
    return 0


def run_encrypt(args: argparse.Namespace) -> int:
    return _change_key(args.gallery, "keyring" if args.keyring else "passphrase", encrypted=False)


def run_decrypt(args: argparse.Namespace) -> int:
    return _change_key(args.gallery, None, encrypted=True)


def run_rekey(args: argparse.Namespace) -> int:
    return _change_key(args.gallery, "keyring" if args.keyring else "passphrase", encrypted=True)
