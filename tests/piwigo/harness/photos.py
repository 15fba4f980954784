"""Distinct, valid JPEG files without an imaging library: one small image
drawn by PHP's GD, made unique (and as large as asked) by a JPEG comment
segment, which every reader skips."""

import functools
import hashlib
import struct
import subprocess

from .procs import php_binary


@functools.lru_cache(maxsize=None)
def _base_jpeg(width, height):
    script = (f"$i = imagecreatetruecolor({width}, {height});"
              "for ($y = 0; $y < imagesy($i); $y += 8) {"
              " imagefilledrectangle($i, 0, $y, imagesx($i), $y + 7,"
              " imagecolorallocate($i, ($y * 7) % 256, ($y * 3) % 256, 128)); }"
              "imagejpeg($i, null, 80);")
    out = subprocess.run([php_binary(), "-r", script], check=True, capture_output=True).stdout
    if out[:2] != b"\xff\xd8":
        raise RuntimeError("PHP's GD did not produce a JPEG (install php8.2-gd)")
    return out


def jpeg(seed, size=0, width=64, height=48):
    """A JPEG whose bytes depend on `seed`, at least `size` bytes long."""
    base = _base_jpeg(width, height)
    filler = hashlib.sha256(str(seed).encode()).digest()
    want = max(0, size - len(base) - 4)
    segments = b""
    while True:
        chunk = min(max(want, len(filler)), 65533)
        body = (filler * (chunk // len(filler) + 1))[:chunk]
        segments += b"\xff\xfe" + struct.pack(">H", chunk + 2) + body
        want -= chunk + 4
        if want <= 0:
            break
    return base[:2] + segments + base[2:]


def md5(data):
    return hashlib.md5(data).hexdigest()
