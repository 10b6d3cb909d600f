/*
 * sandbox_probe.c - gg_executor_probe(): what this host gives the process backend, as JSON
 * for `gryphgen doctor` and for hosts that want to choose a level: the isolation levels and
 * why the stronger ones are or are not available, the cgroup hierarchy used, the runtimes a
 * job would get, and whether a container engine's socket is present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gryphgen/executor.h"

#include "../core/ggi.h"
#include "cgroup.h"
#include "runtimes.h"
#include "sandbox.h"
#include "spawn.h"
#include "../core/lang.h"

static int is_socket(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int add_container_socket(cJSON *root)
{
    cJSON *c = cJSON_AddObjectToObject(root, "container_socket");
    if (!c)
        return GG_ENOMEM;
    const char *dh = getenv("DOCKER_HOST");
    const char *cands[3] = { NULL, "/var/run/docker.sock", "/run/podman/podman.sock" };
    if (dh && !strncmp(dh, "unix://", 7))
        cands[0] = dh + 7;
    const char *found = NULL;
    for (int i = 0; i < 3 && !found; i++) {
        if (is_socket(cands[i]))
            found = cands[i];
    }
    int rc = ggi_json_add_str(c, "path", found);
    if (!rc)
        rc = ggi_json_add_str(c, "why", found ? "a Docker Engine API socket exists there"
                                              : "no socket at $DOCKER_HOST (unix://), "
                                                "/var/run/docker.sock or "
                                                "/run/podman/podman.sock");
    return rc;
}

/* The first line a toolchain prints for its version (java and javac print to stderr). */
static char *tool_version(const char *path, int tool)
{
    const char *flag = tool == GGI_TOOL_GO ? "version" : tool == GGI_TOOL_JAVA ? "-version"
                                                                               : "--version";
    const char *argv[] = { path, flag, NULL };
    const char *envp[] = { "PATH=/usr/bin:/bin", "HOME=/nonexistent", NULL };
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.envp = envp;
    o.timeout_s = 20.0;
    o.max_stdout = 4096;
    o.max_stderr = 4096;
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    if (ggi_spawn_run(&o, &r) != GG_OK)
        return NULL;
    const char *text = r.out.len ? r.out.data : r.err.len ? r.err.data : "";
    size_t n = strcspn(text, "\n");
    char *v = ggi_strndup(text, n);
    ggi_spawn_result_free(&r);
    return v;
}

/* "toolchains": [{tool, path, source, version}], "languages": [names available here] and
 * "deps": [libraries tasks may require, found here] */
static int add_toolchains(cJSON *o, const ggi_runtimes *rt)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "toolchains");
    cJSON *langs = cJSON_AddArrayToObject(o, "languages");
    if (!arr || !langs)
        return GG_ENOMEM;
    for (int i = 0; i < GGI_TOOL_COUNT; i++) {
        cJSON *t = cJSON_CreateObject();
        if (!t || !cJSON_AddItemToArray(arr, t)) {
            cJSON_Delete(t);
            return GG_ENOMEM;
        }
        char *v = rt->tool[i] ? tool_version(rt->tool[i], i) : NULL;
        int rc = ggi_json_add_str(t, "tool", ggi_tool_name(i));
        if (!rc)
            rc = ggi_json_add_str(t, "path", rt->tool[i]);
        if (!rc)
            rc = ggi_json_add_str(t, "source", rt->tool_source[i]);
        if (!rc)
            rc = ggi_json_add_str(t, "version", v);
        free(v);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < ggi_lang_count(); i++) {
        const char *l = ggi_lang_name_at(i);
        if (ggi_lang_available(l, rt)) {
            cJSON *s = cJSON_CreateString(l);
            if (!s || !cJSON_AddItemToArray(langs, s)) {
                cJSON_Delete(s);
                return GG_ENOMEM;
            }
        }
    }
    /* "deps": the libraries tasks may require that this machine has (docs/tasks.md). */
    cJSON *deps = ggi_lang_deps_present();
    if (!deps || !cJSON_AddItemToObject(o, "deps", deps)) {
        cJSON_Delete(deps);
        return GG_ENOMEM;
    }
    return GG_OK;
}

int gg_executor_probe(char **out_json)
{
    if (!out_json)
        return ggi_error(GG_EINVAL, "out_json is NULL");
    *out_json = NULL;
    int rc = gg_init();
    if (rc)
        return rc;
    const ggi_sandbox_caps *sc = ggi_sandbox_probe();
    const ggi_cgroup_caps *cc = ggi_cgroup_probe();
    ggi_runtimes rt;
    if ((rc = ggi_runtimes_resolve(&rt, NULL, NULL)))
        return rc;
    cJSON *o = cJSON_CreateObject();
    cJSON *levels = o ? cJSON_AddArrayToObject(o, "levels") : NULL;
    cJSON *ns = o ? cJSON_AddObjectToObject(o, "namespaces") : NULL;
    cJSON *us = o ? cJSON_AddObjectToObject(o, "user_namespaces") : NULL;
    cJSON *cg = o ? cJSON_AddObjectToObject(o, "cgroups") : NULL;
    cJSON *r = o ? cJSON_AddObjectToObject(o, "runtimes") : NULL;
    rc = levels && ns && us && cg && r ? GG_OK : GG_ENOMEM;
    for (int l = GGI_ISO_NONE; !rc && l <= sc->best; l++) {
        cJSON *s = cJSON_CreateString(ggi_isolation_name(l));
        if (!s || !cJSON_AddItemToArray(levels, s)) {
            cJSON_Delete(s);
            rc = GG_ENOMEM;
        }
    }
    if (!rc)
        rc = ggi_json_add_str(o, "best", ggi_isolation_name(sc->best));
    if (!rc)
        rc = ggi_json_add_bool(o, "root", sc->root);
    if (!rc)
        rc = ggi_json_add_bool(ns, "available", sc->namespaces);
    if (!rc)
        rc = ggi_json_add_str(ns, "why", sc->namespaces_why);
    if (!rc)
        rc = ggi_json_add_bool(us, "available", sc->userns);
    if (!rc)
        rc = ggi_json_add_str(us, "why", sc->userns_why);
    if (!rc)
        rc = ggi_json_add_num(cg, "version", cc->version);
    if (!rc)
        rc = ggi_json_add_bool(cg, "memory", cc->memory);
    if (!rc)
        rc = ggi_json_add_bool(cg, "pids", cc->pids);
    if (!rc)
        rc = ggi_json_add_bool(cg, "swap", cc->swap);
    if (!rc)
        rc = ggi_json_add_str(cg, "why", cc->why);
    if (!rc)
        rc = ggi_json_add_str(r, "python", rt.python);
    if (!rc)
        rc = ggi_json_add_str(r, "python_source", rt.python_source);
    if (!rc)
        rc = ggi_json_add_str(r, "cc", rt.cc);
    if (!rc)
        rc = ggi_json_add_str(r, "cc_source", rt.cc_source);
    if (!rc)
        rc = ggi_json_add_str(r, "link_flag", rt.link_flag);
    if (!rc)
        rc = add_toolchains(o, &rt);
    if (!rc)
        rc = add_container_socket(o);
    ggi_runtimes_free(&rt);
    char *s = rc ? NULL : ggi_json_print(o);
    cJSON_Delete(o);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory");
    *out_json = s;
    return GG_OK;
}
