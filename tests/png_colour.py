# SPDX-License-Identifier: MIT
"""Counts the pixels of a PNG close to a colour: png_colour.py FILE RRGGBB [TOL].
Prints the count (the dashboard screenshot test: chart lines were drawn)."""
import sys

from PIL import Image

path, hexcol = sys.argv[1], sys.argv[2]
tol = int(sys.argv[3]) if len(sys.argv) > 3 else 48
want = tuple(int(hexcol[i:i + 2], 16) for i in (0, 2, 4))
img = Image.open(path).convert("RGB")
n = sum(1 for px in img.getdata() if all(abs(a - b) <= tol for a, b in zip(px, want)))
print(n)
