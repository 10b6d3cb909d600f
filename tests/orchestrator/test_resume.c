/*
 * test_resume.c - a run killed with SIGKILL in the middle and started again on the same
 * database finishes the remaining tasks without redoing finished ones: every task ends
 * exactly once, with exactly one attempt row each, and tasks finished before the kill keep
 * their results untouched. The killed run holds the second half of the tasks at its executor
 * (their code carries HOLD_MARK), so exactly the first half has passed when it is killed,
 * however fast the machine is.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/executor.h>

#include "store/store.h"
#include "testdb.h"
#include "testutil.h"

#define N_TASKS 24
#define N_FIRST 12 /* the tasks the killed run can finish */
#define HOLD_MARK "gg-test-hold"

static void task_json(char *buf, size_t n, int i)
{
    snprintf(buf, n, "{\"task_id\":\"r%02d\",\"language\":\"python\",\"test\":\"assert v == %d\\n\","
                     "\"candidates\":[\"%sv = %d\\n\"]}", i, i, i >= N_FIRST ? "# " HOLD_MARK "\\n" : "", i);
}

/* The killed run's executor: a job of a held task never returns (until SIGKILL). */
static int hold_run(void *self, const char *req, char **out)
{
    if (strstr(req, HOLD_MARK))
        for (;;)
            pause();
    return gg_executor_run((gg_executor_t *)self, req, out);
}

static int submit_all(gg_orchestrator_t *o)
{
    char buf[512];
    for (int i = 0; i < N_TASKS; i++) {
        task_json(buf, sizeof buf, i);
        if (gg_orchestrator_submit(o, buf, NULL) != GG_OK) {
            fprintf(stderr, "submit %d: %s\n", i, gg_error_last());
            return 1;
        }
    }
    return 0;
}

/* The child: a run that never gets to finish. */
static void child_run(const char *db)
{
    gg_executor_t *real = NULL, *held = NULL;
    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    vt.run = hold_run;
    vt.name = "process";
    if (gg_executor_new(&real, NULL) != GG_OK || gg_executor_new_custom(&held, &vt, real) != GG_OK)
        _exit(3);
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.db_path = db;
    opts.workers = 2;
    opts.executor = held;
    gg_orchestrator_t *o = NULL;
    if (gg_orchestrator_new(&o, &opts) != GG_OK || submit_all(o) != 0)
        _exit(3);
    gg_orchestrator_drain(o, -1);
    _exit(4); /* not reached: the parent kills it first */
}

static int64_t count(const char *db, const char *sql)
{
    return test_db_int(db, sql);
}

static int first_half_passed(void *db)
{
    return count(db, "SELECT count(*) FROM tasks WHERE status='passed'") >= N_FIRST;
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    char db[] = "/tmp/gg-test-resume-XXXXXX";
    int fd = mkstemp(db);
    CHECK(fd >= 0);
    close(fd);
    unlink(db);

    /* The killed run cannot clean its job workspaces: give it a folder of its own. */
    char work[] = "/tmp/gg-test-resume-work-XXXXXX";
    CHECK(mkdtemp(work) != NULL);
    setenv("TMPDIR", work, 1);

    pid_t pid = fork();
    if (pid == 0)
        child_run(db);
    CHECK(pid > 0);
    /* Once the tasks it can finish have passed, kill the run in the middle. */
    CHECK(test_wait_for(first_half_passed, db));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    int64_t before = count(db, "SELECT count(*) FROM tasks WHERE status='passed'");
    fprintf(stderr, "killed with %lld of %d tasks passed\n", (long long)before, N_TASKS);
    CHECK(before == N_FIRST);
    int64_t stamp = count(db, "SELECT sum(CAST(finished_at * 1000 AS INTEGER)) FROM tasks WHERE status='passed'");

    /* The same run again, on the same database. */
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.db_path = db;
    opts.workers = 2;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    CHECK(submit_all(o) == 0);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    for (int i = 0; i < N_TASKS; i++) {
        char id[8], *res = NULL;
        snprintf(id, sizeof id, "r%02d", i);
        CHECK_RC(gg_orchestrator_result(o, id, &res), GG_OK);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        CHECK_CONTAINS(res, "\"attempts\":1");
        gg_free(res);
    }
    gg_orchestrator_destroy(&o);

    CHECK(count(db, "SELECT count(*) FROM tasks") == N_TASKS);
    CHECK(count(db, "SELECT count(*) FROM tasks WHERE status='passed'") == N_TASKS);
    CHECK(count(db, "SELECT count(*) FROM attempts") == N_TASKS);
    CHECK(count(db, "SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL") == N_TASKS);
    CHECK(count(db, "SELECT n FROM task_counts WHERE status='passed'") == N_TASKS);
    CHECK(count(db, "SELECT sum(n) FROM task_counts WHERE status <> '#attempts'") == N_TASKS);
    /* Tasks finished before the kill were not touched again. Each time is made an integer
     * before the sum, so the two sums (over rows in other orders) are exact. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT sum(CAST(finished_at * 1000 AS INTEGER)) FROM (SELECT finished_at FROM tasks WHERE status='passed' ORDER BY finished_at LIMIT %lld)", (long long)before);
    CHECK(count(db, sql) == stamp);

    char side[128];
    snprintf(side, sizeof side, "rm -rf '%s'", work);
    CHECK(system(side) == 0);
    unlink(db);
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    return test_exit();
}
