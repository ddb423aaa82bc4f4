/* A connection to a NATS cluster with JetStream (docs/cluster.md), as
 * every part of cluster/ makes it: the servers from a comma-separated
 * list of URLs, reconnecting for ever to whichever node is up, JetStream
 * requests waiting `timeout_ms`. */
#ifndef ORDO_NATS_H
#define ORDO_NATS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0 with *nc and *js set (the caller destroys both), or -1 with err. */
int ordo_nats_connect(const char *servers, const char *name, int timeout_ms,
                      natsConnection **nc, jsCtx **js, char *err, size_t errsize);

/* A message header's value as a whole number. False if missing or not
 * one (from a stream: the message's headers are not trusted). */
bool ordo_nats_header_u64(natsMsg *m, const char *key, uint64_t *out);

/* Says what failed, with libnats' words; returns -1. */
int ordo_nats_fail(char *err, size_t errsize, const char *what, natsStatus s, jsErrCode jerr);

#endif
