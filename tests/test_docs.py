"""The documentation site: built with Sphinx + sphinx-gallery (tutorials executed in quick mode),
then opened in headless Chromium (driven by selenium) over a local HTTP server.

The build runs with ``-W``: a docutils or Sphinx warning (an import failure included) fails it.
Checked on every page: every image loaded (naturalWidth > 0), no raw TeX left in the text (MathJax
rendered it: no ``\\(``, ``\\[``, ``$...$`` or TeX command), no error-highlighted token (Pygments'
``.err``: an equation left in a code block), no "PAPERS.md" (the science page is on the site), no
absolute path of the build machine, previous/next links visible, and every internal link (and its
#anchor) resolves.  Tutorial pages must show every figure their script names (``"NN_name.png"``,
tutorial 08's graphs included) and offer the script and the notebook for download.

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
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "docs", str(out)], cwd=ROOT,
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
    names = ["index.html", "family.html", "science.html", "api.html", "tutorials/index.html"]
    names += sorted(os.path.relpath(p, out) for p in glob.glob(str(out / "tutorials" / "[0-9][0-9]_*.html")))
    return names


TEXT_OUTSIDE_CODE = """
const body = document.body.cloneNode(true);
body.querySelectorAll('pre, code, script, style, mjx-container, .MathJax, mjx-assistive-mml').forEach(e => e.remove());
return body.innerText;"""

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$\n]*\$|\\(frac|nabla|mathrm|sum|varepsilon)\b")

ERROR_TOKENS = """
return Array.from(document.querySelectorAll('.highlight .err')).map(e => e.textContent);"""

RELLINKS = """
return Array.from(document.querySelectorAll('nav#rellinks a'))
  .filter(a => a.offsetParent !== null && a.getBoundingClientRect().height > 0).map(a => a.title);"""

SHOWN_FIGURES = """
return Array.from(document.querySelectorAll('img')).filter(i => i.complete && i.naturalWidth > 0)
  .map(i => i.getAttribute('alt'));"""

BUILD_PATHS = [str(ROOT), os.path.expanduser("~"), tempfile.gettempdir()]


def expected_figures(page):
    """The figures tutorial NN names in its script: every "NN_name.png" string."""
    number = re.match(r"tutorials/(\d\d)_", page).group(1)
    source = ROOT / "tutorials" / (Path(page).stem + ".py")
    return set(re.findall(rf"""["']({number}_[\w.-]+\.png)["']""", source.read_text()))


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
    assert len(tutorials) >= 11, names
    assert any("08_seeing_double_backprop" in n for n in tutorials)
    assert any("11_when_adversarial_training_collapses" in n for n in tutorials)
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
        errors = driver.execute_script(ERROR_TOKENS)
        if errors:
            problems.append(f"{name}: {len(errors)} error-highlighted tokens (an equation in a code block?): "
                            f"{errors[:8]}")
        full_text = driver.execute_script("return document.body.innerText")
        if "PAPERS.md" in full_text:
            at = full_text.index("PAPERS.md")
            problems.append(f"{name}: cites PAPERS.md, which is not on the site: ...{full_text[max(0, at - 80):at + 20]!r}")
        for path in BUILD_PATHS + [str(out)]:
            if len(path) > 4 and path in full_text:
                problems.append(f"{name}: shows the build machine's path {path!r}")
        rel = driver.execute_script(RELLINKS)
        wanted = {"Previous document", "Next document"} if re.match(r"tutorials/\d\d_", name) else None
        if not rel or (wanted and not wanted <= set(rel)):
            problems.append(f"{name}: previous/next links not visible ({rel})")
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
            missing = expected_figures(name) - set(driver.execute_script(SHOWN_FIGURES))
            if missing:
                problems.append(f"{name}: figures not shown: {sorted(missing)}")
            hrefs = driver.execute_script("return Array.from(document.links).map(a => a.getAttribute('href'))")
            for suffix in (".ipynb", ".py"):
                if not any(h and h.endswith(suffix) and "_downloads" in h for h in hrefs):
                    problems.append(f"{name}: no {suffix} download")
        for href in driver.execute_script("return Array.from(document.links).map(a => a.href)"):
            problems += broken_link(name, href, base, out, anchors_cache)
    assert {"index.html", "api.html", "science.html"} <= set(math_pages), f"MathJax rendered nothing on {math_pages}"
    assert any("03_worst_case" in p for p in math_pages), f"tutorial 03's equations were not typeset: {math_pages}"
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


def test_family_tables_link_every_class(site, browser):
    """Every one of the README's family tables (the family, its neighbours, its successors) renders as a
    table (header rows as headers), and every name in their first column links to its API entry."""
    out, _ = site
    driver, base = browser
    driver.get(base + "family.html")
    tables = driver.execute_script("""
return Array.from(document.querySelectorAll('table')).map(t => ({
  header: Array.from(t.querySelectorAll('thead th')).map(c => c.innerText.trim()),
  firsts: Array.from(t.querySelectorAll('tbody tr')).map(r => {
    const c = r.querySelector('td'); const a = c.querySelector('a');
    return [c.innerText.trim(), a ? a.getAttribute('href') : null]; })}));""")
    family = (ROOT / "README.md").read_text().split("## The family", 1)[1].split("\n## ", 1)[0]
    assert len(tables) == family.count("\n| class |") >= 2, tables
    for table in tables:
        assert table["header"][:2] == ["class", "names in compare"], table["header"]
        assert not any(cell.startswith("class") for cell, _ in table["firsts"]), "a header row became a data row"
        unlinked = [cell for cell, href in table["firsts"] if not (href and "api.html#minigrad." in href)]
        assert not unlinked, f"not linked to the API: {unlinked}"


def test_science_citations_are_links(site):
    """Every "science page §N" on a page (outside code) is a link to that section of the science page."""
    out, _ = site
    for page in pages(out):
        html = re.sub(r"<code[^>]*>.*?</code>|<pre>.*?</pre>", "", (out / page).read_text(), flags=re.S)
        text_citations = len(re.findall(r"science page §\d+", re.sub(r"<[^>]+>", "", html)))
        linked = len(re.findall(r'href="[^"]*science\.html#science-\d+[^"]*"><span[^>]*>science page §', html))
        assert linked == text_citations, f"{page}: {text_citations} citations, {linked} linked"
