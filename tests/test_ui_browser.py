"""`chain ui` in a real headless browser: Debian's Chromium driven by Selenium, one server for the module.

Opens the page, loads the shared carphone clip, picks ``deeplab-mnv2:voc`` (real weights, imported
from the shared TF Lite file) and ``colorize:coco-stuff``, adds ``person=bear`` from the class list
and sees the painting change, runs the whole clip, cancels a second run mid-way (nothing changes on
disk) and downloads the result.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chain.labels import COCO_STUFF
from tests.conftest import shared_file

pytest.importorskip("gradio", reason="chain ui needs the ui extra: pip install -e '.[ui]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium (the test extra)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Chromium and ChromeDriver not found: apt-get install chromium chromium-driver (.ci/run does)",
                allow_module_level=True)
WAIT = 180.0  # seconds; a whole-clip run on 2 loaded cores takes ~20 s
PERSON = COCO_STUFF.palette[COCO_STUFF.id_of("person")]
BEAR = COCO_STUFF.palette[COCO_STUFF.id_of("bear")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder holding the real VOC DeepLab, imported from the shared TF Lite file."""
    from chain.importers.tflite import save_imported

    tflite = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    folder = tmp_path_factory.mktemp("weights")
    save_imported(tflite, folder / "deeplab-mnv2-voc", label_space="voc")
    return folder


def start_server(weights: Path, root: Path) -> tuple[subprocess.Popen, str, Path]:
    """``chain ui`` as a user starts it; returns once it serves its page."""
    out_dir, port = root / "outputs", _free_port()
    env = dict(os.environ, CHAIN_WEIGHTS=str(weights), GRADIO_TEMP_DIR=str(root / "gradio"))
    process = subprocess.Popen([sys.executable, "-m", "chain", "ui", "--out", str(out_dir), "--port", str(port)],
                               env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return process, url, out_dir
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"chain ui did not serve {url}: {process.communicate()[1]}")
            time.sleep(0.3)


def stop_server(process: subprocess.Popen) -> str:
    """Ctrl-C, as a user stops it: exit code 130 and no traceback; returns what it printed."""
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    return stderr


