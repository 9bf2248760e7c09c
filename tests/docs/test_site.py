"""The built documentation site, opened as a person would, in headless Chromium.

``make test`` builds the site first (``make docs`` -> docs/_build/html) and then runs
this check, which serves the site on 127.0.0.1 (chemiscope fetches its datasets; a
``file://`` page may not) and opens the start page, a task page, a gallery example and
the chemiscope views with Debian's ``chromium`` through its ``chromedriver`` (Selenium;
nothing is downloaded). It fails on a blank page, a figure that did not load, a request
that failed (a missing file, or anything from outside this machine) and a chemiscope
viewer without its structure. Screenshots go to ``docs/_build/screenshots/``.

Without a built site, or without chromium and chromedriver, the check is skipped here;
``make test`` then fails on the missing screenshots.
"""

import functools
import http.server
import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "docs" / "_build" / "html"
SHOTS = ROOT / "docs" / "_build" / "screenshots"

webdriver = pytest.importorskip("selenium.webdriver")
Image = pytest.importorskip("PIL.Image")

pytestmark = pytest.mark.slow

if not (SITE / "index.html").is_file():
    pytest.skip(f"the site is not built ({SITE}): run `make docs`", allow_module_level=True)
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "no chromium/chromedriver: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def site():
    """The built site served on 127.0.0.1 (a free port), as its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's) through its chromedriver; WebGL by SwiftShader."""
    from selenium.webdriver.chrome.service import Service

    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1500",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    # generous: a loaded 2-core machine renders WebGL in software slowly
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)
    yield driver
    driver.quit()


def _open(browser, url: str, shot: str):
    """Open ``url``, check it is not blank, that its images loaded and that no request
    failed; save a screenshot; return the page's main article element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 300).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    article = browser.find_element(By.CSS_SELECTOR, "article")
    assert len(article.text.strip()) > 200, f"{url}: blank page ({article.text!r})"
    assert article.find_elements(By.TAG_NAME, "h1"), f"{url}: no title"
    images = article.find_elements(By.TAG_NAME, "img")
    for image in images:
        loaded = browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", image
        )
        assert loaded, f"{url}: image {image.get_attribute('src')} did not load"
    _save_page(browser, shot)
    return article, images


def _save_page(browser, shot: str) -> None:
    """Save what the window shows; fail if it is blank (a page that rendered white)."""
    png = browser.get_screenshot_as_png()
    (SHOTS / f"{shot}.png").write_bytes(png)
    assert _colours(png) > 50, f"the window's screenshot {shot}.png is blank"


def _shown(browser, element) -> bytes:
    """The pixels of ``element`` as the window shows them, cut from a screenshot of the
    window after scrolling it into view.

    Not Selenium's ``element.screenshot_as_png``: with Chromium 156's headless mode, every
    window screenshot after an element screenshot comes back white or cut short."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    _settle(browser)
    left, top, width, height, scale = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height, window.devicePixelRatio]",
        element,
    )
    window = Image.open(io.BytesIO(browser.get_screenshot_as_png()))
    box = [round(v * scale) for v in (left, top, left + width, top + height)]
    box = [max(0, box[0]), max(0, box[1]), min(window.width, box[2]), min(window.height, box[3])]
    assert box[2] > box[0] and box[3] > box[1], f"the element is not in the window: {box}"
    out = io.BytesIO()
    window.crop(box).save(out, format="PNG")
    return out.getvalue()


def _settle(browser) -> None:
    """Wait until the browser has painted twice (after a scroll, before a screenshot)."""
    browser.execute_async_script(
        "const done = arguments[0];"
        "requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 500)))"
    )


def _failed_requests(browser) -> list[str]:
    """The console's errors about requests that failed (not found, or not reachable)."""
    failed = ("net::ERR", "404")
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE"
        and any(word in entry["message"] for word in failed)
        and "/favicon.ico" not in entry["message"]  # the browser asks; the site has none
    ]


def _colours(png: bytes) -> int:
    """Distinct colours of a screenshot (a blank viewer has one or two)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


#: the canvases under an element, through the shadow roots of chemiscope's widgets
_CANVASES = """
function canvases(root) {
    let found = Array.from(root.querySelectorAll('canvas'));
    for (const element of root.querySelectorAll('*')) {
        if (element.shadowRoot) found = found.concat(canvases(element.shadowRoot));
    }
    return found;
}
const root = document.getElementById(arguments[0]);
return root === null ? [] : canvases(root);
"""


def test_start_page(site, browser):
    article, _ = _open(browser, f"{site}/index.html", "index")
    assert "many-body expansion" in article.text
    assert _failed_requests(browser) == []


def test_task_page(site, browser):
    article, _ = _open(browser, f"{site}/tasks/decompose.html", "task")
    assert "ase-bodyorder decompose" in article.text
    assert "--chemiscope" in article.text
    assert _failed_requests(browser) == []


def test_gallery_example_shows_its_output_and_figure(site, browser):
    from selenium.webdriver.common.by import By

    article, images = _open(browser, f"{site}/gallery/shipped_models_vs_fci.html", "gallery")
    figures = [i for i in images if "sphx-glr" in (i.get_attribute("class") or "")]
    assert figures, "the gallery example shows no figure"
    for figure in figures:
        assert figure.size["width"] > 200 and figure.size["height"] > 100, figure.size
        assert _colours(_shown(browser, figure)) > 50, "the figure is blank"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", figures[0])
    _settle(browser)
    _save_page(browser, "gallery-figure")
    output = article.find_elements(By.CSS_SELECTOR, ".sphx-glr-script-out")
    assert output and "FCI energy" in output[0].text, "the example's printed output is missing"
    assert _failed_requests(browser) == []


def test_chemiscope_views_show_their_structures(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, f"{site}/views.html", "view")
    viewers = [
        e
        for e in browser.find_elements(By.CSS_SELECTOR, "div[id^='chsp-']")
        if e.get_attribute("id").count("-") == 5  # chsp-<uuid>: the viewer's root
    ]
    assert len(viewers) == 2, [e.get_attribute("id") for e in viewers]
    for k, viewer in enumerate(viewers):
        name = viewer.get_attribute("id")
        # the loader fills the root with the viewer, then hides its spinner
        WebDriverWait(browser, 300).until(
            lambda d, name=name: d.execute_script(
                "const s = document.getElementById(arguments[0] + '-loading');"
                "return s !== null && getComputedStyle(s).display === 'none'",
                name,
            )
        )
        error = browser.find_element(By.ID, f"{name}-error-display")
        assert not error.is_displayed(), f"chemiscope error: {error.text}"
        canvases = browser.execute_script(_CANVASES, f"{name}-structure")
        assert canvases, "the chemiscope viewer has no structure canvas"
        WebDriverWait(browser, 300).until(lambda d, c=canvases[0]: _colours(_shown(d, c)) > 20)
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", viewer)
        _settle(browser)
        _save_page(browser, f"view-{k + 1}")
    assert _failed_requests(browser) == []
