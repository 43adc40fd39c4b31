/* transitions_json.h: the body of POST /v1/models/{m}/transitions decoded
 * straight from its text into float arrays, with no JSON tree. cJSON spends
 * one ~64-byte node (plus malloc overhead) per value, up to ~32x the body
 * (an 8 MiB post of short numbers became ~270 MB); here the cost is the
 * body plus the rows' floats (at most ~2x the body: a number takes at least
 * 2 bytes of text, "0,", and 4 as a float).
 *
 * The same rules and error answers as the jsonv.h readers gave on the tree:
 * strict JSON (RFC 8259 numbers, strings and literals; nesting at most
 * JV_MAX_DEPTH; nothing after the value) or 400 invalid_json; unknown or
 * duplicate keys, wrong types, wrong vector lengths, non-finite numbers 400
 * invalid_argument; numbers out of range 422; each with its JSON path
 * ("transitions[2].obs[3]"). A key may be written with escapes
 * ("\u006fbs" is "obs"); null counts as absent.
 *
 * Two steps, so the model is looked up between them (404 before any row is
 * read, and the rows' sizes come from its spec):
 *   tj_head: syntax, the top-level keys, "client", "seq", and the number of
 *            rows in "transitions";
 *   tj_rows: the rows, into arrays sized from that count.
 * Not for: the rules of the batch itself (api_data.c, model_append). */
#ifndef SRV_TRANSITIONS_JSON_H
#define SRV_TRANSITIONS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "spec.h"

typedef struct {
    int has_client;                  /* 1 if "client" was given (not null) */
    char client[SRV_NAME_MAX + 1];
    int has_seq;
    long seq;                        /* 0..2^53-1 */
    int n;                           /* rows in "transitions" */
    size_t rows_at;                  /* offset of the "transitions" array in the text */
} tj_head;

/* text: (len) bytes, not necessarily NUL-terminated; len 0 reads as {}.
 * max_rows: more rows (or none) -> 400 at "transitions". 0, or -1 with e. */
int tj_head_parse(const char *text, size_t len, int max_rows, tj_head *h, srv_err *e);

/* The rows of a text that tj_head_parse accepted, checked against the
 * model's dims (od, ad) and the value ranges. discrete > 0 (a model with
 * "actions": {"discrete": K}, ad == K): each action is an integer in
 * [0, K), stored one-hot.
 *   obs, next: (h->n, od); act: (h->n, ad); rew, term, trunc: (h->n)
 * 0, or -1 with e. */
int tj_rows(const char *text, size_t len, const tj_head *h, int od, int ad, int discrete, float *obs,
            float *act, float *rew, float *next, uint8_t *term, uint8_t *trunc, srv_err *e);

#endif
