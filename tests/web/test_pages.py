"""Serving the built pages (api/veche_api/routes/web.py) without a chain: a clear 503 when the
pages are not built, the pages and assets when they are, nothing outside the build directory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from veche_api import errors
from veche_api.routes import web


def client() -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(web.router)
    return TestClient(app)


def test_unbuilt_pages_say_how_to_build_them(tmp_path, monkeypatch):
    monkeypatch.setenv("VECHE_WEB_DIST", str(tmp_path / "missing"))
    http = client()
    for path in ("/", "/results", "/assets/resident.js"):
        reply = http.get(path)
        assert reply.status_code == 503
        assert "run `make web`" in reply.text and reply.headers["content-type"].startswith("text/plain")


def test_built_pages_and_assets(tmp_path, monkeypatch):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>resident</title>")
    (tmp_path / "results.html").write_text("<!doctype html><title>results</title>")
    (tmp_path / "assets" / "resident.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not an asset")
    monkeypatch.setenv("VECHE_WEB_DIST", str(tmp_path))
    http = client()
    page = http.get("/")
    assert page.status_code == 200 and "resident" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "results" in http.get("/results").text
    script = http.get("/assets/resident.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for path in ("/assets/..%2Fsecret.txt", "/assets/%2E%2E%2Fsecret.txt", "/assets/.hidden", "/assets/missing.js"):
        reply = http.get(path)
        assert reply.status_code == 404, path
        assert reply.json()["error"]["code"] == "http.not_found"
