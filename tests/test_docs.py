"""The documentation site: built with Sphinx + sphinx-gallery (tutorials executed in quick mode),
then opened in headless Chromium (driven by selenium) over a local HTTP server.

Checked on every page: every image loaded (naturalWidth > 0), no raw TeX left in the text (MathJax
rendered it: no ``\\(``, ``\\[``, ``$...$`` or TeX command), and every internal link (and its #anchor) resolves.  Tutorial
pages must show at least one figure and offer the script and the notebook for download.

Skips when Sphinx, sphinx-gallery, the offline MathJax, selenium, chromium or chromedriver is missing
(``.ci/run`` installs them).  Build: ``python -m sphinx -b html docs docs/_build/html``.
"""
import functools
import glob
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
NEEDED = ["sphinx", "sphinx_gallery", "selenium", "matplotlib"]

pytestmark = pytest.mark.slow


def _missing():
    gone = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if importlib.util.find_spec("sphinx-mathjax-offline") is None:
        gone.append("sphinx-mathjax-offline")
    if CHROMIUM is None:
        gone.append("chromium")
    if CHROMEDRIVER is None:
        gone.append("chromedriver")
    return gone


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    gone = _missing()
    if gone:
        pytest.skip(f"docs test needs {', '.join(gone)} (pip install -e '.[docs]'; apt-get install chromium "
                    "chromium-driver graphviz)")
    out = tmp_path_factory.mktemp("site") / "html"
    env = dict(os.environ, MINIGRAD_QUICK="1", MPLBACKEND="Agg",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "docs", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"sphinx failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    print(f"site built in {seconds:.1f} s")
    return out, seconds


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(site):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out, _ = site
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="minigrad-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


def pages(out):
    names = ["index.html", "family.html", "api.html", "tutorials/index.html"]
    names += sorted(os.path.relpath(p, out) for p in glob.glob(str(out / "tutorials" / "[0-9][0-9]_*.html")))
    return names


TEXT_OUTSIDE_CODE = """
const body = document.body.cloneNode(true);
body.querySelectorAll('pre, code, script, style, mjx-container, .MathJax, mjx-assistive-mml').forEach(e => e.remove());
return body.innerText;"""

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$\n]*\$|\\(frac|nabla|mathrm|sum|varepsilon)\b")

IMAGES = """
return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);"""


def wait_for_mathjax(driver, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        state = driver.execute_script(
            "if (!window.MathJax) return 'none';"
            "if (!MathJax.startup || !MathJax.startup.promise) return 'loading';"
            "if (window.__mjDone === undefined) { window.__mjDone = false;"
            "  MathJax.startup.promise.then(() => { window.__mjDone = true; }); }"
            "return window.__mjDone ? 'done' : 'typesetting';")
        if state in ("none", "done"):
            return state
        time.sleep(0.2)
    return "timeout"


def test_site_pages_exist_and_build_quickly(site):
    out, seconds = site
    names = pages(out)
    tutorials = [n for n in names if re.match(r"tutorials/\d\d_", n)]
    assert len(tutorials) >= 7, names
    assert any("08_seeing_double_backprop" in n for n in tutorials)
    for name in names:
        assert (out / name).is_file(), name
    assert seconds < 600, f"the site took {seconds:.0f} s to build"


def test_pages_in_a_browser(site, browser):
    out, _ = site
    driver, base = browser
    problems, anchors_cache, math_pages = [], {}, []
    for name in pages(out):
        driver.get(base + name)
        state = wait_for_mathjax(driver)
        if state == "timeout":
            problems.append(f"{name}: MathJax did not finish")
        if driver.execute_script("return document.querySelectorAll('mjx-container').length") > 0:
            math_pages.append(name)
        text = driver.execute_script(TEXT_OUTSIDE_CODE)
        raw = RAW_TEX.search(text)  # ($HOME alone is an environment variable, not math)
        if raw:
            at = raw.start()
            problems.append(f"{name}: raw TeX {raw.group()[:20]!r} in the text: ...{text[max(0, at - 60):at + 60]!r}")
        images = driver.execute_script(IMAGES)
        for src, complete, width in images:
            if not complete or not width:
                problems.append(f"{name}: image {src} did not load (naturalWidth {width})")
        if re.match(r"tutorials/\d\d_", name):
            figures = driver.execute_script(
                "return Array.from(document.querySelectorAll('img.sphx-glr-single-img, img.sphx-glr-multi-img'))"
                ".filter(i => i.complete && i.naturalWidth > 0).length")
            if figures < 1:
                problems.append(f"{name}: no figure shown")
            hrefs = driver.execute_script("return Array.from(document.links).map(a => a.getAttribute('href'))")
            for suffix in (".ipynb", ".py"):
                if not any(h and h.endswith(suffix) and "_downloads" in h for h in hrefs):
                    problems.append(f"{name}: no {suffix} download")
        for href in driver.execute_script("return Array.from(document.links).map(a => a.href)"):
            problems += broken_link(name, href, base, out, anchors_cache)
    assert {"index.html", "api.html"} <= set(math_pages), f"MathJax rendered nothing on {math_pages}"
    assert not problems, "\n".join(sorted(set(problems))[:40])


def broken_link(page, href, base, out, cache):
    if not href.startswith(base):
        return []  # external: not ours to check (the site needs no network)
    url = urlparse(href)
    path = out / unquote(url.path.lstrip("/"))
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return [f"{page}: broken link {href}"]
    if url.fragment and path.suffix == ".html":
        if path not in cache:
            cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
        if unquote(url.fragment) not in cache[path]:
            return [f"{page}: link {href} points to a missing anchor"]
    return []
