/*
 * test_settings_options.c - settings that were read from the environment only are options
 * too (docs/configuration.md), and an option the host set wins over the variable, which wins
 * over the default: the openai generator's arms, journal, bandit seed and cost of a second
 * (gg_generator_options version 2), the run's token budget (gg_orchestrator_options
 * version 4, max_tokens) and the process executor's zygotes (gg_executor_options version 3).
 * A bad option is refused naming the option; a version 1 generator options struct (against
 * an inaccessible page) still works and reads the environment. Links the shared library.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/generator.h>
#include <cJSON.h>

#include "testutil.h"

/* ---- the openai generator's options ---- */

static gg_generator_options openai_opts(void)
{
    gg_generator_options o;
    gg_generator_options_init(&o, GG_GENERATOR_OPTIONS_VERSION);
    o.spec = "openai";
    o.url = "http://127.0.0.1:9/v1"; /* never asked: nothing is generated here */
    o.model = "m";
    return o;
}

/* rc of gg_generator_new with o; the handle is destroyed at once. */
static int try_generator(const gg_generator_options *o)
{
    gg_generator_t *g = NULL;
    int rc = gg_generator_new(&g, o);
    gg_generator_destroy(&g);
    return rc;
}

static void test_generator_precedence(const char *dir)
{
    /* arms: a broken variable is not read when the option is set */
    setenv("GRYPHGEN_LLM_ARMS", "not arms", 1);
    gg_generator_options o = openai_opts();
    CHECK_RC(try_generator(&o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_LLM_ARMS");
    o.arms = "1 m 0.1,0.7";
    CHECK_RC(try_generator(&o), GG_OK);
    o.arms = "3 m";
    CHECK_RC(try_generator(&o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "option arms");
    unsetenv("GRYPHGEN_LLM_ARMS");

    /* cost of a second and the bandit's seed likewise */
    setenv("GRYPHGEN_LLM_COST_PER_SECOND", "lots", 1);
    setenv("GRYPHGEN_LLM_BANDIT_SEED", "seedy", 1);
    o = openai_opts();
    CHECK_RC(try_generator(&o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_LLM_COST_PER_SECOND");
    o.cost_per_second = 2.5;
    CHECK_RC(try_generator(&o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_LLM_BANDIT_SEED");
    o.bandit_seed = 42;
    CHECK_RC(try_generator(&o), GG_OK);
    o.cost_per_second = 2e9;
    CHECK_RC(try_generator(&o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "option cost_per_second");
    unsetenv("GRYPHGEN_LLM_COST_PER_SECOND");
    unsetenv("GRYPHGEN_LLM_BANDIT_SEED");

    /* journal: the option's file is the one opened, not the variable's */
    char env_journal[512], opt_journal[512];
    snprintf(env_journal, sizeof env_journal, "%s/env-journal.db", dir);
    snprintf(opt_journal, sizeof opt_journal, "%s/opt-journal.db", dir);
    setenv("GRYPHGEN_LLM_JOURNAL", env_journal, 1);
    o = openai_opts();
    o.journal = opt_journal;
    CHECK_RC(try_generator(&o), GG_OK);
    CHECK(access(opt_journal, F_OK) == 0);
    CHECK(access(env_journal, F_OK) != 0);
    o.journal = NULL;
    CHECK_RC(try_generator(&o), GG_OK);
    CHECK(access(env_journal, F_OK) == 0);
    o.journal = "";
    CHECK_RC(try_generator(&o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "option journal");
    unsetenv("GRYPHGEN_LLM_JOURNAL");
}

/* gg_generator_options as a program built against the version 1 header sees it. */
typedef struct frozen_generator_options_v1 {
    uint32_t version;
    const char *spec;
    double timeout_s;
    size_t max_output;
    const char *url, *model, *api_key, *api_key_file;
    double temperature;
    int max_tokens;
    long long seed;
    double connect_timeout_s;
    int max_retries;
    const char *prompt_template_file;
} frozen_generator_options_v1;

static void test_generator_v1_caller(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED)
        return;
    CHECK(mprotect(mem + page, (size_t)page, PROT_NONE) == 0);
    frozen_generator_options_v1 *v1 = (frozen_generator_options_v1 *)(mem + page - sizeof *v1);
    memset(v1, 0, sizeof *v1);
    v1->version = 1;
    v1->spec = "openai";
    v1->url = "http://127.0.0.1:9/v1";
    v1->model = "m";
    v1->temperature = -1;
    v1->seed = -1;
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, (const gg_generator_options *)v1), GG_OK);
    gg_generator_destroy(&g);
    /* the fields it lacks take their defaults: the environment is read */
    setenv("GRYPHGEN_LLM_ARMS", "not arms", 1);
    CHECK_RC(gg_generator_new(&g, (const gg_generator_options *)v1), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_LLM_ARMS");
    unsetenv("GRYPHGEN_LLM_ARMS");
    munmap(mem, (size_t)page * 2);
}

/* ---- the run's token budget ---- */

/* Writes wrong code and reports 100 tokens for it. */
static int costly_generate(void *self, const char *request_json, char **out)
{
    (void)self;
    (void)request_json;
    *out = gg_strdup("{\"code\":\"    return 0\\n\",\"usage\":{\"total_tokens\":100}}");
    return *out ? GG_OK : GG_ENOMEM;
}

/* Runs one task of 3 attempts with max_tokens and GRYPHGEN_MAX_TOKENS=env; its result. */
static cJSON *budget_run(const char *dir, const char *name, long long max_tokens,
                         const char *env)
{
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = costly_generate;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, NULL), GG_OK);
    setenv("GRYPHGEN_MAX_TOKENS", env, 1);
    char db[512];
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.workers = 1;
    opts.generator = gen;
    opts.db_path = db;
    opts.max_tokens = max_tokens;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    char *id = NULL, *res = NULL;
    cJSON *r = NULL;
    if (o && gg_orchestrator_submit(o, "{\"language\":\"python\",\"prompt\":\"sub\","
                                       "\"stub\":\"def sub(a, b):\\n\",\"entry_point\":\"sub\","
                                       "\"test\":\"assert sub(3, 1) == 2\","
                                       "\"budget\":{\"max_attempts\":3}}", &id) == GG_OK &&
        gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res) == GG_OK)
        r = cJSON_Parse(res);
    CHECK(r != NULL);
    gg_free(id);
    gg_free(res);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    unsetenv("GRYPHGEN_MAX_TOKENS");
    return r;
}

static const char *reason_of(const cJSON *r)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(r, "reason"));
    return s ? s : "";
}

static void test_run_budget(const char *dir)
{
    cJSON *r = budget_run(dir, "option", 50, "1000000"); /* the option wins */
    CHECK_CONTAINS(reason_of(r), "run token budget");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "attempts")) == 1);
    cJSON_Delete(r);
    r = budget_run(dir, "env", 0, "50"); /* unset: the environment */
    CHECK_CONTAINS(reason_of(r), "run token budget");
    cJSON_Delete(r);
    r = budget_run(dir, "none", -1, "50"); /* negative: no limit at all */
    CHECK_CONTAINS(reason_of(r), "failed all 3 attempt");
    cJSON_Delete(r);

    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.max_tokens = 2000000000000LL;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "max_tokens");
    CHECK(o == NULL);
}

