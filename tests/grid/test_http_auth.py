"""test_http_auth.py - who may read the index over HTTP. `gryphgen serve --http` and
`gryphgen search-serve` refuse an address that is not loopback without a bearer token (exit 2,
saying which option gives one); with a token, a request without it or with a wrong one gets
401 and the right one 200; loopback without a token still serves. With a certificate and key
(made here with openssl, when it is installed) both serve HTTPS; a key file others may read
is refused."""

import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

from gridtest import (GUARD_S, check, finish, free_port, gg, start, stop_all, tmpdir,
                      wait_until)

work = tmpdir()
db = os.path.join(work, "index.db")
notes = os.path.join(work, "walrus.md")
with open(notes, "w") as f:
    f.write("# Walrus checksum\n\nThe walrus checksum adds the digits of a number.\n")
TOKEN = "tok-" + os.urandom(8).hex()


def refused(args, option):
    """Runs args; checks it stops at once with exit 2 and a message naming option."""
    try:
        p = gg(args, timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        check(False, "%s refuses to start (it ran instead)" % " ".join(args))
        return
    check(p.returncode == 2 and option in p.stderr and "loopback" in p.stderr,
          "%s is refused, naming %s" % (" ".join(args), option), (p.returncode, p.stderr))


def status_of(url, token=None, ctx=None):
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=GUARD_S, context=ctx) as r:
            json.load(r)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def url_in(log, marker):
    with open(log) as f:
        for line in f:
            if marker in line and line.endswith("\n"):  # a whole line, not one half-written
                return line[line.index(marker.split()[-1]):].split()[0]
    return None


def served_url(log, marker, proc):
    """The URL proc printed after marker in log, waiting for it; None when proc ended first
    (or never printed it)."""
    wait_until(lambda: url_in(log, marker) or proc.poll() is not None)
    return url_in(log, marker)


def check_auth(base, what, ctx=None):
    url = base.rstrip("/")
    if not url.endswith("/v1/search"):
        url += "/v1/search"
    url += "?q=walrus"
    check(status_of(url, None, ctx) == 401, what + ": no token is 401")
    check(status_of(url, "wrong", ctx) == 401, what + ": a wrong token is 401")
    check(status_of(url, TOKEN[:-1], ctx) == 401, what + ": a prefix of the token is 401")
    check(status_of(url, TOKEN + "x", ctx) == 401, what + ": the token and more is 401")
    check(status_of(url, TOKEN, ctx) == 200, what + ": the right token is 200")


