"""test_http_dashboard.py - the dashboard (GET /) of `gryphgen serve --http` in headless
Chromium (Debian's chromium, driven over the DevTools protocol): the first visit carries
?token=, the answer keeps it in an HttpOnly, SameSite cookie, and the page's own requests
then authenticate with it; the page renders the submitted tasks, the counts and the node,
shows a task submitted after it loaded (through the event stream) and a failed task among
the recent failures, and a screenshot is taken. Without a token the page is 401."""

import os
import shutil
import urllib.request

from gridtest import check, finish, free_port, skip, start, stop_all, tmpdir, wait_until
from httptest import api_url, call, jsonl, task, token_file

chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if not chromium:
    skip("chromium is not installed (Debian package chromium)")
from cdp import Browser  # noqa: E402

work = tmpdir()
OBS, SUB = "obs-" + os.urandom(12).hex(), "sub-" + os.urandom(12).hex()
tokens = token_file(os.path.join(work, "tokens"), ["%s observer" % OBS, "%s submitter" % SUB])
browser = None
try:
    log = os.path.join(work, "serve.log")
    proc = start(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--db",
                  os.path.join(work, "grid.db"), "--local", "1", "--http", "127.0.0.1:0",
                  "--http-tokens", tokens], log)
    url = api_url(log, proc)
    check(url is not None, "serve prints its HTTP API URL")
    st, body, _ = call(url + "/v1/tasks", "POST", SUB,
                       jsonl([task("dash-a"), task("dash-b"), task("dash-bad", passes=False)]))
    check(st == 201, "three tasks are taken", (st, body))
    st, _, _ = call(url + "/")
    check(st == 401, "the dashboard without a token: 401", st)
    with urllib.request.urlopen(url + "/?token=" + OBS, timeout=60) as r:
        page, cookie = r.read().decode(), r.headers.get("Set-Cookie", "")
    check("HttpOnly" in cookie and "SameSite=Strict" in cookie and OBS in cookie,
          "?token= is kept in an HttpOnly, SameSite cookie", cookie.replace(OBS, "TOKEN"))
    check("<script src" not in page and "http://" not in page and "https://" not in page,
          "the page loads nothing from elsewhere")

    browser = Browser(chromium, os.path.join(work, "profile"), os.path.join(work, "chromium.log"))
    browser.open(url + "/?token=" + OBS)
    rows = "Array.from(document.querySelectorAll('#tasks tr')).map(r => r.dataset.taskId)"
    shown = wait_until(lambda: (lambda ids: ids if ids and {"dash-a", "dash-b",
                                "dash-bad"} <= set(ids) else None)(browser.evaluate(rows)))
    check(shown is not None, "the page lists the submitted tasks", browser.evaluate(rows))
    check(browser.evaluate("location.search") == "", "the token is gone from the address bar")
    check(wait_until(lambda: "dash-bad" in (browser.evaluate(
        "document.getElementById('failures').textContent") or "")),
        "the failed task is among the recent failures")
    check(wait_until(lambda: browser.evaluate(
        "document.querySelector('#count-passed b') && "
        "document.querySelector('#count-passed b').textContent") == "2"),
        "the counts show two passed tasks")
    check(wait_until(lambda: "local" in (browser.evaluate(
        "document.getElementById('nodes').textContent") or "")), "the node is listed")
    # A task submitted now reaches the page through the event stream (open by now: the
    # stream's answer begins once the server watches the grid).
    check(wait_until(lambda: browser.evaluate("document.body.dataset.stream") == "open"),
          "the page's event stream is open")
    st, body, _ = call(url + "/v1/tasks", "POST", SUB, jsonl([task("dash-live")]))
    check(st == 201, "a task submitted while the page is open is taken", (st, body))
    live = wait_until(lambda: (lambda ids: ids and "dash-live" in ids)(browser.evaluate(rows)))
    check(bool(live), "the page shows it, passed", browser.evaluate(rows))
    check(wait_until(lambda: browser.evaluate(
        "Array.from(document.querySelectorAll('#tasks tr')).filter(r => r.dataset.taskId == "
        "'dash-live').map(r => r.children[1].textContent)[0]") == "passed"),
        "its status turns passed live")
    shot = os.path.join(work, "dashboard.png")
    browser.screenshot(shot)
    with open(shot, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "a screenshot is taken", shot)
    print("screenshot: " + shot)
finally:
    if browser is not None:
        browser.close()
    stop_all()
finish()
