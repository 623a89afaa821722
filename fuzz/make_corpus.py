#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the shared Kea captures in
tests/data/kea:

- decode_message: every frame of every capture (the message without its
  2-octet length), and each whole capture (for decode_stream);
- relay_chain: the relay message of every OPTION_LQ_RELAY_DATA found in the
  captures (what the target wraps in a reply);
- frame_chunks: each whole capture, behind a first octet of 0 (one chunk) and
  behind a few chunk sizes;
- reply_assembly: each whole response capture (read as a program of events).

Run from anywhere:  python3 fuzz/make_corpus.py
Existing files are kept; the seeds are added by name.
"""
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
src = root / "tests" / "data" / "kea"
corpus = root / "fuzz" / "corpus"


def frames(data):
    pos = 0
    while pos + 2 <= len(data):
        length = int.from_bytes(data[pos:pos + 2], "big")
        frame = data[pos + 2:pos + 2 + length]
        if length == 0 or len(frame) < length:
            return
        yield frame
        pos += 2 + length


def options(buf):
    pos = 0
    while pos + 4 <= len(buf):
        code = int.from_bytes(buf[pos:pos + 2], "big")
        length = int.from_bytes(buf[pos + 2:pos + 4], "big")
        body = buf[pos + 4:pos + 4 + length]
        if len(body) < length:
            return
        yield code, body
        pos += 4 + length


def write(target, name, data):
    out = corpus / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)
    return 1


count = 0
for cap in sorted(src.glob("*.bin")):
    data = cap.read_bytes()
    count += write("decode_message", f"{cap.stem}.stream", data)
    count += write("frame_chunks", f"{cap.stem}.whole", b"\x00" + data)
    count += write("frame_chunks", f"{cap.stem}.chunks", b"\x03\x00\x06\x40" + data)
    if cap.stem.endswith(".response"):
        count += write("reply_assembly", cap.stem, data)
    for n, frame in enumerate(frames(data)):
        count += write("decode_message", f"{cap.stem}.{n:03}", frame)
        if len(frame) < 4 or frame[0] in (12, 13):
            continue
        for code, body in options(frame[4:]):
            if code != 45:
                continue
            for c2, b2 in options(body):
                if c2 == 47 and len(b2) > 16:
                    count += write("relay_chain", f"{cap.stem}.{n:03}", b2[16:])
print(f"{count} seeds in {corpus.relative_to(root)}")
