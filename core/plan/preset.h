/* preset.h: named planner configurations a client asks for by name
 * ("planner": {"preset": "realtime"}), the fields it also sends applied on
 * top.
 *   realtime: iCEM for robots that need an action every few milliseconds,
 *     after the paper's "iCEM blitz" settings (Pinneri et al. 2020: 40
 *     trajectories, 3 iterations, 10 elites) with a larger first population
 *     and fewer particles: H 15, N 100 (100 + 80 + 64 = 244 candidates per
 *     plan), 10 elites, 3 iterations, decay 1.25, 30% of the elites kept,
 *     coloured noise beta 2 (low-frequency actions: manipulation, balance;
 *     0.25 suits high-frequency locomotion), alpha 0.1, init_std 0.5,
 *     P 5 TS-inf (one particle per member of a 5-member ensemble). A plan
 *     with a 5 x 2 x 64 ensemble takes a few ms on one core (README.md,
 *     "Planner presets", gives the measured figure).
 * Not for: checking the result (mb_planner_cfg_check does). */
#ifndef MB_PRESET_H
#define MB_PRESET_H

#include "plan/planner.h"

/* Overwrites *cfg with preset `name`; 0, or -1 for an unknown name (cfg
 * untouched). */
int mb_planner_preset(const char *name, mb_planner_cfg *cfg);
/* "realtime" (the names, comma-separated, for messages). */
const char *mb_planner_preset_names(void);

#endif
