"""Orchestrator.metrics(), .tasks() and .connect() (libgryphgen 1.2): Prometheus text with
the task counts, pages of the task list, an in-process client, and bad input."""

import pytest

from conftest import GUARD_S, PYTHON, add_task


def test_metrics_tasks_and_connect(gg):
    with gg.Orchestrator(workers=1, python=PYTHON) as o:
        o.submit(add_task("p/1"))
        o.submit(add_task("p/2", candidates=("    return a - b\n",)))
        o.drain(timeout=GUARD_S)
        text = o.metrics()
        assert 'gryphgen_tasks_total{status="passed"} 1\n' in text
        assert 'gryphgen_tasks_total{status="failed"} 1\n' in text
        page = o.tasks(status="failed")
        assert [t["task_id"] for t in page["tasks"]] == ["p/2"] and page["next"] is None
        first = o.tasks(limit=1)
        assert [t["task_id"] for t in first["tasks"]] == ["p/1"] and first["next"]
        assert [t["task_id"] for t in o.tasks(after=first["next"])["tasks"]] == ["p/2"]
        assert o.tasks(newest=True, limit=1)["tasks"][0]["task_id"] == "p/2"
        with pytest.raises(gg.InvalidInput):
            o.tasks(status="finished")
        with pytest.raises(gg.InvalidInput):
            o.tasks(limit=0)
        c = o.connect("py-embedder")
        assert c.submit(add_task("p/3")) == "p/3"
        assert c.wait("p/3", timeout=GUARD_S)["status"] == "passed"
        assert [t["task_id"] for t in o.tasks(submitter="py-embedder")["tasks"]] == ["p/3"]
        with pytest.raises(gg.InvalidInput):
            o.connect("")
    c.close()  # closed with the orchestrator already: idempotent
