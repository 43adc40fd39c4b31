/* json_floats.c: see json_floats.h. */
#include "json_floats.h"

#include <stdio.h>
#include <stdlib.h>

double jf_num(float f) {
    char b[32];
    for (int prec = 6; prec < 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)f);
        if (strtof(b, NULL) == f) return strtod(b, NULL);
    }
    return (double)f;
}

cJSON *jf_floats(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *v = cJSON_CreateNumber(jf_num(x[i]));
        if (!v) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, v);
    }
    return a;
}

cJSON *jf_ints(const int *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *v = cJSON_CreateNumber(x[i]);
        if (!v) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, v);
    }
    return a;
}

void jf_add(cJSON *obj, const char *key, cJSON *item) {
    if (!item) return;
    int ok = obj && (key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item));
    if (!ok) cJSON_Delete(item);
}
