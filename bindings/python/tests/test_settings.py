"""Settings that were the environment's only are options from Python too
(docs/configuration.md), and the option wins over the variable: the openai generator's arms,
journal, bandit seed and cost of a second, the run's token budget (Orchestrator max_tokens)
and the process executor's zygotes. Each is checked by what the library then does."""

import pytest

from conftest import PYTHON

OPENAI = {"url": "http://127.0.0.1:9/v1", "model": "m"}  # never asked: nothing generated


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("GRYPHGEN_LLM_URL", "GRYPHGEN_LLM_MODEL", "GRYPHGEN_LLM_ARMS",
                 "GRYPHGEN_LLM_JOURNAL", "GRYPHGEN_LLM_BANDIT_SEED",
                 "GRYPHGEN_LLM_COST_PER_SECOND", "GRYPHGEN_MAX_TOKENS", "GRYPHGEN_ZYGOTE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_generator_settings_win_over_the_environment(gg, clean_env, tmp_path):
    clean_env.setenv("GRYPHGEN_LLM_ARMS", "not arms")
    clean_env.setenv("GRYPHGEN_LLM_BANDIT_SEED", "seedy")
    clean_env.setenv("GRYPHGEN_LLM_COST_PER_SECOND", "lots")
    with pytest.raises(gg.InvalidInput) as e:
        gg.GeneratorHandle.create("openai", **OPENAI)
    assert "GRYPHGEN_LLM_ARMS" in str(e.value)
    journal = tmp_path / "journal.db"
    with gg.GeneratorHandle.create("openai", arms="1 m 0.2", bandit_seed=7,
                                   cost_per_second=0.5, journal=str(journal), **OPENAI) as h:
        assert h.name == "openai"
    assert journal.exists()
    with pytest.raises(gg.InvalidInput) as e:
        gg.GeneratorHandle.create("openai", arms="5 m", bandit_seed=7, cost_per_second=0.5,
                                  **OPENAI)
    assert "option arms" in str(e.value)


def _costly(gg):
    class Costly(gg.Generator):
        """Wrong code, 100 tokens each time."""

        def generate(self, request):
            return {"code": "    return 0\n", "usage": {"total_tokens": 100}}
    return Costly()


def _run_sub(gg, **orch_options):
    task = {"language": "python", "prompt": "sub", "stub": "def sub(a, b):\n",
            "entry_point": "sub", "test": "assert sub(3, 1) == 2",
            "budget": {"max_attempts": 3}}
    with gg.Orchestrator(workers=1, python=PYTHON, generator=_costly(gg),
                         **orch_options) as o:
        return o.wait(o.submit(task), timeout=120)


def test_run_token_budget_option(gg, clean_env):
    clean_env.setenv("GRYPHGEN_MAX_TOKENS", "1000000")
    r = _run_sub(gg, max_tokens=50)
    assert "run token budget" in r["reason"] and r["attempts"] == 1
    clean_env.setenv("GRYPHGEN_MAX_TOKENS", "50")
    r = _run_sub(gg, max_tokens=-1)
    assert "failed all 3 attempt" in r["reason"]
    with pytest.raises(gg.InvalidInput):
        gg.Orchestrator(max_tokens=2 * 10**12)


def test_executor_zygote_option(gg, clean_env):
    job = {"argv": [PYTHON, "-c", "pass"]}
    try:
        with gg.ExecutorHandle.create("process", isolation="namespaces") as h:
            first = h.run(job)
    except gg.Unsupported:
        pytest.skip("no namespace sandbox here")
    if first["isolation"] != "namespaces" or not first["zygote"]:
        pytest.skip("no zygotes here")
    clean_env.setenv("GRYPHGEN_ZYGOTE", "0")
    with gg.ExecutorHandle.create("process", isolation="namespaces") as h:
        assert h.run(job)["zygote"] is False
    with gg.ExecutorHandle.create("process", isolation="namespaces", zygote=1) as h:
        assert h.run(job)["zygote"] is True
    clean_env.delenv("GRYPHGEN_ZYGOTE")
    with gg.ExecutorHandle.create("process", isolation="namespaces", zygote=-1) as h:
        assert h.run(job)["zygote"] is False
