/* fuzz_requests.c: libFuzzer target for the server's JSON-to-struct request
 * decoding, the way http.c feeds it (depth check, cJSON, finiteness): the
 * first byte picks the reader:
 *   0 POST /v1/models: spec_parse; an accepted spec must render
 *     (spec_render) to JSON that parses back to the same rendering;
 *   1 POST .../train: spec_parse_train (members 1..16 from the byte);
 *   2 POST .../act: the body's planner overrides (spec_parse_planner) and
 *     its "obs" (jv_floats) against a fixed valid model.
 * Run: build/fuzz/fuzz_requests [-max_total_time=S] DIR... (tests/fuzz/README.md) */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "options.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz__model[] =
    "{\"name\": \"m\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], "
    "\"ensemble\": {\"members\": 3, \"hidden\": [16, 16]}, \"planner\": {\"method\": \"cem\", \"horizon\": 5, "
    "\"population\": 32, \"elites\": 4, \"iterations\": 2, \"particles\": 3}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static srv_config cfg;
    static srv_model_spec model;
    static int ready;
    if (!ready) {
        srv_config_default(&cfg);
        cJSON *mj = cJSON_Parse(fuzz__model);
        srv_err e0;
        memset(&e0, 0, sizeof e0);
        if (!mj || spec_parse(mj, &cfg, &model, &e0) != 0) abort();
        cJSON_Delete(mj);
        ready = 1;
    }
    int mode = data[0] % 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (!jv_depth_ok(text, len, JV_MAX_DEPTH)) return 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return 0;
    srv_err e;
    memset(&e, 0, sizeof e);
    if (!cJSON_IsObject(root) || jv_all_finite(root, &e) != 0) {
        cJSON_Delete(root);
        return 0;
    }
    if (mode == 0) {
        srv_model_spec *s = calloc(1, sizeof *s), *s2 = calloc(1, sizeof *s2);
        if (spec_parse(root, &cfg, s, &e) == 0) {
            cJSON *r1 = spec_render(s);
            char *t1 = r1 ? cJSON_PrintUnformatted(r1) : NULL;
            cJSON *back = t1 ? cJSON_Parse(t1) : NULL;
            srv_err e2;
            memset(&e2, 0, sizeof e2);
            if (back && spec_parse(back, &cfg, s2, &e2) != 0) {
                fprintf(stderr, "rendered spec not accepted: %s at %s\n%s\n", e2.message, e2.field, t1);
                abort();
            }
            cJSON *r2 = back ? spec_render(s2) : NULL;
            char *t2 = r2 ? cJSON_PrintUnformatted(r2) : NULL;
            if (t1 && t2 && strcmp(t1, t2) != 0) {
                fprintf(stderr, "render is not stable:\n%s\n%s\n", t1, t2);
                abort();
            }
            free(t1), free(t2);
            cJSON_Delete(r1), cJSON_Delete(r2), cJSON_Delete(back);
        } else if (!e.message[0]) {
            abort();
        }
        free(s), free(s2);
    } else if (mode == 1) {
        mb_train_cfg tc = model.train;
        static const char *const extra[] = {"wait", NULL};
        if (spec_parse_train(root, "", extra, 1 + data[0] % 16, &tc, &e) != 0 && !e.message[0]) abort();
    } else {
        const cJSON *po = cJSON_GetObjectItemCaseSensitive(root, "planner");
        mb_planner_cfg pc = model.planner;
        float obs[MB_MAX_OBS_DIM];
        if (jv_floats(root, "", "obs", 0, model.obs_dim, -3e38, 3e38, obs, NULL, &e) < 0 && !e.message[0]) abort();
        memset(&e, 0, sizeof e);
        if (po && spec_parse_planner(po, "planner", &model, &cfg, &pc, &e) != 0 && !e.message[0]) abort();
    }
    cJSON_Delete(root);
    return 0;
}
