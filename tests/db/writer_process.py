"""A process that writes batches until it is killed: ``python -m tests.db.writer_process URL BATCH``.

Each batch is one transaction: a photo, BATCH captions and a rating for each. Halfway through a
batch, with half its rows flushed but not committed, it prints ``mid K`` and pauses so that the
test can kill it right there; after each commit it prints ``committed K``.
"""

import sys
import time

from db import repo
from db.engine import make_engine, transaction
from tests.db.conftest import photo_values


def main(url: str, batch: int) -> None:
    engine = make_engine(url)
    for k in range(10_000):
        with transaction(engine) as session:
            photo = repo.save_photo(session=session, **photo_values(f"batch-{k}"))
            for j in range(batch):
                caption = repo.add_caption(session=session, photo=photo, model_key="vit-gpt2-all", text=f"{k}-{j}")
                repo.rate(session=session, caption_id=caption.id, rater="writer", stars=1 + j % 5)
                if j == batch // 2:
                    print(f"mid {k}", flush=True)
                    time.sleep(0.2 if k >= 3 else 0)
        print(f"committed {k}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
