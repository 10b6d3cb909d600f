/*
 * keygen.c - `gryphgen keygen [--out PREFIX]`: makes a CURVE key pair for a grid node and
 * writes PREFIX.key (public and secret, mode 0600) and PREFIX.pub (public only, to hand to
 * the other side: the orchestrator's .pub to its workers and clients, their public keys
 * into the orchestrator's authorized keys file). Prints the public key on stdout.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gryphgen/security.h"

int cli_cmd_keygen(int argc, char **argv);

static void keygen_usage(FILE *f)
{
    fprintf(f, "usage: gryphgen keygen [--out PREFIX]\n"
               "writes PREFIX.key (secret, mode 0600) and PREFIX.pub (default PREFIX: "
               "gryphgen)\nand prints the public key. Existing files are never "
               "overwritten.\n");
}

int cli_cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prefix = "gryphgen";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            prefix = optarg;
            break;
        case 'h':
            keygen_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("keygen", c, argv, optind, optopt);
        }
    }
    if (optind < argc) {
        cli_errorf("keygen: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!*prefix) {
        cli_errorf("keygen: --out needs a non-empty prefix");
        return CLI_EXIT_USAGE;
    }
    char pub[GG_CURVE_KEY_Z85_LEN + 1];
    int rc = gg_curve_keygen(prefix, pub);
    if (rc != GG_OK) {
        cli_errorf("keygen: %s", gg_error_last());
        return rc == GG_EEXIST || rc == GG_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
    }
    printf("%s\n", pub);
    fprintf(stderr, "gryphgen: wrote %s.key (keep it secret) and %s.pub\n", prefix, prefix);
    return CLI_EXIT_OK;
}
