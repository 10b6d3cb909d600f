"""test_settings_flags.py - the flags of settings that were the environment's only
(docs/configuration.md): --max-tokens, --zygote and the openai generator's --llm-arms,
--llm-journal, --llm-bandit-seed and --llm-cost-per-second. Bad values are usage errors
(exit 2) naming the flag; a flag wins over its variable (a broken variable is not read when
the flag is given); the run's budget is the orchestrator's, so eval --connect refuses it."""

import os

from clitest import check, finish, gg, tmpdir

work = tmpdir()
empty = os.path.join(work, "empty.jsonl")
open(empty, "w").close()

for args, flag in ((["--zygote", "maybe"], "--zygote"),
                   (["--max-tokens", "0"], "--max-tokens"),
                   (["--max-tokens", "lots"], "--max-tokens"),
                   (["--llm-bandit-seed", "-1"], "--llm-bandit-seed"),
                   (["--llm-cost-per-second", "abc"], "--llm-cost-per-second"),
                   (["--llm-arms", ""], "--llm-arms"),
                   (["--llm-journal", ""], "--llm-journal")):
    p = gg(["eval"] + args + [empty])
    check(p.returncode == 2 and flag in p.stderr, "eval %s: a usage error naming the flag"
          % " ".join(args), p.stderr)

p = gg(["eval", "--connect", "tcp://127.0.0.1:9", "--insecure", "--max-tokens", "5", empty])
check(p.returncode == 2 and "serve --max-tokens" in p.stderr,
      "eval --connect refuses --max-tokens, naming serve's", p.stderr)

# The openai generator is made before anything runs: a broken GRYPHGEN_LLM_ARMS stops eval,
# unless --llm-arms gives the arms (then the variable is not read). The set is empty, so no
# model is asked.
# (clitest.gg passes this process's environment on.)
os.environ.update(GRYPHGEN_LLM_URL="http://127.0.0.1:9/v1", GRYPHGEN_LLM_MODEL="m",
                  GRYPHGEN_LLM_ARMS="not arms")
journal = os.path.join(work, "journal.db")
p = gg(["eval", "--generator", "openai", "--quiet", empty])
check(p.returncode == 2 and "GRYPHGEN_LLM_ARMS" in p.stderr,
      "a broken GRYPHGEN_LLM_ARMS is refused without the flag", p.stderr)
p = gg(["eval", "--generator", "openai", "--quiet", "--llm-arms", "1 m 0.2",
        "--llm-bandit-seed", "3", "--llm-cost-per-second", "0.5", "--llm-journal", journal,
        empty])
check(p.returncode == 0, "--llm-arms wins over GRYPHGEN_LLM_ARMS", p.stderr)
check(os.path.exists(journal), "--llm-journal's file is the journal", os.listdir(work))
for name in ("GRYPHGEN_LLM_URL", "GRYPHGEN_LLM_MODEL", "GRYPHGEN_LLM_ARMS"):
    del os.environ[name]

p = gg(["eval", "--zygote", "off", "--max-tokens", "1000", "--quiet", empty])
check(p.returncode == 0, "eval --zygote off --max-tokens N runs a set", p.stderr)

finish()
