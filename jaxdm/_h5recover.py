"""Reopen an HDF5 file whose writer was killed: clear its "open for write" flag.

Files in the HDF5 1.10 format (superblock version 2/3, which ``jaxdm.store`` writes
for its checksummed metadata) carry *file consistency flags* in the superblock: set
while a writer has the file open, cleared on a clean close. A writer killed by SIGKILL
leaves them set, and HDF5 then refuses every later open ("file is already open for
write ... may use <h5clear file> to clear file consistency flags"), so a killed
simulation campaign could not be resumed. :func:`clear_killed_writer_flag` does what
``h5clear -s`` (HDF5's own tool) does: it zeroes the flags and rewrites the
superblock's checksum (Jenkins' lookup3, as HDF5's ``H5_checksum_lookup3``;
superblock layout from the HDF5 File Format Specification, "Version 2 and 3
Superblock"). It first takes an exclusive ``flock`` on the file, which HDF5's own
file locking holds while any process has it open, so the flag of a *live* writer is
never cleared. h5py does not expose ``h5clear``, hence this small re-implementation.
"""

from __future__ import annotations

import fcntl
import os

__all__ = ["clear_killed_writer_flag", "lookup3"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_M = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data`` (HDF5 metadata checksums)."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M
        a = ((a - c) & _M) ^ _rot(c, 4)
        c = (c + b) & _M
        b = ((b - a) & _M) ^ _rot(a, 6)
        a = (a + c) & _M
        c = ((c - b) & _M) ^ _rot(b, 8)
        b = (b + a) & _M
        a = ((a - c) & _M) ^ _rot(c, 16)
        c = (c + b) & _M
        b = ((b - a) & _M) ^ _rot(a, 19)
        a = (a + c) & _M
        c = ((c - b) & _M) ^ _rot(b, 4)
        b = (b + a) & _M
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = bytes(data[i:]) + bytes(12 - n)  # zero bytes add nothing: lookup3's switch
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    c = ((c ^ b) - _rot(b, 14)) & _M
    a = ((a ^ c) - _rot(c, 11)) & _M
    b = ((b ^ a) - _rot(a, 25)) & _M
    c = ((c ^ b) - _rot(b, 16)) & _M
    a = ((a ^ c) - _rot(c, 4)) & _M
    b = ((b ^ a) - _rot(a, 14)) & _M
    return ((c ^ b) - _rot(b, 24)) & _M


def clear_killed_writer_flag(path: str | os.PathLike) -> bool:
    """Clear the consistency flags a killed writer left in ``path``'s superblock.

    Returns:
        True if the flags were set and are now cleared; False if the file is held
        open by a live process, is not a version 2/3 superblock at offset 0, has no
        flags set, or its superblock fails its checksum (left untouched).
    """
    with open(path, "r+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live process has the file open
        head = bytearray(fh.read(64))
        if head[:8] != _SIGNATURE or len(head) < 12 or head[8] not in (2, 3):
            return False
        end = 12 + 4 * head[9]  # 4 addresses of `size of offsets` bytes each
        if len(head) < end + 4 or head[11] == 0:
            return False
        if lookup3(bytes(head[:end])) != int.from_bytes(head[end : end + 4], "little"):
            return False
        head[11] = 0
        head[end : end + 4] = lookup3(bytes(head[:end])).to_bytes(4, "little")
        fh.seek(0)
        fh.write(bytes(head[: end + 4]))
        fh.flush()
        os.fsync(fh.fileno())
    return True
