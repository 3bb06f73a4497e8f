#!/usr/bin/env python3
"""Render an HTML report in headless Chromium and save a PNG screenshot.

    python scripts/screenshot_report.py runs/digits-digits_cnn/report.html shot.png --height 5000

Runs ``chromium --headless --no-sandbox --screenshot=OUT --window-size=W,H file://HTML``
(Debian's ``/usr/bin/chromium``; ``--chromium`` or $CHROMIUM picks another binary).
The screenshot is the top ``W x H`` pixels of the page; pass a large ``--height`` to see
it all.  Exit status 0 when the PNG was written, 1 otherwise (with Chromium's output).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, $CHROMIUM, or the first of the usual names found."""
    for cand in (explicit, os.environ.get("CHROMIUM"), *DEFAULT_CANDIDATES):
        if cand and (Path(cand).is_file() or shutil.which(cand)):
            return str(Path(cand)) if Path(cand).is_file() else shutil.which(cand)
    return None


def screenshot(html: str | os.PathLike, png: str | os.PathLike, width: int = 1280, height: int = 2000,
               chromium: str | None = None, timeout: float = 120.0) -> Path:
    """Screenshot ``html`` into ``png`` (exactly ``width x height`` pixels).

    Raises FileNotFoundError when there is no Chromium or no HTML file, RuntimeError
    (with Chromium's stderr) when no PNG appears.
    """
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"screenshot: {html} does not exist")
    exe = find_chromium(chromium)
    if exe is None:
        raise FileNotFoundError("screenshot: no Chromium found (install Debian's chromium, or set $CHROMIUM)")
    if width < 1 or height < 1:
        raise ValueError(f"screenshot: width and height must be positive, got {width}x{height}")
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    with tempfile.TemporaryDirectory(prefix="cnnlab-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
               f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
               "--virtual-time-budget=5000", html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise RuntimeError(f"screenshot: Chromium wrote no {png} (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html")
    ap.add_argument("png")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM or /usr/bin/chromium)")
    args = ap.parse_args(argv)
    try:
        out = screenshot(args.html, args.png, args.width, args.height, args.chromium)
    except (FileNotFoundError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"wrote {out} ({args.width}x{args.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
