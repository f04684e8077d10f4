#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Inject malformed frames at a coil DPDK port from a raw AF_PACKET socket:
#   dpdk_inject.py IFACE DST_MAC SRC_IP DST_IP UDP_PORT COUNT
# Sends COUNT of each kind below and prints "kind=N" lines (what the
# server must have counted as dropped, by reason).
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ip_hdr(src, dst, proto, plen, ttl=64, frag=0x4000, opts=b"", bad=False):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + plen, 1, frag,
                    ttl, proto, 0, src, dst) + opts
    c = csum(h)
    if bad:
        c ^= 0x0101
    return h[:10] + struct.pack("!H", c) + h[12:]


def udp(src, dst, sport, dport, payload, bad=False, ulen=None):
    ln = 8 + len(payload)
    ph = struct.pack("!4s4sBBH", src, dst, 0, 17, ln)
    h = struct.pack("!HHHH", sport, dport, ulen or ln, 0)
    c = csum(ph + h + payload) or 0xFFFF
    if bad:
        c ^= 0x00FF
    return struct.pack("!HHHH", sport, dport, ulen or ln, c) + payload


def main():
    iface, dmac, sip, dip, port, count = sys.argv[1:7]
    port, count = int(port), int(count)
    dmac = mac(dmac)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    smac = s.getsockname()[4]
    src, dst = socket.inet_aton(sip), socket.inet_aton(dip)
    eth = dmac + smac + b"\x08\x00"
    pl = b"malformed" * 4
    good_udp = udp(src, dst, 40000, port, pl)
    kinds = {
        # reason counter in coil's stats -> frame
        "ip_csum": eth + ip_hdr(src, dst, 17, len(good_udp), bad=True) + good_udp,
        "ip_frag": eth + ip_hdr(src, dst, 17, len(good_udp), frag=0x2000) + good_udp,
        "ip_opts": eth + ip_hdr(src, dst, 17, len(good_udp), opts=b"\x01\x01\x01\x00") + good_udp,
        "ip_ttl": eth + ip_hdr(src, dst, 17, len(good_udp), ttl=0) + good_udp,
        # total length beyond the frame
        "ip_bad": eth + ip_hdr(src, dst, 17, len(good_udp) + 100) + good_udp,
        "udp_csum": eth + ip_hdr(src, dst, 17, len(good_udp)) + udp(src, dst, 40000, port, pl, bad=True),
        "udp_bad": eth + ip_hdr(src, dst, 17, len(good_udp)) + udp(src, dst, 40000, port, pl, ulen=200),
        "no_port": eth + ip_hdr(src, dst, 17, len(good_udp)) + udp(src, dst, 40000, port + 1, pl),
        "proto": eth + ip_hdr(src, dst, 47, 20) + b"\0" * 20,
        # ARP with a 8-byte hardware address length
        "arp_bad": dmac + smac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 8, 4, 1) + b"\0" * 20,
        "ethertype": dmac + smac + b"\x88\xb5" + b"\0" * 46,
        # an IPv4 frame cut inside its header
        "short": eth + ip_hdr(src, dst, 17, len(good_udp))[:12],
    }
    for name, frame in kinds.items():
        for _ in range(count):
            s.send(frame)
        print("%s=%d" % (name, count))


main()
