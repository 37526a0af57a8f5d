"""Memory and time of a burst of worst-case uploads through prepare_photo, before (the module as of
commit 8adb406) and after (geoapp/domain/photos.py as it is now). Figures, printed, never asserted.

    bench/run photo_memory [--threads 8] [--keep]

Each scenario runs in a fresh Python process (so its peak RSS is its own): N threads, released
together, each hand prepare_photo the same upload. Scenarios: (a) a 7000×7000 RGBA PNG of a few
hundred KB (the attack: 196 MB once decoded), (b) a 50 MP (8160×6120) camera-like JPEG, (c) a 12 MP
(4000×3000) JPEG. Limits are the app's defaults: 10 MB uploads, 2048 px stored, 2 decode slots.
No database is needed.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "8adb406"
MAX_BYTES = 10 * 1024 * 1024  # UPLOAD_MAX_MB default
MAX_PX = 2048                 # PHOTO_MAX_PX default
SCENARIOS = {
    "png_7000x7000_rgba": "(a) 7000×7000 RGBA PNG",
    "jpeg_50mp": "(b) 50 MP JPEG 8160×6120",
    "jpeg_12mp": "(c) 12 MP JPEG 4000×3000",
}


# --- the parent: make the images, run the workers, print ----------------------------------------

def camera_like(size: tuple[int, int]):
    """A JPEG-sized-like-a-camera's picture: smooth structure plus a little sensor noise."""
    from PIL import Image, ImageChops

    w, h = size
    coarse = Image.effect_noise((w // 16, h // 16), 60).resize(size, Image.Resampling.BICUBIC)
    gradient = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    grain = Image.effect_noise(size, 3)
    return Image.merge("RGB", (ImageChops.add(coarse, grain, 1.0, -128),
                               ImageChops.add(gradient, grain, 1.0, -128), radial))


def make_inputs(directory: Path) -> dict[str, Path]:
    from PIL import Image

    paths = {name: directory / f"{name}.{'png' if name.startswith('png') else 'jpg'}" for name in SCENARIOS}
    Image.new("RGBA", (7000, 7000), (40, 90, 160, 255)).save(paths["png_7000x7000_rgba"], "PNG")
    camera_like((8160, 6120)).save(paths["jpeg_50mp"], "JPEG", quality=85)  # under the 10 MB limit
    camera_like((4000, 3000)).save(paths["jpeg_12mp"], "JPEG", quality=85)
    return paths


def write_old_module(directory: Path) -> Path:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:geoapp/domain/photos.py"],
                            check=True, capture_output=True, text=True).stdout
    shimmed = source.replace("from .errors import", "from geoapp.domain.errors import")
    assert shimmed != source, "the old module no longer imports .errors; adjust the shim"
    path = directory / "photos_before.py"
    path.write_text(shimmed)
    return path


def run_worker(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", *args], check=True, capture_output=True,
                          text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the generated images")
    args = parser.parse_args()

    from importlib.metadata import version as installed_version

    pillow_version = installed_version("pillow")
    directory = Path(tempfile.mkdtemp(prefix="photo_memory_"))
    old_module = write_old_module(directory)
    started = time.perf_counter()
    # Made in a process of their own: this one stays small, because a child's ru_maxrss starts from
    # the RSS of the process that spawned it (Linux carries it over exec).
    inputs = {name: Path(p) for name, p in run_worker("inputs", str(directory)).items()}
    print(f"photo_memory: Pillow {pillow_version}, Python {sys.version.split()[0]}, {args.threads} threads, "
          f"max_bytes {MAX_BYTES // 2**20} MB, max_px {MAX_PX}; 'after' uses configure_decoding() defaults")
    print(f"inputs made in {time.perf_counter() - started:.1f} s in {directory}:")
    for name, path in inputs.items():
        print(f"  {SCENARIOS[name]:<28} {path.stat().st_size / 1024:>9,.0f} KB")
    print()
    header = (f"{'scenario':<28} {'version':<7} {'wall s':>7} {'peak RSS MB':>12} {'RSS after MB':>13} "
              f"{'RSS at start MB':>16}  outcome")
    print(header)
    print("-" * len(header))
    for name, path in inputs.items():
        for version in ("before", "after"):
            r = run_worker("burst", version, str(old_module), str(path), str(args.threads))
            outcome = ", ".join(f"{count} {what}" for what, count in sorted(r["outcome"].items()))
            print(f"{SCENARIOS[name]:<28} {version:<7} {r['wall_s']:>7.3f} {r['peak_rss_mb']:>12.0f} "
                  f"{r['rss_after_mb']:>13.0f} {r['rss_start_mb']:>16.0f}  {outcome}")
    print()
    print("single 12 MP JPEG, one thread, median of 5 (after one warm-up):")
    for version in ("before", "after"):
        r = run_worker("latency", version, str(old_module), str(inputs["jpeg_12mp"]), "5")
        print(f"  {version:<7} {r['median_ms']:>7.0f} ms   (runs: {', '.join(f'{t:.0f}' for t in r['runs_ms'])} ms)")
    if not args.keep:
        for path in [*inputs.values(), old_module]:
            path.unlink()
        directory.rmdir()


# --- a worker: one scenario, one version, in a process of its own -------------------------------

def vmrss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_version(version: str, old_module: str):
    if version == "after":
        from geoapp.domain import photos

        return photos
    spec = importlib.util.spec_from_file_location("photos_before", old_module)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(mode: str, *args: str) -> dict:
    if mode == "inputs":
        return {name: str(path) for name, path in make_inputs(Path(args[0])).items()}
    version, old_module, path, count = args
    from geoapp.domain.errors import DomainError

    photos = load_version(version, old_module)
    data = Path(path).read_bytes()
    if mode == "latency":
        photos.prepare_photo(data, max_bytes=MAX_BYTES, max_px=MAX_PX)  # warm-up: plugins, tables
        runs = []
        for _ in range(int(count)):
            started = time.perf_counter()
            photos.prepare_photo(data, max_bytes=MAX_BYTES, max_px=MAX_PX)
            runs.append((time.perf_counter() - started) * 1000)
        return {"median_ms": statistics.median(runs), "runs_ms": runs}

    from PIL import Image

    Image.init()  # every plugin imported before the start figure, in both versions alike
    threads = int(count)
    outcome: dict[str, int] = {}
    lock = threading.Lock()
    go = threading.Barrier(threads)

    def one() -> None:
        go.wait()
        try:
            photos.prepare_photo(data, max_bytes=MAX_BYTES, max_px=MAX_PX)
            what = "accepted"
        except DomainError as refused:
            what = f"refused {type(refused).__name__}"
        with lock:
            outcome[what] = outcome.get(what, 0) + 1

    gc.collect()
    rss_start = vmrss_mb()
    pool = [threading.Thread(target=one) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    gc.collect()
    return {"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_mb": vmrss_mb(), "rss_start_mb": rss_start, "outcome": outcome}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(worker(*sys.argv[2:])))
    else:
        main()
