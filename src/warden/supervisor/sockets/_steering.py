"""Keeping real traffic off a new release until it is confirmed: SO_REUSEPORT steering.

One listening socket shared by two releases gives each new connection to whichever release
accepts first: a new release that answers 500, or crashes a second after it is ready, serves
real requests before its gate or its confirmation window can say so (measured: 6,368 failed
requests in one 3 s gate of a gunicorn release answering 500). So during an upgrade the new
release gets *siblings* of warden's TCP sockets instead: new listeners with ``SO_REUSEPORT``
on the same addresses, in the same reuseport group. A classic BPF program attached to the
group (``SO_ATTACH_REUSEPORT_CBPF``) chooses the socket every new connection goes to, by its
index in the group (the order the sockets started listening): the old release's (0) until
the new one is confirmed, the new release's (1) from its promotion on.

**warden's own probes reach the new release alone through the same port.** The program
looks at each connection's TCP source port: one that warden's probe socket holds goes to the
new release's sibling, every other to the old release. A probe (:meth:`Steering.probing`)
binds a socket to a port the kernel chooses (a bound port is held by that one socket: no other
socket on the host can bind it, and the kernel gives it to no other connection while it is
held), puts that port in the program, connects, and takes it out of the program again once the
handshake is done. So a gate and a confirmation window ask the new release, whatever server it
is, on the address clients use; no socket of the program's is needed for it.

What someone else can do with it: while a probe connects (its handshake, microseconds on
loopback), a connection from that source port goes to the new release. The kernel gives the
port to no other connection of this host meanwhile, but a client may choose its source port
(another local user binding it in the other address family, or at another moment; any remote
host), and one that picks this port at that instant is served by the new release: the code
about to be promoted, with the access any client has. It moves no one else's connection, and
cannot answer warden's probe (that connection is warden's own), so it cannot get a broken
release promoted: harmless, and said so in the README.

At the promotion, new connections go to the new release; the old release is told to stop
only once its socket's accept queue is empty (``tcp_info.tcpi_unacked`` of a listener is its
accept-queue length), so nothing is left queued on a socket nobody will accept from. Once
the old release is gone, warden closes its copy of the old sockets (the group shrinks to
one), and the siblings are the sockets every later run gets.

Where steering is impossible the upgrade shares the sockets as before, and nothing can probe
the new release alone: UNIX sockets (no reuseport), and sockets inherited from systemd without
``SO_REUSEPORT`` (set ``ReusePort=yes`` in the .socket unit to get it).
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
from collections.abc import Iterator

from ._held import HeldSocket, HeldSockets

SO_ATTACH_REUSEPORT_CBPF = 51  # asm-generic/socket.h
_TCP_INFO_UNACKED = 24  # offset of tcpi_unacked: 8 bytes of u8 fields, then rto, ato, ...

#: ``SKF_NET_OFF`` (linux/filter.h): a load at this offset plus ``k`` reads the packet from its
#: network header. A reuseport program sees the packet with its data pulled past the TCP header
#: (``reuseport_select_sock``'s ``hdr_len``), so only this negative offset reaches the header.
SKF_NET_OFF = -0x100000

# Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
_LDB_ABS = 0x30  # BPF_LD | BPF_B | BPF_ABS: A = byte at k
_LDH_ABS = 0x28  # BPF_LD | BPF_H | BPF_ABS: A = half-word at k (network order)
_LDH_IND = 0x48  # BPF_LD | BPF_H | BPF_IND: A = half-word at X + k
_LDXB_MSH = 0xB1  # BPF_LDX | BPF_B | BPF_MSH: X = 4 * (byte at k & 0xf), an IPv4 header's length
_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K: A >>= k
_JA = 0x05  # BPF_JMP | BPF_JA: skip k instructions
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: skip jt if A == k, else jf
_RET_K = 0x06  # BPF_RET | BPF_K: return k (the member's index)

#: Where the probe's connections go: the new release's sibling, the group's second member.
CANDIDATE = 1

_IPV6_HEADER = 40  # the fixed header; a probe carries no extension header
_IPV6_NEXT_HEADER = 6
_IPPROTO_TCP = 6


def program(index: int, probe_port: int | None = None) -> list[tuple[int, int, int, int]]:
    """The instructions ``(code, jt, jf, k)``: every connection to member ``index``, and one
    whose TCP source port is ``probe_port`` to :data:`CANDIDATE`.

    The source port is the TCP header's first half-word, after the IP header: for IPv4 at
    ``4 * IHL`` (IP options make it longer than 20), for IPv6 at 40 when the next header is
    TCP (a packet with extension headers is not a probe: the old release gets it). A dual-stack
    socket's group sees IPv4 packets too, so the version is read from the packet, not assumed
    from the socket.
    """
    if probe_port is None or index == CANDIDATE:
        return [(_RET_K, 0, 0, index)]
    return [
        (_LDB_ABS, 0, 0, SKF_NET_OFF),  # 0  A = first byte of the IP header
        (_RSH_K, 0, 0, 4),  # 1  A = the IP version
        (_JEQ_K, 0, 3, 4),  # 2  IPv4 ? 3 : 6
        (_LDXB_MSH, 0, 0, SKF_NET_OFF),  # 3  X = the IPv4 header's length
        (_LDH_IND, 0, 0, SKF_NET_OFF),  # 4  A = the TCP source port
        (_JA, 0, 0, 4),  # 5  -> 10
        (_JEQ_K, 0, 5, 6),  # 6  IPv6 ? 7 : 12
        (_LDB_ABS, 0, 0, SKF_NET_OFF + _IPV6_NEXT_HEADER),  # 7  A = the next header
        (_JEQ_K, 0, 3, _IPPROTO_TCP),  # 8  TCP ? 9 : 12
        (_LDH_ABS, 0, 0, SKF_NET_OFF + _IPV6_HEADER),  # 9  A = the TCP source port
        (_JEQ_K, 0, 1, probe_port),  # 10 the probe's ? 11 : 12
        (_RET_K, 0, 0, CANDIDATE),  # 11
        (_RET_K, 0, 0, index),  # 12
    ]


def steerable(held: HeldSockets) -> bool:
    """Whether every TCP socket can have siblings (and there is at least one)."""
    tcp = [h for h in held if is_tcp(h.sock)]
    return bool(tcp) and all(h.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for h in tcp)


def siblings(held: HeldSockets) -> HeldSockets:
    """A sibling for each TCP socket (same address, same group, listening), the others
    shared as they are; raises OSError when one cannot be made."""
    made: list[HeldSocket] = []
    try:
        for h in held:
            made.append(HeldSocket(h.name, _sibling(h.sock)) if is_tcp(h.sock) else h)
    except BaseException:
        for sibling, original in zip(made, held, strict=False):
            if sibling is not original:
                sibling.sock.close()
        raise
    return HeldSockets(made)


def steer(held: HeldSockets, index: int, probe_port: int | None = None) -> None:
    """Every new connection to each TCP socket's group goes to the member at ``index``, and
    one from source port ``probe_port`` to :data:`CANDIDATE`.

    Indices are the order the members started listening: warden's own socket 0, its sibling
    1. An index past the group's end makes the kernel fall back to its hash (one member left:
    that one). The program stays attached between upgrades (``ret #0`` over a group of one
    costs nothing); the next upgrade replaces it (atomically: a connection sees the old
    program or the new one)."""
    code = program(index, probe_port)
    buffer = ctypes.create_string_buffer(8 * len(code))
    for offset, (op, jt, jf, k) in enumerate(code):
        struct.pack_into("HBBI", buffer, 8 * offset, op, jt, jf, k & 0xFFFFFFFF)
    fprog = struct.pack("HL", len(code), ctypes.addressof(buffer))  # struct sock_fprog
    for h in held:
        if is_tcp(h.sock):
            h.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def queued(held: HeldSockets) -> int:
    """Connections waiting in the TCP sockets' accept queues (established, not accepted)."""
    total = 0
    for h in held:
        if is_tcp(h.sock):
            info = h.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            total += struct.unpack_from("I", info, _TCP_INFO_UNACKED)[0]
    return total


