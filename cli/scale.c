/*
 * scale.c - `gryphgen scale`: keeps a number of `gryphgen worker` processes running on a
 * cluster engine (Slurm jobs, a Kubernetes Deployment's pods) in step with an orchestrator's
 * queue. It asks the orchestrator for its counters (gg_client_status), works out how many
 * workers the tasks in play can use, and has the engine move toward that number: more while
 * tasks wait for a worker (queued, or running with no worker holding their job), never more
 * than --max-jobs, never fewer than --min-jobs. On SIGINT or SIGTERM
 * it ends every worker it started. The engines are scale_slurm.c and scale_k8s.c (scale.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "scale.h"

enum { OPT_CONNECT = 0x200, OPT_ENGINE, OPT_MIN, OPT_MAX, OPT_SLOTS, OPT_IDLE, OPT_POLL,
       OPT_ID, OPT_SBATCH_ARG, OPT_WORKER_EXE, OPT_WORKER_KEY, OPT_FWD_ARG, OPT_FWD_FLAG,
       OPT_K8S_NS, OPT_K8S_DEPLOY, OPT_K8S_SERVER, OPT_K8S_TOKEN, OPT_K8S_CA, OPT_KUBECONFIG };

/* The largest output read from an engine's command. */
#define RUN_MAX_OUT ((size_t)1 << 20)

static void scale_usage(FILE *f)
{
    fprintf(f,
        "usage: gryphgen scale --connect ENDPOINT [--engine slurm|kubernetes]\n"
        "                      [--min-jobs N] [--max-jobs N] [--slots K] [--idle-s S]\n"
        "                      [--poll-ms MS] [--id ID] [--sbatch-arg ARG]...\n"
        "                      [--worker-key FILE] [--key FILE --server-key KEY] [--insecure]\n"
        "                      [worker options: --generator, --label, --queue, --executor,\n"
        "                       --python, --cc, --isolation, --journal, --index-url,\n"
        "                       --index-token-env, --llm-timeout, --llm-max-tokens, --log-level,\n"
        "                       --zygote, --llm-arms, --llm-journal, --llm-bandit-seed,\n"
        "                       --llm-cost-per-second]\n"
        "Keeps between --min-jobs and --max-jobs workers (`gryphgen worker`) running, in step\n"
        "with the orchestrator's queue: more while tasks wait, none beyond what they can use\n"
        "(one worker per --slots tasks queued or running). SIGINT/SIGTERM ends them all.\n"
        "  --connect ENDPOINT the orchestrator, or EP1,EP2,... (a primary and its backup:\n"
        "                     the workers and this command follow the active one)\n"
        "  --engine slurm     each worker is a Slurm job (sbatch, named gryphgen-ID, with\n"
        "                     --cpus-per-task K); it exits after --idle-s S without a job, and\n"
        "                     its job ends (default)\n"
        "  --engine kubernetes  sets the replicas of the workers' Deployment (scale\n"
        "                     subresource): --k8s-deployment NAME (gryphgen-worker),\n"
        "                     --k8s-namespace NS, and the API server from --k8s-server URL\n"
        "                     --k8s-token-file FILE [--k8s-ca FILE], else --kubeconfig FILE\n"
        "                     ($KUBECONFIG), else the pod's service account\n"
        "  --min-jobs N       workers kept even without tasks (default 0)\n"
        "  --max-jobs N       at most this many workers (default 4, at most %d)\n"
        "  --slots K          each worker's --slots (default 1; with kubernetes, give the\n"
        "                     Deployment's: the need is counted in workers of K slots)\n"
        "  --idle-s S         each worker's --idle-s, and how long the need must stay lower\n"
        "                     before workers are taken away (default 60)\n"
        "  --poll-ms MS       how often the queue is looked at (default 2000)\n"
        "  --id ID            tags this scaler's jobs (letters, digits, - and _; default random)\n"
        "  --sbatch-arg ARG   one more sbatch argument (e.g. --sbatch-arg=--partition=cpu)\n"
        "  --worker-exe PATH  the gryphgen the workers run (default: this one)\n"
        "  --worker-key FILE  the workers' CURVE key pair (their --key); --server-key and\n"
        "                     --insecure go to the workers too; --key is this scaler's own\n"
        "                     (a submitter or admin key: it asks for the status). Worker\n"
        "                     options are for slurm: a Deployment's pods take theirs from\n"
        "                     its pod template\n",
        SCALE_MAX_JOBS);
}

