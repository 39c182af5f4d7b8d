"""File figures: thumbnail render time, and the server's memory during a large upload.

    .venv/bin/python bench/files.py thumbs            # render times of typical photos
    .venv/bin/python bench/files.py upload [MiB]      # RSS of minibase serve during a streamed upload

``thumbs`` renders each declared size of a 12 MP (4000x3000) and a phone-sized (1080x1440)
JPEG, a 2000x2000 PNG and a WebP with the settings of ``[files.thumbs]`` (Pillow, the
``images`` extra), best of 5, first render only (the cache is not involved).

``upload`` starts ``minibase serve`` on a temp data dir, logs in with the dev provider, asks
for a form upload (``uploadForm``) and POSTs a generated multipart body of that many MiB
(default 200) in 1 MiB chunks without holding it in memory, sampling the server's RSS
(``/proc/PID/status`` VmRSS) every 20 ms; it prints the RSS before, the peak during, and the
growth.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def thumbs() -> None:
    from PIL import Image

    from minibase.files.thumbs import Thumbnailer, ThumbSpec

    def photo(w: int, h: int, fmt: str) -> bytes:
        # Noise-like content, so the encoder and decoder do real work (not a flat colour).
        im = Image.effect_mandelbrot((w, h), (-2.0, -1.5, 1.0, 1.5), 60).convert("RGB")
        buf = io.BytesIO()
        im.save(buf, fmt, quality=90) if fmt != "PNG" else im.save(buf, fmt)
        return buf.getvalue()

    sources = {
        "JPEG 4000x3000": photo(4000, 3000, "JPEG"),
        "JPEG 1080x1440": photo(1080, 1440, "JPEG"),
        "PNG 2000x2000": photo(2000, 2000, "PNG"),
        "WebP 1600x1200": photo(1600, 1200, "WEBP"),
    }
    sizes = ["200x200", "750x"]
    t = Thumbnailer(sizes)
    print(f"{'source':<16} {'bytes':>9} " + " ".join(f"{s:>10}" for s in sizes))
    for name, data in sources.items():
        cells = []
        for size in sizes:
            best = min(_timed(lambda d=data, s=size: t.render(d, ThumbSpec.parse(s))) for _ in range(5))
            cells.append(f"{best * 1000:>8.1f}ms")
        print(f"{name:<16} {len(data):>9} " + " ".join(cells))


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def upload(mib: int) -> None:
    import socket

    import httpx

    from minibase.client import Client

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "minibase.toml"
        config.write_text(
            '[app]\nname = "bench"\nservice = "bench-svc"\n[auth.dev]\nenabled = true\n'
            f'[files]\nmax_size = "{mib + 1}MiB"\n'
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("minibase")),
                "serve",
                "--config",
                str(config),
                "--data",
                f"{tmp}/data",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=tmp,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            mb = Client(url, "bench-svc")
            mb.login("dev:bench")
            size = mib * 1024 * 1024
            form = mb.files.upload_form("big.bin", "application/octet-stream", size)
            before = rss_kib(proc.pid)
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(proc.pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            boundary = "benchboundary0123456789"
            head = "".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                for k, v in form["formData"].items()
            )
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{form["name"]}"; filename="big.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            )
            tail = f"\r\n--{boundary}--\r\n".encode()
            chunk = os.urandom(1024 * 1024)

            def body():  # type: ignore[no-untyped-def]
                yield head.encode()
                for _ in range(mib):
                    yield chunk
                yield tail

            start = time.perf_counter()
            r = httpx.post(
                form["url"],
                content=body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                timeout=600,
            )
            took = time.perf_counter() - start
            done.set()
            sampler.join()
            assert r.status_code in (200, 204), (r.status_code, r.text)
            print(
                f"uploaded {mib} MiB in {took:.1f}s; server RSS before {before / 1024:.1f} MiB, "
                f"peak {peak[0] / 1024:.1f} MiB, growth {(peak[0] - before) / 1024:.1f} MiB"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "thumbs"
    if what == "thumbs":
        thumbs()
    else:
        upload(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
