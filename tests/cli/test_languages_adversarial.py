"""test_languages_adversarial.py - the adversarial suite in every language: for each language
`gryphgen eval` runs, at the namespaces level, tasks whose code attacks in that language's own
idiom: a connection to a listener of the host, writes outside the job (a 0777 directory of the
host's /tmp and the source tree), reading a root-only secret file and a variable of the
host's environment, a bounded fork bomb through the language's process API, a memory bomb
beyond the task's limit, kill(-1, SIGKILL), an orphan left behind, and 100 MB of output.
The host side is what is checked: the listener got no connection, the markers are absent,
the secrets are nowhere in what gryphgen reports, a process of uid 65534 that the test owns
outlives kill(-1), no process the jobs started is left, the results stay small; and each
task's verdict is sane (an attack cannot make a task pass that must fail, nor end in error).
A language whose toolchain is missing is skipped, unless GRYPHGEN_REQUIRE_TOOLCHAINS=1.

The languages to run follow the command (all of them when none is named): meson runs one test
per language (cli_languages_adversarial_LANG), each within its own time limit, and they may
run at once; what one run leaves on the host (its sentinel, its probes' `sleep` processes)
is told apart from another's by this process's PID."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys

from clitest import SOURCE_ROOT, check, finish, gg, read_jsonl, skip, summary, tmpdir, \
    wait_until

REQUIRE = os.environ.get("GRYPHGEN_REQUIRE_TOOLCHAINS") == "1"
ATTACKS = ["escape", "fork", "memory", "kill", "orphan", "flood"]

# These attacks are real: kill(-1) run as root outside a sandbox ends every process of the
# machine. So every task demands the namespaces level (an executor that cannot give it
# refuses the job) and every kill attack first refuses to run as root.

# ---- the attacks, per language; @NAME@ are filled in below -------------------------------

PY = {
    "escape": "import os, socket\n"
              "try:\n"
              "    socket.create_connection(('127.0.0.1', @PORT@), 3)\n"
              "    print('net-connected')\n"
              "except OSError as e:\n"
              "    print('net', e)\n"
              "for p in ['@MARK@/@LANG@', '@SRC@/gg-adv-@LANG@']:\n"
              "    try:\n"
              "        open(p, 'w').write('x')\n"
              "    except OSError as e:\n"
              "        print('write', e)\n"
              "try:\n"
              "    print(open('@SECRET@').read())\n"
              "except OSError as e:\n"
              "    print('read', e)\n"
              "print(os.environ.get('@ENV@', 'no-env'))\n"
              "print('probe-done')\n"
              "raise SystemExit(1)\n",
    "fork": "import os\n"
            "n = 0\n"
            "try:\n"
            "    for _ in range(3000):\n"
            "        if os.fork() == 0:\n"
            "            try:\n"
            "                os.execvp('sleep', ['sleep', '@FDUR@'])\n"
            "            finally:\n"
            "                os._exit(0)\n"
            "        n += 1\n"
            "except OSError as e:\n"
            "    print('fork stopped', e)\n"
            "print('forked', n)\n",
    "memory": "chunks = []\n"
              "for _ in range(128):\n"
              "    chunks.append(b'\\1' * (64 << 20))\n"
              "print('allocated-all')\n",
    "kill": "import os, signal\n"
            "if os.getuid() == 0:\n"
            "    raise SystemExit('running as root: not sending kill(-1)')\n"
            "try:\n"
            "    os.kill(-1, signal.SIGKILL)\n"
            "except OSError as e:\n"
            "    print('kill', e)\n"
            "print('still-here')\n",
    "orphan": "import os\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              "    try:\n"
              "        os.execvp('sleep', ['sleep', '@DUR@'])\n"
              "    finally:\n"
              "        os._exit(0)\n"
              "print('orphan-started')\n",
    "flood": "import sys\n"
             "block = ('x' * 1023 + '\\n') * 1024\n"
             "for _ in range(100):\n"
             "    sys.stdout.write(block)\n",
}

C = {  # C and C++ alike
    "escape": "#define _GNU_SOURCE 1\n#include <stdio.h>\n#include <stdlib.h>\n"
              "#include <string.h>\n#include <unistd.h>\n#include <arpa/inet.h>\n"
              "#include <sys/socket.h>\n"
              "int main(void) {\n"
              "    struct sockaddr_in a;\n    memset(&a, 0, sizeof a);\n"
              "    a.sin_family = AF_INET;\n    a.sin_port = htons(@PORT@);\n"
              "    a.sin_addr.s_addr = htonl(0x7f000001);\n"
              "    int s = socket(AF_INET, SOCK_STREAM, 0);\n"
              "    if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0)\n"
              "        puts(\"net-connected\");\n    else\n        perror(\"net\");\n"
              "    const char *ps[] = { \"@MARK@/@LANG@\", \"@SRC@/gg-adv-@LANG@\" };\n"
              "    for (int i = 0; i < 2; i++) {\n"
              "        FILE *w = fopen(ps[i], \"w\");\n"
              "        if (w) { fputs(\"x\", w); fclose(w); } else perror(\"write\");\n    }\n"
              "    char buf[256] = { 0 };\n    FILE *f = fopen(\"@SECRET@\", \"r\");\n"
              "    if (f) { if (fread(buf, 1, 255, f)) puts(buf); fclose(f); }\n"
              "    else perror(\"read\");\n"
              "    const char *e = getenv(\"@ENV@\");\n    puts(e ? e : \"no-env\");\n"
              "    puts(\"probe-done\");\n    return 1;\n}\n",
    "fork": "#define _GNU_SOURCE 1\n#include <stdio.h>\n#include <unistd.h>\n"
            "int main(void) {\n    int n = 0;\n"
            "    for (int i = 0; i < 3000; i++) {\n        pid_t p = fork();\n"
            "        if (p < 0) { perror(\"fork stopped\"); break; }\n"
            "        if (p == 0) { execlp(\"sleep\", \"sleep\", \"@FDUR@\", (char *)0); _exit(0); }\n"
            "        n++;\n    }\n    printf(\"forked %d\\n\", n);\n    return 0;\n}\n",
    "memory": "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
              "int main(void) {\n    for (int i = 0; i < 128; i++) {\n"
              "        char *p = (char *)malloc(64 << 20);\n"
              "        if (!p) { puts(\"malloc failed\"); return 1; }\n"
              "        memset(p, 1, 64 << 20);\n    }\n"
              "    puts(\"allocated-all\");\n    return 0;\n}\n",
    "kill": "#define _GNU_SOURCE 1\n#include <signal.h>\n#include <stdio.h>\n"
            "#include <unistd.h>\n"
            "int main(void) {\n    if (getuid() == 0) return 3;\n"
            "    if (kill(-1, SIGKILL)) perror(\"kill\");\n"
            "    puts(\"still-here\");\n    return 0;\n}\n",
    "orphan": "#define _GNU_SOURCE 1\n#include <stdio.h>\n#include <unistd.h>\n"
              "int main(void) {\n    pid_t p = fork();\n"
              "    if (p == 0) { setsid(); execlp(\"sleep\", \"sleep\", \"@DUR@\", (char *)0); _exit(0); }\n"
              "    puts(p > 0 ? \"orphan-started\" : \"fork failed\");\n    return 0;\n}\n",
    "flood": "#include <stdio.h>\n#include <string.h>\n"
             "int main(void) {\n    static char b[1 << 20];\n    memset(b, 'x', sizeof b);\n"
             "    for (int i = 0; i < 100; i++) fwrite(b, 1, sizeof b, stdout);\n"
             "    return 0;\n}\n",
}

JAVA = {
    "escape": "import java.io.*;\nimport java.net.*;\nimport java.nio.file.*;\n"
              "public class Main {\n  public static void main(String[] args) throws Exception {\n"
              "    try (Socket s = new Socket()) {\n"
              "      s.connect(new InetSocketAddress(\"127.0.0.1\", @PORT@), 3000);\n"
              "      System.out.println(\"net-connected\");\n"
              "    } catch (IOException e) { System.out.println(\"net \" + e); }\n"
              "    for (String p : new String[] {\"@MARK@/@LANG@\", \"@SRC@/gg-adv-@LANG@\"}) {\n"
              "      try { Files.writeString(Path.of(p), \"x\"); }\n"
              "      catch (IOException e) { System.out.println(\"write \" + e); }\n    }\n"
              "    try { System.out.println(Files.readString(Path.of(\"@SECRET@\"))); }\n"
              "    catch (IOException e) { System.out.println(\"read \" + e); }\n"
              "    System.out.println(System.getenv().getOrDefault(\"@ENV@\", \"no-env\"));\n"
              "    System.out.println(\"probe-done\");\n    System.exit(1);\n  }\n}\n",
    "fork": "import java.util.*;\n"
            "public class Main {\n  public static void main(String[] args) {\n"
            "    List<Process> ps = new ArrayList<>();\n    int n = 0;\n"
            "    try {\n      for (; n < 3000; n++)\n"
            "        ps.add(new ProcessBuilder(\"sleep\", \"@FDUR@\").start());\n"
            "    } catch (Exception e) { System.out.println(\"spawn stopped \" + e); }\n"
            "    System.out.println(\"forked \" + n);\n  }\n}\n",
    "memory": "import java.util.*;\n"
              "public class Main {\n  public static void main(String[] args) {\n"
              "    List<byte[]> l = new ArrayList<>();\n"
              "    for (int i = 0; i < 128; i++) {\n      byte[] b = new byte[64 << 20];\n"
              "      Arrays.fill(b, (byte) 1);\n      l.add(b);\n    }\n"
              "    System.out.println(\"allocated-all\");\n  }\n}\n",
    # Java has no kill(2): every process it can see, destroyed forcibly, and kill -9 -1.
    "kill": "public class Main {\n  public static void main(String[] args) throws Exception {\n"
            "    if (\"root\".equals(System.getProperty(\"user.name\"))) System.exit(3);\n"
            "    ProcessHandle.allProcesses().filter(p -> p.pid() != ProcessHandle.current().pid())\n"
            "        .forEach(ProcessHandle::destroyForcibly);\n"
            "    try { new ProcessBuilder(\"kill\", \"-9\", \"-1\").start().waitFor(); }\n"
            "    catch (Exception e) { System.out.println(\"kill \" + e); }\n"
            "    System.out.println(\"still-here\");\n  }\n}\n",
    "orphan": "public class Main {\n  public static void main(String[] args) throws Exception {\n"
              "    new ProcessBuilder(\"sleep\", \"@DUR@\").start();\n"
              "    System.out.println(\"orphan-started\");\n  }\n}\n",
    "flood": "public class Main {\n  public static void main(String[] args) throws Exception {\n"
             "    byte[] b = new byte[1 << 20];\n    java.util.Arrays.fill(b, (byte) 'x');\n"
             "    for (int i = 0; i < 100; i++) System.out.write(b, 0, b.length);\n"
             "    System.out.flush();\n  }\n}\n",
}

# JavaScript and TypeScript alike, behind a prelude that gives `req` and `proc` (TypeScript
# without Node's type declarations cannot name require).
JS = {
    "escape": "const net = req('net'), fs = req('fs');\n"
              "for (const p of ['@MARK@/@LANG@', '@SRC@/gg-adv-@LANG@']) {\n"
              "  try { fs.writeFileSync(p, 'x'); } catch (e) { console.log('write', e.code); }\n}\n"
              "try { console.log(fs.readFileSync('@SECRET@', 'utf8')); }\n"
              "catch (e) { console.log('read', e.code); }\n"
              "console.log(proc.env['@ENV@'] || 'no-env');\n"
              "let finished = false;\n"
              "function done() {\n  if (finished) return;\n  finished = true;\n"
              "  console.log('probe-done');\n  proc.exit(1);\n}\n"
              "const s = net.connect(@PORT@, '127.0.0.1');\n"
              "s.setTimeout(3000, () => { console.log('net timeout'); s.destroy(); done(); });\n"
              "s.on('connect', () => { console.log('net-connected'); s.destroy(); done(); });\n"
              "s.on('error', (e) => { console.log('net', e.code); done(); });\n",
    "fork": "const cp = req('child_process');\nlet n = 0;\n"
            "try {\n  for (; n < 3000; n++) {\n"
            "    const c = cp.spawn('sleep', ['@FDUR@'], { stdio: 'ignore' });\n"
            "    c.on('error', () => {});\n    if (!c.pid) break;\n  }\n"
            "} catch (e) { console.log('spawn stopped', e.code); }\n"
            "console.log('forked', n);\nproc.exit(0);\n",
    "memory": "const l = [];\n"
              "for (let i = 0; i < 128; i++) l.push(new Uint8Array(64 << 20).fill(1));\n"
              "console.log('allocated-all');\n",
    "kill": "if (proc.getuid() === 0) proc.exit(3);\n"
            "try { proc.kill(-1, 'SIGKILL'); } catch (e) { console.log('kill', e.code); }\n"
            "console.log('still-here');\n",
    "orphan": "const c = req('child_process').spawn('sleep', ['@DUR@'],\n"
              "  { detached: true, stdio: 'ignore' });\n"
              "c.on('error', () => {});\nc.unref();\n"
              "console.log(c.pid ? 'orphan-started' : 'spawn failed');\n",
    "flood": "const block = ('x'.repeat(1023) + '\\n').repeat(1024);\n"
             "for (let i = 0; i < 100; i++) proc.stdout.write(block);\n",
}
JS_PRELUDE = {"javascript": "const req = require;\nconst proc = process;\n",
              "typescript": "const req: any = eval('require');\n"
                            "const proc: any = (globalThis as any).process;\n"}

GO_HEAD = "package main\n\nimport (\n%s)\n\nfunc TestAttack(t *testing.T) {\n"
GO = {
    "escape": (["fmt", "net", "os", "testing", "time"],
               "\tif c, err := net.DialTimeout(\"tcp\", \"127.0.0.1:@PORT@\", 3*time.Second); err == nil {\n"
               "\t\tfmt.Println(\"net-connected\")\n\t\tc.Close()\n"
               "\t} else {\n\t\tfmt.Println(\"net\", err)\n\t}\n"
               "\tfor _, p := range []string{\"@MARK@/@LANG@\", \"@SRC@/gg-adv-@LANG@\"} {\n"
               "\t\tif err := os.WriteFile(p, []byte(\"x\"), 0644); err != nil {\n"
               "\t\t\tfmt.Println(\"write\", err)\n\t\t}\n\t}\n"
               "\tif b, err := os.ReadFile(\"@SECRET@\"); err == nil {\n"
               "\t\tfmt.Println(string(b))\n\t} else {\n\t\tfmt.Println(\"read\", err)\n\t}\n"
               "\tfmt.Println(os.Getenv(\"@ENV@\"))\n"
               "\tfmt.Println(\"probe-done\")\n\tt.Fatal(\"probe-done\")\n"),
    "fork": (["fmt", "os/exec", "testing"],
             "\tn := 0\n\tfor ; n < 3000; n++ {\n"
             "\t\tif err := exec.Command(\"sleep\", \"@FDUR@\").Start(); err != nil {\n"
             "\t\t\tfmt.Println(\"spawn stopped\", err)\n\t\t\tbreak\n\t\t}\n\t}\n"
             "\tfmt.Println(\"forked\", n)\n"),
    "memory": (["fmt", "testing"],
               "\tvar l [][]byte\n\tfor i := 0; i < 128; i++ {\n"
               "\t\tb := make([]byte, 64<<20)\n\t\tfor j := range b {\n\t\t\tb[j] = 1\n\t\t}\n"
               "\t\tl = append(l, b)\n\t}\n\tfmt.Println(\"allocated-all\", len(l))\n"),
    "kill": (["fmt", "os", "syscall", "testing"],
             "\tif os.Getuid() == 0 {\n\t\tt.Fatal(\"root\")\n\t}\n"
             "\tfmt.Println(\"kill\", syscall.Kill(-1, syscall.SIGKILL))\n"
             "\tfmt.Println(\"still-here\")\n"),
    "orphan": (["fmt", "os/exec", "syscall", "testing"],
               "\tc := exec.Command(\"sleep\", \"@DUR@\")\n"
               "\tc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}\n"
               "\tif err := c.Start(); err != nil {\n\t\tfmt.Println(\"spawn failed\", err)\n"
               "\t} else {\n\t\tfmt.Println(\"orphan-started\")\n\t}\n"),
    "flood": (["bytes", "os", "testing"],
              "\tb := bytes.Repeat([]byte(\"x\"), 1<<20)\n"
              "\tfor i := 0; i < 100; i++ {\n\t\tos.Stdout.Write(b)\n\t}\n"),
}

RUST = {
    "escape": "use std::net::TcpStream;\nuse std::time::Duration;\n\nfn main() {\n"
              "    let addr = \"127.0.0.1:@PORT@\".parse().unwrap();\n"
              "    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {\n"
              "        Ok(_) => println!(\"net-connected\"),\n"
              "        Err(e) => println!(\"net {}\", e),\n    }\n"
              "    for p in [\"@MARK@/@LANG@\", \"@SRC@/gg-adv-@LANG@\"] {\n"
              "        if let Err(e) = std::fs::write(p, \"x\") {\n"
              "            println!(\"write {}\", e);\n        }\n    }\n"
              "    match std::fs::read_to_string(\"@SECRET@\") {\n"
              "        Ok(s) => println!(\"{}\", s),\n        Err(e) => println!(\"read {}\", e),\n    }\n"
              "    println!(\"{}\", std::env::var(\"@ENV@\").unwrap_or_default());\n"
              "    println!(\"probe-done\");\n    std::process::exit(1);\n}\n",
    "fork": "fn main() {\n    let mut kids = Vec::new();\n    while kids.len() < 3000 {\n"
            "        match std::process::Command::new(\"sleep\").arg(\"@FDUR@\").spawn() {\n"
            "            Ok(c) => kids.push(c),\n"
            "            Err(e) => {\n                println!(\"spawn stopped {}\", e);\n"
            "                break;\n            }\n        }\n    }\n"
            "    println!(\"forked {}\", kids.len());\n}\n",
    "memory": "fn main() {\n    let mut l = Vec::new();\n"
              "    for _ in 0..128 {\n        l.push(vec![1u8; 64 << 20]);\n    }\n"
              "    println!(\"allocated-all {}\", l.len());\n}\n",
    "kill": "extern \"C\" {\n    fn kill(pid: i32, sig: i32) -> i32;\n    fn getuid() -> u32;\n}\n\nfn main() {\n"
            "    if unsafe { getuid() } == 0 {\n        std::process::exit(3);\n    }\n"
            "    let r = unsafe { kill(-1, 9) };\n"
            "    println!(\"kill {} {}\", r, std::io::Error::last_os_error());\n"
            "    println!(\"still-here\");\n}\n",
    "orphan": "fn main() {\n"
              "    match std::process::Command::new(\"sleep\").arg(\"@DUR@\").spawn() {\n"
              "        Ok(_) => println!(\"orphan-started\"),\n"
              "        Err(e) => println!(\"spawn failed {}\", e),\n    }\n}\n",
    "flood": "use std::io::Write;\n\nfn main() {\n    let b = vec![b'x'; 1 << 20];\n"
             "    let out = std::io::stdout();\n    let mut o = out.lock();\n"
             "    for _ in 0..100 {\n        if o.write_all(&b).is_err() {\n            break;\n"
             "        }\n    }\n}\n",
}

BASH = {
    "escape": "if (exec 3<>/dev/tcp/127.0.0.1/@PORT@) 2>/dev/null; then echo net-connected;"
              " else echo net refused; fi\n"
              "for p in @MARK@/@LANG@ @SRC@/gg-adv-@LANG@; do echo x > \"$p\" || echo write failed;"
              " done\n"
              "echo \"$(< @SECRET@)\" || echo read failed\n"
              "echo \"${@ENV@:-no-env}\"\n"
              "echo probe-done\nexit 1\n",
    "fork": "n=0\nfor ((i = 0; i < 3000; i++)); do\n"
            "  sleep @FDUR@ 2>/dev/null &\n  n=$((n + 1))\ndone 2>/dev/null\necho forked $n\n",
    "memory": "s=x\nfor ((i = 0; i < 34; i++)); do s=$s$s; done\necho allocated-all ${#s}\n",
    "kill": "[ \"$EUID\" != 0 ] || exit 3\nkill -9 -1\necho still-here\n",
    "orphan": "sleep @DUR@ &\ndisown\necho orphan-started\n",
    "flood": "b=x\nfor ((i = 0; i < 20; i++)); do b=$b$b; done\n"
             "for ((i = 0; i < 100; i++)); do printf '%s' \"$b\"; done\n",
}


def task(lang, attack):
    """The task that runs one attack in one language (its code as the test)."""
    t = {"task_id": "%s-%s" % (lang, attack), "language": lang, "stub": "",
         "canonical_solution": "", "resources": {"timeout_s": 30},
         "isolation": "namespaces"}
    if lang == "python":
        t["test"] = PY[attack]
    elif lang in ("c", "cpp"):
        t["test"] = C[attack]
    elif lang == "java":
        t["test"] = JAVA[attack]
    elif lang in JS_PRELUDE:
        t["test"] = JS_PRELUDE[lang] + JS[attack]
    elif lang == "go":
        imports, body = GO[attack]
        t["canonical_solution"] = "func gg() int { return 1 }\n"
        t["test"] = GO_HEAD % "".join("\t\"%s\"\n" % i for i in imports) + body + "}\n"
    elif lang == "rust":
        t["canonical_solution"] = "// no solution: the test is the attack\n"
        t["test"] = RUST[attack]
    elif lang == "bash":
        t["canonical_solution"] = "true\n"
        t["test"] = BASH[attack]
    return t


def fill(t, values):
    for k, v in values.items():
        t["test"] = t["test"].replace("@%s@" % k, str(v))
    return t


def procs_with_cmdline(argv):
    """PIDs on the host whose command line is exactly argv."""
    want = ("\0".join(argv) + "\0").encode()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if f.read() == want:
                        out.append(int(d))
            except OSError:
                pass
    return out


LANGUAGES = ["python", "c", "cpp", "java", "javascript", "typescript", "go", "rust", "bash"]
unknown = [x for x in sys.argv[2:] if x not in LANGUAGES]
if unknown:
    print("test_languages_adversarial.py: unknown language(s): %s" % " ".join(unknown),
          file=sys.stderr)
    sys.exit(2)

doctor = json.loads(gg(["doctor", "--json"]).stdout)
if doctor.get("best") != "namespaces":
    skip("the namespaces isolation level is not available here")
if os.geteuid() != 0:
    skip("the host-side checks need root (a root-owned secret, a sentinel of uid 65534)")
have = set(doctor.get("languages", [])) | {"python", "c"}

work = tmpdir()
os.chmod(work, 0o755)
mark_dir = os.path.join(work, "open")  # writable by anyone on the host, uid 65534 included
os.mkdir(mark_dir)
os.chmod(mark_dir, 0o777)
secret = "gg-secret-" + secrets.token_hex(12)
secret_file = os.path.join(work, "secret")
with open(secret_file, "w") as f:
    f.write(secret)
os.chmod(secret_file, 0o600)
env_secret = "gg-env-" + secrets.token_hex(12)
os.environ["GG_ADV_SECRET"] = env_secret

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
listener.setblocking(False)

# A process of uid 65534 that the test owns: kill(-1) from a job (which runs as 65534 too)
# must not reach it.
tag = 3600 + os.getpid()  # an hour at least; unique among the runs going on at once
sentinel_argv = ["sleep", "%d.5" % tag]
sentinel = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "--"] + sentinel_argv)
values = {"PORT": listener.getsockname()[1], "MARK": mark_dir, "SRC": SOURCE_ROOT,
          "SECRET": secret_file, "ENV": "GG_ADV_SECRET",
          "DUR": "%d.25" % tag, "FDUR": "%d.75" % tag}
orphan_argv = ["sleep", values["DUR"]]
child_argv = ["sleep", values["FDUR"]]
ran = 0

for lang in sys.argv[2:] or LANGUAGES:
    if lang not in have:
        check(not REQUIRE, "%s: toolchain present (GRYPHGEN_REQUIRE_TOOLCHAINS=1)" % lang)
        print("skipped %s: no toolchain" % lang)
        continue
    values["LANG"] = lang
    tasks = [fill(task(lang, a), values) for a in ATTACKS]
    path = os.path.join(work, lang + ".jsonl")
    res = os.path.join(work, lang + ".results.jsonl")
    with open(path, "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    p = gg(["eval", "--generator", "reference", "--jobs", "2", "--quiet", "--isolation",
            "namespaces", "--results", res, path], timeout=600)
    s = summary(p.stdout)
    ran += 1
    recs = {r["task_id"]: r for r in read_jsonl(res)} if os.path.exists(res) else {}
    seen = p.stdout + p.stderr + (open(res, errors="replace").read() if recs else "")
    dump = json.dumps({k: (r.get("status"), (r.get("reason") or "")[:300])
                       for k, r in recs.items()})
    check(len(recs) == len(ATTACKS), "%s: every attack task has a verdict" % lang,
          p.stdout + p.stderr[-2000:])
    for a in ATTACKS:
        r = recs.get("%s-%s" % (lang, a), {})
        check(r.get("status") in ("passed", "failed"),
              "%s %s: the verdict is passed or failed, not an error" % (lang, a), dump)
    esc = recs.get(lang + "-escape", {})
    check(esc.get("status") == "failed", "%s: the escape task fails (it exits 1)" % lang, dump)
    check("probe-done" in json.dumps(esc), "%s: the escape task's output is reported" % lang,
          json.dumps(esc)[:2000])
    check("orphan-started" in json.dumps(recs.get(lang + "-orphan", {})),
          "%s: the orphan was started (so its absence below means something)" % lang)
    ex = (recs.get(lang + "-flood", {}).get("history") or [{}])[-1].get("execution") or {}
    check(ex.get("stdout_truncated") or ex.get("stderr_truncated"),
          "%s: 100 MB of output is truncated" % lang, json.dumps(ex)[:500])
    mem = recs.get(lang + "-memory", {})
    check(mem.get("status") == "failed" and "allocated-all" not in json.dumps(mem),
          "%s: the memory bomb fails before it holds 8 GiB" % lang, json.dumps(mem)[:2000])
    try:
        conn, _ = listener.accept()
        conn.close()
        check(False, "%s: no job reaches the host's listener" % lang)
    except BlockingIOError:
        check(True, "%s: no job reaches the host's listener" % lang)
    check(not os.listdir(mark_dir), "%s: nothing written in the host's /tmp" % lang,
          os.listdir(mark_dir))
    check(not os.path.exists(os.path.join(SOURCE_ROOT, "gg-adv-" + lang)),
          "%s: nothing written in the source tree" % lang)
    check(secret not in seen, "%s: the root-only secret file is not read" % lang)
    check(env_secret not in seen, "%s: the host's environment is not seen" % lang)
    check(sentinel.poll() is None, "%s: a process of uid 65534 on the host outlives kill(-1)"
          % lang)
    check(wait_until(lambda: not procs_with_cmdline(orphan_argv) and
                     not procs_with_cmdline(child_argv)),
          "%s: no process the jobs started is left on the host" % lang,
          (procs_with_cmdline(orphan_argv), procs_with_cmdline(child_argv)))
    check(len(seen) < 8 << 20, "%s: 100 MB of output is capped (%d bytes reported)"
          % (lang, len(seen)))
    print("%s: %s" % (lang, dump))
    for leftover in procs_with_cmdline(orphan_argv) + procs_with_cmdline(child_argv):
        os.kill(leftover, signal.SIGKILL)  # the test's own probe, by PID, if it escaped
    for stray in [os.path.join(SOURCE_ROOT, "gg-adv-" + lang)] + \
            [os.path.join(mark_dir, x) for x in os.listdir(mark_dir)]:
        if os.path.exists(stray):
            os.unlink(stray)

sentinel.kill()
sentinel.wait()
listener.close()
shutil.rmtree(work, ignore_errors=True)
if not ran:
    skip("no language could run here")
finish()
