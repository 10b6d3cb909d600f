/*
 * doctor.c - `gryphgen doctor`: prints what this host gives the process executor and why
 * (isolation levels, namespaces, user namespaces, cgroups, runtimes, each language's toolchain
 * and version, the languages jobs can run here, a container engine's
 * socket), from gg_executor_probe(). Always exits 0 unless the probe itself fails.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jtrue(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

int cli_cmd_doctor(int argc, char **argv)
{
    int json = argc == 2 && !strcmp(argv[1], "--json");
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: gryphgen doctor [--json]\n"
               "Prints what isolation, cgroups, runtimes and container engine this host gives\n"
               "the jobs of the process executor, and why; --json prints the probe as JSON.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1 && !json) {
        cli_errorf("doctor: takes no arguments but --json");
        return CLI_EXIT_USAGE;
    }
    char *out = NULL;
    int rc = gg_executor_probe(&out);
    if (rc != 0) {
        cli_errorf("doctor: %s", gg_error_last());
        return CLI_EXIT_INFRA;
    }
    if (json) {
        printf("%s\n", out);
        gg_free(out);
        return CLI_EXIT_OK;
    }
    cJSON *o = cJSON_Parse(out);
    gg_free(out);
    if (!o) {
        cli_errorf("doctor: unreadable probe result");
        return CLI_EXIT_INFRA;
    }
    const cJSON *ns = cJSON_GetObjectItem(o, "namespaces");
    const cJSON *us = cJSON_GetObjectItem(o, "user_namespaces");
    const cJSON *cg = cJSON_GetObjectItem(o, "cgroups");
    const cJSON *rt = cJSON_GetObjectItem(o, "runtimes");
    const cJSON *cs = cJSON_GetObjectItem(o, "container_socket");
    const cJSON *v = cJSON_GetObjectItem(cg, "version");
    int cgv = cJSON_IsNumber(v) ? v->valueint : 0;
    printf("isolation (process executor)\n");
    printf("  default level:    %s (the strongest available)\n", jstr(o, "best"));
    printf("  levels:          ");
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(o, "levels"))
        printf(" %s", l->valuestring);
    printf("\n  namespaces:       %s: %s\n", jtrue(ns, "available") ? "yes" : "no",
           jstr(ns, "why"));
    printf("  user namespaces:  %s: %s\n", jtrue(us, "available") ? "yes" : "no",
           jstr(us, "why"));
    printf("  cgroups:          %s: %s\n",
           cgv ? (cgv == 2 ? "v2" : "v1") : "no (rlimits are used instead)", jstr(cg, "why"));
    if (cgv)
        printf("                    memory limit %s, process limit %s, swap %s\n",
               jtrue(cg, "memory") ? "yes" : "no", jtrue(cg, "pids") ? "yes" : "no",
               jtrue(cg, "swap") ? "limited too" : "not accounted");
    printf("runtimes\n");
    printf("  python3:          %s (%s)\n", jstr(rt, "python") ? jstr(rt, "python") : "none",
           jstr(rt, "python_source") ? jstr(rt, "python_source") : "");
    printf("  cc:               %s (%s)\n", jstr(rt, "cc") ? jstr(rt, "cc") : "none",
           jstr(rt, "cc_source") ? jstr(rt, "cc_source") : "");
    const char *lf = jstr(rt, "link_flag");
    printf("  C/C++ linker:     %s\n",
           lf && *lf ? "gold where the job runs has ld.gold, else the compiler's own "
                       "(GRYPHGEN_LINKER=default: always the compiler's own)"
                     : "the compiler's own (GRYPHGEN_LINKER=default)");
    printf("toolchains (GRYPHGEN_TOOLCHAIN_<TOOL> overrides; docs/tasks.md, \"Languages\")\n");
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItem(o, "toolchains"))
    {
        const char *name = jstr(tc, "tool") ? jstr(tc, "tool") : "?";
        printf("  %-10s        %s", name, jstr(tc, "path") ? jstr(tc, "path") : "none");
        if (jstr(tc, "version"))
            printf(" (%s)", jstr(tc, "version"));
        else if (jstr(tc, "source"))
            printf(" (%s)", jstr(tc, "source"));
        printf("\n");
    }
    printf("languages:         ");
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(o, "languages"))
        printf(" %s", l->valuestring);
    printf("\n");
    printf("libraries (a task's \"requires\"; docs/tasks.md):");
    int n_deps = 0;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(o, "deps"))
        printf("%s%s", n_deps++ % 6 ? " " : "\n  ", l->valuestring);
    printf("%s\n", n_deps ? "" : " none");
    printf("container engine\n");
    printf("  socket:           %s (%s)\n", jstr(cs, "path") ? jstr(cs, "path") : "none",
           jstr(cs, "why"));
    cJSON_Delete(o);
    return CLI_EXIT_OK;
}
