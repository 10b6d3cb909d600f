"""test_kube_play.py - deploy/kubernetes/gryphgen.yaml played by `podman kube play` (Podman 4.3,
Debian 12) after a mechanical transformation, with the image of deploy/image/make_image.sh built
from this build (nothing pulled) and the keys of make_secrets.sh: the init containers copy the
keys and end, serve answers /healthz over HTTPS on its pod's address, a worker pod joins over
CURVE and a task submitted with the scaler's (admin) key passes through it.

What Podman 4.3 cannot play, and what the transformation does instead (docs/deploy.md):
- StatefulSet: played as a Deployment with the same pod spec, its volumeClaimTemplate as a
  PersistentVolumeClaim named as Kubernetes names it (data-gryphgen-serve-0);
- Service, ServiceAccount, Role, RoleBinding: left out (the worker reaches serve by a
  hostAliases entry for gryphgen-serve; the scaler, which needs an API server, is left out);
- Secret volumes: kube play 4.3.1 dereferences a nil secrets manager for them (a Go panic in
  VolumeFromSecret): the Secret's files go into a host directory mounted with hostPath;
  secretKeyRef works from a Podman secret holding the Secret's data as a flat JSON object of
  base64 values;
- restartPolicy: a Deployment's Always is applied to init containers too, which are then
  restarted while Podman removes them ("cannot remove container ... as it is running"):
  Never here;
- host limits under Podman's defaults (nofile): default_ulimits in a containers.conf of the
  test's own; containerPorts are not published on the host (other tests use the machine).
Skipped (77) without root, podman, runc, catatonit (the pods' infra) or openssl."""

import base64
import json
import os
import shutil
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gridtest import GUARD_S, check, finish, gg, tmpdir, wait_until  # noqa: E402
from podmantest import ROOT, build_image, need, podman_command, unmount_under  # noqa: E402

need(("podman", "runc", "catatonit", "openssl", "meson"))
work = tmpdir()
PODMAN = podman_command(work)
CONF = os.path.join(work, "containers.conf")
ENV = dict(os.environ, CONTAINERS_CONF=CONF)


def podman(args, timeout=GUARD_S * 2):
    return subprocess.run(PODMAN + args, capture_output=True, text=True, timeout=timeout,
                          env=ENV)


def transform(docs, secret_dir, serve_ip=None):
    """The manifests as Podman 4.3 plays them (see the module's text). Without serve_ip only
    serve's pod; with it only the worker's, one replica, gryphgen-serve resolving to it."""
    out = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind not in ("StatefulSet", "Deployment") or name == "gryphgen-scale":
            continue
        if (name == "gryphgen-serve") == (serve_ip is not None):
            continue
        spec = d["spec"]
        pod = spec["template"]["spec"]
        if kind == "StatefulSet":
            for t in spec.pop("volumeClaimTemplates", []):
                claim = "%s-%s-0" % (t["metadata"]["name"], name)
                out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": claim}, "spec": t["spec"]})
                pod["volumes"].append({"name": t["metadata"]["name"],
                                       "persistentVolumeClaim": {"claimName": claim}})
            spec.pop("serviceName", None)
        for v in pod["volumes"]:
            if "secret" in v:
                v.pop("secret")
                v["hostPath"] = {"path": secret_dir, "type": "Directory"}
        pod["restartPolicy"] = "Never"
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            c.pop("ports", None)
            c.pop("readinessProbe", None)  # Podman runs probes through systemd timers
            c.pop("livenessProbe", None)
        if serve_ip:
            spec["replicas"] = 1
            pod["hostAliases"] = [{"ip": serve_ip, "hostnames": ["gryphgen-serve"]}]
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": d["metadata"],
                    "spec": spec})
    return out


def play(docs, name):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)
    return podman(["kube", "play", path], timeout=GUARD_S * 3)


def state(container):
    p = podman(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container])
    return p.stdout.strip() if p.returncode == 0 else ""


