"""test_llm_cli.py - the openai generator's settings and hints as a user meets them through
the gryphgen command, against the fake chat-completions server (fake_llm_server.py):
--llm-max-tokens reaches the request, --llm-timeout bounds each request (and a bad value is
a usage error), and a base URL without /v1 ends the task with a reason that says to add it.
Arguments: the built gryphgen and the fake server script. Prints "N passed, N failed"."""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import GRYPHGEN, check, finish  # noqa: E402

SERVER = os.path.abspath(sys.argv[2])

work = tempfile.mkdtemp(prefix="gg-llm-cli-")
server = subprocess.Popen([sys.executable, SERVER], stdout=subprocess.PIPE, text=True)
port = int(server.stdout.readline().split()[1])
task = os.path.join(work, "task.json")
with open(task, "w") as f:
    json.dump({"task_id": "demo/add", "language": "python", "prompt": "Return a + b.",
               "stub": "def add(a, b):\n", "entry_point": "add",
               "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n"}, f)


def run(model, *args, url=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRYPHGEN_LLM_", "OPENAI_"))}
    env.update(GRYPHGEN_LLM_URL=url or "http://127.0.0.1:%d/v1" % port,
               GRYPHGEN_LLM_MODEL=model)
    t0 = time.monotonic()
    p = subprocess.run([GRYPHGEN, "run", "--generator", "openai", "--max-attempts", "1"]
                       + list(args) + [task], env=env, capture_output=True, text=True,
                       timeout=120, cwd=work)
    return p, time.monotonic() - t0


try:
    # --llm-max-tokens: the echo model answers with the request it got.
    p, _ = run("echo:x", "--llm-max-tokens", "7")
    try:
        code = json.loads(p.stdout)["history"][0]["code"]
        sent = json.loads(code[code.index("{"):code.rindex("}") + 1])["request"]
    except (ValueError, KeyError, IndexError) as e:
        sent = {}
        check(False, "run --llm-max-tokens: read the echoed request (%s)" % e, p.stdout + p.stderr)
    check(sent.get("max_tokens") == 7, "--llm-max-tokens 7 is sent as max_tokens", sent)

    # --llm-timeout: the slow model answers after 3 s; each try gives up after 1 s.
    p, _ = run("slow:x", "--llm-timeout", "1")
    out = json.loads(p.stdout) if p.stdout.startswith("{") else {}
    check(out.get("status") == "error" and "within 1.0 s" in (out.get("reason") or ""),
          "--llm-timeout 1: the request times out after 1 s", p.stdout + p.stderr)
    p, _ = run("ok:x", "--llm-timeout", "soon")
    check(p.returncode == 2 and "--llm-timeout" in p.stderr, "--llm-timeout soon: usage error",
          p.stderr)
    p, _ = run("ok:x", "--llm-max-tokens", "0")
    check(p.returncode == 2 and "--llm-max-tokens" in p.stderr,
          "--llm-max-tokens 0: usage error", p.stderr)

    # A base URL without /v1: the task ends at once, and the reason says what to do.
    p, secs = run("ok:x", url="http://127.0.0.1:%d" % port)
    out = json.loads(p.stdout) if p.stdout.startswith("{") else {}
    want = "try the base URL http://127.0.0.1:%d/v1" % port
    check(out.get("status") == "error" and want in (out.get("reason") or ""),
          "a URL without /v1: the reason says to try .../v1", p.stdout + p.stderr)
finally:
    server.kill()
    server.wait()
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)

finish()
