#!/usr/bin/env python3
"""Probe sender for the kernel agreement suite. Runs inside the lab's peer namespace.

Reads one JSON object on stdin:
  {"links": {"eth0": {"dev": "p0", "src_mac": "..", "dst_mac": ".."}, ...},
   "probes": [{"key": 1, "link": "eth0", "family": "ipv4"|"ipv6", "saddr": "..", "daddr": "..",
               "proto": 6|17|1|58, "sport": n, "dport": n}, ...],
   "gap_us": 30, "wait_ms": 300}

Crafts Ethernet + IPv4/IPv6 + TCP SYN / UDP / ICMP(v6) echo request frames with correct checksums (conntrack
treats bad checksums as invalid) and sends them on AF_PACKET sockets. The probe's `key` goes into the IPv4
identification field or the IPv6 flow label, so the firewall namespace can count each probe by key, and it
comes back quoted inside ICMP errors. Replies seen on the peer links are matched to their probe and printed:
  {"sent": n, "replies": {"<key>": ["rst" | "unreach:<type>/<code>" | "echo-reply" | "other:<...>", ...]}}

With --serve it stays up: one such request per line on stdin, one answer per line on stdout, until stdin closes.
"""
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def l4_segment(p, src: bytes, dst: bytes, family: str) -> bytes:
    proto = p["proto"]
    payload = b"rampart-kt"
    if proto == 6:
        # SYN, window 64240, with the options Linux sends (as the model's ordinary SYN has them): MSS 1460,
        # SACK permitted, timestamps, NOP, window scale 7.
        opts = (
            struct.pack("!BBH", 2, 4, 1460)
            + struct.pack("!BB", 4, 2)
            + struct.pack("!BBII", 8, 10, p["key"], 0)
            + struct.pack("!B", 1)
            + struct.pack("!BBB", 3, 3, 7)
        )
        seg = struct.pack("!HHIIBBHHH", p["sport"], p["dport"], p["key"], 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    elif proto == 17:
        seg = struct.pack("!HHHH", p["sport"], p["dport"], 8 + len(payload), 0) + payload
    elif proto in (1, 58):
        icmp_type = 8 if proto == 1 else 128
        seg = struct.pack("!BBHHH", icmp_type, 0, 0, p["sport"] & 0xFFFF, 1) + payload
    else:
        raise ValueError("unsupported protocol %r" % proto)
    length = len(seg)
    if family == "ipv4":
        pseudo = src + dst + struct.pack("!BBH", 0, proto, length)
    else:
        pseudo = src + dst + struct.pack("!IxxxB", length, proto)
    if proto == 1:
        c = csum(seg)  # ICMPv4 has no pseudo-header
    else:
        c = csum(pseudo + seg)
        if proto == 17 and c == 0:
            c = 0xFFFF
    off = {6: 16, 17: 6, 1: 2, 58: 2}[proto]
    return seg[:off] + struct.pack("!H", c) + seg[off + 2 :]


def frame(p, links) -> bytes:
    link = links[p["link"]]
    eth_type = 0x0800 if p["family"] == "ipv4" else 0x86DD
    eth = mac(link["dst_mac"]) + mac(link["src_mac"]) + struct.pack("!H", eth_type)
    if p["family"] == "ipv4":
        src = socket.inet_pton(socket.AF_INET, p["saddr"])
        dst = socket.inet_pton(socket.AF_INET, p["daddr"])
        seg = l4_segment(p, src, dst, "ipv4")
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), p["key"] & 0xFFFF, 0x4000, 64, p["proto"], 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    else:
        src = socket.inet_pton(socket.AF_INET6, p["saddr"])
        dst = socket.inet_pton(socket.AF_INET6, p["daddr"])
        seg = l4_segment(p, src, dst, "ipv6")
        first = (6 << 28) | (p["key"] & 0xFFFFF)
        ip = struct.pack("!IHBB16s16s", first, len(seg), p["proto"], 64, src, dst)
    return eth + ip + seg


