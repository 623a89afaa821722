#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the shared Kea captures in
tests/data/kea:

- decode_message: every frame of every capture (the message without its
  2-octet length), and each whole capture (for decode_stream);
- relay_chain: the relay message of every OPTION_LQ_RELAY_DATA found in the
  captures (what the target wraps in a reply);
- frame_chunks: each whole capture, behind a first octet of 0 (one chunk) and
  behind a few chunk sizes;
- reply_assembly: each whole response capture (read as a program of events);
- capture: small Kea exchanges as pcap (raw IPv6) and pcapng (Ethernet, IPv4)
  files of TCP segments, one frame per link type, and a reassembly program.

- snoop: captured-packet seeds made here (a REPLY to a client, a RELAY-REPL
  to a lightweight relay, a RELEASE, a forged REPLY), whole and as the
  wrapped-message form the target also takes (see fuzz_targets/snoop.rs),
  and every Kea frame in the wrapped form.

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


# capture: packet captures of a Kea exchange (checksums are left at 0: the
# reader does not check them).
def ip_tcp(v6, src, dst, sport, dport, seq, flags, payload):
    tcp = (sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
           + (seq % 2**32).to_bytes(4, "big") + bytes(4)
           + bytes([5 << 4, flags]) + (65535).to_bytes(2, "big") + bytes(4) + payload)
    if v6:
        return (bytes([0x60, 0, 0, 0]) + len(tcp).to_bytes(2, "big") + bytes([6, 64])
                + src + dst + tcp)
    return (bytes([0x45, 0]) + (20 + len(tcp)).to_bytes(2, "big") + bytes([0, 0, 0x40, 0, 64, 6, 0, 0])
            + src + dst + tcp)


def exchange(request, response, v6, size):
    c, s = (bytes(15) + b"\x01", bytes(15) + b"\x02") if v6 else (bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2]))
    cisn, sisn = 1000, 2**32 - 50
    SYN, ACK, FIN, PSH = 2, 16, 1, 8
    out = [ip_tcp(v6, c, s, 40000, 547, cisn, SYN, b""),
           ip_tcp(v6, s, c, 547, 40000, sisn, SYN | ACK, b"")]
    for src, dst, sp, dp, isn, data in ((c, s, 40000, 547, cisn, request), (s, c, 547, 40000, sisn, response)):
        for off in range(0, len(data), size):
            out.append(ip_tcp(v6, src, dst, sp, dp, isn + 1 + off, ACK | PSH, data[off:off + size]))
        out.append(ip_tcp(v6, src, dst, sp, dp, isn + 1 + len(data), ACK | FIN, b""))
    return out


def pcap(linktype, frames):
    out = bytes.fromhex("d4c3b2a1") + (2).to_bytes(2, "little") + (4).to_bytes(2, "little") + bytes(8)
    out += (65535).to_bytes(4, "little") + linktype.to_bytes(4, "little")
    for n, f in enumerate(frames):
        out += n.to_bytes(4, "little") + bytes(4) + len(f).to_bytes(4, "little") * 2 + f
    return out


def block(kind, body):
    body += bytes(-len(body) % 4)
    n = (12 + len(body)).to_bytes(4, "little")
    return kind.to_bytes(4, "little") + n + body + n


def pcapng(linktype, frames):
    out = block(0x0A0D0D0A, bytes.fromhex("4d3c2b1a") + (1).to_bytes(2, "little") + bytes(2) + b"\xff" * 8)
    out += block(1, linktype.to_bytes(2, "little") + bytes(2) + (65535).to_bytes(4, "little"))
    for f in frames:
        out += block(6, bytes(12) + len(f).to_bytes(4, "little") * 2 + f)
    return out


