"""``/docs``: Swagger UI served from the package, so the API docs work offline.

The page loads Swagger UI's files (copied from the swagger-ui-dist npm package
into the dashboard build, ``web/dist/docs/``) and a starter script of our own:
no CDN, and no inline script, so it needs nothing but ``'self'`` under a
Content-Security-Policy. FastAPI's own ``/docs`` (CDN assets, an inline
script) is turned off in ``app.create_app``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from attendance_live.service.errors import NotFound

__all__ = ["ASSETS", "router"]

ASSETS = Path(__file__).resolve().parent.parent / "web" / "dist" / "docs"
_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js", "favicon-32x32.png"}

# Relative URLs: the page also works behind a proxy that serves the app under a prefix.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attendance-live API</title>
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="openapi.json"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-init.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> HTMLResponse:
    if not (ASSETS / "swagger-ui-bundle.js").is_file():
        raise NotFound(
            "The API docs' assets are missing from this installation: "
            "run `npm --prefix web ci && npm --prefix web run build`; /openapi.json works without them"
        )
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-cache"})


@router.get("/docs/{name}")
async def docs_asset(name: str) -> FileResponse:
    if name not in _FILES or not (ASSETS / name).is_file():
        raise NotFound(f"No such file: /docs/{name}; the API docs are at /docs")
    return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
