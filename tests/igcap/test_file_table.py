"""FileTable: a bfloat16 token table read row by row from its file gives what indexing the table in memory gives."""

import os

import pytest
import torch

from igcap.optimize.file_table import FileTable, lookup


@pytest.fixture()
def table_file(tmp_path):
    table = torch.randn(50, 6, generator=torch.Generator().manual_seed(3)).bfloat16()
    path = tmp_path / "table.bin"
    header = b"x" * 24  # the rows start at an offset, as in an entry
    path.write_bytes(header + table.view(torch.uint8).numpy().tobytes())
    fd = os.open(path, os.O_RDONLY)
    yield table, FileTable(fd, len(header), table.shape), path
    os.close(fd)


@pytest.mark.parametrize("ids", [[7], [[3, 49, 0], [0, 3, 3]], [[[1, 1], [2, 1]]], [49, 48, 47, 0, 1], []],
                         ids=["one", "repeats across rows", "three dimensions", "distinct", "none"])
def test_rows_equal_the_tables_rows(table_file, ids):
    table, in_file, _ = table_file
    ids = torch.tensor(ids, dtype=torch.long)
    got = in_file.rows(ids)
    assert got.dtype == torch.bfloat16 and got.shape == (*ids.shape, 6)
    assert torch.equal(got, table[ids])
    assert torch.equal(lookup(in_file, ids), lookup(table, ids))


@pytest.mark.parametrize("bad", [50, -1])
def test_an_id_outside_the_table_is_refused(table_file, bad):
    _, in_file, _ = table_file
    with pytest.raises(IndexError):
        in_file.rows(torch.tensor([[1, bad]]))


def test_a_file_cut_short_is_an_error_not_a_row_of_garbage(table_file):
    _, in_file, path = table_file
    os.truncate(path, 24 + 40 * 12)  # rows 40 and on are gone
    assert in_file.rows(torch.tensor([39])).shape == (1, 6)
    with pytest.raises(OSError):
        in_file.rows(torch.tensor([2, 45]))


def test_rows_read_from_several_threads_at_once_equal_rows_read_one_at_a_time(table_file):
    """Sessions are threads sharing one model's table: reads at once give what each gives alone."""
    import threading

    table, in_file, _ = table_file
    requests = [torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(i)) for i in range(6)]
    alone = [in_file.rows(ids) for ids in requests]
    start, wrong = threading.Barrier(len(requests)), []

    def read(i):
        start.wait()
        for _ in range(200):
            if not torch.equal(in_file.rows(requests[i]), alone[i]):
                wrong.append(i)

    workers = [threading.Thread(target=read, args=(i,)) for i in range(len(requests))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not wrong
    assert all(torch.equal(got, table[ids]) for got, ids in zip(alone, requests))
