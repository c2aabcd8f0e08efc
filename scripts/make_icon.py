"""Draw resources/icon.png (256×256): small pixels growing into a smooth arrow.

Run once: ``python scripts/make_icon.py``; the PNG is committed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
OUT = Path(__file__).resolve().parent.parent / "resources" / "icon.png"


def main() -> None:
    scale = 4  # draw big, then downsample for smooth edges
    s = SIZE * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    top, bottom = (76, 141, 255), (138, 92, 246)
    for y in range(s):
        t = y / (s - 1)
        color = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (s, y)], fill=(*color, 255))
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        [0, 0, s - 1, s - 1], radius=56 * scale, fill=255
    )
    img.putalpha(mask)
    # A 3×3 block of coarse pixels in the lower left ...
    cell = 22 * scale
    x0, y0 = 40 * scale, 150 * scale
    for i in range(3):
        for j in range(3):
            shade = 255 - 30 * ((i + j) % 2)
            draw.rectangle(
                [
                    x0 + i * cell,
                    y0 + j * cell,
                    x0 + (i + 1) * cell - 6 * scale,
                    y0 + (j + 1) * cell - 6 * scale,
                ],
                fill=(shade, shade, 255, 235),
            )
    # ... and an arrow to the upper right.
    w = 18 * scale
    draw.line(
        [(112 * scale, 144 * scale), (196 * scale, 60 * scale)], fill="white", width=w
    )
    draw.polygon(
        [
            (214 * scale, 42 * scale),
            (214 * scale, 122 * scale),
            (134 * scale, 42 * scale),
        ],
        fill="white",
    )
    img.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(OUT, optimize=True)


if __name__ == "__main__":
    main()