eth = lambda et: bytes.fromhex("020000000002020000000001") + et.to_bytes(2, "big")
for case, size in (("16_clientid_3", 100), ("05_relayid_unknown", 7)):
    req = (src / f"{case}.request.bin").read_bytes()
    resp = (src / f"{case}.response.bin").read_bytes()
    count += write("capture", f"{case}.pcap", b"\x00" + pcap(101, exchange(req, resp, True, size)))
    eth_frames = [eth(0x0800) + f for f in exchange(req, resp, False, size)]
    count += write("capture", f"{case}.pcapng", b"\x00" + pcapng(1, eth_frames))
one = exchange(b"\x00\x03\x0e\x00\x00", b"", True, 100)[2]
for i, prefix in enumerate((b"", eth(0x86DD), bytes(14) + b"\x86\xdd", b"\x86\xdd" + bytes(18), b"\x1e\x00\x00\x00", b"", b"", b"", b"")):
    count += write("capture", f"frame.{i}", b"\x80" + bytes([i]) + prefix + one)
# A reassembly program: ISN near 2^32, segments out of order, a duplicate, a FIN.
ops = [(10, 20, 0), (0, 10, 0), (5, 10, 0), (40, 5, 1), (30, 10, 0)]
count += write("capture", "reassembly", b"\xc0" + bytes.fromhex("fffffff0")
               + b"".join(o.to_bytes(2, "big") + bytes([n, f]) for o, n, f in ops))

def opt(code, body):
    return code.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def ipv6_udp(src, dst, sport, dport, message):
    length = (len(message) + 8).to_bytes(2, "big")
    return (bytes([0x60, 0, 0, 0]) + length + bytes([17, 255])
            + src + dst + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
            + length + b"\x00\x00" + message)


LL = lambda n: bytes([0xfe, 0x80] + [0] * 13 + [n])
duid = lambda n: bytes([0, 3, 0, 1, 2, 0, 0, 0, 0, n])
iaprefix = opt(26, (7200).to_bytes(4, "big") + (10800).to_bytes(4, "big") + bytes([56])
               + bytes([0x20, 0x01, 0x0d, 0xb8, 0, 0xaa]) + bytes(10)
               + opt(13, b"\x00\x00ok"))
ia_pd = opt(25, (1).to_bytes(4, "big") + (3600).to_bytes(4, "big") + (5400).to_bytes(4, "big") + iaprefix)
ids = opt(1, duid(2)) + opt(2, duid(1))
reply = bytes([7, 0x12, 0x34, 0x56]) + ids + ia_pd + opt(13, b"\x00\x00")
release = bytes([8, 0xab, 0xcd, 0xef]) + ids + ia_pd
relay_repl = bytes([13, 0]) + bytes(16) + LL(2) + opt(18, b"port7") + opt(9, reply)
relay_forw = bytes([12, 0]) + bytes(16) + LL(2) + opt(18, b"port7") + opt(9, release)
# flags octet: bit 0 direction (1 incoming), bit 1 wrapped, bits 2-3 ports.
for name, flags, packet in [
    ("reply", 0, ipv6_udp(LL(1), LL(2), 547, 546, reply)),
    ("relay_repl", 0, ipv6_udp(LL(1), LL(3), 547, 547, relay_repl)),
    ("release", 1, ipv6_udp(LL(2), LL(1), 546, 547, release)),
    ("relay_forw", 1, ipv6_udp(LL(3), LL(1), 547, 547, relay_forw)),
    ("forged", 1, ipv6_udp(LL(2), LL(1), 547, 546, reply)),
    ("reply.wrapped", 2 | (0 << 2), reply),
    ("relay_repl.wrapped", 2 | (1 << 2), relay_repl),
    ("release.wrapped", 3 | (2 << 2), release),
    ("relay_forw.wrapped", 3 | (1 << 2), relay_forw),
]:
    count += write("snoop", name, bytes([flags]) + packet)
for cap in sorted(src.glob("*.bin")):
    for n, frame in enumerate(frames(cap.read_bytes())):
        if n < 4:
            count += write("snoop", f"{cap.stem}.{n:03}.wrapped", bytes([2]) + frame)
print(f"{count} seeds in {corpus.relative_to(root)}")