@pytest.fixture(scope="module")
def server(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    process, url, out_dir = start_server(weights, tmp_path_factory.mktemp("ui"))
    yield url, out_dir
    stop_server(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    """Poll ``condition`` until it is truthy (errors from a page still updating count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 — an element re-rendered under us: look again
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def css(driver, selector: str):  # noqa: ANN001, ANN201
    return driver.find_element(By.CSS_SELECTOR, selector)


def type_into(driver, selector: str, text: str, *, enter: bool = True) -> None:  # noqa: ANN001
    field = css(driver, selector)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(text)
    if enter:
        field.send_keys(Keys.ENTER)


def picture(driver, elem_id: str) -> tuple[str, np.ndarray]:  # noqa: ANN001
    """The ``src`` of a preview image and its pixels, fetched as the browser fetched them."""
    src = css(driver, f"#{elem_id} img").get_attribute("src")
    with urllib.request.urlopen(src, timeout=10) as response:
        return src, np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))


def progress(driver) -> dict[str, str]:  # noqa: ANN001
    element = css(driver, "#run-progress [data-status]")
    return {"status": element.get_attribute("data-status"), "done": element.get_attribute("data-done"),
            "text": element.text}


def open_clip(driver, url: str, clip: Path, *, upload: bool = False) -> None:  # noqa: ANN001
    driver.get(url)
    wait_for(lambda: css(driver, "#source textarea"), "the page")
    if upload:  # through the page's file upload, as from another computer's disk
        css(driver, "#upload input[type=file]").send_keys(str(clip))
        wait_for(lambda: css(driver, "#source textarea").get_attribute("value").endswith(clip.name)
                 and css(driver, "#source textarea").get_attribute("value") != str(clip), "the uploaded path")
    else:
        type_into(driver, "#source textarea", str(clip))
    wait_for(lambda: "120 frames" in css(driver, "#video-info").text, "the clip's description")
    # deeplab-mnv2:voc and colorize:coco-stuff are the defaults once the weights exist; choose them anyway
    for selector, name in (("#seg-menu input", "deeplab-mnv2:voc"), ("#synth-menu input", "colorize:coco-stuff")):
        type_into(driver, selector, name)
    wait_for(lambda: css(driver, "#classes input[value=person]"), "the classes found")
    wait_for(lambda: css(driver, "#seg-menu input").get_attribute("value") == "deeplab-mnv2:voc", "the segmenter")


TEXT_LINES = """
const box = arguments[0], lines = [], walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  if (!walker.currentNode.textContent.trim()) continue;
  const range = document.createRange();
  range.selectNodeContents(walker.currentNode);
  const r = range.getBoundingClientRect();
  lines.push([walker.currentNode.textContent.trim(), r.top, r.bottom]);
}
const outer = box.getBoundingClientRect();
return {top: outer.top, bottom: outer.bottom, lines: lines};
"""


def test_the_upload_box_shows_its_text_whole(server: tuple[str, Path], browser) -> None:
    url, _ = server
    browser.get(url)
    box = wait_for(lambda: css(browser, "#upload"), "the upload box")
    shown = wait_for(lambda: (found := browser.execute_script(TEXT_LINES, box))
                     and any(line[0] == "Click to Upload" for line in found["lines"]) and found, "its text")
    cut = [text for text, top, bottom in shown["lines"] if top < shown["top"] or bottom > shown["bottom"]]
    assert not cut, f"the upload box cuts {cut}"


def test_remap_from_the_class_list_changes_the_preview(server: tuple[str, Path], browser, carphone: Path) -> None:
    url, _ = server
    open_clip(browser, url, carphone, upload=True)
    before_src, before = picture(browser, "painting")
    person = np.all(before == PERSON, axis=-1)
    assert person.mean() > 0.2  # the driver, painted in COCO-Stuff's person colour
    assert "segmenter labels" in css(browser, "#masks").text

    css(browser, "#classes input[value=person]").click()
    wait_for(lambda: css(browser, "#rule-from textarea").get_attribute("value") == "person", "the clicked class")
    type_into(browser, "#rule-to input", "beer")
    css(browser, "#add-rule").click()
    refusal = wait_for(lambda: "error:" in css(browser, "#message").text and css(browser, "#message").text,
                       "the refusal of an unknown class")
    assert "unknown class 'beer' in label space 'coco-stuff'; did you mean 'bear'" in refusal
    assert "Traceback" not in browser.page_source
    assert css(browser, "#remap textarea").get_attribute("value") == ""
    # The refused remap's error is not shown above the previous painting, which would look applied.
    for view in ("painting", "masks", "target-labels"):
        wait_for(lambda view=view: not browser.find_elements(By.CSS_SELECTOR, f"#{view} img"), f"no {view} shown")

    type_into(browser, "#rule-to input", "bear")
    css(browser, "#add-rule").click()
    wait_for(lambda: css(browser, "#remap textarea").get_attribute("value") == "person=bear", "the rule")
    wait_for(lambda: picture(browser, "painting")[0] != before_src, "a new painting")
    assert "segmentation cached" in css(browser, "#message").text  # repainted without segmenting again
    _, after = picture(browser, "painting")
    assert np.array_equal(np.all(after == BEAR, axis=-1), person)  # the same pixels, now bears
    _, target = picture(browser, "target-labels")
    assert np.all(target == BEAR, axis=-1).any()
    assert "--remap person=bear" in css(browser, "#command textarea").get_attribute("value")


def test_run_cancel_and_download(server: tuple[str, Path], browser, carphone: Path) -> None:
    url, out_dir = server
    open_clip(browser, url, carphone)
    type_into(browser, "#remap textarea", "person=bear")
    wait_for(lambda: "--remap person=bear" in css(browser, "#command textarea").get_attribute("value"),
             "the command line")

    css(browser, "#run-button").click()
    wait_for(lambda: progress(browser)["status"] == "done", "the whole clip")
    assert "120/120 frames" in progress(browser)["text"]
    command = css(browser, "#command textarea").get_attribute("value")
    video = out_dir / "carphone_pristine-chain.mp4"
    assert command == (f"chain run {carphone} {video} --seg deeplab-mnv2:voc --synth colorize:coco-stuff --remap "
                       f"person=bear --masks {out_dir}/carphone_pristine-masks.mp4 --compare "
                       f"{out_dir}/carphone_pristine-compare.mp4 --summary {out_dir}/carphone_pristine-summary.json")
    names = {"carphone_pristine-chain.mp4", "carphone_pristine-masks.mp4", "carphone_pristine-compare.mp4",
             "carphone_pristine-summary.json"}
    assert {p.name for p in out_dir.iterdir()} == names
    links = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#downloads a[download]"), "download links")
    assert {link.get_attribute("download") for link in links} == names

    # Download the result through the page and check it is the run's video, bear-coloured.
    next(link for link in links if link.get_attribute("download") == video.name).click()
    downloaded = browser.downloads / video.name
    wait_for(lambda: downloaded.is_file() and not list(browser.downloads.glob("*.crdownload")), "the download", 60)
    assert downloaded.read_bytes() == video.read_bytes()
    import av

    with av.open(str(downloaded)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 120 and frames[0].shape == (144, 176, 3)
    near_bear = np.abs(frames[60].astype(int) - BEAR).sum(axis=-1) < 40  # H.264 moves colours a little
    assert near_bear.mean() > 0.2

    # A second run, cancelled mid-way: every output stays as the first run left it, no hidden parts.
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in out_dir.iterdir()}
    css(browser, "#run-button").click()
    wait_for(lambda: progress(browser)["status"] == "running" and int(progress(browser)["done"]) > 0, "the 2nd run")
    css(browser, "#cancel-button").click()
    wait_for(lambda: progress(browser)["status"] == "cancelled", "the cancel")
    state = progress(browser)
    assert 0 < int(state["done"]) < 120 and "no partial output was left" in state["text"]
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in out_dir.iterdir()} == before


def test_stopping_the_server_mid_run_leaves_nothing(weights: Path, browser, carphone: Path, tmp_path: Path) -> None:
    process, url, out_dir = start_server(weights, tmp_path)
    try:
        open_clip(browser, url, carphone)
        css(browser, "#run-button").click()
        wait_for(lambda: progress(browser)["status"] == "running" and int(progress(browser)["done"]) > 0, "the run")
    finally:
        stderr = stop_server(process)
    assert "no partial output was left" in stderr
    assert list(out_dir.iterdir()) == []  # the run was cancelled and its hidden parts removed
