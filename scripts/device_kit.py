"""Carry the training data to a borrowed GPU machine that takes a few tens of MB per call.

This workplace's ``device`` tool sends the working tree (the tracked files, about 20 MB) and the
paths named in ``carry`` to a GPU machine, 64 MiB in all per call, and keeps the machine warm for
30 s after a call. The train split's source photos alone are 128 MB (the squares prepared from them
185 MB), so they travel in parts, one per call, and the machine prepares the squares itself with
``prepare`` (the same crops, sizes and JPEG settings as here):

    here, once:       python scripts/device_kit.py pack --data data/cub256 \\
                          --mask-dir ../shared/data/nvidia_test_masks --out .device_kit
    call k of N:      carry [".device_kit/partK"]
                      python3 scripts/device_kit.py unpack .device_kit/partK --kit /root/kit
    the last call:    the same with --prepare (then train on /root/kit/data)
    before the calls: python scripts/device_kit.py check   (each call still within 64 MiB?)

scripts/device_call.sh is each call's whole command.

A part holds the source photos' bytes unchanged; part 1 also the CUB metadata, the mask folder
and the manifest of the packed photos: the whole train split and ``--val-images`` val photos
(32, evenly spaced) for the in-training validation. The squares the machine prepares keep this
machine's split, because the carried manifest replaces the one ``prepare`` writes there (a
partial copy would be split afresh). Every part names its files and the number of parts, so
``--prepare`` refuses until all have arrived, and a part sent twice is harmless.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a bare checkout on the GPU machine
    sys.path.insert(0, str(ROOT))

from trainer.cub import REQUIRED_FILES  # noqa: E402
from trainer.manifest import MANIFEST_NAME, read_manifest, write_manifest  # noqa: E402
from trainer.photo_eval import source_photos  # noqa: E402
from trainer.prepare import SETTINGS_NAME, PrepareConfig, prepare  # noqa: E402

PART_FILE = "part.json"
MIB = 1 << 20
CALL_LIMIT = 64 * MIB  # what the device tool takes in one call: the tree and the carried paths
LISTING_BASE, LISTING_PER_FILE = 4096, 2  # part.json: its settings, then a name and ", " a file


class KitError(ValueError):
    """The kit cannot be packed or unpacked as asked; the message says why."""


def _settings(data: Path) -> dict:
    try:
        return json.loads((data / SETTINGS_NAME).read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KitError(f"{data / SETTINGS_NAME} is not a prepare report ({exc!r})") from None


def pack(
    data: Path, out: Path, part_bytes: int, mask_dir: Path | None = None, val_images: int = 32
) -> list[Path]:
    """Write ``out/part1..N``: the train split's (and ``val_images`` val photos') source photos,
    each part at most ``part_bytes``; part 1 first takes the manifest, the metadata and the masks."""
    settings = _settings(data)
    mode = settings["mode"]
    root = Path(settings["source"])
    photos_root = root / "images" if mode == "cub" else root
    ids_paths = source_photos(data, "train", None) + (
        source_photos(data, "val", val_images) if val_images else []
    )
    packed = {image_id for image_id, _ in ids_paths}
    files: list[tuple[Path, str]] = []  # (file here, its path in the kit)
    if mode == "cub":
        files += [(root / name, f"source/{name}") for name in REQUIRED_FILES]
    if mask_dir is not None:
        masks = sorted(p for p in Path(mask_dir).iterdir() if p.is_file())
        if not masks:
            raise KitError(f"no mask files in {mask_dir}")
        files += [(p, f"masks/{p.name}") for p in masks]
    prefix = "source/images" if mode == "cub" else "source"
    files += [(path, f"{prefix}/{path.relative_to(photos_root).as_posix()}") for _, path in ids_paths]
    missing = [str(p) for p, _ in files if not p.is_file()]
    if missing:
        raise KitError(f"{len(missing)} files to pack are missing, e.g. {missing[:3]}")
    if out.exists() and any(not p.name.startswith("part") for p in out.iterdir()):
        raise KitError(f"{out} exists and is not a kit: give another --out")

    with tempfile.TemporaryDirectory() as tmp:
        write_manifest(tmp, [r for r in read_manifest(data) if r.image_id in packed])
        files.insert(0, (Path(tmp) / MANIFEST_NAME, MANIFEST_NAME))
        parts: list[list[tuple[Path, str, int]]] = [[]]
        used = LISTING_BASE
        for path, rel in files:
            size = path.stat().st_size
            cost = size + len(json.dumps(rel)) + LISTING_PER_FILE  # the file and its name in part.json
            if LISTING_BASE + cost > part_bytes:
                raise KitError(
                    f"{path} ({size / MIB:.1f} MiB) is larger than a part ({part_bytes / MIB:.1f} MiB)"
                )
            if used + cost > part_bytes:
                parts.append([])
                used = LISTING_BASE
            parts[-1].append((path, rel, size))
            used += cost

        # the pack's id: its manifest and how its files are laid out in parts (two packs of the
        # same photos in parts of other sizes split at other files, and must not mix)
        layout = json.dumps([[rel for _, rel, _ in part] for part in parts]).encode()
        kit_id = hashlib.sha256((Path(tmp) / MANIFEST_NAME).read_bytes() + layout).hexdigest()[:16]
        if out.exists():
            shutil.rmtree(out)
        written = []
        for k, part in enumerate(parts, 1):
            part_dir = out / f"part{k}"
            for path, rel, _ in part:
                (part_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, part_dir / rel)
            meta = {
                "part": k,
                "parts": len(parts),
                "files": [rel for _, rel, _ in part],
                "bytes": sum(size for _, _, size in part),
                "settings": settings,
                "photos": len(packed),
                "kit": kit_id,
            }
            (part_dir / PART_FILE).write_text(json.dumps(meta) + "\n", encoding="utf-8")
            written.append(part_dir)
    return written


def _received(kit: Path) -> dict[int, dict]:
    found = {}
    for path in sorted((kit / "received").glob("part*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        found[meta["part"]] = meta
    return found


def unpack(part_dir: Path, kit: Path) -> tuple[set[int], int]:
    """Copy one part into ``kit``; returns the parts received so far and how many there are."""
    try:
        meta = json.loads((part_dir / PART_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KitError(f"{part_dir} is not a kit part ({exc!r})") from None
    # before anything is copied: a part of another pack changes nothing here
    others = {
        k: m for k, m in _received(kit).items() if (m["kit"], m["parts"]) != (meta["kit"], meta["parts"])
    }
    if others:
        raise KitError(
            f"{part_dir} is part {meta['part']} of another pack ({meta['parts']} parts, kit {meta['kit']}) "
            f"than the parts {sorted(others)} already in {kit}: send the part of that pack, or empty "
            f"{kit} to start over; nothing was copied"
        )
    for rel in meta["files"]:
        dest = kit / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(part_dir / rel, tmp)
        os.replace(tmp, dest)
    (kit / "received").mkdir(parents=True, exist_ok=True)
    # Written last: a part counts as received only once all of its files are in place.
    (kit / "received" / f"part{meta['part']}.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    received = _received(kit)
    kits = {(m["kit"], m["parts"]) for m in received.values()}
    if len(kits) != 1:
        raise KitError(f"{kit} holds parts of different kits (packs {sorted(kits)}): empty it first")
    return set(received), kits.pop()[1]


def finish(kit: Path, workers: int = 0) -> Path:
    """Once every part is in: prepare the squares into ``kit/data`` as the packing machine did and
    give them its manifest (its split). Returns the data folder."""
    received = _received(kit)
    if not received:
        raise KitError(f"no part has been unpacked into {kit}")
    total = next(iter(received.values()))["parts"]
    missing = sorted(set(range(1, total + 1)) - set(received))
    if missing:
        raise KitError(f"parts {missing} of {total} have not been unpacked into {kit}")
    lost = [rel for m in received.values() for rel in m["files"] if not (kit / rel).is_file()]
    if lost:
        raise KitError(f"{len(lost)} files of the received parts are not in {kit}, e.g. {lost[:3]}")
    settings = received[1]["settings"]
    data = kit / "data"
    source = kit / "source"
    cub = settings["mode"] == "cub"
    report = prepare(
        PrepareConfig(
            out=data,
            cub=source if cub else None,
            images_dir=None if cub else source,
            size=settings["size"],
            format=settings["format"],
            quality=settings["quality"],
            workers=workers,
            progress=False,
        )
    )
    rows = read_manifest(kit)  # the packing machine's rows: its split
    absent = [r.file for r in rows if not (data / r.file).is_file()]
    if absent:
        raise KitError(f"{len(absent)} packed photos gave no square here, e.g. {absent[:3]}")
    write_manifest(data, rows)
    record = json.loads((data / SETTINGS_NAME).read_text(encoding="utf-8"))
    record["report"]["splits"] = {s: sum(r.split == s for r in rows) for s in ("train", "val", "test")}
    record["report"]["kept"] = len(rows)
    record["kit"] = {"parts": total, "prepared_here": report.kept, "manifest": "the packing machine's"}
    (data / SETTINGS_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return data


def _tree_bytes() -> int:
    """What the device tool sends besides the carried paths: the tracked and untracked-not-ignored files."""
    import subprocess

    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())


def check(out: Path) -> int:
    """Print each call's size (the tree as it is now and one part); 1 when one is over 64 MiB."""
    tree = _tree_bytes()
    parts = sorted(out.glob("part*"), key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else 0)
    if not parts:
        raise KitError(f"no parts in {out}: pack first")
    over = 0
    for part in parts:
        size = tree + sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
        over += size > CALL_LIMIT
        print(f"{part.name}: {size / MIB:.2f} MiB a call{'  OVER' if size > CALL_LIMIT else ''}")
    return 1 if over else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: write the parts")
    p.add_argument("--data", type=Path, required=True, help="the prepared folder")
    p.add_argument("--out", type=Path, default=ROOT / ".device_kit")
    p.add_argument(
        "--mask-dir", type=Path, required=True, help="the mask folder the recipe's folder masks read"
    )
    p.add_argument("--val-images", type=int, default=32, help="val photos for in-training validation")
    p.add_argument(
        "--part-mib",
        type=float,
        default=0,
        help="part size (default: 64 MiB less the working tree and 2 MiB)",
    )
    c = sub.add_parser("check", help="here, before the calls: each call's size with the tree as it is now")
    c.add_argument("--out", type=Path, default=ROOT / ".device_kit")
    u = sub.add_parser("unpack", help="on the GPU machine: copy one part into the kit")
    u.add_argument("part", type=Path)
    u.add_argument("--kit", type=Path, required=True)
    u.add_argument("--prepare", action="store_true", help="then prepare the squares (all parts must be in)")
    u.add_argument("--workers", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            tree = _tree_bytes()
            part_bytes = int(args.part_mib * MIB) if args.part_mib else CALL_LIMIT - 2 * MIB - tree
            parts = pack(args.data, args.out, part_bytes, args.mask_dir, args.val_images)
            for part in parts:
                meta = json.loads((part / PART_FILE).read_text(encoding="utf-8"))
                print(f"{part}: {len(meta['files'])} files, {meta['bytes'] / MIB:.1f} MiB")
            print(
                f"{len(parts)} parts; the working tree adds {tree / MIB:.1f} MiB to each call "
                f"(the device tool takes 64 MiB a call)"
            )
        elif args.command == "check":
            return check(args.out)
        else:
            have, total = unpack(args.part, args.kit)
            print(f"{args.kit}: parts {sorted(have)} of {total} unpacked")
            if args.prepare:
                data = finish(args.kit, args.workers)
                rows = read_manifest(data)
                print(f"{data}: {len(rows)} photos prepared ({sum(r.split == 'train' for r in rows)} train)")
    except KitError as exc:
        print(f"device_kit: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
