/*
 * sched_dispatch.c - dispatch: runnable tasks to nodes with free slots, each on a new lease.
 *
 * Runnable tasks are sorted by priority, submitters take turns within a priority, and each
 * goes to the free node that can run it with the best score and load. A job leaves on a
 * lease (128 random bits) that its result must carry; jobs for one node are gathered into
 * one message, written as text around the stored task (the printer cost more than the rest).
 *
 * A task that ends while its job is out on a remote node takes the job back and aborts it
 * there (ggi_sched_abort_job), so the node's slot is free at once.
 *
 * Cut here because this is the hot path of the grid (bench/dispatch.sh measures it): its
 * arrays are kept between calls and its costs are commented where they were measured.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/random.h>

#include "sched.h"
#include "../core/lang.h"

/* Fills buf with len bytes from the kernel's random source (getrandom, else /dev/urandom). */
static int random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(buf + got, len - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    if (got == len)
        return GG_OK;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r > 0)
            got += (size_t)r;
        else if (!(r < 0 && errno == EINTR))
            break;
    }
    if (fd >= 0)
        close(fd);
    return got == len ? GG_OK : ggi_error(GG_EIO, "no random bytes from the kernel");
}

/* A new lease id: 128 random bits as 32 lowercase hex digits. Leases are the only thing that
 * ties a result to a dispatch, so they are unguessable, new for every dispatch and unrelated
 * across restarts; the bytes come from the kernel in blocks, each used once. */