/* ---- zygotes ---- */

/* Runs `python3 -c pass` at level namespaces with option zygote and GRYPHGEN_ZYGOTE=env;
 * 1 or 0: the result's "zygote"; -1: this host has no namespace sandbox. */
static int zygote_used(int zygote, const char *env)
{
    setenv("GRYPHGEN_ZYGOTE", env, 1);
    gg_executor_options o;
    gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
    o.isolation = "namespaces";
    o.zygote = zygote;
    gg_executor_t *ex = NULL;
    char *out = NULL;
    int used = -1;
    if (gg_executor_new(&ex, &o) == GG_OK &&
        gg_executor_run(ex, "{\"argv\": [\"/usr/bin/python3\", \"-c\", \"pass\"]}", &out) ==
            GG_OK) {
        cJSON *r = cJSON_Parse(out);
        const char *iso = cJSON_GetStringValue(cJSON_GetObjectItem(r, "isolation"));
        if (iso && strcmp(iso, "namespaces") == 0)
            used = cJSON_IsTrue(cJSON_GetObjectItem(r, "zygote"));
        cJSON_Delete(r);
    }
    gg_free(out);
    gg_executor_destroy(&ex);
    gg_error_clear();
    unsetenv("GRYPHGEN_ZYGOTE");
    return used;
}

static void test_zygote_option(void)
{
    if (access("/usr/bin/python3", X_OK) != 0 || zygote_used(0, "1") < 0) {
        printf("skipped: zygotes (no namespace sandbox or no /usr/bin/python3 here)\n");
        return;
    }
    CHECK(zygote_used(0, "1") == 1);  /* default: on */
    CHECK(zygote_used(0, "0") == 0);  /* the environment turns them off */
    CHECK(zygote_used(1, "0") == 1);  /* the option wins over it */
    CHECK(zygote_used(-1, "1") == 0); /* either way */
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    unsetenv("GRYPHGEN_LLM_URL");
    unsetenv("GRYPHGEN_LLM_MODEL");
    char dir[] = "/tmp/gg_settings_XXXXXX";
    CHECK(test_make_dir(dir));
    if (!dir[0] || strstr(dir, "XXXXXX"))
        return test_exit();
    test_generator_precedence(dir);
    test_generator_v1_caller();
    test_run_budget(dir);
    test_zygote_option();
    test_remove_dir(dir);
    return test_exit();
}