def close_own(held: HeldSockets, keep: HeldSockets) -> None:
    """Close the sockets of ``held`` that ``keep`` does not share (an old release's)."""
    kept = {id(h.sock) for h in keep}
    for h in held:
        if id(h.sock) not in kept:
            h.sock.close()


class Steering:
    """One upgrade's steering: the old release's TCP sockets, the new release's siblings, and
    which one a connection goes to. The one owner of the group's program while it lasts.

    ``Steering(held)`` attaches the program (everything to the old release) *before* the
    siblings join the group, so a sibling never gets a share of connections by the kernel's
    hash; raises OSError when a sibling cannot be made (nothing is left attached to it then).
    """

    def __init__(self, held: HeldSockets) -> None:
        steer(held, 0)  # the group: the old release's socket (0), then its sibling (1)
        self.old = held
        self.new = siblings(held)
        self._index = 0

    def to_new(self) -> None:
        """Every new connection to the new release from now on (promoted, or the old one
        died)."""
        self._index = CANDIDATE
        steer(self.new, CANDIDATE)

    @contextlib.contextmanager
    def probing(self, family: int) -> Iterator[socket.socket]:
        """A non-blocking TCP socket of ``family`` whose connection reaches the new release
        alone; connect it inside the block (the handshake picks the listener), use it after.

        The socket is bound to a port of the kernel's choice, on the wildcard address (so the
        port is held against every address of the host), with neither ``SO_REUSEADDR`` nor
        ``SO_REUSEPORT``: no other socket can bind it meanwhile.
        """
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            steer(self.old, self._index, probe_port=sock.getsockname()[1])
            try:
                yield sock
            finally:
                steer(self.old, self._index)  # the port is nobody's in particular again
        except BaseException:
            sock.close()
            raise

    def abandon(self) -> None:
        """The new release failed: warden's copies of its siblings closed. The program stays
        attached (``ret #0``, the old socket): while the new release lives its sibling is
        still in the group, and the kernel's hash would give it connections to reset."""
        close_own(self.new, keep=self.old)

    def retire(self) -> HeldSockets:
        """The old release is gone: its sockets closed; the siblings, the group's only members
        now, are returned for every later run."""
        close_own(self.old, keep=self.new)  # the group shrinks: the sibling is its member 0
        steer(self.new, 0)
        return self.new

    def close(self, keep: HeldSockets) -> None:
        """warden stops mid-upgrade: every socket of this upgrade that ``keep`` does not hold."""
        close_own(self.old, keep=keep)
        close_own(self.new, keep=keep)


def is_tcp(sock: socket.socket) -> bool:
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
