"""test_http_openapi.py - docs/openapi.yaml and the routes of `gryphgen serve --http` agree:
every (method, path) the sources register (lib/http/*.c) is in the file and every one in the
file is registered, and a running serve answers each path of the file with something other
than "no such path" or 405."""

import os
import re
import socket

from gridtest import GUARD_S, check, finish, free_port, skip, start, stop_all, tmpdir
from clitest import SOURCE_ROOT  # noqa: E402 (gridtest puts its folder on the path)
from httptest import api_url, call, token_file

try:
    import yaml
except ImportError:
    skip("python3-yaml is not installed")

spec = yaml.safe_load(open(os.path.join(SOURCE_ROOT, "docs", "openapi.yaml")))
check(str(spec.get("openapi", "")).startswith("3."), "the file is OpenAPI 3")
documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops
              if m in ("get", "post", "put", "delete", "patch")}

registered = set()
src = os.path.join(SOURCE_ROOT, "lib", "http")
for name in sorted(os.listdir(src)):
    if name.endswith(".c"):
        text = open(os.path.join(src, name)).read()
        for m, p in re.findall(r'ggi_http_server_route(?:_role)?\(\s*s,\s*"([A-Z]+)",\s*"([^"]+)"',
                               text):
            registered.add((m, p[:-1] + "{id}" if p.endswith("/*") else p))
check(len(registered) >= 10, "the sources' routes are found", registered)
check(registered - documented == set(), "every route served is in openapi.yaml",
      registered - documented)
check(documented - registered == set(), "every path in openapi.yaml is served",
      documented - registered)

work = tmpdir()
ADMIN = "adm-" + os.urandom(12).hex()
tokens = token_file(os.path.join(work, "tokens"), ["%s admin" % ADMIN])
try:
    log = os.path.join(work, "serve.log")
    proc = start(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--db",
                  os.path.join(work, "g.db"), "--http", "127.0.0.1:0", "--http-tokens", tokens],
                 log)
    url = api_url(log, proc)
    check(url is not None, "serve prints its HTTP API URL")
    for method, path in sorted(documented):
        target = path.replace("{id}", "no-such-task")
        if path == "/v1/events":
            host, port = url.split("://")[1].rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=GUARD_S)
            s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + ADMIN.encode() + b"\r\n\r\n")
            line = s.recv(4096).split(b"\r\n")[0]
            s.close()
            check(b" 200 " in line, "GET /v1/events is served", line)
            continue
        query = "?q=x" if path == "/v1/search" else ""
        st, body, _ = call(url + target + query, method, ADMIN,
                           "{}" if method == "POST" else None)
        served = st != 405 and not (isinstance(body, dict) and body.get("error") == "no such path")
        check(served, "%s %s is served" % (method, path), (st, body))
finally:
    stop_all()
finish()