static int new_lease(sched *s, char out[2 * LEASE_BYTES + 1])
{
    if (s->rnd_left < LEASE_BYTES) {
        int rc = random_bytes(s->rnd, sizeof s->rnd);
        if (rc != GG_OK)
            return rc;
        s->rnd_left = sizeof s->rnd;
    }
    s->rnd_left -= LEASE_BYTES;
    unsigned char *p = s->rnd + s->rnd_left;
    for (int i = 0; i < LEASE_BYTES; i++) {
        out[2 * i] = "0123456789abcdef"[p[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[p[i] & 15];
    }
    out[2 * LEASE_BYTES] = '\0';
    memset(p, 0, LEASE_BYTES); /* used: not kept where a later leak could show it */
    return GG_OK;
}

/* Whether a result's lease text is the task's current lease, compared in time independent
 * of where they differ. */
int ggi_sched_lease_is(const char *current, const char *text)
{
    if (!current[0] || !text || strlen(text) != 2 * LEASE_BYTES)
        return 0;
    unsigned char d = 0;
    for (int i = 0; i < 2 * LEASE_BYTES; i++)
        d |= (unsigned char)(current[i] ^ text[i]);
    return d == 0;
}

static void node_batch_send(sched *s, node *n)
{
    if (n->batch_count == 0)
        return;
    int rc = ggp_encode_jobs_end(&n->batch);
    if (rc == GG_OK)
        rc = ggi_sched_node_send(s, n, n->batch.data, n->batch.len);
    int count = n->batch_count;
    n->batch_count = 0;
    n->batch.len = 0; /* the buffer is kept for the next message */
    if (rc == GG_OK) {
        n->last_tx = ggi_now_ms();
        return;
    }
    /* Not sent: the jobs go back to the queue (and the node, if gone, is dropped later). */
    ggi_log(&s->o->log, GG_LOG_WARN, "cannot send jobs to worker '%s': %s", n->name,
            gg_error_last());
    char *why = ggi_asprintf("cannot send the job: %s", gg_error_last());
    for (int k = 0; k < count; k++) {
        active *a = ggi_sched_find_active(s, n->batch_seqs[k]);
        if (a && a->on == n && a->inflight) {
            a->inflight = 0;
            a->lease[0] = '\0';
            a->on = NULL;
            n->busy--;
            a->not_before_ms = ggi_now_ms() + 100;
            s->backoff = 1;
            s->dispatch_due = 1;
            /* its job.dispatched is answered: the attempt was not made */
            cJSON *ev = ggi_sched_event_new("job.requeued", a->task_id);
            if (ev) {
                cJSON_AddNumberToObject(ev, "attempt", a->attempts + 1);
                cJSON_AddStringToObject(ev, "node", n->name);
                ggi_json_add_str(ev, "reason", why ? why : "cannot send the job");
                ggi_sched_emit(s, a->seq, ev);
            }
        }
    }
    free(why);
    if (rc == GG_ENOTFOUND)
        n->last_rx = 0; /* dead: dropped by the liveness check */
}

/* Appends a's job to n's jobs message: the stored task text verbatim, not printed again. */
static int node_batch_add(node *n, const active *a)
{
    if (!n->batch_seqs) {
        n->batch_seqs = malloc(GGP_MAX_BATCH * sizeof *n->batch_seqs);
        if (!n->batch_seqs)
            return ggi_error(GG_ENOMEM, "out of memory");
    }
    size_t mark = n->batch.len;
    ggp_job_out job = { a->lease, a->seq, a->attempts + 1, a->spec_text, a->feedback,
                        a->strategy, a->demote };
    int rc = n->batch_count == 0 ? ggp_encode_jobs_begin(&n->batch) : GG_OK;
    rc = rc ? rc : ggp_encode_jobs_add(&n->batch, n->batch_count == 0, &job);
    if (rc) {
        n->batch.len = mark; /* drop the partial job */
        if (n->batch.data)
            n->batch.data[mark] = 0;
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    n->batch_seqs[n->batch_count++] = a->seq;
    return GG_OK;
}

static int cmp_runnable(const void *pa, const void *pb)
{
    const active *a = *(active *const *)pa, *b = *(active *const *)pb;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->sub != b->sub)
        return a->sub < b->sub ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts v by cmp_runnable in place (heapsort): glibc's qsort is a merge sort that mallocs a
 * copy of the array, a large block on every dispatch. */
static void sort_runnable(active **v, int n)
{
    for (int start = n / 2 - 1, end = n; end > 1;) {
        int root;
        if (start >= 0) {
            root = start--; /* building the heap */
        } else {
            active *t = v[0]; /* the largest goes to the end */
            v[0] = v[--end];
            v[end] = t;
            root = 0;
        }
        for (int child; (child = 2 * root + 1) < end; root = child) {
            if (child + 1 < end && cmp_runnable(&v[child], &v[child + 1]) < 0)
                child++;
            if (cmp_runnable(&v[root], &v[child]) >= 0)
                break;
            active *t = v[root];
            v[root] = v[child];
            v[child] = t;
        }
    }
}

static node *pick_node(sched *s, active *a, double now, int *any_free)
{
    node *best = NULL;
    double best_r = -1;
    *any_free = 0;
    for (node *n = s->nodes; n; n = n->next) {
        if (n->busy >= n->capacity || n->quarantined_until > now || n->welcome)
            continue; /* full, resting, or not yet welcomed */
        *any_free = 1;
        if (!ggi_sched_node_matches(n, a))
            continue;
        score *sc = ggi_sched_node_score(s, n, a->language);
        double r = sc->ok * (1000.0 / (1000.0 + sc->lat_ms)) *
                   (1.0 - (double)n->busy / (double)n->capacity) + 1e-9;
        if (a->avoid[0] && strcmp(a->avoid, n->name) == 0)
            r *= 0.01;
        if (r > best_r) {
            best_r = r;
            best = n;
        }
    }
    return best;
}

/* Whether a node's word counts for failing tasks: it returned a result under a lease it
 * held, or it has been connected for three heartbeat intervals (a node silent that long is
 * dead and gone) and has been heard since its hello. */
static int established(const sched *s, const node *n, double now)
{
    return n->delivered ||
           (now - n->joined_ms >= 3.0 * s->o->hb_ms && n->last_rx > n->joined_ms);
}

/* The libraries a requires that no connected worker announced, comma-separated, or NULL
 * when each is on some worker (or on ENOMEM). */
static char *missing_everywhere(const sched *s, const active *a)
{
    ggi_buf b = GGI_BUF_INIT;
    const cJSON *e;
    cJSON_ArrayForEach(e, a->requires)
    {
        int somewhere = !cJSON_IsString(e);
        for (const node *n = s->nodes; n && !somewhere; n = n->next)
            somewhere = !n->noop && ggi_lang_deps_has(n->deps, e->valuestring);
        if (!somewhere)
            ggi_buf_printf(&b, "%s%s", b.len ? ", " : "", e->valuestring);
    }
    return b.len ? ggi_buf_steal(&b) : (ggi_buf_free(&b), NULL);
}

/* Fails a task fast when no connected worker could ever run it. Not on the word of a node
 * that only just said hello: while any connected node is not established the task waits
 * (dispatch looks again), so a hello and nothing more, or a worker that joins with odd caps
 * and vanishes, ends no task; a node that can run it ends the wait at once. */
static int unmatchable(sched *s, active *a)
{
    if (s->n_nodes == 0 || a->match_gen == s->nodes_gen + 1)
        return 0;
    for (node *n = s->nodes; n; n = n->next)
        if (ggi_sched_node_matches(n, a))
            return 0;
    double now = ggi_now_ms();
    for (node *n = s->nodes; n; n = n->next)
        if (!established(s, n, now))
            return 0;
    a->match_gen = s->nodes_gen + 1;
    char *needs = ggi_sched_needs_text(a);
    char *lacking = missing_everywhere(s, a);
    char *why = ggi_asprintf("no connected worker can run this task (needs %s; %d worker(s) "
                             "connected%s%s)", needs ? needs : "?", s->n_nodes,
                             lacking ? "; no worker has " : "", lacking ? lacking : "");
    free(lacking);
    ggi_sched_end_active(s, a, GGI_ST_ERROR, GGI_END_NO_WORKER, why);
    free(why);
    free(needs);
    return 1;
}

int ggi_sched_job_remote(const active *a)
{
    return a->inflight && a->on && !a->on->any && a->on->aborts;
}

int ggi_sched_abort_job(sched *s, active *a, const char *reason)
{
    if (!ggi_sched_job_remote(a))
        return 0;
    node *n = a->on;
    if (n->batch_count > 0) {
        /* Its job may still wait in the node's message: it leaves first, so that the abort
         * finds it (a batch that cannot be sent takes its jobs back itself). */
        node_batch_send(s, n);
        if (!ggi_sched_job_remote(a) || a->on != n)
            return 0;
    }
    cJSON *leases = cJSON_CreateArray();
    cJSON *lease = leases ? cJSON_CreateString(a->lease) : NULL;
    if (lease)
        cJSON_AddItemToArray(leases, lease);
    else
        cJSON_Delete(leases);
    cJSON *m = lease ? ggp_build_abort(leases, reason) : NULL;
    size_t len = 0;
    char *text = m ? ggp_print(m, &len) : NULL;
    cJSON_Delete(m);
    /* Taken back whether or not the abort could be sent: the task ends either way, and a
     * worker that never hears of it sends a result that is then stale. */
    if (!text || ggi_sched_node_send(s, n, text, len) != GG_OK)
        ggi_log(&s->o->log, GG_LOG_WARN, "cannot tell worker '%s' to stop the job of task "
                "'%s': %s", n->name, a->task_id, gg_error_last());
    else
        ggi_log(&s->o->log, GG_LOG_INFO, "task '%s' ended (%s): its job on worker '%s' is "
                "aborted", a->task_id, reason ? reason : "-", n->name);
    free(text);
    a->inflight = 0;
    a->lease[0] = '\0';
    a->on = NULL;
    n->busy--;
    n->last_tx = ggi_now_ms();
    s->dispatch_due = 1;
    return 1;
}

void ggi_sched_end_overdue(sched *s)
{
    double now = ggi_now_ms();
    if (now < s->overdue_at)
        return;
    s->overdue_at = now + OVERDUE_EVERY_MS;
    double wall = 0;
    active *a = s->tasks;
    while (a) {
        active *next = a->next;
        if (a->wall_s > 0 && a->started_wall > 0 && ggi_sched_job_remote(a)) {
            if (wall == 0)
                wall = ggi_wall_s();
            if (wall - a->started_wall > a->wall_s) {
                char *why = ggi_asprintf("wall budget of %g s spent after %d attempt(s), "
                                         "during attempt %d; last: %s", a->wall_s,
                                         a->attempts, a->attempts + 1,
                                         a->last_reason ? a->last_reason : "-");
                ggi_sched_end_active(s, a, GGI_ST_FAILED, GGI_END_DEADLINE,
                                     why ? why : "wall budget spent");
                free(why);
            }
        }
        a = next;
    }
}

/* The runnable-task arrays kept from call to call, grown to the active set and the
 * submitters (a fresh large block per call cost glibc a sweep of its free lists every
 * time). GG_ENOMEM leaves them as they were. */
static int grow_run_arrays(sched *s)
{
    if (s->cap_run >= s->n_active && s->cap_subs >= s->n_subs + 1)
        return GG_OK;
    int nrun = s->n_active > s->cap_run ? s->n_active : s->cap_run;
    int nsubs = s->n_subs + 1 > s->cap_subs ? s->n_subs + 1 : s->cap_subs;
    active **r = realloc(s->run, (size_t)nrun * sizeof *r);
    if (r)
        s->run = r;
    int *h = r ? realloc(s->run_head, (size_t)nsubs * sizeof *h) : NULL;
    if (h)
        s->run_head = h;
    int *e = h ? realloc(s->run_end, (size_t)nsubs * sizeof *e) : NULL;
    if (e)
        s->run_end = e;
    if (!e)
        return GG_ENOMEM;
    s->cap_run = nrun;
    s->cap_subs = nsubs;
    return GG_OK;
}

/* Dispatched is all the hub knows: no message says a job began. The first dispatch of an
 * attempt is announced once (task.started, attempt.started); every dispatch, a job sent
 * again after job.requeued or job.retried too, is job.dispatched (docs/events.md). */
static void announce_dispatch(sched *s, active *a, const node *n)
{
    int first = a->announced != a->attempts + 1;
    a->announced = a->attempts + 1;
    if (!ggi_sched_events_heard(s))
        return;
    cJSON *ev = NULL;
    if (first && a->attempts == 0 && s->summary)
        ggi_sched_summary_note(s, a->task_id, "running", 0, NULL);
    if (first && a->attempts == 0 && ggi_sched_event_wanted(s, "task.started"))
        ev = ggi_sched_event_new("task.started", a->task_id);
    else if (first && a->attempts > 0 && ggi_sched_event_wanted(s, "attempt.started"))
        ev = ggi_sched_event_new("attempt.started", a->task_id);
    if (ev) {
        cJSON_AddNumberToObject(ev, "attempt", a->attempts + 1);
        ggi_sched_emit(s, a->seq, ev);
    }
    ev = ggi_sched_event_wanted(s, "job.dispatched")
             ? ggi_sched_event_new("job.dispatched", a->task_id)
             : NULL;
    if (ev) {
        cJSON_AddNumberToObject(ev, "attempt", a->attempts + 1);
        cJSON_AddStringToObject(ev, "node", n->name);
        ggi_sched_emit(s, a->seq, ev);
    }
}

/* Sends runnable tasks to nodes with free slots. It reads and sorts the whole active set,
 * so it runs when a task or a slot became free (dispatch_due), else every
 * DISPATCH_EVERY_MS for what time frees (backoffs, quarantines). */
void ggi_sched_dispatch(sched *s)
{
    ggi_sched_end_overdue(s);
    double now = ggi_now_ms();
    if (!s->dispatch_due && now < s->dispatch_at)
        return;
    s->dispatch_due = 0;
    s->dispatch_at = now + DISPATCH_EVERY_MS;
    if (!s->nodes || !s->tasks)
        return;
    int free_total = 0;
    for (node *n = s->nodes; n; n = n->next)
        if (n->quarantined_until <= now && n->busy < n->capacity)
            free_total += n->capacity - n->busy;
    if (free_total == 0)
        return;
    /* Runnable tasks, by priority; within a priority, submitters take turns. */
    if (grow_run_arrays(s) != GG_OK)
        return;
    active **run = s->run;
    int *head = s->run_head; /* next index per submitter */
    int *end = s->run_end;
    int nr = 0;
    for (active *a = s->tasks; a && nr < s->n_active; a = a->next)
        if (!a->inflight && !a->cancelled && a->not_before_ms <= now)
            run[nr++] = a;
    sort_runnable(run, nr);
    int i = 0;
    while (i < nr && free_total > 0) {
        /* One priority level: [i, j). */
        int j = i;
        while (j < nr && run[j]->priority == run[i]->priority)
            j++;
        for (int k = 0; k <= s->n_subs; k++)
            head[k] = end[k] = -1;
        for (int k = i; k < j; k++) {
            int sub = run[k]->sub;
            if (head[sub] < 0)
                head[sub] = k;
            end[sub] = k + 1;
        }
        for (;;) {
            /* The submitter served least so far goes next. */
            int pick = -1;
            for (int k = 0; k < s->n_subs; k++) {
                if (head[k] < 0 || head[k] >= end[k])
                    continue;
                if (pick < 0 || s->subs[k].served < s->subs[pick].served)
                    pick = k;
            }
            if (pick < 0 || free_total == 0)
                break;
            active *a = run[head[pick]++];
            int any_free = 0;
            node *n = pick_node(s, a, now, &any_free);
            if (!n) {
                if (!any_free) {
                    free_total = 0;
                    break;
                }
                unmatchable(s, a);
                continue;
            }
            if (new_lease(s, a->lease) != GG_OK) {
                ggi_log(&s->o->log, GG_LOG_ERROR, "cannot make a lease: %s", gg_error_last());
                s->dispatch_at = now + 1000; /* no job leaves on a guessable lease */
                return;
            }
            a->on = n;
            a->inflight = 1;
            a->sent_ms = now;
            n->busy++;
            free_total--;
            s->subs[pick].served++;
            if (node_batch_add(n, a) != GG_OK) {
                a->inflight = 0;
                a->lease[0] = '\0';
                a->on = NULL;
                n->busy--;
                continue;
            }
            if (n->batch.len >= JOB_BATCH_BYTES || n->batch_count >= GGP_MAX_BATCH)
                node_batch_send(s, n);
            announce_dispatch(s, a, n);
        }
        i = j;
    }
}

/* Sends the jobs gathered for each node (after the commit when events announce them). */
void ggi_sched_send_batches(sched *s)
{
    for (node *n = s->nodes; n; n = n->next)
        node_batch_send(s, n);
}
