"""Keeping real traffic off a new release until it is confirmed: SO_REUSEPORT steering.

One listening socket shared by two releases gives each new connection to whichever release
accepts first: a new release that answers 500, or crashes a second after it is ready, serves
real requests before its gate or its confirmation window can say so (measured: 6,368 failed
requests in one 3 s gate of a gunicorn release answering 500). So during an upgrade the new
release gets *siblings* of warden's TCP sockets instead: new listeners with ``SO_REUSEPORT``
on the same addresses, in the same reuseport group. A classic BPF program attached to the
group (``SO_ATTACH_REUSEPORT_CBPF``: ``ret #index``) chooses the socket every new connection
goes to, by its index in the group (the order the sockets started listening): the old
release's until the new one is confirmed, the new release's from its promotion on. The new
release is probed meanwhile on its private probe socket (``_probe.py``) only.

At the promotion, new connections go to the new release; the old release is told to stop
only once its socket's accept queue is empty (``tcp_info.tcpi_unacked`` of a listener is its
accept-queue length), so nothing is left queued on a socket nobody will accept from. Once
the old release is gone, warden closes its copy of the old sockets (the group shrinks to
one, and the program is removed), and the siblings are the sockets every later run gets.

Where steering is impossible the upgrade shares the sockets as before: UNIX sockets (no
reuseport), and sockets inherited from systemd without ``SO_REUSEPORT`` (set
``ReusePort=yes`` in the .socket unit to get it).
"""

from __future__ import annotations

import ctypes
import socket
import struct

from ._held import HeldSocket, HeldSockets

SO_ATTACH_REUSEPORT_CBPF = 51  # asm-generic/socket.h
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return the constant
_TCP_INFO_UNACKED = 24  # offset of tcpi_unacked: 8 bytes of u8 fields, then rto, ato, ...


def steerable(held: HeldSockets) -> bool:
    """Whether every TCP socket can have siblings (and there is at least one)."""
    tcp = [h for h in held if _is_tcp(h.sock)]
    return bool(tcp) and all(h.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for h in tcp)


def siblings(held: HeldSockets) -> HeldSockets:
    """A sibling for each TCP socket (same address, same group, listening), the others
    shared as they are; raises OSError when one cannot be made."""
    made: list[HeldSocket] = []
    try:
        for h in held:
            made.append(HeldSocket(h.name, _sibling(h.sock)) if _is_tcp(h.sock) else h)
    except BaseException:
        for sibling, original in zip(made, held, strict=False):
            if sibling is not original:
                sibling.sock.close()
        raise
    return HeldSockets(made)


def steer(held: HeldSockets, index: int) -> None:
    """Every new connection to each TCP socket's group goes to the member at ``index``.

    Indices are the order the members started listening: warden's own socket 0, its sibling
    1. An index past the group's end makes the kernel fall back to its hash (one member left:
    that one). The program stays attached between upgrades (``ret #0`` over a group of one
    costs nothing); the next upgrade replaces it."""
    program = (ctypes.c_ubyte * 8)()
    struct.pack_into("HBBI", program, 0, _BPF_RET_K, 0, 0, index)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog
    for h in held:
        if _is_tcp(h.sock):
            h.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def queued(held: HeldSockets) -> int:
    """Connections waiting in the TCP sockets' accept queues (established, not accepted)."""
    total = 0
    for h in held:
        if _is_tcp(h.sock):
            info = h.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            total += struct.unpack_from("I", info, _TCP_INFO_UNACKED)[0]
    return total


def close_own(held: HeldSockets, keep: HeldSockets) -> None:
    """Close the sockets of ``held`` that ``keep`` does not share (an old release's)."""
    kept = {id(h.sock) for h in keep}
    for h in held:
        if id(h.sock) not in kept:
            h.sock.close()


def _is_tcp(sock: socket.socket) -> bool:
    return sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM


def _sibling(original: socket.socket) -> socket.socket:
    sock = socket.socket(original.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if original.family == socket.AF_INET6:
            v6only = original.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        sock.bind(original.getsockname())
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return sock
