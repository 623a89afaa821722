#!/usr/bin/env python3
"""Seed corpus for the decode_message fuzz target: every frame of every Kea
capture in tests/data/kea as one file (the message without its 2-octet
length), plus each whole capture (for decode_stream).

Run from the repository root:  python3 fuzz/make_corpus.py
"""
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
src = root / "tests" / "data" / "kea"
out = root / "fuzz" / "corpus" / "decode_message"
out.mkdir(parents=True, exist_ok=True)
count = 0
for cap in sorted(src.glob("*.bin")):
    data = cap.read_bytes()
    (out / f"{cap.stem}.stream").write_bytes(data)
    count += 1
    pos, n = 0, 0
    while pos + 2 <= len(data):
        length = int.from_bytes(data[pos:pos + 2], "big")
        frame = data[pos + 2:pos + 2 + length]
        if length == 0 or len(frame) < length:
            break
        (out / f"{cap.stem}.{n:03}").write_bytes(frame)
        pos += 2 + length
        n += 1
        count += 1
print(f"{count} seeds in {out.relative_to(root)}")
