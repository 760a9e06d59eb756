"""Regenerates Slicewise/Resources/Icons/Slicewise.png (128x128 RGBA) with zlib and struct only:
three stacked slices with a red segmented blob.  python scripts/make_icon.py"""
import os
import struct
import zlib

W = H = 128


def pixel(x, y):
    r = g = b = a = 0
    for k, shade in enumerate((90, 130, 175)):
        oy, ox = 30 + k * 22, 14 + k * 10
        if oy <= y < oy + 46 and ox + (y - oy) // 3 <= x < ox + 80 + (y - oy) // 3:
            r = g = b = shade
            a = 255
    if a and (x - 74) ** 2 / 20 ** 2 + (y - 88) ** 2 / 12 ** 2 < 1:
        r, g, b = 220, 40, 40
    return bytes((r, g, b, a))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def main():
    raw = b"".join(b"\0" + b"".join(pixel(x, y) for x in range(W)) for y in range(H))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Slicewise", "Resources",
                       "Icons", "Slicewise.png")
    with open(out, "wb") as f:
        f.write(png)


if __name__ == "__main__":
    main()
