/* What the pieces of libordo share and do not install: filling a public
 * ordo_result_t from reply bytes (ordo_result.c), and the hooks the
 * subscription helper needs into a client (ordo_client.c). */
#ifndef ORDO_CLIENT_INTERNAL_H
#define ORDO_CLIENT_INTERNAL_H

#include "ordo.h"
#include "ordo_codec.h"

/* Fills *res (cleared first) from a reply already decoded into *reply over
 * `bytes`, taking ownership of *bytes (nulled, freed on failure too).
 * Decodes the event, order, events and stats into public views. Returns
 * 0, ORDO_E_BAD_REPLY or ORDO_E_NOMEM. */
int ordo_result_take_reply(ordo_result_t *res, uint8_t **bytes, size_t len,
                           const ordo_reply_t *reply);

/* Fills *res (cleared first) with one wire-form event (a PUB body) in
 * res->event, taking ownership of *bytes. Returns 0, ORDO_E_BAD_REPLY or
 * ORDO_E_NOMEM. */
int ordo_result_take_event(ordo_result_t *res, uint8_t **bytes, size_t len);

/* As ordo_client_new_with, in ZeroMQ context `ctx`, which the caller
 * owns and terminates once the client is destroyed (a router's clients
 * share one: one I/O thread, not one per engine); NULL: its own. */
ordo_client_t *ordo_client_new_in_(void *ctx, const char *endpoint,
                                   const ordo_connect_options_t *opts);

/* The client's ZeroMQ context and DEALER socket (for zmq_poll). */
void *ordo_client_context_(ordo_client_t *c);
void *ordo_client_socket_(ordo_client_t *c);

/* Applies the options' CURVE keys, if any, to a socket not yet
 * connected. 0 or -1 (errno). */
int ordo_client_secure_(void *sock, const ordo_connect_options_t *opts);

/* Forgets a request sent with ordo_client_send: its reply, if it ever
 * comes, is dropped. */
void ordo_client_abandon_(ordo_client_t *c, const char *request_id);

/* 16 random hex digits and '-', NUL-terminated: the start of request ids
 * unique across clients and restarts. */
void ordo_client_random_prefix_(char out[20]);

/* Monotonic milliseconds. */
int64_t ordo_client_now_ms_(void);

#endif