def make_cert():
    """A self-signed certificate for 127.0.0.1 and its key (0600), or None without openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        print("skipped (TLS part): no openssl")
        return None
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, text=True)
    if p.returncode != 0:
        print("skipped (TLS part): openssl req failed: " + p.stderr[-300:])
        return None
    os.chmod(key, 0o600)
    return cert, key


try:
    p = gg(["index", "--db", db, notes])
    check(p.returncode == 0, "index the notes", p.stderr)
    ep = "tcp://127.0.0.1:%d" % free_port()

    refused(["serve", "--insecure", "--bind", ep, "--db", db, "--http", "0.0.0.0:0"],
            "--http-token-env")
    refused(["serve", "--insecure", "--bind", ep, "--db", db, "--http", "[::]:0"],
            "--http-token-env")
    refused(["search-serve", "--db", db, "--listen", "0.0.0.0:0"], "--token-env")
    p = gg(["serve", "--insecure", "--bind", ep, "--db", db, "--http", "0.0.0.0:0",
            "--http-token-env", "GG_TEST_UNSET_TOKEN_VAR"], timeout=GUARD_S)
    check(p.returncode == 2 and "GG_TEST_UNSET_TOKEN_VAR" in p.stderr,
          "an unset token variable is a usage error", p.stderr)

    os.environ["GG_TEST_HTTP_TOKEN"] = TOKEN
    # serve: all addresses with a token but without TLS is refused (its REST API would
    # carry the token in clear text, issue 19); on loopback a token is checked.
    refused(["serve", "--insecure", "--bind", ep, "--db", db, "--http", "0.0.0.0:0",
             "--http-token-env", "GG_TEST_HTTP_TOKEN"], "--http-cert")
    log = os.path.join(work, "serve.log")
    p1 = start(["serve", "--insecure", "--bind", ep, "--db", db, "--http", "127.0.0.1:0",
                "--http-token-env", "GG_TEST_HTTP_TOKEN"], log)
    url = served_url(log, "search on http://", p1)
    check(url is not None, "serve --http 127.0.0.1 with a token starts")
    if url:
        check_auth(url, "serve")

    # search-serve: all addresses, with a token.
    log2 = os.path.join(work, "search.log")
    p2 = subprocess.Popen([os.path.abspath(os.sys.argv[1]), "search-serve", "--db", db,
                           "--listen", "0.0.0.0:0", "--token-env", "GG_TEST_HTTP_TOKEN"],
                          stdout=open(log2, "w"), stderr=subprocess.STDOUT)
    try:
        url2 = served_url(log2, "listening on http://", p2)
        check(url2 is not None, "search-serve on 0.0.0.0 with a token starts")
        if url2:
            check_auth(url2.replace("0.0.0.0", "127.0.0.1"), "search-serve")
    finally:
        p2.terminate()
        p2.wait(timeout=GUARD_S)

    # HTTPS.
    tls = make_cert()
    if tls:
        cert, key = tls
        ctx = ssl.create_default_context(cafile=cert)
        log4 = os.path.join(work, "search-tls.log")
        p4 = subprocess.Popen([os.path.abspath(os.sys.argv[1]), "search-serve", "--db", db,
                               "--listen", "0.0.0.0:0", "--token-env", "GG_TEST_HTTP_TOKEN",
                               "--cert", cert, "--key", key],
                              stdout=open(log4, "w"), stderr=subprocess.STDOUT)
        try:
            url4 = served_url(log4, "listening on https://", p4)
            check(url4 is not None, "search-serve with --cert/--key prints an https URL")
            if url4:
                url4 = url4.replace("0.0.0.0", "127.0.0.1")
                check_auth(url4, "search-serve https", ctx)
                plain = url4.replace("https://", "http://") + "/v1/search?q=walrus"
                try:
                    status_of(plain, TOKEN)
                    check(False, "plain HTTP to the HTTPS port is not served")
                except (OSError, ValueError):
                    check(True, "plain HTTP to the HTTPS port is not served")
        finally:
            p4.terminate()
            p4.wait(timeout=GUARD_S)
        log5 = os.path.join(work, "serve-tls.log")
        ep5 = "tcp://127.0.0.1:%d" % free_port()
        p5 = start(["serve", "--insecure", "--bind", ep5, "--db", db, "--http", "127.0.0.1:0",
                    "--http-token-env", "GG_TEST_HTTP_TOKEN", "--http-cert", cert,
                    "--http-key", key], log5)
        url5 = served_url(log5, "search on https://", p5)
        check(url5 is not None, "serve with --http-cert/--http-key prints an https URL")
        if url5:
            check_auth(url5, "serve https", ctx)
        os.chmod(key, 0o644)
        p = gg(["search-serve", "--db", db, "--listen", "127.0.0.1:0", "--cert", cert,
                "--key", key], timeout=GUARD_S)
        check(p.returncode == 2 and "chmod 600" in p.stderr,
              "a key file others may read is refused", p.stderr)
        p = gg(["serve", "--insecure", "--bind", ep5, "--db", db, "--http", "127.0.0.1:0",
                "--http-cert", cert], timeout=GUARD_S)
        check(p.returncode == 2 and "certificate and its private key" in p.stderr,
              "a certificate without its key is refused", p.stderr)

    # Loopback without a token is allowed.
    log3 = os.path.join(work, "search-lo.log")
    p3 = subprocess.Popen([os.path.abspath(os.sys.argv[1]), "search-serve", "--db", db,
                           "--listen", "127.0.0.1:0"],
                          stdout=open(log3, "w"), stderr=subprocess.STDOUT)
    try:
        url3 = served_url(log3, "listening on http://", p3)
        check(url3 is not None and status_of(url3 + "/v1/search?q=walrus") == 200,
              "search-serve on loopback without a token serves")
    finally:
        p3.terminate()
        p3.wait(timeout=GUARD_S)
finally:
    stop_all()
finish()
