"""How quickly `chain ui` starts, and how quickly a remap change reaches the page as a new preview.

Starts ``chain ui`` (the real VOC DeepLab imported from ../shared into a temporary weights folder)
several times and times it until it serves its page; then drives the page in Debian's headless
Chromium (Selenium) and times, per clip, from pressing Enter in the remap box to the new painting
in the page, interleaved with a move to another frame (which segments again), medians of each.
With ``--screenshots DIR`` it also saves the README's pictures of the page (Big Buck Bunny).

    python benchmarks/ui_speed.py [--repeats 7] [--screenshots docs/images]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from chain.importers.tflite import save_imported

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
CLIPS = {"carphone 176x144": ("carphone_pristine.mp4", 0), "Big Buck Bunny 1280x720": ("bigbuckbunny.mp4", 60)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_ui(env: dict[str, str], out_dir: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "chain", "ui", "--out", str(out_dir), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return process, url, time.perf_counter() - started
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"chain ui exited with {process.returncode}") from None
            time.sleep(0.05)


def stop_ui(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(60)


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)


def css(driver: webdriver.Chrome, selector: str):  # noqa: ANN201
    return driver.find_element(By.CSS_SELECTOR, selector)


def wait(condition, timeout: float = 300, what: str = "the page") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # noqa: BLE001 — re-rendered under us
            pass
        time.sleep(0.01)
    driver = globals().get("DRIVER")
    if driver is not None:
        driver.save_screenshot("/tmp/ui_speed_timeout.png")
    raise SystemExit(f"timed out waiting for {what}")


def type_into(driver: webdriver.Chrome, selector: str, text: str, end: str = Keys.ENTER) -> None:
    field = css(driver, selector)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(text + end)


def painting(driver: webdriver.Chrome) -> str:
    return css(driver, "#painting img").get_attribute("src")


def timed_change(driver: webdriver.Chrome, action) -> float:  # noqa: ANN001
    """Seconds from ``action`` (a key press in the page) to a new painting in the page."""
    before = painting(driver)
    started = time.perf_counter()
    action()
    wait(lambda: painting(driver) != before, what="a new painting")
    return time.perf_counter() - started


def open_clip(driver: webdriver.Chrome, url: str, clip: Path, size: str | None = None) -> None:
    driver.get(url)
    wait(lambda: css(driver, "#source textarea"))
    if size:
        css(driver, "#options").click()
        type_into(driver, "#size textarea", size, end="")
    type_into(driver, "#source textarea", str(clip))
    wait(lambda: css(driver, "#classes input"), what=f"the classes of {clip.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="0: only the screenshots")
    parser.add_argument("--screenshots", type=Path, help="save the README's pictures of the page here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_imported(SHARED / "weights/deeplabv3_mnv2_voc_257.tflite", root / "w/deeplab-mnv2-voc", label_space="voc")
        env = dict(os.environ, CHAIN_WEIGHTS=str(root / "w"), GRADIO_TEMP_DIR=str(root / "gradio"))
        startups = []
        for _ in range(max(3, args.repeats // 2) if args.repeats else 0):
            process, url, seconds = start_ui(env, root / "out")
            startups.append(seconds)
            stop_ui(process)
        if startups:
            print(f"load average {os.getloadavg()[0]:.1f}; chain ui serves its page after "
                  f"{statistics.median(startups):.1f} s (median of {len(startups)}: "
                  f"{', '.join(f'{s:.1f}' for s in startups)})")

        process, url, _ = start_ui(env, root / "out")
        driver = browser()
        globals()["DRIVER"] = driver
        try:
            for name, (file, first) in CLIPS.items() if args.repeats else ():
                open_clip(driver, url, SHARED / "data/videos" / file)
                type_into(driver, "#frame input[type=number]", str(first), end=Keys.TAB)
                wait(lambda first=first: f"frame {first}:" in css(driver, "#message").text, what=f"frame {first}")
                remap_times, frame_times = [], []
                for repeat in range(args.repeats):  # interleaved: a remap, then another frame
                    # the largest class the segmenter found here, painted as another animal each time
                    found = [e.get_attribute("value") for e in driver.find_elements(By.CSS_SELECTOR, "#classes input")]
                    rule = f"{next(c for c in found if c != 'unlabeled')}={('bear', 'cat')[repeat % 2]}"
                    remap_times.append(timed_change(driver, lambda rule=rule: type_into(driver, "#remap textarea", rule)))
                    frame = str(first + 5 * (repeat + 1))
                    frame_times.append(timed_change(driver, lambda frame=frame: type_into(
                        driver, "#frame input[type=number]", frame, end=Keys.TAB)))
                remap, frame = statistics.median(remap_times), statistics.median(frame_times)
                print(f"load average {os.getloadavg()[0]:.1f}; {name}: remap change → new preview "
                      f"{1000 * remap:.0f} ms, new frame (segmented) {1000 * frame:.0f} ms "
                      f"(x{frame / remap:.1f}); medians of {args.repeats}")
            if args.screenshots:
                screenshots(driver, url, args.screenshots)
        finally:
            driver.quit()
            stop_ui(process)


def screenshots(driver: webdriver.Chrome, url: str, folder: Path) -> None:
    """The page with Big Buck Bunny (CC-BY): the preview after bird=bear, and a finished run."""
    driver.set_window_size(1400, 2100)  # the label views are one a row
    open_clip(driver, url, SHARED / "data/videos/bigbuckbunny.mp4", size="360")
    type_into(driver, "#background textarea", "grass")
    type_into(driver, "#frame input[type=number]", "75", end=Keys.TAB)
    wait(lambda: "frame 75" in css(driver, "#message").text)
    css(driver, "#classes input[value=bird]").click()
    type_into(driver, "#rule-to input", "bear")
    before = painting(driver)
    css(driver, "#add-rule").click()
    wait(lambda: painting(driver) != before)
    time.sleep(1)
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(1)
    save(driver, folder / "ui_preview.png", top=0, bottom=css(driver, "#rule-to").rect)
    css(driver, "#run-button").click()
    wait(lambda: css(driver, "#run-progress [data-status]").get_attribute("data-status") == "done", 900)
    time.sleep(2)
    driver.execute_script("document.querySelector('#run-button').scrollIntoView()")
    time.sleep(1)
    save(driver, folder / "ui_run.png", top=css(driver, "#run-button").rect, bottom=css(driver, "#downloads").rect)


def save(driver: webdriver.Chrome, path: Path, *, top, bottom) -> None:  # noqa: ANN001
    """A crop of the page between two elements, as a small palette PNG."""
    png = Path(tempfile.mktemp(suffix=".png"))
    driver.save_screenshot(str(png))
    scroll = driver.execute_script("return window.scrollY")
    image = Image.open(png).convert("RGB")
    y0 = 0 if top == 0 else max(0, int(top["y"] - scroll) - 50)
    y1 = min(image.height, int(bottom["y"] + bottom["height"] - scroll) + 16)
    image = image.crop((0, y0, image.width, y1))
    image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    png.unlink()
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