/* ------------------------------------------------------------ running a command */

/* In the child: stdin from in_fd (or /dev/null), stdout to out_fd (or /dev/null), exec. */
static void child_exec(const char *const *argv, int in_fd, int out_fd)
{
    int null_fd = open("/dev/null", O_RDWR);
    dup2(in_fd >= 0 ? in_fd : null_fd, 0);
    dup2(out_fd >= 0 ? out_fd : null_fd, 1);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "gryphgen: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Reads fd to its end into a malloc'd string (at most RUN_MAX_OUT); NULL when out of memory. */
static char *read_all(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap && cap < RUN_MAX_OUT + 1) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t room = cap - 1 - len;
        if (room == 0) { /* over the limit: the rest is drained and dropped */
            char sink[4096];
            ssize_t n = read(fd, sink, sizeof sink);
            if (n > 0 || (n < 0 && errno == EINTR))
                continue;
            break;
        }
        ssize_t n = read(fd, buf + len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

int scale_run(const char *const *argv, const char *stdin_text, char **out)
{
    int in[2] = {-1, -1}, op[2] = {-1, -1};
    if (out)
        *out = NULL;
    if ((stdin_text && pipe2(in, O_CLOEXEC) != 0) || (out && pipe2(op, O_CLOEXEC) != 0)) {
        cli_errorf("scale: cannot run %s: %s", argv[0], strerror(errno));
        if (in[0] >= 0) {
            close(in[0]);
            close(in[1]);
        }
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_exec(argv, in[0], op[1]);
    if (in[0] >= 0)
        close(in[0]);
    if (op[1] >= 0)
        close(op[1]);
    if (pid < 0) {
        cli_errorf("scale: cannot run %s: %s", argv[0], strerror(errno));
        if (in[1] >= 0)
            close(in[1]);
        if (op[0] >= 0)
            close(op[0]);
        return -1;
    }
    if (in[1] >= 0) { /* small texts (a job script): written whole before reading */
        void (*old)(int) = signal(SIGPIPE, SIG_IGN);
        (void)cli_write_all(in[1], stdin_text, strlen(stdin_text)); /* (a reader gone early) */
        close(in[1]);
        signal(SIGPIPE, old);
    }
    if (op[0] >= 0) {
        *out = read_all(op[0]);
        close(op[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            cli_errorf("scale: waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    }
    if (out && !*out) {
        cli_errorf("scale: out of memory");
        return -1;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st) == 127 ? -1 : WEXITSTATUS(st);
    cli_errorf("scale: %s ended by signal %d", argv[0], WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return -1;
}

/* ------------------------------------------------------------ policy */

/* How many workers the tasks in play can use: one per `slots` tasks queued or running,
 * within [lo, hi]. */
static unsigned scale_need(unsigned long queued, unsigned long running, unsigned slots,
                           unsigned lo, unsigned hi)
{
    unsigned long tasks = queued + running;
    unsigned long n = (tasks + slots - 1) / slots;
    if (n < lo)
        n = lo;
    if (n > hi)
        n = hi;
    return (unsigned)n;
}

/* The orchestrator's counts of queued and running tasks, and of the jobs its workers hold
 * (the nodes' busy): a running task whose job no worker holds (requeued after its worker
 * left, or between attempts) waits for a worker as a queued one does. -1 when it did not
 * answer. */
static int grid_counts(gg_client_t *c, unsigned long *queued, unsigned long *running,
                       unsigned long *held)
{
    char *js = NULL;
    if (gg_client_status(c, NULL, &js) != 0) {
        cli_errorf("scale: status: %s", gg_error_last());
        return -1;
    }
    cJSON *st = cJSON_Parse(js);
    gg_free(js);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(st, "queued");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "running");
    int ok = cJSON_IsNumber(q) && cJSON_IsNumber(r) && q->valuedouble >= 0 &&
             r->valuedouble >= 0;
    if (ok) {
        *queued = (unsigned long)q->valuedouble;
        *running = (unsigned long)r->valuedouble;
        *held = 0;
        const cJSON *n;
        cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(st, "nodes"))
        {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(n, "busy");
            if (cJSON_IsNumber(b) && b->valuedouble > 0)
                *held += (unsigned long)b->valuedouble;
        }
    } else {
        cli_errorf("scale: the orchestrator's status has no queued/running counts");
    }
    cJSON_Delete(st);
    return ok ? 0 : -1;
}

/* The capabilities this scaler's workers will have, as gg_client_demand asks: with Slurm
 * their labels are the --label options it passes on (none: {}, so a task that needs a label
 * is no demand for them); with Kubernetes the Deployment sets them, so they are not checked.
 * Languages, GPUs and libraries are not known here and not checked. NULL when out of
 * memory. */
static char *worker_caps(const scale_config *cfg, int labels_known, unsigned max_jobs)
{
    cJSON *caps = cJSON_CreateObject();
    /* More tasks than max_jobs workers can hold change nothing: the count may stop there. */
    double limit = (double)max_jobs * cfg->slots;
    cJSON_AddNumberToObject(caps, "limit", limit < 1 ? 1 : limit > 1e6 ? 1e6 : limit);
    cJSON *labels = labels_known ? cJSON_AddObjectToObject(caps, "labels") : NULL;
    for (unsigned i = 0; labels && i < cfg->n_worker_args; i++) {
        const char *a = cfg->worker_args[i];
        if (strncmp(a, "--label=", 8) != 0)
            continue;
        const char *eq = strchr(a + 8, '=');
        char key[256];
        if (!eq || (size_t)(eq - (a + 8)) >= sizeof key)
            continue;
        snprintf(key, sizeof key, "%.*s", (int)(eq - (a + 8)), a + 8);
        cJSON_DeleteItemFromObjectCaseSensitive(labels, key);
        cJSON_AddStringToObject(labels, key, eq + 1);
    }
    char *text = caps ? cJSON_PrintUnformatted(caps) : NULL;
    cJSON_Delete(caps);
    return text;
}

/* The demand this scaler's workers could serve: the unfinished tasks they could run and
 * those of them no worker holds. 0; -1 when the orchestrator did not answer (said why); -2
 * when it is older than 1.3 and cannot say (the caller counts every task instead). */
static int demand_counts(gg_client_t *c, const char *caps, unsigned long *tasks,
                         unsigned long *waiting)
{
    char *js = NULL;
    int rc = gg_client_demand(c, caps, &js);
    if (rc == GG_EVERSION)
        return -2;
    if (rc != 0) {
        cli_errorf("scale: demand: %s", gg_error_last());
        return -1;
    }
    cJSON *d = cJSON_Parse(js);
    gg_free(js);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "tasks");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "waiting");
    int ok = cJSON_IsNumber(t) && cJSON_IsNumber(w) && t->valuedouble >= 0 &&
             w->valuedouble >= 0;
    if (ok) {
        *tasks = (unsigned long)t->valuedouble;
        *waiting = (unsigned long)w->valuedouble;
    } else {
        cli_errorf("scale: the orchestrator's demand has no tasks/waiting counts");
    }
    cJSON_Delete(d);
    return ok ? 0 : -1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleeps ms, waking early when a signal arrived. */
static void nap_ms(unsigned ms)
{
    for (unsigned t = 0; t < ms && !cli_interrupted; t += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

typedef struct scale_run_opts {
    unsigned min_jobs, max_jobs, poll_ms, log_info;
} scale_run_opts;

/* The loop: look at the queue and the workers, move toward the need, until a signal. Rising
 * need is met at once (only while tasks wait); a lower need takes workers away only once
 * it has stayed lower for --idle-s. */
static int scale_loop(const scale_engine_vt *vt, scale_engine *e, const scale_config *cfg,
                      gg_client_t *client, const scale_run_opts *ro)
{
    double lower_since = -1;
    unsigned last_target = UINT_MAX;
    /* The demand its workers can serve (1.3), else every task (an older orchestrator). */
    char *caps = worker_caps(cfg, strcmp(vt->name, "kubernetes") != 0, ro->max_jobs);
    while (!cli_interrupted) {
        unsigned long queued = 0, running = 0, held = 0, tasks = 0, waiting = 0;
        scale_count c = {0, 0};
        int d = caps ? demand_counts(client, caps, &tasks, &waiting) : -2;
        if (d == -2) {
            free(caps);
            caps = NULL;
            d = grid_counts(client, &queued, &running, &held);
            tasks = queued + running;
            waiting = queued + running > held ? queued + running - held : 0;
        }
        if (d != 0 || vt->count(e, &c) != 0) {
            nap_ms(ro->poll_ms);
            continue; /* said why; the next look may work */
        }
        unsigned need = scale_need(tasks, 0, cfg->slots, ro->min_jobs, ro->max_jobs);
        unsigned live = c.pending + c.running;
        unsigned target = live;
        if (need > live && (waiting > 0 || live < ro->min_jobs)) {
            target = need;
            lower_since = -1;
        } else if (need < live) {
            double now = mono_s();
            if (lower_since < 0)
                lower_since = now;
            if (now - lower_since >= cfg->idle_s || (waiting == 0 && c.pending > 0))
                target = need; /* pending jobs may go at once: they hold nothing */
        } else {
            lower_since = -1;
        }
        if (target != last_target && ro->log_info)
            fprintf(stderr, "gryphgen: info: scale: %lu tasks its workers can run, %lu waiting "
                    "for a worker; %u pending and %u running workers; target %u\n", tasks,
                    waiting, c.pending, c.running, target);
        last_target = target;
        if (target != live)
            vt->apply(e, &c, target); /* a failure is said; the next look tries again */
        nap_ms(ro->poll_ms);
    }
    free(caps);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ options */

/* The worker options passed through to each worker as they were given. */
static const struct { const char *name; int has_arg; } forwarded[] = {
    {"generator", 1}, {"label", 1}, {"queue", 1}, {"executor", 1}, {"python", 1},
    {"cc", 1}, {"isolation", 1}, {"journal", 1}, {"index-url", 1}, {"index-token-env", 1},
    {"llm-timeout", 1}, {"llm-max-tokens", 1}, {"log-level", 1}, {"zygote", 1},
    {"llm-arms", 1}, {"llm-journal", 1}, {"llm-bandit-seed", 1}, {"llm-cost-per-second", 1},
};
#define N_FORWARDED (sizeof forwarded / sizeof forwarded[0])

typedef struct scale_opts {
    scale_config cfg;
    scale_run_opts run;
    const char *engine;
    const char *worker_only; /* a worker option given (without --): not for kubernetes */
    /* copies made for the workers (absolute key paths, "--name=value" texts), freed at end */
    char *owned[SCALE_MAX_WORKER_ARGS];
    unsigned n_owned;
} scale_opts;

static int add_worker_arg(scale_opts *o, const char *arg)
{
    if (o->cfg.n_worker_args >= SCALE_MAX_WORKER_ARGS) {
        cli_errorf("scale: too many worker options (at most %d)", SCALE_MAX_WORKER_ARGS);
        return -1;
    }
    o->cfg.worker_args[o->cfg.n_worker_args++] = arg;
    o->cfg.worker_args[o->cfg.n_worker_args] = NULL;
    return 0;
}

/* Keeps a malloc'd text for the end of the run; NULL (out of memory) is said and refused. */
static const char *own(scale_opts *o, char *text)
{
    if (!text || o->n_owned >= SCALE_MAX_WORKER_ARGS) {
        free(text);
        cli_errorf("scale: out of memory or too many options");
        return NULL;
    }
    o->owned[o->n_owned++] = text;
    return text;
}

/* A file given to the workers: made absolute (a job starts in another directory) and
 * checked to exist here. */
static const char *worker_file(scale_opts *o, const char *opt, const char *path)
{
    char *abs = realpath(path, NULL);
    if (!abs) {
        cli_errorf("scale: option %s: cannot read '%s': %s", opt, path, strerror(errno));
        return NULL;
    }
    return own(o, abs);
}

static int check_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 32 || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789-_") != n) {
        cli_errorf("scale: option --id: '%s' must be 1-32 letters, digits, - or _", id);
        return -1;
    }
    return 0;
}

/* A random id of 8 hex digits. */
static const char *random_id(scale_opts *o)
{
    unsigned char b[4] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        unsigned long t = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 12);
        memcpy(b, &t, sizeof b);
    }
    if (fd >= 0)
        close(fd);
    char *id = malloc(9);
    if (id)
        snprintf(id, 9, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
    return own(o, id);
}

/* One option of the table built in parse_scale (long index li into forwarded when it is a
 * forwarded worker option). Returns 0, 1 for --help, or -1 (said). */
static int scale_option(scale_opts *o, int c, const char *arg, const char *fwd_name)
{
    scale_config *cfg = &o->cfg;
    switch (c) {
    case OPT_CONNECT: cfg->connect = arg; return 0;
    case OPT_ENGINE: o->engine = arg; return 0;
    case OPT_MIN:
        return cli_parse_uint("--min-jobs", arg, 0, SCALE_MAX_JOBS, &o->run.min_jobs);
    case OPT_MAX:
        return cli_parse_uint("--max-jobs", arg, 1, SCALE_MAX_JOBS, &o->run.max_jobs);
    case OPT_SLOTS: return cli_parse_uint("--slots", arg, 1, 1024, &cfg->slots);
    case OPT_IDLE: return cli_parse_uint("--idle-s", arg, 1, 604800, &cfg->idle_s);
    case OPT_POLL: return cli_parse_uint("--poll-ms", arg, 100, 600000, &o->run.poll_ms);
    case OPT_ID:
        cfg->id = arg;
        return check_id(arg);
    case OPT_SBATCH_ARG:
        if (cfg->n_sbatch_args >= SCALE_MAX_WORKER_ARGS || !*arg) {
            cli_errorf("scale: option --sbatch-arg: give a non-empty argument (at most %d)",
                       SCALE_MAX_WORKER_ARGS);
            return -1;
        }
        cfg->sbatch_args[cfg->n_sbatch_args++] = arg;
        cfg->sbatch_args[cfg->n_sbatch_args] = NULL;
        return 0;
    case OPT_WORKER_EXE: cfg->worker_exe = arg; return 0;
    case OPT_WORKER_KEY: {
        o->worker_only = "worker-key";
        const char *p = worker_file(o, "--worker-key", arg);
        return p && add_worker_arg(o, "--key") == 0 && add_worker_arg(o, p) == 0 ? 0 : -1;
    }
    case OPT_FWD_ARG: {
        if (strcmp(fwd_name, "label") == 0 && (!strchr(arg, '=') || arg[0] == '=')) {
            cli_errorf("scale: option --label: '%s' must be KEY=VALUE", arg);
            return -1;
        }
        if (strcmp(fwd_name, "log-level") == 0) {
            int level = gg_log_level_parse(arg);
            if (level < 0) {
                cli_errorf("scale: option --log-level: '%s' is not error, warn, info or debug",
                           arg);
                return -1;
            }
            o->run.log_info = level >= GG_LOG_INFO;
        } else {
            o->worker_only = fwd_name;
        }
        size_t n = strlen(fwd_name) + strlen(arg) + 4;
        char *t = malloc(n);
        if (t)
            snprintf(t, n, "--%s=%s", fwd_name, arg);
        const char *kept = own(o, t);
        return kept ? add_worker_arg(o, kept) : -1;
    }
    case OPT_K8S_NS: cfg->k8s_namespace = arg; return 0;
    case OPT_K8S_DEPLOY: cfg->k8s_deployment = arg; return 0;
    case OPT_K8S_SERVER: cfg->k8s_server = arg; return 0;
    case OPT_K8S_TOKEN: cfg->k8s_token_file = arg; return 0;
    case OPT_K8S_CA: cfg->k8s_ca = arg; return 0;
    case OPT_KUBECONFIG: cfg->kubeconfig = arg; return 0;
    default: {
        int h = cli_security_option(c, arg);
        if (h < 0)
            return -1;
        if (h > 0 && c == CLI_OPT_SERVER_KEY) { /* the workers need it too */
            const char *p = strlen(arg) == 40 ? arg : worker_file(o, "--server-key", arg);
            return p && add_worker_arg(o, "--server-key") == 0 && add_worker_arg(o, p) == 0
                       ? 0 : -1;
        }
        if (h > 0 && c == CLI_OPT_INSECURE)
            return add_worker_arg(o, "--insecure");
        return h > 0 ? 0 : -2;
    }
    }
}

/* Parses the command line into *o. Returns 0, 1 after --help, or -1 (said). */
static int parse_scale(scale_opts *o, int argc, char **argv)
{
    static const struct option fixed[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"engine", required_argument, NULL, OPT_ENGINE},
        {"min-jobs", required_argument, NULL, OPT_MIN},
        {"max-jobs", required_argument, NULL, OPT_MAX},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"idle-s", required_argument, NULL, OPT_IDLE},
        {"poll-ms", required_argument, NULL, OPT_POLL},
        {"id", required_argument, NULL, OPT_ID},
        {"sbatch-arg", required_argument, NULL, OPT_SBATCH_ARG},
        {"worker-exe", required_argument, NULL, OPT_WORKER_EXE},
        {"worker-key", required_argument, NULL, OPT_WORKER_KEY},
        {"k8s-namespace", required_argument, NULL, OPT_K8S_NS},
        {"k8s-deployment", required_argument, NULL, OPT_K8S_DEPLOY},
        {"k8s-server", required_argument, NULL, OPT_K8S_SERVER},
        {"k8s-token-file", required_argument, NULL, OPT_K8S_TOKEN},
        {"k8s-ca", required_argument, NULL, OPT_K8S_CA},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        CLI_SECURITY_LONG_OPTIONS,
        {"help", no_argument, NULL, CLI_OPT_HELP},
    };
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    struct option longopts[N_FIXED + N_FORWARDED + 1];
    memcpy(longopts, fixed, sizeof fixed);
    for (size_t i = 0; i < N_FORWARDED; i++) {
        longopts[N_FIXED + i] = (struct option){forwarded[i].name, required_argument, NULL,
                                                OPT_FWD_ARG};
    }
    memset(&longopts[N_FIXED + N_FORWARDED], 0, sizeof longopts[0]);
    optind = 1;
    opterr = 0;
    int c, li = -1;
    while ((c = getopt_long(argc, argv, ":h", longopts, &li)) != -1) {
        if (c == 'h' || c == CLI_OPT_HELP) {
            scale_usage(stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            cli_bad_option("scale", c, argv, optind, optopt);
            return -1;
        }
        const char *fwd = c == OPT_FWD_ARG && li >= (int)N_FIXED ? longopts[li].name : NULL;
        int r = scale_option(o, c, optarg, fwd);
        if (r == -2) {
            cli_bad_option("scale", '?', argv, optind, optopt);
            return -1;
        }
        if (r != 0)
            return -1;
        li = -1;
    }
    if (optind != argc) {
        cli_errorf("scale: unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

/* Checks the options together and fills in defaults. Returns 0 or -1 (said). */
static int check_scale(scale_opts *o, char *self, size_t self_cap)
{
    scale_config *cfg = &o->cfg;
    if (!cfg->connect || !*cfg->connect) {
        cli_errorf("scale: give --connect ENDPOINT (the orchestrator the workers join)");
        return -1;
    }
    if (o->run.min_jobs > o->run.max_jobs) {
        cli_errorf("scale: --min-jobs %u is more than --max-jobs %u", o->run.min_jobs,
                   o->run.max_jobs);
        return -1;
    }
    if (strcmp(o->engine, "slurm") != 0 && strcmp(o->engine, "kubernetes") != 0) {
        cli_errorf("scale: option --engine: '%s' is not slurm or kubernetes", o->engine);
        return -1;
    }
    if (cfg->n_sbatch_args && strcmp(o->engine, "slurm") != 0) {
        cli_errorf("scale: --sbatch-arg goes with --engine slurm");
        return -1;
    }
    if (o->worker_only && strcmp(o->engine, "kubernetes") == 0) {
        cli_errorf("scale: --%s is a worker option: with --engine kubernetes the workers' "
                   "options are in their Deployment's pod template", o->worker_only);
        return -1;
    }
    if (cli_sec.key_file && !cli_sec.server_key) {
        cli_errorf("scale: --key needs --server-key (the orchestrator's public key)");
        return -1;
    }
    if (cli_security_check("scale", cfg->connect) != CLI_EXIT_OK)
        return -1;
    if (!cfg->id && !(cfg->id = random_id(o)))
        return -1;
    if (!cfg->worker_exe) {
        ssize_t n = readlink("/proc/self/exe", self, self_cap - 1);
        if (n <= 0) {
            cli_errorf("scale: cannot find this program's path; give --worker-exe PATH");
            return -1;
        }
        self[n] = '\0';
        cfg->worker_exe = self;
    }
    return 0;
}

int cli_cmd_scale(int argc, char **argv)
{
    static scale_opts o; /* large (option tables); one command per process */
    memset(&o, 0, sizeof o);
    o.engine = "slurm";
    o.cfg.slots = 1;
    o.cfg.idle_s = 60;
    o.cfg.k8s_deployment = "gryphgen-worker";
    o.run.max_jobs = 4;
    o.run.poll_ms = 2000;
    char self[PATH_MAX];
    int status = CLI_EXIT_USAGE;
    int r = parse_scale(&o, argc, argv);
    if (r > 0)
        status = CLI_EXIT_OK;
    if (r != 0 || check_scale(&o, self, sizeof self) != 0)
        goto out;
    const scale_engine_vt *vt = strcmp(o.engine, "slurm") == 0 ? &scale_slurm_engine
                                                                : &scale_k8s_engine;
    gg_client_t *client = NULL;
    if ((status = cli_client_open(o.cfg.connect, NULL, &client)) != CLI_EXIT_OK)
        goto out;
    cli_catch_signals();
    scale_engine *e = NULL;
    if (vt->open(&e, &o.cfg) != 0) {
        status = CLI_EXIT_USAGE;
        gg_client_destroy(&client);
        goto out;
    }
    fprintf(stderr, "gryphgen: scale: %s workers for %s, id %s, %u to %u\n", vt->name,
            o.cfg.connect, o.cfg.id, o.run.min_jobs, o.run.max_jobs);
    status = scale_loop(vt, e, &o.cfg, client, &o.run);
    if (vt->stop_all(e) != 0)
        status = CLI_EXIT_INFRA; /* some worker may be left: said which */
    vt->close(e);
    gg_client_destroy(&client);
out:
    for (unsigned i = 0; i < o.n_owned; i++)
        free(o.owned[i]);
    return status;
}
