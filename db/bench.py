"""How fast the data layer answers the app with many captions: ``python -m db.bench``.

Fills a throw-away database (a temporary SQLite file, or with ``--postgres URL`` a temporary schema
that is dropped afterwards) with photos, captions and ratings, then prints the median time and the
number of SELECTs of the gallery, the statistics and the export.

  python -m db.bench --captions 1000
  python -m db.bench --captions 1000 --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text

from db import repo
from db.engine import make_engine, normalise_url, transaction, upgrade
from db.export import rated_captions_csv, ratings_long_csv
from db.repo import GalleryFilter

MODELS = ("vit-gpt2-last-block", "vit-gpt2-all", "nlpconnect-last-block", "nlpconnect-all", "manual")
RATERS = ("ann", "bob", "cy")


@contextmanager
def scratch_database(postgres: str | None):
    if postgres is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        return
    schema = f"igcap_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(postgres), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{normalise_url(postgres)}{'&' if '?' in postgres else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fill(engine, captions: int) -> float:
    """captions/5 photos with one caption per model; three ratings per caption. Returns seconds."""
    thumb, image = b"\xff\xd8" + b"t" * 20_000, b"\xff\xd8" + b"i" * 200_000  # typical JPEG sizes
    started = time.perf_counter()
    with transaction(engine) as s:
        for p in range(max(1, captions // len(MODELS))):
            photo = repo.save_photo(session=s, sha256=hashlib.sha256(b"%d" % p).hexdigest(), name=f"p{p}.jpg",
                                    width=1080, height=1080, format="JPEG", image_jpeg=image, thumbnail_jpeg=thumb)
            for m, key in enumerate(MODELS):
                caption = repo.add_caption(session=s, photo=photo, model_key=key, text=f"photo {p} caption {m} ✨",
                                           generated_text=None if key == "manual" else f"photo {p} raw {m}",
                                           settings={"num_beams": 4, "max_new_tokens": 40}, seconds=0.8)
                for r, rater in enumerate(RATERS):
                    repo.rate(session=s, caption_id=caption.id, rater=rater, stars=1 + (p + m + r) % 5)
    seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":  # what autovacuum does soon after a bulk load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    return seconds


def measure(engine, label: str, call: Callable, repeats: int) -> None:
    selects: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    times = []
    for _ in range(repeats):
        selects.clear()
        event.listen(engine, "before_cursor_execute", count)
        started = time.perf_counter()
        with transaction(engine, write=False) as s:
            result = call(s)
        times.append(time.perf_counter() - started)
        event.remove(engine, "before_cursor_execute", count)
    size = f"{len(result):>9,} bytes" if isinstance(result, bytes) else ""
    print(f"  {label:<44} {statistics.median(times) * 1000:8.1f} ms  {len(selects):3d} SELECTs {size}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m db.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="benchmark in a temporary schema on this server")
    args = parser.parse_args(argv)
    with scratch_database(args.postgres) as url:
        engine = make_engine(url)
        upgrade(engine)
        seconds = fill(engine, args.captions)
        total = args.captions // len(MODELS) * len(MODELS)
        print(f"{engine.dialect.name}: {total} captions, {total * len(RATERS)} ratings written in {seconds:.2f} s")
        measure(engine, "gallery page 1 (24, with my stars)", lambda s: repo.gallery(session=s, rater="ann"),
                args.repeats)
        measure(engine, "gallery last page", lambda s: repo.gallery(session=s, page=10**6), args.repeats)
        hard = GalleryFilter(model_keys=MODELS[:2], min_stars=3, search="caption", unrated_by="zed")
        measure(engine, "gallery, 2 models + min stars + search", lambda s: repo.gallery(session=s, filters=hard),
                args.repeats)
        measure(engine, "rating stats per model", lambda s: repo.rating_stats(session=s), args.repeats)
        measure(engine, "rated captions CSV (all)", lambda s: rated_captions_csv(session=s, labels={}), args.repeats)
        measure(engine, "ratings long CSV (all)", lambda s: ratings_long_csv(session=s, labels={}), args.repeats)
        engine.dispose()


if __name__ == "__main__":
    main()
