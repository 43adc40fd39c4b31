/* known.c: built-in known dynamics (pendulum, cartpole swing-up); the exact
 * equations are documented in known.h.
 *
 * Pure functions over n rows, thread-safe, no allocation. Computed in double
 * and stored as float. Not for: learned models or episode logic (resets and
 * time limits belong to the simulator clients). */
#include "plan/known.h"

#include <math.h>
#include <string.h>

static double known__clip(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Gymnasium's angle_normalize: ((x + pi) mod 2 pi) - pi. */
static double known__angle_normalize(double x) {
    double y = fmod(x + M_PI, 2.0 * M_PI);
    if (y < 0) y += 2.0 * M_PI;
    return y - M_PI;
}

/* obs (n, 3), act (n, 1), next_obs (n, 3), reward (n) or NULL. */
static void known__pendulum_step(size_t n, const float *obs, const float *act, float *next_obs,
                                 float *reward) {
    const double g = 10.0, m = 1.0, l = 1.0, dt = 0.05, max_speed = 8.0, max_torque = 2.0;
    for (size_t i = 0; i < n; i++) {
        const float *o = obs + 3 * i;
        double th = atan2((double)o[1], (double)o[0]);
        double thdot = o[2];
        double u = known__clip(act[i], -max_torque, max_torque);
        if (reward) {
            double a = known__angle_normalize(th);
            reward[i] = (float)-(a * a + 0.1 * thdot * thdot + 0.001 * u * u);
        }
        double nthdot = thdot + (3.0 * g / (2.0 * l) * sin(th) + 3.0 / (m * l * l) * u) * dt;
        nthdot = known__clip(nthdot, -max_speed, max_speed);
        double nth = th + nthdot * dt;
        float *no = next_obs + 3 * i;
        no[0] = (float)cos(nth);
        no[1] = (float)sin(nth);
        no[2] = (float)nthdot;
    }
}

/* obs (n, 4) = (x, th, xdot, thdot), act (n, 1), next_obs (n, 4), reward (n) or NULL. */
static void known__cartpole_step(size_t n, const float *obs, const float *act, float *next_obs,
                                 float *reward) {
    const double M = 10.5, m = 5.0, l = 0.6, lc = 0.3, g = 9.81, gear = 100.0;
    const double J = m * l * l / 3.0;
    const double h = 0.005;
    const int substeps = 8;
    for (size_t i = 0; i < n; i++) {
        const float *o = obs + 4 * i;
        double x = o[0], th = o[1], xd = o[2], thd = o[3];
        double u = known__clip(act[i], -3.0, 3.0), F = gear * u;
        for (int k = 0; k < substeps; k++) {
            double s = sin(th), c = cos(th);
            double a11 = M + m, a12 = -m * lc * c, a22 = J;
            double b1 = F - m * lc * s * thd * thd, b2 = -m * g * lc * s;
            double det = a11 * a22 - a12 * a12; /* >= (M + m) J - m^2 lc^2 > 0 */
            double xdd = (a22 * b1 - a12 * b2) / det;
            double thdd = (a11 * b2 - a12 * b1) / det;
            xd += h * xdd;
            thd += h * thdd;
            x += h * xd;
            th += h * thd;
        }
        float *no = next_obs + 4 * i;
        no[0] = (float)x;
        no[1] = (float)th;
        no[2] = (float)xd;
        no[3] = (float)thd;
        if (reward) {
            double ex = x - l * sin(th), ey = -l * cos(th);
            double d2 = ex * ex + (ey - l) * (ey - l);
            reward[i] = (float)(exp(-d2 / (l * l)) - 0.01 * u * u);
        }
    }
}

const mb_known_model mb_known_pendulum = {
    .name = "pendulum",
    .obs_dim = 3,
    .act_dim = 1,
    .act_low = {-2.0f},
    .act_high = {2.0f},
    .step = known__pendulum_step,
};

const mb_known_model mb_known_cartpole_swingup = {
    .name = "cartpole_swingup",
    .obs_dim = 4,
    .act_dim = 1,
    .act_low = {-3.0f},
    .act_high = {3.0f},
    .step = known__cartpole_step,
};

const mb_known_model *mb_known_find(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, mb_known_pendulum.name)) return &mb_known_pendulum;
    if (!strcmp(name, mb_known_cartpole_swingup.name)) return &mb_known_cartpole_swingup;
    return NULL;
}
