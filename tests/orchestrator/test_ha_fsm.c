/*
 * test_ha_fsm.c - the standby pair's rules (lib/orchestrator/ha.c, docs/ha.md), driven
 * event by event with a clock the test sets: a fresh pair goes active/passive; a backup
 * never serves while its peer is heard, nor before it holds a replica; a synced passive takes
 * over only when the peer is silent AND a client turns to it; a restarted primary rejoins as
 * backup (discarding its state); a lone primary serves after a whole timeout; two actives
 * or two primaries are reported.
 */
#include <stdio.h>
#include <string.h>

#include "../../lib/orchestrator/ha.h"
#include "gryphgen.h"
#include "testutil.h"

#define T 500.0

static char why[200];

static int step(ggi_ha_fsm *f, ggi_ha_event ev, int peer_synced, double now)
{
    return ggi_ha_fsm_step(f, ev, peer_synced, now, why, sizeof why);
}

int main(void)
{
    ggi_ha_fsm p, b;

    /* A fresh pair: the primary hears a backup and goes active; the backup hears an active
     * primary and goes passive, unsynced until its snapshot. */
    ggi_ha_fsm_init(&p, 1, T, 0);
    ggi_ha_fsm_init(&b, 0, T, 0);
    CHECK(p.state == GGI_HA_PRIMARY && b.state == GGI_HA_BACKUP);
    CHECK(step(&b, GGI_HA_CLIENT, 0, 10) == 0); /* a backup never serves on its own */
    CHECK(step(&p, GGI_HA_CLIENT, 0, 10) == 0); /* a primary waits to hear the peer */
    step(&p, GGI_HA_PEER_BACKUP, 0, 20);
    CHECK(p.state == GGI_HA_ACTIVE);
    CHECK(strstr(why, "active") != NULL);
    step(&b, GGI_HA_PEER_ACTIVE, 1, 30);
    CHECK(b.state == GGI_HA_PASSIVE);
    CHECK(step(&p, GGI_HA_CLIENT, 0, 40) == 1);

    /* The passive is not synced: even with the primary silent, it does not take over. */
    CHECK(step(&b, GGI_HA_CLIENT, 1, 30 + 2 * T) == 0);
    CHECK(b.state == GGI_HA_PASSIVE);
    b.synced = 1; /* the snapshot came */

    /* The primary alive: a client turning to the backup is refused. */
    step(&b, GGI_HA_PEER_ACTIVE, 1, 1000);
    CHECK(step(&b, GGI_HA_CLIENT, 0, 1000 + T / 2) == 0);
    CHECK(b.state == GGI_HA_PASSIVE);
    /* The primary silent but no client: still passive (nothing to check but the state). */
    CHECK(b.state == GGI_HA_PASSIVE);
    /* Silent for the timeout and a client turns here: takeover. */
    CHECK(step(&b, GGI_HA_CLIENT, 0, 1000 + T) == 1);
    CHECK(b.state == GGI_HA_ACTIVE);
    CHECK(strstr(why, "taking over") != NULL);

    /* The old primary restarts: it hears the active backup and rejoins as backup, its own
     * state discarded. */
    ggi_ha_fsm_init(&p, 1, T, 5000);
    p.synced = 1; /* whatever it thought */
    step(&p, GGI_HA_PEER_ACTIVE, 1, 5010);
    CHECK(p.state == GGI_HA_PASSIVE);
    CHECK(p.synced == 0);
    CHECK(step(&p, GGI_HA_CLIENT, 0, 5010 + 3 * T) == 0); /* unsynced: never serves */

    /* A passive with a replica whose active peer restarts (as primary) takes over; the
     * restarted primary then hears it active. */
    ggi_ha_fsm f;
    ggi_ha_fsm_init(&f, 0, T, 0);
    step(&f, GGI_HA_PEER_ACTIVE, 1, 10);
    f.synced = 1;
    step(&f, GGI_HA_PEER_PRIMARY, 0, 20);
    CHECK(f.state == GGI_HA_ACTIVE);
    /* ...but not without a replica. */
    ggi_ha_fsm_init(&f, 0, T, 0);
    step(&f, GGI_HA_PEER_ACTIVE, 1, 10);
    step(&f, GGI_HA_PEER_PRIMARY, 0, 20);
    CHECK(f.state == GGI_HA_PASSIVE);
    /* A primary hearing a passive peer with a replica waits for it to take over; with none,
     * goes active itself. */
    ggi_ha_fsm_init(&f, 1, T, 0);
    step(&f, GGI_HA_PEER_PASSIVE, 1, 10);
    CHECK(f.state == GGI_HA_PRIMARY);
    step(&f, GGI_HA_PEER_PASSIVE, 0, 20);
    CHECK(f.state == GGI_HA_ACTIVE);

    /* No peer at all: the primary serves after a whole timeout, the backup never. */
    ggi_ha_fsm_init(&p, 1, T, 0);
    ggi_ha_fsm_init(&b, 0, T, 0);
    CHECK(step(&p, GGI_HA_CLIENT, 0, T - 1) == 0);
    CHECK(step(&p, GGI_HA_CLIENT, 0, T) == 1);
    CHECK(p.state == GGI_HA_ACTIVE);
    CHECK(step(&b, GGI_HA_CLIENT, 0, 100 * T) == 0);
    CHECK(b.state == GGI_HA_BACKUP);
    /* A primary that heard a peer once does not serve alone on a client's word. */
    ggi_ha_fsm_init(&p, 1, T, 0);
    step(&p, GGI_HA_PEER_PRIMARY, 0, 10);
    CHECK(strstr(why, "both") != NULL); /* two primaries: a configuration error */
    CHECK(step(&p, GGI_HA_CLIENT, 0, 10 + 2 * T) == 0);

    /* Two actives are reported, and the state is kept. */
    ggi_ha_fsm_init(&f, 1, T, 0);
    step(&f, GGI_HA_PEER_BACKUP, 0, 10);
    step(&f, GGI_HA_PEER_ACTIVE, 1, 20);
    CHECK(f.state == GGI_HA_ACTIVE);
    CHECK(strstr(why, "split brain") != NULL);

    CHECK(strcmp(ggi_ha_state_name(GGI_HA_PASSIVE), "passive") == 0);
    return test_exit();
}
