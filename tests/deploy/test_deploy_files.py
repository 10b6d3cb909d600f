"""test_deploy_files.py - the files under deploy/ hold together: the systemd units pass
`systemd-analyze verify` (when it is installed; a unit with a misspelt option is shown to fail
it), the Kubernetes manifests parse and have what docs/deploy.md promises (a StatefulSet with
a volume for the database, probes on /healthz, resource requests, the keys from one Secret,
the workers' Deployment the scaler sets, RBAC limited to its scale subresource), every option
a container passes is one its gryphgen command knows, make_secrets.sh makes a Secret whose keys
fit together, and make_image.sh refuses a tree without gryphgen."""

import base64
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
from gridtest import GRYPHGEN, check, finish, gg, tmpdir  # noqa: E402

ROOT = os.environ.get("GG_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEPLOY = os.path.join(ROOT, "deploy")
work = tmpdir()


def verify_units():
    sa = shutil.which("systemd-analyze")
    if not sa:
        print("skipped (units): systemd-analyze is not installed")
        return
    names = ["gryphgen-serve.service", "gryphgen-worker@.service"]
    paths = []
    for name in names:
        with open(os.path.join(DEPLOY, "systemd", name)) as f:
            text = f.read()
        check("/usr/local/bin/gryphgen " in text, name + " runs /usr/local/bin/gryphgen")
        p = os.path.join(work, name)
        with open(p, "w") as f:  # the built command in place of the installed one
            f.write(text.replace("/usr/local/bin/gryphgen ", GRYPHGEN + " "))
        paths.append(p)
    p = subprocess.run([sa, "verify", "--man=no"] + paths, capture_output=True, text=True,
                       timeout=120)
    check(p.returncode == 0 and not p.stderr.strip(), "systemd-analyze verify passes the units",
          (p.returncode, p.stderr))
    with open(paths[0]) as f:
        text = f.read()
    bad = os.path.join(work, "gryphgen-bad.service")
    with open(bad, "w") as f:
        f.write(text.replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    p = subprocess.run([sa, "verify", "--man=no", bad], capture_output=True, text=True,
                       timeout=120)
    check("stricter" in p.stderr, "verify reports a bad value (so the check can fail)",
          p.stderr)
    for name, want in (("gryphgen-serve.service", ["NoNewPrivileges=yes", "ProtectSystem=strict",
                                                   "RestrictNamespaces=yes", "DynamicUser=yes"]),
                       ("gryphgen-worker@.service", ["NoNewPrivileges=yes", "ProtectSystem=strict",
                                                     "Delegate=yes", "KillSignal=SIGTERM"])):
        with open(os.path.join(DEPLOY, "systemd", name)) as f:
            lines = set(l.strip() for l in f)
        check(all(w in lines for w in want), name + " sets " + ", ".join(want))
    with open(os.path.join(DEPLOY, "systemd", "gryphgen-worker@.service")) as f:
        active = [l for l in f if not l.startswith("#")]
    check(not [l for l in active if l.startswith(("RestrictNamespaces=", "SystemCallFilter=",
                                                 "MemoryDenyWriteExecute="))],
          "the worker's unit leaves the sandbox its namespaces and system calls")


def help_options(cmd):
    p = gg([cmd, "--help"])
    return set(re.findall(r"--[a-z0-9-]+", p.stdout))


def check_manifests():
    try:
        import yaml
    except ImportError:
        print("skipped (manifests): no PyYAML (Debian: python3-yaml)")
        return
    with open(os.path.join(DEPLOY, "kubernetes", "gryphgen.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for k in (("StatefulSet", "gryphgen-serve"), ("Service", "gryphgen-serve"),
              ("Deployment", "gryphgen-worker"), ("Deployment", "gryphgen-scale"),
              ("Role", "gryphgen-scale"), ("RoleBinding", "gryphgen-scale"),
              ("ServiceAccount", "gryphgen-scale")):
        check(k in kinds, "the manifests hold %s %s" % k, sorted(kinds))
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    sts = by.get(("StatefulSet", "gryphgen-serve"), {})
    check(sts.get("spec", {}).get("volumeClaimTemplates"), "serve's database has a volume")
    worker = by.get(("Deployment", "gryphgen-worker"), {})
    check(worker.get("spec", {}).get("replicas") == 0, "the workers start at 0 replicas")
    role = by.get(("Role", "gryphgen-scale"), {})
    check(role.get("rules") == [{"apiGroups": ["apps"], "resources": ["deployments/scale"],
                                 "resourceNames": ["gryphgen-worker"],
                                 "verbs": ["get", "patch"]}],
          "the scaler may only get and patch the workers' scale", role.get("rules"))
    known = {c: help_options(c) for c in ("serve", "worker", "scale")}
    for d in docs:
        spec = d.get("spec", {}).get("template", {}).get("spec")
        if not spec:
            continue
        for c in spec["containers"]:
            what = "%s/%s" % (d["metadata"]["name"], c["name"])
            check(c.get("resources", {}).get("requests"), what + " has resource requests")
            args = c.get("args", [])
            opts = [a for a in args if isinstance(a, str) and a.startswith("--")]
            unknown = [o for o in opts if o not in known.get(args[0], set())]
            check(args and args[0] in known and not unknown,
                  what + ": every option is one of `gryphgen %s`" % (args[0] if args else "?"),
                  unknown)
            for v in spec.get("volumes", []):
                if "secret" in v:
                    check(v["secret"]["secretName"] == "gryphgen-keys",
                          what + ": keys come from the Secret gryphgen-keys")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            inits = [i["name"] for i in spec.get("initContainers", [])]
            check("keys" not in mounts or "keys" in inits,
                  what + ": its /keys are copied by the init container keys", inits)
            if args and args[0] == "serve":
                for probe in ("readinessProbe", "livenessProbe"):
                    get = c.get(probe, {}).get("httpGet", {})
                    check(get.get("path") == "/healthz" and get.get("scheme") == "HTTPS",
                          "serve's %s asks /healthz over HTTPS" % probe)
                # serve refuses --http beyond loopback without a certificate
                check("--http-cert" in args and "--http-key" in args,
                      "serve's REST API beyond loopback has its certificate", args)


def check_keys_init(docs_text):
    """Runs the init container's copy on a Secret's files as Kubernetes mounts them under
    fsGroup (0440: gryphgen refuses them) and checks a worker takes the copies."""
    import yaml
    if os.geteuid() != 0:
        print("skipped (keys init): needs root to chown like the init container")
        return
    docs = [d for d in yaml.safe_load_all(docs_text) if d]
    pods = [d["spec"]["template"]["spec"] for d in docs
            if d.get("spec", {}).get("template", {}).get("spec")]
    scripts = {i["args"][0] for p in pods for i in p.get("initContainers", [])
               if i["name"] == "keys"}
    if not check(len(scripts) == 1, "every pod copies its keys the same way", len(scripts)):
        return
    src, dst = os.path.join(work, "secret"), os.path.join(work, "keys")
    os.mkdir(src)
    os.mkdir(dst)
    for name in ("server", "worker"):
        p = gg(["keygen", "--out", os.path.join(src, name)])
        check(p.returncode == 0, "keygen " + name, p.stderr)
        os.chmod(os.path.join(src, name + ".key"), 0o440)
    os.symlink(".", os.path.join(src, "..data"))  # as a Secret volume has
    port = "tcp://127.0.0.1:9"  # nobody answers: the worker idles out
    worker = ["worker", "--connect", port, "--server-key", os.path.join(src, "server.pub"),
              "--idle-s", "1"]
    p = gg(worker + ["--key", os.path.join(src, "worker.key")])
    check(p.returncode == 2 and "chmod 600" in p.stderr,
          "a worker refuses the Secret's group-readable key as mounted", p.stderr)
    e = dict(os.environ, GG_SECRET_DIR=src, GG_KEYS_DIR=dst)
    # As the manifest runs it: root with every capability dropped but CHOWN (no FOWNER, no
    # DAC_OVERRIDE), and twice (init containers run again when a pod restarts).
    script = scripts.pop()
    caps = ["setpriv", "--inh-caps=-all,+chown", "--ambient-caps=-all,+chown",
            "--bounding-set=-all,+chown", "--"] if shutil.which("setpriv") else []
    for run in ("", " again"):
        p = subprocess.run(caps + ["/usr/bin/python3", "-c", script], env=e,
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "the init container's copy runs%s%s" %
              (" with CAP_CHOWN alone" if caps else "", run), p.stderr)
    st = os.stat(os.path.join(dst, "worker.key"))
    check((st.st_mode & 0o777, st.st_uid) == (0o600, 65534), "copies are 0600, uid 65534",
          (oct(st.st_mode), st.st_uid))
    check(not os.path.exists(os.path.join(dst, "..data")), "the ..data link is not copied")
    p = gg(worker + ["--key", os.path.join(dst, "worker.key")], timeout=60)
    check(p.returncode == 0, "a worker takes the copied key (and idles out)", p.stderr)


def check_secrets():
    p = subprocess.run(["sh", os.path.join(DEPLOY, "kubernetes", "make_secrets.sh"), GRYPHGEN],
                       capture_output=True, text=True, timeout=120)
    if not check(p.returncode == 0, "make_secrets.sh runs", p.stderr):
        return
    data = {}
    lines = p.stdout.splitlines()
    for line in lines[lines.index("data:") + 1 if "data:" in lines else len(lines):]:
        m = re.match(r"^  ([a-z_.]+): (\S+)$", line)
        if m:
            data[m.group(1)] = base64.b64decode(m.group(2)).decode()
    check(set(data) == {"server.key", "server.pub", "worker.key", "scaler.key",
                        "authorized_keys", "http_token", "http.crt", "http.key"},
          "the Secret has every key", sorted(data))
    check("BEGIN CERTIFICATE" in data.get("http.crt", "") and
          "PRIVATE KEY" in data.get("http.key", ""), "serve's HTTPS certificate and key")
    pub = lambda t: re.search(r"public: (\S{40})", t).group(1)  # noqa: E731
    auth = data.get("authorized_keys", "")
    check(("worker " + pub(data["worker.key"])) in auth and
          ("admin " + pub(data["scaler.key"])) in auth,
          "authorized_keys admits the worker's and the scaler's keys", auth)
    check(pub(data["server.pub"]) == pub(data["server.key"]), "server.pub is server.key's")
    check(len(data.get("http_token", "")) == 64, "a 256-bit HTTP token")


def check_image_script():
    script = os.path.join(DEPLOY, "image", "make_image.sh")
    p = subprocess.run(["sh", script], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "usage" in p.stderr, "make_image.sh without a tree: usage")
    p = subprocess.run(["sh", script, work], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "bin/gryphgen" in p.stderr,
          "make_image.sh refuses a tree without bin/gryphgen", p.stderr)


try:
    verify_units()
    check_manifests()
    try:
        import yaml  # noqa: F401
        with open(os.path.join(DEPLOY, "kubernetes", "gryphgen.yaml")) as f:
            check_keys_init(f.read())
    except ImportError:
        pass
    check_secrets()
    check_image_script()
finally:
    shutil.rmtree(work, ignore_errors=True)
finish()
