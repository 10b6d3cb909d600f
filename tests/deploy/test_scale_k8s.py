"""test_scale_k8s.py - `gryphgen scale --engine kubernetes` against a fake API server (a small
http.server on loopback that keeps one Deployment's replicas and checks the bearer token, the
path of the scale subresource and the merge-patch body). With tasks queued the scaler raises
the replicas (to --max-jobs at most); once none waits and the need has stayed lower for
--idle-s it lowers them to --min-jobs; SIGTERM sets them to 0. Also: a wrong token, a server
that is down, a kubeconfig, refused settings (http:// off loopback, bad names), and over
HTTPS (a self-signed certificate made with openssl, when installed): the CA given by
--k8s-ca or a kubeconfig's certificate-authority-data is trusted, another CA is not."""

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
from gridtest import (GUARD_S, GRYPHGEN, check, env, finish, free_port, gg,  # noqa: E402
                      read_log, start, status, stop_all, tmpdir, up, wait_until)

TOKEN = "fake-token-123"
NS, NAME = "grid", "gryphgen-worker"
PATH = "/apis/apps/v1/namespaces/%s/deployments/%s/scale" % (NS, NAME)


class Fake:
    replicas = 0
    log = []       # (method, path, body)
    refused = []   # why requests were refused
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def _reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _check(self):
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            Fake.refused.append("token")
            self._reply(401, {"kind": "Status", "message": "Unauthorized"})
            return False
        if self.path != PATH:
            Fake.refused.append("path " + self.path)
            self._reply(404, {"kind": "Status", "message": "not found"})
            return False
        return True

    def _scale(self):
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": NAME, "namespace": NS},
                "spec": {"replicas": Fake.replicas}, "status": {"replicas": Fake.replicas}}

    def do_GET(self):
        if self._check():
            with Fake.lock:
                Fake.log.append(("GET", self.path, None))
                self._reply(200, self._scale())

    def do_PATCH(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        if not self._check():
            return
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            Fake.refused.append("content type " + str(self.headers.get("Content-Type")))
            self._reply(415, {"kind": "Status", "message": "unsupported media type"})
            return
        try:
            r = json.loads(body)["spec"]["replicas"]
            assert isinstance(r, int) and r >= 0
        except (ValueError, KeyError, TypeError, AssertionError):
            Fake.refused.append("body " + body)
            self._reply(422, {"kind": "Status", "message": "bad body"})
            return
        with Fake.lock:
            Fake.replicas = r
            Fake.log.append(("PATCH", self.path, r))
            self._reply(200, self._scale())

    def log_message(self, *a):
        pass


work = tmpdir()
api = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=api.serve_forever, daemon=True).start()
server = "http://127.0.0.1:%d" % api.server_address[1]
token_file = os.path.join(work, "token")
with open(token_file, "w") as f:
    f.write(TOKEN + "\n")
os.chmod(token_file, 0o600)
db = os.path.join(work, "grid.db")
ep = "tcp://127.0.0.1:%d" % free_port()
K8S = ["--engine", "kubernetes", "--k8s-namespace", NS, "--k8s-deployment", NAME]


def scaler(extra, log):
    return subprocess.Popen([GRYPHGEN, "scale", "--insecure", "--connect", ep] + K8S + extra,
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=env())