def main():
    with open(CONF, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n')
    if not build_image(work, PODMAN, "localhost/gryphgen:latest", env=ENV):
        return

    # The Secret: its files for the hostPath volume, its data for secretKeyRef.
    p = subprocess.run(["sh", os.path.join(ROOT, "deploy", "kubernetes", "make_secrets.sh"),
                        sys.argv[1]], capture_output=True, text=True, timeout=GUARD_S)
    if not check(p.returncode == 0, "make_secrets.sh makes the Secret", p.stderr):
        return
    data = yaml.safe_load(p.stdout)["data"]
    secret_dir = os.path.join(work, "secret")
    os.mkdir(secret_dir)
    for k, v in data.items():
        with open(os.path.join(secret_dir, k), "wb") as f:
            f.write(base64.b64decode(v))
        os.chmod(os.path.join(secret_dir, k), 0o400)
    flat = os.path.join(work, "secret.json")
    with open(flat, "w") as f:
        json.dump(data, f)
    p = podman(["secret", "create", "gryphgen-keys", flat])
    check(p.returncode == 0, "podman secret create", p.stderr)

    with open(os.path.join(ROOT, "deploy", "kubernetes", "gryphgen.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    p = play(transform(docs, secret_dir), "serve")
    logs = podman(["logs", "gryphgen-serve-pod-0-serve"])
    if not check(p.returncode == 0, "kube play starts serve's pod",
                 (p.stderr[-2000:], logs.stderr[-2000:])):
        return
    keys = podman(["ps", "-a", "--filter", "name=gryphgen-serve-pod-0-keys", "--format",
                   "{{.Status}}"]).stdout
    check("Exited (0)" in keys or keys.strip() == "", "the init container copied the keys and "
          "ended (then removed)", keys)
    # What follows stands on serve and then on the worker: without them, no use waiting on.
    if not check(wait_until(lambda: state("gryphgen-serve-pod-0-serve").startswith("running")),
                 "serve runs", podman(["logs", "gryphgen-serve-pod-0-serve"]).stderr[-2000:]):
        return
    infra = podman(["pod", "inspect", "--format", "{{.InfraContainerID}}",
                    "gryphgen-serve-pod-0"]).stdout.strip()
    # kube play puts pods on its own bridge network (podman-default-kube-network).
    ip = podman(["inspect", "--format",
                 "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                 infra]).stdout.split()
    ip = ip[0] if ip else ""
    check(ip, "serve's pod has an address", ip)
    cert = os.path.join(secret_dir, "http.crt")
    # Each try ends by itself (--max-time: a curl error, tried again) well before the guard
    # that would raise instead.
    health = lambda: subprocess.run(  # noqa: E731
        ["curl", "-sS", "--max-time", "20", "--cacert", cert, "--resolve",
         "gryphgen-serve:8080:%s" % ip, "https://gryphgen-serve:8080/healthz"],
        capture_output=True, text=True, timeout=GUARD_S)
    h = wait_until(lambda: (lambda r: r if r.returncode == 0 else None)(health()))
    if not check(h is not None and "ok" in h.stdout.lower(), "/healthz answers over HTTPS",
                 health().stderr):
        return

    p = play(transform(docs, secret_dir, serve_ip=ip), "worker")
    if not check(p.returncode == 0, "kube play starts a worker's pod", p.stderr[-2000:]):
        return
    ep = "tcp://%s:5555" % ip
    auth = ["--connect", ep, "--key", os.path.join(secret_dir, "scaler.key"), "--server-key",
            os.path.join(secret_dir, "server.pub")]
    # gryphgen refuses a secret key others may read: the copy's mode is 0400 already.

    def joined():
        s = gg(["status"] + auth, timeout=GUARD_S)
        try:
            return s.returncode == 0 and len(json.loads(s.stdout).get("nodes", [])) == 1
        except ValueError:
            return False

    if not check(wait_until(joined), "the worker pod joins serve over CURVE",
                 [podman(["logs", c]).stderr[-1500:] for c in
                  podman(["ps", "-a", "--format", "{{.Names}}"]).stdout.split()]):
        return
    task = os.path.join(work, "t.jsonl")
    with open(task, "w") as f:
        f.write(json.dumps({"task_id": "kube/1", "language": "python", "prompt": "",
                            "entry_point": "f", "test": "assert f() == 1\n",
                            "candidates": ["def f():\n    return 1\n"]}) + "\n")
    p = gg(["submit", "--wait", "--timeout-ms", str(int(GUARD_S * 1000))] + auth + [task],
           timeout=GUARD_S * 2)
    check(p.returncode == 0 and '"passed"' in p.stdout, "a task passes through the pods",
          (p.stdout[-1500:], p.stderr[-1500:]))


try:
    main()
finally:
    podman(["pod", "rm", "-f", "-a"])
    podman(["volume", "rm", "-f", "-a"])
    podman(["secret", "rm", "gryphgen-keys"])
    podman(["rmi", "-f", "localhost/gryphgen:latest"])
    unmount_under(work)
    shutil.rmtree(work, ignore_errors=True)
finish()
