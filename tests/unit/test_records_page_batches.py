"""A page's rows leave in Arrow batches of bounded size (limits.ARROW_BATCH_MAX_BYTES), so
that a task holds little beyond the page it reads. Pure: no emulator, no Spark."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from kinesis_source.records.records_page import RecordsPage, byte_slices
from tests.pages import BASE_SEQUENCE, make_page

MIB = 1024 * 1024


@pytest.mark.parametrize("seed", range(20))
def test_byte_slices_cover_every_item_in_order_within_the_cap(seed: int) -> None:
    rng = random.Random(seed)
    cap = rng.choice([1, 100, 1000])
    sizes = [rng.choice([0, 1, rng.randrange(2 * cap + 1)]) for _ in range(rng.randrange(60))]
    slices = byte_slices(sizes, cap)
    assert [i for first, last in slices for i in range(first, last)] == list(range(len(sizes)))
    for index, (first, last) in enumerate(slices):
        assert last > first
        total = sum(sizes[first:last])
        assert total <= cap or last - first == 1
        if index + 1 < len(slices):
            # A slice ends only where the next item would not fit.
            assert total + sizes[last] > cap


def _page_with(blobs: list[bytes], as_arrow: bool = False) -> RecordsPage:
    page = make_page([None] * len(blobs), BASE_SEQUENCE)
    # The fast decoder hands a plain page's data over as an Arrow array.
    page.data = pa.array(blobs, pa.binary()) if as_arrow else blobs
    return page


@pytest.mark.parametrize("seed", range(10))
def test_arrow_data_is_cut_where_python_data_is(seed: int) -> None:
    # The fast decoder's data is Arrow, cut by running sums in Arrow; the reference
    # decoder's is a list of bytes, cut by byte_slices.
    rng = random.Random(seed)
    cap = rng.choice([1, 100, 1000])
    blobs = [b"x" * rng.choice([0, 1, rng.randrange(2 * cap + 1)]) for _ in range(60)]
    lo, hi = sorted(rng.sample(range(61), 2))
    got = list(_page_with(blobs, as_arrow=True).to_batches(lo, hi, "s", "shardId-0", cap))
    want = list(_page_with(blobs).to_batches(lo, hi, "s", "shardId-0", cap))
    assert [b.num_rows for b in got] == [b.num_rows for b in want]
    assert all(g.equals(w) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("as_arrow", [False, True])
def test_records_of_one_mib_leave_one_batch_each_with_the_same_rows(as_arrow: bool) -> None:
    blobs = [bytes([i]) * (MIB - 1) for i in range(5)]
    page = _page_with(blobs, as_arrow)
    batches = list(page.to_batches(1, 5, "s", "shardId-0", MIB))
    assert [b.num_rows for b in batches] == [1, 1, 1, 1]
    whole = page.to_batch(1, 5, "s", "shardId-0")
    assert pa.Table.from_batches(batches).equals(pa.Table.from_batches([whole]))


@pytest.mark.parametrize("as_arrow", [False, True])
def test_a_page_of_small_records_leaves_in_one_batch(as_arrow: bool) -> None:
    page = _page_with([b"x" * 100] * 10_000, as_arrow)
    batches = list(page.to_batches(0, 10_000, "s", "shardId-0", MIB))
    assert len(batches) == 1
    assert batches[0].equals(page.to_batch(0, 10_000, "s", "shardId-0"))


def test_aggregated_units_keep_their_records_across_batches() -> None:
    page = make_page([3, None, 2], BASE_SEQUENCE)
    page.data = [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 10, b"e" * 60, b"f" * 60]
    batches = list(page.to_batches(1, 6, "s", "shardId-0", 100))
    assert [b.num_rows for b in batches] == [3, 1, 1]
    whole = page.to_batch(1, 6, "s", "shardId-0")
    assert pa.Table.from_batches(batches).equals(pa.Table.from_batches([whole]))


def _chunked(values: list[object], kind: pa.DataType) -> pa.ChunkedArray:
    # Chunks as the fast decoder makes them (one per aggregate or run of plain records),
    # here cut at every place, one of them empty.
    return pa.chunked_array(
        [pa.array(values[:2], kind), pa.array([], kind), pa.array(values[2:5], kind)]
        + [pa.array([value], kind) for value in values[5:]],
        kind,
    )


@pytest.mark.parametrize(("lo", "hi", "cap"), [(0, 6, 1000), (1, 6, 100), (2, 4, 50), (3, 3, 10)])
def test_chunked_columns_give_the_rows_of_lists(lo: int, hi: int, cap: int) -> None:
    lists = make_page([3, None, 2], BASE_SEQUENCE)
    lists.data = [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 10, b"e" * 60, b"f" * 60]
    lists.partition_keys = ["k1", "k2", "k1", "plain", "k3", "\u00e9"]
    lists.explicit_hash_keys = [None, "7", None, None, "8", None]
    chunks = make_page([3, None, 2], BASE_SEQUENCE)
    chunks.data = _chunked(list(lists.data), pa.binary())
    chunks.partition_keys = _chunked(list(lists.partition_keys), pa.string())
    chunks.explicit_hash_keys = _chunked(list(lists.explicit_hash_keys), pa.string())
    assert chunks.unit_count == lists.unit_count == 6
    got = list(chunks.to_batches(lo, hi, "s", "shardId-0", cap))
    want = list(lists.to_batches(lo, hi, "s", "shardId-0", cap))
    assert [b.num_rows for b in got] == [b.num_rows for b in want]
    assert all(g.equals(w) for g, w in zip(got, want, strict=True))
    assert chunks.to_batch(lo, hi, "s", "shardId-0").equals(
        lists.to_batch(lo, hi, "s", "shardId-0")
    )


@pytest.mark.parametrize("seed", range(10))
def test_running_data_sizes_are_the_same_for_lists_arrays_and_chunks(seed: int) -> None:
    # The byte cap and the batches' bound probe these sums; each decoder's form of the data
    # must give the same ones.
    rng = random.Random(seed)
    blobs = [b"x" * rng.choice([0, 1, rng.randrange(300)]) for _ in range(40)]
    lo, hi = sorted(rng.sample(range(41), 2))
    want = list(_page_with(blobs).data_ends(lo, hi))
    assert want == [sum(map(len, blobs[lo : i + 1])) for i in range(lo, hi)]
    assert list(_page_with(blobs, as_arrow=True).data_ends(lo, hi)) == want
    chunked = _page_with(blobs)
    chunked.data = _chunked(blobs, pa.binary())
    assert list(chunked.data_ends(lo, hi)) == want
