"""The explorer page (``embeddings/explorer.py``), opened in the system's Chromium: it draws
every point, colours them by a column, lists a clicked point's nearest neighbours, shows a
hovered point's values and thumbnail, selects with a box or a lasso, requests nothing, and no
value of the data can turn into markup or script."""

import base64
import io
import json
import os
import re
import time

import numpy as np
import pytest

from dataplat_dagster.embeddings.explorer import ExplorerData, explorer_html, write_explorer

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "</script><script>window.pwned=1</script>"
HOSTILE_ID = "images/<img src=x onerror=window.pwned=2>.png"
QUOTED = "He said \"hi\" & 'bye' <b>"
LABELS = ["alpha", "beta", "gamma"]
CENTERS = [(0.0, 0.0), (10.0, 0.0), (5.0, 8.0)]
PER_CLUSTER, K = 300, 8
SIZE_BOUND = 25_000_000  # bytes, for 100,000 points, k=10, 8 columns


def clusters():
    """Three well separated gaussian clusters; point 0 is the most isolated point, so a
    mouse at its position finds it and nothing else."""
    rng = np.random.default_rng(7)
    xy = np.concatenate([rng.normal(center, 0.7, size=(PER_CLUSTER, 2)) for center in CENTERS]).astype(np.float32)
    cluster = np.repeat(np.arange(len(CENTERS)), PER_CLUSTER)
    gaps = np.linalg.norm(xy[:, None, :].astype(np.float64) - xy[None, :, :], axis=2)
    np.fill_diagonal(gaps, np.inf)
    loner = int(gaps.min(axis=1).argmax())
    order = np.array([loner] + [i for i in range(len(xy)) if i != loner])
    return xy[order], cluster[order]


def exact_neighbors(xy: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    distances = np.linalg.norm(xy[:, None, :].astype(np.float64) - xy[None, :, :], axis=2)
    np.fill_diagonal(distances, np.inf)
    near = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return near.astype(np.int32), np.take_along_axis(distances, near, axis=1).astype(np.float32)


def thumbnail() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_data() -> tuple[ExplorerData, np.ndarray]:
    xy, cluster = clusters()
    n = len(xy)
    near, far = exact_neighbors(xy, K)
    ids = [f"images/{LABELS[c]}/{i:04d}.png" for i, c in enumerate(cluster)]
    ids[0] = HOSTILE_ID
    names = [f"point {i}" for i in range(n)]
    names[0] = HOSTILE
    data = ExplorerData(
        title="Embeddings of image folder 'shapes' <test>",
        ids=ids, x=xy[:, 0], y=xy[:, 1],
        columns={
            "label": [LABELS[c] for c in cluster],
            "score": [None if i % 7 == 3 else float(xy[i, 0] + xy[i, 1]) for i in range(n)],
            "name": names,
            QUOTED: [["yes", "no", None][i % 3] for i in range(n)],
        },
        neighbors=near, distances=far, color_by="label", thumbnails={0: thumbnail()},
        info={"model": "test-model", "dimension": "2", "map": "identity", "metric": "euclidean", "points": f"{n:,}"},
    )
    return data, cluster


def test_explorer_html_escapes_every_value_and_keeps_the_data():
    data, _ = sample_data()
    page = explorer_html(data)
    for hostile in (HOSTILE, HOSTILE_ID, QUOTED, "<test>"):
        assert hostile not in page
    # Only the page's own two script elements end; nothing comes from elsewhere.
    assert page.count("</script>") == 2
    assert "://" not in page and "<link" not in page
    assert "&lt;test&gt;" in page
    embedded = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.DOTALL).group(1)
    payload = json.loads(embedded)
    assert payload["title"] == data.title
    assert payload["ids"][0] == HOSTILE_ID
    assert np.array_equal(np.frombuffer(base64.b64decode(payload["x"]), "<f4"), data.x)
    assert np.array_equal(np.frombuffer(base64.b64decode(payload["neighbors"]), "<i4").reshape(-1, K), data.neighbors)
    columns = {c["name"]: c for c in payload["columns"]}
    name = columns["name"]
    codes = np.frombuffer(base64.b64decode(name["data"]), "<u2")
    assert [name["values"][c] for c in codes] == data.columns["name"]
    score = np.frombuffer(base64.b64decode(columns["score"]["data"]), "<f4")
    assert np.isnan(score[3]) and score[0] == np.float32(data.columns["score"][0])
    assert columns[QUOTED]["values"][-1] is None  # null, listed last


