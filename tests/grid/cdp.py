"""cdp.py - a headless Chromium driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on descriptor 3, answers on 4, each message ended by a
NUL byte), enough for the dashboard test: open a page, evaluate JavaScript, take a
screenshot. The browser is started and stopped by PID."""

import base64
import fcntl
import json
import os
import select
import subprocess
import time


def _high(fd):
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    def __init__(self, chromium, profile_dir, log_path):
        # Well above 4, so that placing them at 3 and 4 in the child overwrites neither.
        to_child_r, self._w = (_high(fd) for fd in os.pipe())
        self._r, from_child_w = (_high(fd) for fd in os.pipe())

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
        self._log = open(log_path, "w")
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--remote-debugging-pipe", "--user-data-dir=" + profile_dir,
                "--window-size=1200,1000", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=fds, pass_fds=(3, 4, to_child_r, from_child_w),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.session = None

    def _send(self, method, params=None, session=None):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        return self._id

    def call(self, method, params=None, session=None, timeout=60):
        """Sends a command and returns its result (raises on an error or a timeout)."""
        want = self._send(method, params, session)
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if msg.get("id") == want:
                    if "error" in msg:
                        raise RuntimeError("%s: %s" % (method, msg["error"]))
                    return msg.get("result", {})
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(method)
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed its pipe")
                self._buf += chunk

    def open(self, url):
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                      self.session)
        return r.get("result", {}).get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
