#!/usr/bin/python3
"""learning_corpus.py - the synthetic corpus, tasks and stand-in model of bench/learning.sh.

    learning_corpus.py corpus DIR [--easy]   write the corpus (one Markdown file per family)
    learning_corpus.py tasks EPOCH [--attempts N]   print the tasks of an epoch (JSON lines)
    learning_corpus.py model                 the stand-in model: a `command:` generator
    learning_corpus.py plot CURVES PNG       draw the curves ("NAME r1 r2 ..." lines)

Each of the 10 task families asks for the current value of a made-up setting. Its file has
two short sections that repeat the setting's name (BM25 ranks them first) and hold stale
values, and one longer section, written as prose, that holds the current value. With --easy
the current value sits in the short, keyword-dense section and the stale ones in long prose:
plain BM25 is already right there.

The stand-in model trusts the FIRST reference it is given: it answers with the value that
reference states ("VALUE: x"), or "unknown" without context. A task's test checks the
current value, so a first attempt passes exactly when the right section (or a solution that
holds its value) comes first.
"""
import json
import os
import re
import sys

FAMILIES = [
    ("zorblax", "port"), ("quimby", "timeout"), ("vantor", "quota"), ("plexa", "region"),
    ("drumlin", "codec"), ("fennic", "cipher"), ("gossam", "threshold"), ("hobart", "mirror"),
    ("ivrel", "bucket"), ("jaspen", "channel"),
]

FILLER = (
    "Operators changed this during the migration of the cluster, after the review of the "
    "incident reports. The change was rolled out in stages across every data centre, checked "
    "by the on-call engineers and confirmed in the weekly operations meeting. Older notes in "
    "this file predate that migration and were kept for the record only; they describe how the "
    "service behaved before the rollout and must not be relied on for new deployments. "
)


def values(i):
    return ("stale%da" % i, "stale%db" % i, "right%d" % i)


def write_corpus(path, easy):
    os.makedirs(path, exist_ok=True)
    for i, (name, param) in enumerate(FAMILIES):
        stale_a, stale_b, right = values(i)
        short = lambda v, tag: (
            "## %s %s %s\n\n%s %s: VALUE: %s. The %s %s is %s for %s %s.\n\n"
            % (name, param, tag, name, param, v, name, param, v, name, param))
        long = lambda v, tag: (
            "## %s notes %s\n\nThe %s %s is VALUE: %s since the last migration. %s%s\n\n"
            % (name, tag, name, param, v, FILLER, FILLER))
        if easy:
            text = long(stale_a, "(history)") + short(right, "(current)") + long(stale_b, "(archive)")
        else:
            text = short(stale_a, "(legacy)") + short(stale_b, "(old)") + long(right, "(current)")
        with open(os.path.join(path, "%02d-%s.md" % (i, name)), "w") as f:
            f.write("# %s\n\n%s" % (name.capitalize(), text))


def tasks(epoch, attempts):
    for i, (name, param) in enumerate(FAMILIES):
        right = values(i)[2]
        yield {
            "task_id": "e%d-%s" % (epoch, name),
            "language": "python",
            "prompt": "What is the current %s %s? Write answer() that returns the %s %s."
                      % (name, param, name, param),
            "entry_point": "answer",
            "test": "def check(candidate):\n    assert candidate() == %r\n" % right,
            "budget": {"max_attempts": attempts},
        }


def model():
    req = json.load(sys.stdin)
    value = "unknown"
    for doc in req.get("context") or []:
        m = re.search(r"VALUE: ([A-Za-z0-9_]+)", doc.get("text", ""))
        if m:
            value = m.group(1)
        break  # only the first reference counts
    sys.stdout.write("# VALUE: %s\ndef answer():\n    return %r\n" % (value, value))


def plot(curves, png):
    rows = [l.split() for l in open(curves) if l.strip()]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return plot_gnuplot(rows, png)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, corpus, title in ((axes[0], "hard", "misleading corpus"),
                              (axes[1], "easy", "BM25 already right")):
        for row in rows:
            if row[0].endswith(corpus):
                ys = [float(v) for v in row[1:]]
                learning = row[0].startswith("learning")
                ax.plot(range(1, len(ys) + 1), ys, marker="o" if learning else "s",
                        linestyle="-" if learning else "--", markersize=7 if learning else 5,
                        label="learning" if learning else "plain BM25")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("first-attempt pass rate (%)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    return 0


def plot_gnuplot(rows, png):
    import subprocess
    data = png + ".dat"
    with open(data, "w") as f:
        for i in range(1, len(rows[0])):
            f.write(" ".join([str(i)] + [r[i] for r in rows]) + "\n")
    cmds = ["set terminal png size 900,400", "set output '%s'" % png, "set yrange [-5:105]",
            "set xlabel 'epoch'", "set ylabel 'first-attempt pass rate (%)'",
            "plot " + ", ".join("'%s' using 1:%d with linespoints title '%s'" % (data, k + 2, r[0])
                                for k, r in enumerate(rows))]
    subprocess.run(["gnuplot"], input="\n".join(cmds), text=True, check=True)
    os.unlink(data)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "corpus":
        write_corpus(argv[2], "--easy" in argv)
    elif len(argv) >= 3 and argv[1] == "tasks":
        attempts = int(argv[argv.index("--attempts") + 1]) if "--attempts" in argv else 1
        for t in tasks(int(argv[2]), attempts):
            print(json.dumps(t))
    elif len(argv) == 2 and argv[1] == "model":
        model()
    elif len(argv) == 4 and argv[1] == "plot":
        return plot(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