def make_cert(name):
    """A self-signed certificate for 127.0.0.1 and its key, or None without openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    cert, key = os.path.join(work, name + ".pem"), os.path.join(work, name + ".key")
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, text=True)
    return (cert, key) if p.returncode == 0 else None


def tls_part():
    made, other = make_cert("api"), make_cert("other")
    if not (made and other):
        print("skipped (TLS part): no openssl")
        return
    tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*made)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    url = "https://127.0.0.1:%d" % tls.server_address[1]
    try:
        before = len(patches())
        log = os.path.join(work, "scale-tls.log")
        s = scaler(["--k8s-server", url, "--k8s-token-file", token_file, "--k8s-ca", made[0],
                    "--min-jobs", "1", "--poll-ms", "200"], log)
        check(wait_until(lambda: patches()[before:][:1] == [1]),
              "HTTPS with --k8s-ca: up to --min-jobs 1", read_log(log))
        s.send_signal(signal.SIGTERM)
        check(s.wait(timeout=GUARD_S) == 0 and patches()[-1:] == [0],
              "... and 0 at SIGTERM", read_log(log))
        kc = os.path.join(work, "kubeconfig-tls")
        with open(made[0], "rb") as f:
            ca_data = base64.b64encode(f.read()).decode()
        with open(kc, "w") as f:
            f.write("clusters:\n- cluster:\n    certificate-authority-data: %s\n"
                    "    server: %s\n  name: c\nusers:\n- name: u\n  user:\n"
                    "    token: %s\n" % (ca_data, url, TOKEN))
        before = len(patches())
        log = os.path.join(work, "scale-tls-kc.log")
        s = scaler(["--kubeconfig", kc, "--min-jobs", "1", "--poll-ms", "200"], log)
        check(wait_until(lambda: patches()[before:][:1] == [1]),
              "HTTPS with a kubeconfig's certificate-authority-data", read_log(log))
        s.send_signal(signal.SIGTERM)
        check(s.wait(timeout=GUARD_S) == 0, "... and it ends with status 0", read_log(log))
        before = len(patches())
        log = os.path.join(work, "scale-tls-bad.log")
        s = scaler(["--k8s-server", url, "--k8s-token-file", token_file, "--k8s-ca", other[0],
                    "--min-jobs", "1", "--poll-ms", "200"], log)
        check(wait_until(lambda: read_log(log).count("GET " + url) >= 2),
              "another CA: the server is not trusted, and each look says so", read_log(log))
        s.send_signal(signal.SIGTERM)
        check(s.wait(timeout=GUARD_S) == 1 and len(patches()) == before,
              "... nothing was changed, and the scaler ends with status 1", read_log(log))
    finally:
        tls.shutdown()


def patches():
    with Fake.lock:
        return [e[2] for e in Fake.log if e[0] == "PATCH"]


try:
    serve = start(["serve", "--insecure", "--bind", ep, "--db", db],
                  os.path.join(work, "serve.log"))
    up("serve answers", lambda: status(ep) is not None, serve)

    # Refusals before anything runs.
    for args, what, word in (
            (["--k8s-server", server], "--k8s-server without a token file", "--k8s-token-file"),
            (["--k8s-server", "http://example.com", "--k8s-token-file", token_file],
             "plain http off loopback", "https"),
            (["--k8s-server", server, "--k8s-token-file", token_file, "--k8s-namespace",
              "Bad_NS"], "a namespace that is not a Kubernetes name", "namespace"),
            (["--k8s-server", server, "--k8s-token-file", token_file, "--sbatch-arg", "-p"],
             "--sbatch-arg with kubernetes", "--sbatch-arg"),
            (["--k8s-server", server, "--k8s-token-file", os.path.join(work, "none")],
             "a token file that is not there", "token file"),
            (["--k8s-server", server, "--k8s-token-file", token_file, "--generator", "openai"],
             "a worker option (the pod template has them)", "pod template"),
            (["--k8s-server", server, "--k8s-token-file", token_file, "--log-level", "loud"],
             "a bad --log-level", "--log-level"),
            (["--k8s-server", server, "--k8s-token-file", token_file, "--min-jobs", "5",
              "--max-jobs", "4"], "--min-jobs over --max-jobs", "--min-jobs")):
        p = gg(["scale", "--insecure", "--connect", ep] + K8S + args, timeout=GUARD_S)
        check(p.returncode == 2 and word in p.stderr, "scale refuses " + what,
              (p.returncode, p.stderr))
    p = subprocess.run([GRYPHGEN, "scale", "--insecure", "--connect", ep] + K8S,
                       capture_output=True, text=True, timeout=GUARD_S,
                       env={k: v for k, v in env().items()
                            if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")})
    check(p.returncode == 2 and "no API server" in p.stderr,
          "without a server, kubeconfig or service account it says what to give", p.stderr)

    # A wrong token: the API server's 401 is reported, and nothing is changed.
    bad = os.path.join(work, "bad-token")
    with open(bad, "w") as f:
        f.write("wrong\n")
    log = os.path.join(work, "scale-bad.log")
    s = scaler(["--k8s-server", server, "--k8s-token-file", bad, "--poll-ms", "200"], log)
    check(wait_until(lambda: "HTTP 401" in read_log(log)), "a wrong token: HTTP 401 reported",
          read_log(log))
    s.send_signal(signal.SIGTERM)
    check(s.wait(timeout=GUARD_S) == 1, "... and the scaler ends with status 1")
    check(patches() == [] and "token" in Fake.refused, "nothing was changed with it")

    # A server that is down: the scaler says so and keeps trying.
    down = "http://127.0.0.1:%d" % free_port()
    log = os.path.join(work, "scale-down.log")
    s = scaler(["--k8s-server", down, "--k8s-token-file", token_file, "--poll-ms", "200"], log)
    check(wait_until(lambda: read_log(log).count("GET " + down) >= 2),
          "a server that is down: each look says so", read_log(log))
    check(s.poll() is None, "... and the scaler keeps going")
    s.send_signal(signal.SIGTERM)
    check(s.wait(timeout=GUARD_S) == 1, "... and ends with status 1 (it could not scale to 0)")

    # Up with the queue, down when it empties, 0 at SIGTERM; via a kubeconfig.
    kc = os.path.join(work, "kubeconfig")
    with open(kc, "w") as f:
        f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
                "    server: \"%s\"\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                "current-context: x\nusers:\n- name: u\n  user:\n    token: %s\n"
                % (server, TOKEN))
    tasks = os.path.join(work, "t.jsonl")
    with open(tasks, "w") as f:
        for i in range(5):
            f.write(json.dumps({"task_id": "t%d" % i, "language": "python", "prompt": "",
                                "entry_point": "f", "test": "assert f() == 1\n",
                                "candidates": ["def f():\n    return 1\n"]}) + "\n")
    check(gg(["submit", "--insecure", "--connect", ep, tasks]).returncode == 0, "submitted")
    log = os.path.join(work, "scale.log")
    s = scaler(["--kubeconfig", kc, "--min-jobs", "1", "--max-jobs", "3", "--slots", "2",
                "--idle-s", "1", "--poll-ms", "200", "--log-level", "info"], log)
    check(wait_until(lambda: 3 in patches()), "5 tasks waiting, 2 slots a worker: 3 replicas",
          (patches(), read_log(log)))
    check(max(patches()) == 3, "never more than --max-jobs", patches())
    # No worker joins (no cluster here): the tasks are cancelled so that the queue empties.
    for i in range(5):
        gg(["cancel", "--insecure", "--connect", ep, "t%d" % i])
    check(wait_until(lambda: patches()[-1:] == [1]), "no task left: down to --min-jobs 1",
          (patches(), read_log(log)))
    s.send_signal(signal.SIGTERM)
    check(s.wait(timeout=GUARD_S) == 0, "SIGTERM ends the scaler with status 0", read_log(log))
    check(patches()[-1:] == [0] and Fake.replicas == 0, "... and sets the replicas to 0",
          patches())
    tls_part()
    check(not [r for r in Fake.refused if r != "token"],
          "every request had the right path, content type and body", Fake.refused)
finally:
    stop_all()
    api.shutdown()
    shutil.rmtree(work, ignore_errors=True)
finish()