def test_row_positions_as_ids_are_not_shipped():
    data, _ = sample_data()
    data.ids = [str(i) for i in range(len(data.ids))]
    payload = json.loads(re.search(r'id="explorer-data">(.*?)</script>', explorer_html(data), re.DOTALL).group(1))
    assert payload["ids"] is None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"No Chromium at {CHROMIUM} to open the explorer page in (Debian: apt-get install chromium).")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


class Opened:
    """A page of the explorer, with what it requested and what went wrong in it."""

    def __init__(self, browser, path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.requests, self.errors = [], []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.goto(path.as_uri())
        self.page.wait_for_function("() => window.explorer && window.explorer.ready === true", timeout=60_000)

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def at(self, i) -> tuple[float, float]:
        """Point i's position in the page (viewport pixels)."""
        box = self.page.locator("#map").bounding_box()
        spot = self.js("i => window.explorer.screenPosition(i)", i)
        return box["x"] + spot["x"], box["y"] + spot["y"]

    def colors(self, n) -> list[str]:
        return self.js("n => Array.from({length: n}, (_, i) => window.explorer.colorOf(i))", n)

    def texts(self, selector) -> list[str]:
        return self.page.locator(selector).all_text_contents()


def test_explorer_page_in_chromium(browser, tmp_path):
    data, cluster = sample_data()
    n = len(data.ids)
    path = tmp_path / "explorer.html"
    write_explorer(data, path)
    opened = Opened(browser, path)
    page = opened.page

    # Every point drawn, on a canvas that is no longer blank.
    assert opened.js("window.explorer.drawnPoints") == n
    inked = opened.js("""() => {
        const canvas = document.getElementById('map');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let count = 0;
        for (let p = 0; p < pixels.length; p += 4) {
            if (pixels[p] < 250 || pixels[p + 1] < 250 || pixels[p + 2] < 250) count++;
        }
        return count;
    }""")
    assert inked >= n  # a point is at least 2x2 pixels; clusters overlap some
    assert page.locator("#title").text_content() == data.title
    assert "test-model" in page.locator("#info").text_content()

    # Colour by label: one colour per cluster, three different ones.
    options = opened.texts("#color-by option")
    assert options == ["(none)", "label", "score", "name", QUOTED]
    colors = opened.colors(n)
    by_cluster = [{colors[i] for i in range(n) if cluster[i] == c} for c in range(3)]
    assert all(len(found) == 1 for found in by_cluster)
    assert len(set.union(*by_cluster)) == 3
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colors)
    legend = page.locator("#legend").text_content()
    assert all(label in legend for label in LABELS)

    # By score: a scale, so colours change and vary within a cluster; points without a score share one grey.
    page.select_option("#color-by", label="score")
    scored = opened.colors(n)
    assert sum(a != b for a, b in zip(colors, scored)) > n * 0.9
    assert len({scored[i] for i in range(n) if cluster[i] == 0}) > 20
    assert len({scored[i] for i in range(n) if data.columns["score"][i] is None}) == 1
    page.select_option("#color-by", label="(none)")
    assert len(set(opened.colors(n))) == 1
    page.select_option("#color-by", label=QUOTED)
    assert len(set(opened.colors(n))) == 3
    page.select_option("#color-by", label="label")
    assert opened.colors(n) == colors

    # Hover: the tooltip shows the point's id, values and thumbnail, as text.
    page.mouse.move(*opened.at(0))
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.text_content()
    assert HOSTILE_ID in text and HOSTILE in text and QUOTED in text and "alpha" in text
    assert tooltip.locator("img").get_attribute("src") == data.thumbnails[0]
    assert tooltip.locator("script").count() == 0 and tooltip.locator("b").count() == 0
    assert opened.js("typeof window.pwned") == "undefined"
    page.mouse.move(*(v + 40 for v in opened.at(1)))  # nowhere near a point
    page.mouse.move(*opened.at(1))
    assert tooltip.locator("img").count() == 0 and data.ids[1] in tooltip.text_content()

    # Click: the point's neighbours, nearest first, with distances and the colour column's value.
    page.mouse.click(*opened.at(0))
    assert opened.js("window.explorer.selectedIds()") == [data.ids[0]]
    listed = opened.texts("#neighbors li .nid")
    assert listed == [data.ids[j] for j in data.neighbors[0]]
    assert opened.js("i => window.explorer.neighborsOf(i)", 0) == listed
    shown = [float(t) for t in opened.texts("#neighbors li .ndist")]
    assert np.allclose(shown, data.distances[0], rtol=1e-3)
    assert opened.texts("#neighbors li .nval")[0].strip() == "label: " + data.columns["label"][data.neighbors[0][0]]
    assert page.locator("#focus-id").text_content() == HOSTILE_ID

    # A neighbour in the list selects that point, and lists its own neighbours.
    first = int(data.neighbors[0][0])
    page.locator("#neighbors li").first.click()
    assert page.locator("#focus-id").text_content() == data.ids[first]
    assert opened.texts("#neighbors li .nid") == [data.ids[j] for j in data.neighbors[first]]

    # Escape clears it.
    page.keyboard.press("Escape")
    assert opened.js("window.explorer.selectedIds()") == []
    assert opened.texts("#neighbors li") == []

    # A box over one cluster's bounds selects exactly that cluster.
    for c in range(3):
        members = cluster == c
        x0, x1 = float(data.x[members].min()), float(data.x[members].max())
        y0, y1 = float(data.y[members].min()), float(data.y[members].max())
        inside = (data.x >= x0) & (data.x <= x1) & (data.y >= y0) & (data.y <= y1)
        assert (inside == members).all()  # the clusters' bounds do not overlap
        opened.js("b => window.explorer.selectRect(...b)", [x0, y0, x1, y1])
        expected = [data.ids[i] for i in np.flatnonzero(members)]
        assert page.locator("#selection-ids").input_value().split("\n") == expected
        assert opened.js("window.explorer.selectedIds()") == expected
        assert page.locator("#selection-count").text_content() == f"{PER_CLUSTER} points selected."

    # With the mouse: Shift+drag a box around cluster 1, Alt+drag a lasso around cluster 2.
    def corners(c, pad=12):
        """Cluster c's bounds on the page, a little wider, within the canvas (the drag starts on it)."""
        box = page.locator("#map").bounding_box()
        spots = opened.js("ids => ids.map(i => window.explorer.screenPosition(i))", np.flatnonzero(cluster == c).tolist())
        xs, ys = [box["x"] + s["x"] for s in spots], [box["y"] + s["y"] for s in spots]
        return (max(box["x"] + 1, min(xs) - pad), max(box["y"] + 1, min(ys) - pad),
                min(box["x"] + box["width"] - 1, max(xs) + pad), min(box["y"] + box["height"] - 1, max(ys) + pad))

    left, top, right, bottom = corners(1)
    page.keyboard.down("Shift")
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move(right, bottom, steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert opened.js("window.explorer.selectedIds()") == [data.ids[i] for i in np.flatnonzero(cluster == 1)]

    left, top, right, bottom = corners(2)
    middle = (left + right) / 2
    page.keyboard.down("Alt")
    page.mouse.move(middle, top)
    page.mouse.down()
    for x, y in [(right, top), (right, bottom), (left, bottom), (left, top), (middle, top)]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()
    page.keyboard.up("Alt")
    assert opened.js("window.explorer.selectedIds()") == [data.ids[i] for i in np.flatnonzero(cluster == 2)]
    page.click("#copy-ids")
    page.wait_for_function("() => document.getElementById('copy-status').textContent !== ''")

    # Find a point by its id.
    page.fill("#find", data.ids[5])
    page.press("#find", "Enter")
    assert opened.js("window.explorer.selectedIds()") == [data.ids[5]]
    assert opened.texts("#neighbors li .nid") == [data.ids[j] for j in data.neighbors[5]]

    # Drag pans, the wheel zooms about the cursor, Fit shows every point again.
    page.keyboard.press("Escape")
    start = opened.at(1)
    page.mouse.move(start[0] + 3, start[1] + 3)
    page.mouse.down()
    page.mouse.move(start[0] + 53, start[1] + 33, steps=5)
    page.mouse.up()
    moved = opened.at(1)
    assert moved == pytest.approx((start[0] + 50, start[1] + 30), abs=0.01)
    assert opened.js("window.explorer.selectedIds()") == []  # a drag is not a click
    page.mouse.move(*moved)
    page.mouse.wheel(0, -800)
    page.wait_for_function("n => window.explorer.drawnPoints < n", arg=n)  # the count drawn, not n
    assert opened.at(1) == pytest.approx(moved, abs=2)  # the cursor sits on whole pixels, the point need not
    zoomed = np.hypot(*np.subtract(opened.at(2), opened.at(1)))
    page.click("#fit")
    page.wait_for_function("n => window.explorer.drawnPoints === n", arg=n)
    assert opened.at(1) == pytest.approx(start, abs=0.01)
    assert zoomed > 2 * np.hypot(*np.subtract(opened.at(2), opened.at(1)))

    # Nothing was requested but the page itself and its inline images; nothing went wrong.
    assert opened.requests and all(url.startswith(("file:", "data:", "blob:")) for url in opened.requests)
    assert opened.js("typeof window.pwned") == "undefined"
    assert opened.errors == []
    page.screenshot(path=str(tmp_path / "explorer.png"))
    page.close()


def test_explorer_page_of_100000_points(browser, tmp_path):
    n, k = 100_000, 10
    rng = np.random.default_rng(3)
    xy = np.concatenate([rng.normal(center, 1.0, size=(n // 4, 2)) for center in [(0, 0), (6, 1), (2, 7), (8, 8)]])
    xy = xy.astype(np.float32)
    columns = {
        "label": [f"class {i % 25}" for i in range(n)],
        "score": [None if i % 50 == 0 else float(v) for i, v in enumerate(rng.random(n))],
        "name": [f"item {i}" for i in range(n)],
        "count": rng.integers(0, 5000, n).tolist(),
        "flag": [i % 3 == 0 for i in range(n)],
        "city": [f"city {v}" for v in rng.integers(0, 400, n)],
        "price": rng.lognormal(size=n).tolist(),
        "year": [2000 + i % 12 for i in range(n)],
    }
    data = ExplorerData(
        title="Embeddings of dataset 'big'", ids=[str(i) for i in range(n)], x=xy[:, 0], y=xy[:, 1], columns=columns,
        neighbors=rng.integers(0, n, size=(n, k)).astype(np.int32),
        distances=np.sort(rng.random((n, k)), axis=1).astype(np.float32), color_by="label",
        info={"points": f"{n:,}"},
    )
    started = time.perf_counter()
    page_text = explorer_html(data)
    built = time.perf_counter() - started
    size = len(page_text.encode("utf-8"))
    print(f"\nexplorer page of {n:,} points, k={k}, {len(columns)} columns: {size / 1e6:.1f} MB, built in {built:.2f} s")
    assert size < SIZE_BOUND

    path = tmp_path / "big.html"
    path.write_text(page_text, encoding="utf-8")
    opened = Opened(browser, path)
    assert opened.js("window.explorer.drawnPoints") == n
    redraw = opened.js("""() => {
        const started = performance.now();
        window.explorer.setColorBy('price');
        window.explorer.draw();
        return performance.now() - started;
    }""")
    print(f"recolour and redraw of {n:,} points in Chromium: {redraw:.1f} ms")
    assert opened.js("window.explorer.drawnPoints") == n
    assert opened.errors == []
    opened.page.close()


def test_explorer_page_on_a_high_density_screen(browser, tmp_path):
    data, _ = sample_data()
    path = tmp_path / "explorer.html"
    write_explorer(data, path)
    page = browser.new_page(viewport={"width": 1000, "height": 700}, device_scale_factor=2)
    page.goto(path.as_uri())
    page.wait_for_function("() => window.explorer && window.explorer.ready === true")
    size = page.evaluate("() => { const c = document.getElementById('map'); "
                         "return [c.width, c.height, c.clientWidth, c.clientHeight]; }")
    assert size[:2] == [round(2 * size[2]), round(2 * size[3])]
    assert page.evaluate("window.explorer.drawnPoints") == len(data.ids)
    box = page.locator("#map").bounding_box()
    spot = page.evaluate("window.explorer.screenPosition(0)")
    page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])
    assert page.locator("#neighbors li .nid").all_text_contents() == [data.ids[j] for j in data.neighbors[0]]
    page.close()


@pytest.mark.parametrize("n", [0, 1])
def test_explorer_page_of_almost_nothing(browser, tmp_path, n):
    data = ExplorerData(
        title="Nothing much", ids=[str(i) for i in range(n)], x=np.zeros(n, np.float32), y=np.zeros(n, np.float32),
        columns={"label": ["only"] * n}, neighbors=np.zeros((n, 0), np.int32), distances=np.zeros((n, 0), np.float32),
        color_by="label",
    )
    path = tmp_path / "explorer.html"
    write_explorer(data, path)
    opened = Opened(browser, path)
    assert opened.js("window.explorer.drawnPoints") == n
    if n:
        opened.page.mouse.click(*opened.at(0))
        assert opened.js("window.explorer.selectedIds()") == ["0"]
        assert opened.texts("#neighbors li") == []
    assert opened.errors == []
    opened.page.close()
