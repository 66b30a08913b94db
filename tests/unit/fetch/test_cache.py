"""The download cache (cache.py): an entry's files named once, and what to do with them decided
before anything is fetched or removed."""

from __future__ import annotations

import hashlib
import threading

import pytest

from musa_docker.fetch.cache import Action, Cancelled, Entry, Found, cache_key, decide, hash_file, look
from musa_docker.values.locations import parse_location

SHA = "a" * 64
OTHER = "b" * 64


def test_entry_names_every_file_once(tmp_path):
    loc = parse_location("https://u:secret@example.com/v/musa_toolkits.tar.gz?token=x#sha256=" + SHA)
    e = Entry.of(tmp_path, loc)
    assert e.dir == tmp_path / "downloads" / cache_key(loc)
    assert [p.name for p in (e.final, e.part, e.meta, e.record, e.lock)] == [
        "musa_toolkits.tar.gz", "musa_toolkits.tar.gz.part", "musa_toolkits.tar.gz.part.json",
        "musa_toolkits.tar.gz.sha256", ".lock",
    ]
    # a rotated token finds the same entry
    assert Entry.of(tmp_path, parse_location("https://example.com/v/musa_toolkits.tar.gz?token=x")) == e


@pytest.mark.parametrize(
    "found, promised, action",
    [
        (None, None, Action.DOWNLOAD),
        (None, SHA, Action.DOWNLOAD),
        (Found(SHA, 1, SHA), None, Action.USE),
        (Found(SHA, 1, SHA), SHA, Action.USE),
        (Found(SHA, 1, OTHER), SHA, Action.DAMAGED),   # torn: the bytes are not those received
        (Found(SHA, 1, None), None, Action.DAMAGED),   # no record: never trusted
        (Found(SHA, 1, SHA), OTHER, Action.STALE),     # intact, but republished upstream
    ],
)
def test_decide(found, promised, action):
    url = "https://example.com/f.tar" + (f"#sha256={promised}" if promised else "")
    assert decide(found, parse_location(url)) is action


def test_look_hashes_the_cached_file_and_reads_its_record(tmp_path):
    e = Entry.of(tmp_path, parse_location("https://example.com/f.tar"))
    assert look("f", e) is None
    e.dir.mkdir(parents=True)
    e.final.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    e.record.write_text(f"{digest.upper()}  f.tar\n")
    assert look("f", e) == Found(digest, 3, digest)
    assert hash_file(e.final) == (digest, 3)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        hash_file(e.final, stop)
