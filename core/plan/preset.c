/* preset.c: named planner configurations (see preset.h). */
#include "plan/preset.h"

#include <string.h>

const char *mb_planner_preset_names(void) { return "realtime"; }

int mb_planner_preset(const char *name, mb_planner_cfg *cfg) {
    if (!name || !cfg) return -1;
    if (!strcmp(name, "realtime")) {
        mb_planner_cfg_default(cfg, MB_PLAN_ICEM);
        cfg->horizon = 15;
        cfg->population = 100;
        cfg->elites = 10;
        cfg->iterations = 3;
        cfg->pop_decay = 1.25f;
        cfg->keep_elites = 0.3f;
        cfg->noise_beta = 2.0f;
        cfg->alpha = 0.1f;
        cfg->init_std = 0.5f;
        cfg->particles = 5;
        cfg->propagation = MB_PROP_TS_INF;
        return 0;
    }
    return -1;
}
