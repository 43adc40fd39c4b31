/* json_floats.h: floats into cJSON numbers, the one way: each float becomes
 * the shortest decimal that reads back as the same float (0.1f is written
 * 0.1, not 0.100000001490116), so answers are short and exact. Used by the
 * daemon's answers and by the C client's requests (clients/clients.mk
 * compiles this file into libmbclient).
 * Not for: parsing (jsonv.h) or anything outside cJSON. */
#ifndef SRV_JSON_FLOATS_H
#define SRV_JSON_FLOATS_H

#include <cjson/cJSON.h>

/* The shortest double whose decimal form reads back as f. */
double jf_num(float f);
/* [x0, x1, ...] with jf_num; NULL when out of memory. */
cJSON *jf_floats(const float *x, int n);
/* [x0, x1, ...] of ints; NULL when out of memory. */
cJSON *jf_ints(const int *x, int n);
/* Adds item to the object obj under key, or to the array obj when key is
 * NULL. cJSON_AddItemTo* leave item to the caller when they fail (obj NULL,
 * no memory for the key's copy): here it is deleted, so building an answer
 * while out of memory leaks nothing (alloc.h turns it into a 503). */
void jf_add(cJSON *obj, const char *key, cJSON *item);

#endif
