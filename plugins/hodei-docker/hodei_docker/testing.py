"""A worker image for tests and benchmarks, built without a registry: ``docker import`` of busybox.

Nothing can be pulled in CI, so the image is a tarball made here from the host's static busybox
binary (Debian's ``busybox-static``), imported with a ``CMD`` of ``sleep 3600``, the stand-in for
the real worker until it exists. Imports the ``docker`` SDK: not for the daemon's own use.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
from pathlib import Path

import docker
import docker.errors

TEST_IMAGE = "hodei-test-worker:busybox"
# The applets tests and benchmarks use; each is a link to busybox, which dispatches on its name.
_APPLETS = ("sh", "sleep", "true", "false", "cat", "env", "ls")
_PT_INTERP = 3


class BusyboxUnavailable(RuntimeError):
    """No statically linked busybox on this machine to build the image from."""


def static_busybox() -> Path:
    """The host's busybox, if it runs in an empty image (statically linked)."""
    found = shutil.which("busybox") or ("/bin/busybox" if Path("/bin/busybox").exists() else None)
    if found is None:
        raise BusyboxUnavailable("busybox not found (install Debian's busybox-static)")
    path = Path(found).resolve()
    if not _is_static_elf(path.read_bytes()):
        raise BusyboxUnavailable(f"{path} is dynamically linked: it cannot run in an empty image "
                                 "(install busybox-static)")
    return path


def _is_static_elf(data: bytes) -> bool:
    # A dynamically linked ELF has a PT_INTERP program header naming its loader.
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only: what Docker hosts run
        return False
    endian = "<" if data[5] == 1 else ">"
    phoff, = struct.unpack_from(f"{endian}Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(f"{endian}HH", data, 0x36)
    types = (struct.unpack_from(f"{endian}I", data, phoff + i * phentsize)[0] for i in range(phnum))
    return _PT_INTERP not in types


def busybox_tarball(busybox: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        binary = tarfile.TarInfo("bin/busybox")
        binary.size, binary.mode = busybox.stat().st_size, 0o755
        with busybox.open("rb") as source:
            tar.addfile(binary, source)
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def ensure_test_image(api: docker.APIClient, tag: str = TEST_IMAGE) -> str:
    """``tag``, imported from busybox unless the engine already has it. Idempotent."""
    try:
        api.inspect_image(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    repository, _, version = tag.rpartition(":")
    changes = [f"CMD {json.dumps(['sleep', '3600'])}", "ENV PATH=/bin"]
    api.import_image_from_data(busybox_tarball(static_busybox()), repository=repository, tag=version,
                               changes=changes)
    return tag