class Matcher:
    """Maps replies back to probes: by quoted key for ICMP errors, by reversed tuple for RST and echo replies."""

    def __init__(self, probes):
        self.by_key = {}
        self.by_tuple = {}
        for p in probes:
            self.by_key[(p["family"], p["key"])] = p
            self.by_tuple[(p["family"], p["daddr"], p["saddr"], p["proto"], p["dport"], p["sport"])] = p
        self.replies = {}

    def add(self, p, what):
        self.replies.setdefault(str(p["key"]), []).append(what)

    def handle(self, buf: bytes):
        if len(buf) < 14:
            return
        (eth_type,) = struct.unpack("!H", buf[12:14])
        data = buf[14:]
        if eth_type == 0x0800 and len(data) >= 20:
            ihl = (data[0] & 0x0F) * 4
            proto = data[9]
            src = socket.inet_ntop(socket.AF_INET, data[12:16])
            dst = socket.inet_ntop(socket.AF_INET, data[16:20])
            l4 = data[ihl:]
            self.l4("ipv4", src, dst, proto, l4)
        elif eth_type == 0x86DD and len(data) >= 40:
            proto = data[6]
            src = socket.inet_ntop(socket.AF_INET6, data[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, data[24:40])
            self.l4("ipv6", src, dst, proto, data[40:])

    def l4(self, family, src, dst, proto, l4):
        if proto == 6 and len(l4) >= 14:
            sport, dport = struct.unpack("!HH", l4[:4])
            flags = l4[13]
            p = self.by_tuple.get((family, src, dst, 6, sport, dport))
            if p is not None:
                self.add(p, "rst" if flags & 0x04 else "tcp:%#x" % flags)
        elif (proto == 1 and family == "ipv4") or (proto == 58 and family == "ipv6"):
            if len(l4) < 8:
                return
            t, c = l4[0], l4[1]
            if (family == "ipv4" and t == 0) or (family == "ipv6" and t == 129):
                (ident,) = struct.unpack("!H", l4[4:6])
                p = self.by_tuple.get((family, src, dst, proto, ident, ident))
                if p is not None:
                    self.add(p, "echo-reply")
                return
            inner = l4[8:]
            if family == "ipv4" and t in (3, 5, 11, 12) and len(inner) >= 20:
                (key,) = struct.unpack("!H", inner[4:6])
                p = self.by_key.get(("ipv4", key))
            elif family == "ipv6" and t in (1, 2, 3, 4) and len(inner) >= 40:
                key = struct.unpack("!I", inner[:4])[0] & 0xFFFFF
                p = self.by_key.get(("ipv6", key))
            else:
                return
            if p is not None:
                kind = "unreach" if (family == "ipv4" and t == 3) or (family == "ipv6" and t == 1) else "icmp"
                self.add(p, "%s:%d/%d" % (kind, t, c))


def open_sockets(links):
    socks = {}
    for name, link in links.items():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((link["dev"], 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setblocking(False)
        socks[name] = s
    return socks


def discard(socks):
    """Drops whatever the sockets hold (late replies to an earlier request): a request sees only its own replies."""
    while True:
        r, _, _ = select.select(list(socks.values()), [], [], 0)
        if not r:
            return
        for s in r:
            try:
                while True:
                    s.recvfrom(65535)
            except BlockingIOError:
                pass


def run(req, socks):
    links = req["links"]
    probes = req["probes"]
    gap = req.get("gap_us", 30) / 1e6
    wait = req.get("wait_ms", 300) / 1000.0

    matcher = Matcher(probes)
    frames = [(socks[p["link"]], frame(p, links)) for p in probes]

    def drain():
        while True:
            r, _, _ = select.select(list(socks.values()), [], [], 0)
            if not r:
                return
            for s in r:
                try:
                    while True:
                        buf, addr = s.recvfrom(65535)
                        if addr[2] != PACKET_OUTGOING:
                            matcher.handle(buf)
                except BlockingIOError:
                    pass

    sent = 0
    for i, (s, f) in enumerate(frames):
        while True:
            try:
                s.send(f)
                break
            except BlockingIOError:
                time.sleep(0.0005)
        sent += 1
        if gap and i % 8 == 7:
            time.sleep(gap * 8)
        if i % 64 == 63:
            drain()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        select.select(list(socks.values()), [], [], 0.02)
        drain()
    return {"sent": sent, "replies": matcher.replies}


def main():
    if sys.argv[1:] == ["--serve"]:
        # One request per line on stdin, one answer per line on stdout, until stdin closes: a lab keeps one sender
        # (python's start-up costs more than a request), with its sockets open between requests.
        socks = None
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            if socks is None:
                socks = open_sockets(req["links"])
            else:
                discard(socks)
            sys.stdout.write(json.dumps(run(req, socks)) + "\n")
            sys.stdout.flush()
        return
    req = json.load(sys.stdin)
    json.dump(run(req, open_sockets(req["links"])), sys.stdout)


if __name__ == "__main__":
    main()
