"""Words for a file descriptor a thread is blocked on: a socket's addresses, a
pipe, a terminal, a file; and whether a buffered file object reads through it.
"""
import io
import os
import socket
import sys

from . import _frames


def _sockets(frames):
    """Socket objects the frames name: locals, globals, attributes of `self`."""
    for frame in frames:
        for value in _frames.values(frame):
            if isinstance(value, socket.socket):
                yield value


def describe_fd(fd, frames, cache=None):
    """A few words for file descriptor `fd`: a socket's addresses, a pipe, a file.

    `cache` (a dict) keeps the parsed /proc/net tables across calls of one scan."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = None
    if target is not None and not target.startswith("socket:["):
        if target.startswith("pipe:"):
            return f"pipe (fd {fd})"
        if target.startswith("/dev/pts") or target.startswith("/dev/tty"):
            return f"terminal {target}"
        return target
    for sock in _sockets(frames):
        try:
            if sock.fileno() != fd:
                continue
        except OSError:
            continue
        what = "unix socket" if sock.family == getattr(socket, "AF_UNIX", None) else "socket"
        for words, address in ((" connected to ", sock.getpeername), (" ", sock.getsockname)):
            try:
                name = address()
            except OSError:
                continue
            if name:                          # a socketpair's ends have no names
                return what + words + address_text(name)
        return f"{what} (fd {fd})"
    if target is None:
        return f"fd {fd}"
    return _describe_socket_inode(int(target[8:-1]), fd, cache)


def address_text(addr):
    """A socket address as Python gives it, in words: "host:port", a path."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        return f"{host}:{addr[1]}"
    if isinstance(addr, bytes):                      # abstract unix socket
        addr = addr.decode(errors="replace").replace("\0", "@")
    return str(addr)


def _describe_socket_inode(inode, fd, cache):
    """A socket no frame holds (e.g. behind http.client): look it up in /proc/net."""
    table = cache.get("net") if cache is not None else None
    if table is None:
        table = _net_table()
        if cache is not None:
            cache["net"] = table
    words = table.get(inode, "socket")
    return words if words not in ("socket", "unix socket") else f"{words} (fd {fd})"


def _net_table():
    """{inode: 'socket connected to 10.0.0.5:443'} for this network namespace's
    TCP, UDP and unix sockets."""
    table = {}
    for name, family in (("tcp", 4), ("tcp6", 6), ("udp", 4), ("udp6", 6)):
        for fields in _net_rows(f"/proc/net/{name}"):
            try:
                local, remote, inode = fields[1], fields[2], int(fields[9])
            except (IndexError, ValueError):
                continue
            peer = _hex_address(remote, family)
            table[inode] = f"socket {_hex_address(local, family)}" if peer.endswith(":0") \
                else f"socket connected to {peer}"
    for fields in _net_rows("/proc/net/unix"):
        if len(fields) >= 7 and fields[6].isdigit():
            # An unnamed one (a socketpair, a client's end) is just "unix socket".
            table[int(fields[6])] = " ".join(["unix socket"] + fields[7:8])
    return table


def _net_rows(path):
    try:
        with open(path) as f:
            next(f, None)                            # the header
            return [line.split() for line in f]
    except OSError:
        return []


def _hex_address(text, family):
    """'0100007F:1F90' (as /proc/net prints it) -> '127.0.0.1:8080'."""
    host, _, port = text.partition(":")
    raw = bytes.fromhex(host)
    # The kernel prints each 32-bit word in host byte order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) \
        if sys.byteorder == "little" else raw
    try:
        address = socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, raw)
    except (OSError, ValueError):
        return text
    address = f"[{address}]" if family == 6 else address
    return f"{address}:{int(port, 16)}"


def buffered_file(fd, stack):
    """A buffered/text file object on fd `fd` among stdio and the frames, or None."""
    candidates = [sys.stdin, sys.stdout, sys.stderr, sys.__stdin__]
    for frame in stack:
        candidates += _frames.values(frame, all_of_self=True)
    for obj in candidates:
        if isinstance(obj, (io.BufferedIOBase, io.TextIOBase)):
            try:
                if obj.fileno() == fd:
                    return f"a buffered file on fd {fd} ({getattr(obj, 'name', '?')})"
            except (OSError, ValueError, AttributeError):
                continue
    return None
