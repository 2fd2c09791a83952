"""/docs works offline: every file it loads comes from this server, and no script is inline."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.urls.append(str(found["src"]))
            else:
                self._in_script = True
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


async def test_docs_page_loads_only_local_files(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    loads = _Loads()
    loads.feed(page.text)
    assert loads.inline_scripts == 0
    assert sorted(loads.urls) == [
        "docs/favicon-32x32.png",
        "docs/swagger-init.js",
        "docs/swagger-ui-bundle.js",
        "docs/swagger-ui.css",
    ]
    for url in loads.urls:
        absolute = urljoin("http://test/docs", url)
        assert absolute.startswith("http://test/docs/"), absolute
        asset = await http.get(absolute)
        assert asset.status_code == 200, url
        assert asset.content, url
    bundle = await http.get("/docs/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert "javascript" in bundle.headers["content-type"]
    assert 'data-openapi-url="openapi.json"' in page.text
    assert (await http.get(urljoin("http://test/docs", "openapi.json"))).status_code == 200


async def test_docs_serves_nothing_else(http: httpx.AsyncClient) -> None:
    for name in ("index.html", "oauth2-redirect.html", "swagger-ui-bundle.js.map"):
        response = await http.get(f"/docs/{name}")
        assert response.status_code == 404, name
