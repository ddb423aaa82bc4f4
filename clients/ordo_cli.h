/* ordo-cli is one program in two files: ordo_cli.c (the engine's commands
 * and queries, and main) and ordo_cli_projector.c (the projector's
 * queries). What they share: the exit statuses, and the helpers that read
 * and print numbers, times and money, so both kinds of command do it the
 * same way. Not installed. */
#ifndef ORDO_CLI_H
#define ORDO_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ordo.h"

#define EXIT_REFUSED 1   /* the server answered no */
#define EXIT_USAGE 2     /* the command line is wrong */
#define EXIT_NO_ANSWER 3 /* no answer, or not one of the protocol's */

/* ordo_cli.c */
void ordo_cli_usage(FILE *out);
/* "ordo-cli: <message>; try --help" to stderr; returns EXIT_USAGE. */
int ordo_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool ordo_cli_int(const char *s, int64_t min, int64_t max, int64_t *out);
bool ordo_cli_parse_time(const char *s, int64_t *us);
const char *ordo_cli_time(int64_t us, char buf[40]);
const char *ordo_cli_money(int64_t cents, char buf[32]);

/* CURVE (--curve-server, --curve-cert; ORDO_CURVE_SERVER, ORDO_CURVE_CERT),
 * the same for the engine's commands and the projector's queries. */
typedef struct {
    const char *server; /* the server's public certificate */
    const char *cert;   /* this client's secret certificate */
    ordo_curve_t keys;
    ordo_connect_options_t opts; /* what to connect with */
} ordo_cli_curve_t;

/* Starts from the environment. */
void ordo_cli_curve_init(ordo_cli_curve_t *cv);

/* Once the options are read: both files or neither, and readable. 0, or
 * EXIT_USAGE after a message. */
int ordo_cli_curve_load(ordo_cli_curve_t *cv);

/* ordo_cli_projector.c */
bool ordo_cli_projector_command(const char *word);
void ordo_cli_projector_usage(FILE *out);
int ordo_cli_projector_main(int argc, char **argv);

#endif
