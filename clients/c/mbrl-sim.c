/* mbrl-sim.c: the lectures' "MBRL 1.5" loop through a running mbrld, for
 * every simulator in clients/c/sim:
 *
 *   1. a few episodes of uniformly random actions, posted to the daemon;
 *   2. train the ensemble on everything posted so far;
 *   3. an episode of MPC: every step asks the daemon for the action (act);
 *   4. post the episode, retrain, repeat 3-4.
 *
 * Prints one line per episode (steps, return, holdout loss, planning time),
 * writes a CSV learning curve and a picture of it (PNG through gnuplot when
 * it is installed, else an SVG written here).
 * Not for: physics (clients/c/sim) or HTTP details (clients/c/lib). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/mbrl_client.h"
#include "sim/sim.h"

typedef struct {
    const char *task, *url, *token_file, *model, *out_dir, *csv, *picture, *model_dir, *reward_mode, *trace, *extra;
    int episodes, random_episodes, steps, quiet, replace, delete_after, no_plot;
    long seed;
    double reset_noise, stop_at;
    int stop_window;
    /* ensemble, planner, training: 0 / NULL = the task's default below */
    int members, n_hidden, hidden[MBRL_MAX_LAYERS];
    const char *activation;
    mbrl_planner planner;
    int epochs, patience, batch_size;
    double lr;
    long auto_train;
    int train_plain; /* send only the training fields given on the command line */
    double progress; /* seconds between progress lines when stdout is not a terminal (0: none) */
    int learn_termination;
} sim_args;

/* Defaults chosen so that each task learns on a 2-core machine in minutes:
 * smaller nets and populations than PETS (5 x 3 x 200, CEM H 30 N 500 P 20). */
typedef struct {
    const char *task;
    int episodes, random_episodes, members, n_hidden, hidden;
    int horizon, population, elites, iterations, particles, epochs, patience, batch_size;
} task_defaults;

static const task_defaults defaults[] = {
    {"pendulum", 10, 1, 5, 2, 64, 30, 200, 20, 3, 10, 300, 20, 32},
    {"cartpole_swingup", 15, 1, 5, 2, 64, 25, 200, 20, 3, 10, 300, 20, 32},
    {"inverted_pendulum", 10, 5, 5, 2, 64, 15, 300, 30, 5, 10, 300, 20, 32},
    /* reduced: 1000-step episodes at PETS's size would take hours here */
    {"halfcheetah", 8, 1, 5, 2, 128, 15, 200, 20, 3, 5, 50, 5, 0},
    {"hopper", 8, 1, 5, 2, 128, 15, 200, 20, 3, 5, 50, 5, 0},
    {"swimmer", 8, 1, 5, 2, 128, 15, 200, 20, 3, 5, 50, 5, 0},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: mbrl-sim [options]\n"
            "Runs the MBRL loop (random episodes, train, MPC episodes with retraining)\n"
            "of a simulator through a running mbrld, and draws its learning curve.\n\n"
            "  --task NAME          %s (default pendulum)\n"
            "  --url URL            daemon (default $MBRLD_URL or http://127.0.0.1:8080)\n"
            "  --token-file FILE    bearer token: FILE's first line (default $MBRLD_TOKEN)\n"
            "  --model NAME         model name on the daemon (default: the task's name)\n"
            "  --replace            delete an existing model of that name first\n"
            "  --delete             delete the model when done\n"
            "  --episodes N         episodes in all, random ones included\n"
            "  --random-episodes N  episodes of random actions first (default 1)\n"
            "  --steps N            episode length (default: the task's, e.g. 200, 1000)\n"
            "  --seed N             seeds the simulator, random policy and model (default 1)\n"
            "  --stop-at R          stop once the mean return of the last --stop-window\n"
            "                       (default 3) MPC episodes is at least R\n"
            "  --reward MODE        declared (the task's reward terms where expressible,\n"
            "                       default) or learned (the ensemble learns it)\n"
            "  --spec JSON          merged last into the model spec, e.g. '{\"reward\": {..}}'\n"
            "  --model-dir DIR      MuJoCo XMLs (default $MBRL_MUJOCO_DIR, else clients/c/sim/models)\n"
            "  --reset-noise X      scales the task's reset noise (default 1)\n"
            "ensemble and training:\n"
            "  --members N  --hidden 200,200,200  --activation NAME\n"
            "  --epochs N   --patience N  --batch-size N  --lr X   per training round\n"
            "  --auto-train N       let the daemon retrain every N transitions instead\n"
            "  --learn-termination  the ensemble learns p(terminated | s') and the planner\n"
            "                       ends particles with it (tasks with early termination)\n"
            "  --train-plain        send only the training fields given here (none: a bare\n"
            "                       train request), as a plain client does; the daemon's\n"
            "                       defaults decide the rest\n"
            "planner (per model):\n"
            "  --planner cem|random|mppi|icem  --horizon N  --population N  --elites N\n"
            "  --preset realtime    a named planner configuration (iCEM, a plan in a few ms);\n"
            "                       only the planner flags given here apply on top\n"
            "  --noise-beta X       iCEM coloured-noise exponent (0.25 locomotion, 2-3 slow tasks)\n"
            "  --iterations N  --particles N  --alpha X  --propagation ts1|ts_inf|expectation|mean\n"
            "  --init-std X         first sampling std, a fraction of half the action range\n"
            "output:\n"
            "  --out DIR            where the CSV and picture go (default mbrl-out)\n"
            "  --csv FILE  --picture FILE (.png or .svg)  --no-plot  --quiet\n"
            "  --trace FILE         every step: episode, t, obs, action, reward, terminated\n"
            "  --progress SECONDS   a progress line (episode, step, steps/s, ETA) this often\n"
            "                       when stdout is not a terminal (default 60, 0 = none;\n"
            "                       on a terminal one line updates in place)\n",
            sim_task_names());
}

static int parse_int(const char *s, int *out, const char *flag) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < -1000000000L || v > 1000000000L) {
        fprintf(stderr, "mbrl-sim: %s wants an integer, not '%s'\n", flag, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double *out, const char *flag) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) {
        fprintf(stderr, "mbrl-sim: %s wants a number, not '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 ok, 1 exit 0 (help), 2 usage error. */
static int parse_args(int argc, char **argv, sim_args *a) {
    enum {
        O_TASK = 256, O_URL, O_MODEL, O_REPLACE, O_DELETE, O_EPISODES, O_RANDOM, O_STEPS, O_SEED,
        O_STOP, O_WINDOW, O_REWARD, O_MODEL_DIR, O_NOISE, O_MEMBERS, O_HIDDEN, O_ACT, O_EPOCHS,
        O_PATIENCE, O_BATCH, O_LR, O_AUTO, O_PLANNER, O_HORIZON, O_POP, O_ELITES, O_ITERS, O_PARTICLES, O_ALPHA,
        O_PROP, O_INIT_STD, O_EXTRA, O_OUT, O_CSV, O_PIC, O_TRACE, O_NOPLOT, O_QUIET, O_HELP, O_TOKEN_FILE,
        O_PLAIN, O_PRESET, O_NBETA, O_PROGRESS, O_LTERM
    };
    static const struct option opts[] = {
        {"task", 1, 0, O_TASK}, {"url", 1, 0, O_URL}, {"token-file", 1, 0, O_TOKEN_FILE}, {"model", 1, 0, O_MODEL},
        {"replace", 0, 0, O_REPLACE}, {"delete", 0, 0, O_DELETE}, {"episodes", 1, 0, O_EPISODES},
        {"random-episodes", 1, 0, O_RANDOM}, {"steps", 1, 0, O_STEPS}, {"seed", 1, 0, O_SEED},
        {"stop-at", 1, 0, O_STOP}, {"stop-window", 1, 0, O_WINDOW}, {"reward", 1, 0, O_REWARD},
        {"model-dir", 1, 0, O_MODEL_DIR}, {"reset-noise", 1, 0, O_NOISE},
        {"members", 1, 0, O_MEMBERS}, {"hidden", 1, 0, O_HIDDEN}, {"activation", 1, 0, O_ACT},
        {"epochs", 1, 0, O_EPOCHS}, {"patience", 1, 0, O_PATIENCE}, {"batch-size", 1, 0, O_BATCH}, {"lr", 1, 0, O_LR},
        {"auto-train", 1, 0, O_AUTO}, {"train-plain", 0, 0, O_PLAIN},
        {"preset", 1, 0, O_PRESET}, {"noise-beta", 1, 0, O_NBETA}, {"progress", 1, 0, O_PROGRESS},
        {"learn-termination", 0, 0, O_LTERM},
        {"planner", 1, 0, O_PLANNER}, {"horizon", 1, 0, O_HORIZON}, {"population", 1, 0, O_POP},
        {"elites", 1, 0, O_ELITES}, {"iterations", 1, 0, O_ITERS}, {"iters", 1, 0, O_ITERS},
        {"particles", 1, 0, O_PARTICLES}, {"alpha", 1, 0, O_ALPHA}, {"propagation", 1, 0, O_PROP}, {"init-std", 1, 0, O_INIT_STD},
        {"spec", 1, 0, O_EXTRA},
        {"out", 1, 0, O_OUT}, {"csv", 1, 0, O_CSV}, {"picture", 1, 0, O_PIC}, {"trace", 1, 0, O_TRACE},
        {"no-plot", 0, 0, O_NOPLOT}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, O_HELP},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->task = "pendulum";
    a->seed = 1;
    a->reset_noise = 1.0;
    a->stop_at = NAN;
    a->stop_window = 3;
    a->random_episodes = -1;
    a->reward_mode = "declared";
    a->out_dir = "mbrl-out";
    a->progress = 60;
    int c, v;
    double d;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_TASK: a->task = optarg; break;
        case O_URL: a->url = optarg; break;
        case O_TOKEN_FILE: a->token_file = optarg; break;
        case O_MODEL: a->model = optarg; break;
        case O_REPLACE: a->replace = 1; break;
        case O_DELETE: a->delete_after = 1; break;
        case O_EPISODES: if (parse_int(optarg, &a->episodes, "--episodes") || a->episodes < 1) return 2; break;
        case O_RANDOM: if (parse_int(optarg, &a->random_episodes, "--random-episodes") || a->random_episodes < 0) return 2; break;
        case O_STEPS: if (parse_int(optarg, &a->steps, "--steps") || a->steps < 1) return 2; break;
        case O_SEED: if (parse_int(optarg, &v, "--seed") || v < 0) return 2; a->seed = v; break;
        case O_STOP: if (parse_double(optarg, &a->stop_at, "--stop-at")) return 2; break;
        case O_WINDOW: if (parse_int(optarg, &a->stop_window, "--stop-window") || a->stop_window < 1) return 2; break;
        case O_REWARD:
            if (strcmp(optarg, "declared") && strcmp(optarg, "learned")) {
                fprintf(stderr, "mbrl-sim: --reward is declared or learned\n");
                return 2;
            }
            a->reward_mode = optarg;
            break;
        case O_MODEL_DIR: a->model_dir = optarg; break;
        case O_NOISE: if (parse_double(optarg, &a->reset_noise, "--reset-noise") || a->reset_noise < 0) return 2; break;
        case O_MEMBERS: if (parse_int(optarg, &a->members, "--members") || a->members < 1) return 2; break;
        case O_HIDDEN: {
            char *s = optarg, *end;
            a->n_hidden = 0;
            while (*s) {
                long h = strtol(s, &end, 10);
                if (end == s || h < 1 || h > 100000 || a->n_hidden >= MBRL_MAX_LAYERS || (*end && *end != ',')) {
                    fprintf(stderr, "mbrl-sim: --hidden wants units per layer, e.g. 200,200,200\n");
                    return 2;
                }
                a->hidden[a->n_hidden++] = (int)h;
                s = *end ? end + 1 : end;
            }
            if (!a->n_hidden) return 2;
            break;
        }
        case O_ACT: a->activation = optarg; break;
        case O_EPOCHS: if (parse_int(optarg, &a->epochs, "--epochs") || a->epochs < 1) return 2; break;
        case O_PATIENCE: if (parse_int(optarg, &a->patience, "--patience") || a->patience < 0) return 2; break;
        case O_BATCH: if (parse_int(optarg, &a->batch_size, "--batch-size") || a->batch_size < 1) return 2; break;
        case O_LR: if (parse_double(optarg, &a->lr, "--lr") || a->lr <= 0) return 2; break;
        case O_PLAIN: a->train_plain = 1; break;
        case O_LTERM: a->learn_termination = 1; break;
        case O_AUTO: if (parse_int(optarg, &v, "--auto-train") || v < 1) return 2; a->auto_train = v; break;
        case O_PLANNER: a->planner.method = optarg; break;
        case O_PRESET: a->planner.preset = optarg; break;
        case O_PROGRESS: if (parse_double(optarg, &a->progress, "--progress") || a->progress < 0) return 2; break;
        case O_NBETA: if (parse_double(optarg, &d, "--noise-beta") || d < 0) return 2; a->planner.noise_beta = d > 0 ? (float)d : 1e-9f; break;
        case O_HORIZON: if (parse_int(optarg, &a->planner.horizon, "--horizon")) return 2; break;
        case O_POP: if (parse_int(optarg, &a->planner.population, "--population")) return 2; break;
        case O_ELITES: if (parse_int(optarg, &a->planner.elites, "--elites")) return 2; break;
        case O_ITERS: if (parse_int(optarg, &a->planner.iterations, "--iterations")) return 2; break;
        case O_PARTICLES: if (parse_int(optarg, &a->planner.particles, "--particles")) return 2; break;
        case O_ALPHA: if (parse_double(optarg, &d, "--alpha")) return 2; a->planner.alpha = (float)d; break;
        case O_PROP: a->planner.propagation = optarg; break;
        case O_EXTRA: a->extra = optarg; break;
        case O_INIT_STD: if (parse_double(optarg, &d, "--init-std") || d <= 0) return 2; a->planner.init_std = (float)d; break;
        case O_OUT: a->out_dir = optarg; break;
        case O_CSV: a->csv = optarg; break;
        case O_PIC: a->picture = optarg; break;
        case O_TRACE: a->trace = optarg; break;
        case O_NOPLOT: a->no_plot = 1; break;
        case O_QUIET: a->quiet = 1; break;
        case O_HELP: case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mbrl-sim: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One finished episode, as the CSV and the picture show it. */
typedef struct {
    int episode;
    const char *policy;  /* "random" or "mpc" */
    int steps, terminated;
    double ret, holdout, plan_ms, step_ms, train_s, wall_s;
    double pred_reward;  /* the planner's predicted return / horizon, mean over the steps */
    long buffer, version;
} episode_row;

static void print_error(const char *what, const mbrl_error *e) {
    char buf[800];
    fprintf(stderr, "mbrl-sim: %s: %s\n", what, mbrl_error_str(e, buf, sizeof buf));
    if (e->http_status == 0)
        fprintf(stderr, "mbrl-sim: is mbrld running? start one with: build/mbrld --listen 127.0.0.1:8080\n");
}

/* ---- the picture ---------------------------------------------------------- */

static int have_gnuplot(void) {
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static int plot_gnuplot(const char *csv, const char *png, const char *title, double random_mean) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gnuplot 2>/dev/null");
    FILE *g = popen(cmd, "w");
    if (!g) return -1;
    fprintf(g,
            "set terminal pngcairo size 800,480 enhanced font 'sans,11'\n"
            "set output '%s'\n"
            "set datafile separator ','\n"
            "set title '%s' noenhanced\n"
            "set xlabel 'episode'\nset ylabel 'return'\nset grid\nset key top left\n"
            "set xtics 1\n",
            png, title);
    if (isfinite(random_mean))
        fprintf(g, "plot '%s' using 1:(strcol(2) eq 'mpc' ? $4 : 1/0) with linespoints "
                   "lw 2 pt 7 title 'MPC through mbrld', "
                   "'' using 1:(strcol(2) eq 'random' ? $4 : 1/0) with points pt 5 ps 1.3 title 'random actions', "
                   "%.6g with lines dt 2 lc rgb 'gray40' title 'random mean'\n",
                csv, random_mean);
    else
        fprintf(g, "plot '%s' using 1:4 with linespoints lw 2 pt 7 title 'return'\n", csv);
    return pclose(g) == 0 ? 0 : -1;
}

/* A dependency-free SVG of the same curve, for machines without gnuplot. */
static int plot_svg(const char *path, const char *title, const episode_row *rows, int n) {
    FILE *f = fopen(path, "w");
    if (!f || n < 1) {
        if (f) fclose(f);
        return -1;
    }
    double lo = rows[0].ret, hi = rows[0].ret;
    for (int i = 1; i < n; i++) {
        lo = fmin(lo, rows[i].ret);
        hi = fmax(hi, rows[i].ret);
    }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const double W = 800, H = 480, L = 70, R = 20, T = 40, B = 50;
    double xs = n > 1 ? (W - L - R) / (n - 1) : 0, ys = (H - T - B) / (hi - lo);
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' font-family='sans-serif' font-size='12'>\n", W, H);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%g' y='22' text-anchor='middle' font-size='14'>%s</text>\n", W / 2, title);
    fprintf(f, "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='black'/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='black'/>\n", L, T, L, H - B);
    for (int k = 0; k <= 4; k++) {
        double v = lo + (hi - lo) * k / 4, y = H - B - (v - lo) * ys;
        fprintf(f, "<text x='%g' y='%g' text-anchor='end'>%.4g</text><line x1='%g' y1='%g' x2='%g' y2='%g' stroke='#ddd'/>\n",
                L - 6, y + 4, v, L, y, W - R, y);
    }
    fprintf(f, "<text x='%g' y='%g' text-anchor='middle'>episode</text>\n", (L + W - R) / 2, H - 12);
    fprintf(f, "<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='");
    for (int i = 0; i < n; i++) fprintf(f, "%.1f,%.1f ", L + i * xs, H - B - (rows[i].ret - lo) * ys);
    fprintf(f, "'/>\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='4' fill='%s'><title>episode %d (%s): %.2f</title></circle>\n",
                L + i * xs, H - B - (rows[i].ret - lo) * ys, strcmp(rows[i].policy, "mpc") ? "#d62728" : "#1f77b4",
                rows[i].episode, rows[i].policy, rows[i].ret);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}

static int mkdir_p(const char *dir) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* ---- progress ------------------------------------------------------------ */

/* Steps/s and the time left, from the steps taken so far. The rate counts
 * everything since the first MPC step (planning, posting, training), so the
 * ETA is for the remaining episodes at full length: an upper bound when
 * episodes can end early. */
typedef struct {
    double t_mpc0;      /* when the first MPC step began (0: not yet) */
    long mpc_steps;     /* MPC steps taken */
    long total_left;    /* steps left in the run at full episode length */
    double last_print;
} sim_progress;

static void fmt_secs(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(out, n, "?");
    else if (s < 120) snprintf(out, n, "%.0f s", s);
    else if (s < 7200) snprintf(out, n, "%.0f min", s / 60);
    else snprintf(out, n, "%.1f h", s / 3600);
}

/* One progress line: on a terminal in place (\r), else a whole line. */
static void progress_line(sim_progress *p, int tty, int ep, int episodes, int t, int T, double ret,
                          double plan_ms, double now) {
    double rate = p->mpc_steps > 0 && now > p->t_mpc0 ? p->mpc_steps / (now - p->t_mpc0) : NAN;
    char eta[32];
    fmt_secs(isfinite(rate) && rate > 0 ? (double)p->total_left / rate : NAN, eta, sizeof eta);
    printf("%sepisode %d/%d, step %d/%d, return %.2f, %.1f steps/s, planning %.1f ms/step, ETA %s%s",
           tty ? "\r" : "", ep, episodes, t, T, ret, rate, plan_ms, eta, tty ? "   " : "\n");
    fflush(stdout);
    p->last_print = now;
}

/* The curve so far, as a picture (the CSV is flushed after every row). */
static int draw_picture(const sim_args *a, const char *csv_path, const char *pic_path, int gp,
                        double random_mean, const episode_row *rows, int n_rows) {
    char title[256];
    snprintf(title, sizeof title, "mbrld: %s, %s H=%d N=%d P=%d, ensemble %dx%dx%d, seed %ld", a->task,
             a->planner.method, a->planner.horizon, a->planner.population, a->planner.particles,
             a->members, a->n_hidden, a->hidden[0], a->seed);
    return gp ? plot_gnuplot(csv_path, pic_path, title, random_mean)
              : plot_svg(pic_path, title, rows, n_rows);
}

/* ---- the loop ------------------------------------------------------------- */

typedef struct {
    float *obs, *act, *rew, *next;   /* (T, obs_dim), (T, act_dim), (T), (T, obs_dim) */
    unsigned char *term, *trunc;     /* (T) */
} episode_buf;

static int train_round(mbrl_client *c, const char *model, const sim_args *a, double *holdout,
                       long *version, double *secs) {
    mbrl_error e;
    mbrl_job job;
    mbrl_train_opts o = {.max_epochs = a->epochs, .patience = a->patience, .batch_size = a->batch_size, .lr = (float)a->lr};
    double t0 = now_s();
    if (mbrl_train_start(c, model, &o, &job, &e) != MBRL_OK) {
        print_error("train", &e);
        return -1;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", job.id);
    mbrl_job_free(&job);
    int tty = !a->quiet && isatty(STDOUT_FILENO);
    for (;;) {
        if (mbrl_job_get(c, model, id, &job, &e) != MBRL_OK) {
            print_error("training job", &e);
            return -1;
        }
        if (mbrl_job_finished(&job)) break;
        if (tty) {
            printf("\r    training: epoch %d, holdout loss %.4g   ", job.epochs, job.holdout_loss);
            fflush(stdout);
        }
        mbrl_job_free(&job);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (tty) printf("\r%60s\r", "");
    *secs = now_s() - t0;
    if (strcmp(job.state, "done") && strcmp(job.state, "succeeded") && strcmp(job.state, "finished")) {
        fprintf(stderr, "mbrl-sim: training job %s ended %s: %s\n", id, job.state, job.message);
        mbrl_job_free(&job);
        return -1;
    }
    *holdout = job.holdout_loss;
    if (job.version) *version = job.version;
    mbrl_job_free(&job);
    return 0;
}

static void write_csv_row(FILE *f, const episode_row *r) {
    fprintf(f, "%d,%s,%d,%.6f,%d,%.6g,%.4f,%.4f,%.3f,%ld,%ld,%.2f,%.6g\n", r->episode, r->policy, r->steps,
            r->ret, r->terminated, r->holdout, r->plan_ms, r->step_ms, r->train_s, r->buffer,
            r->version, r->wall_s, r->pred_reward);
    fflush(f);
}

int main(int argc, char **argv) {
    sim_args a;
    int pr = parse_args(argc, argv, &a);
    if (pr) return pr == 1 ? 0 : 2;
    const task_defaults *td = NULL;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (!strcmp(defaults[i].task, a.task)) td = &defaults[i];
    if (!td) {
        fprintf(stderr, "mbrl-sim: unknown task '%s' (tasks: %s)\n", a.task, sim_task_names());
        return 2;
    }
    if (!a.episodes) a.episodes = td->episodes;
    if (a.random_episodes < 0) a.random_episodes = td->random_episodes;
    if (!a.members) a.members = td->members;
    if (!a.n_hidden) {
        a.n_hidden = td->n_hidden;
        for (int i = 0; i < a.n_hidden; i++) a.hidden[i] = td->hidden;
    }
    if (!a.activation) a.activation = "silu";
    if (!a.planner.preset) { /* a preset's own values, unless given here */
        if (!a.planner.method) a.planner.method = "cem";
        if (!a.planner.horizon) a.planner.horizon = td->horizon;
        if (!a.planner.population) a.planner.population = td->population;
        if (!a.planner.elites) a.planner.elites = td->elites;
        if (!a.planner.iterations) a.planner.iterations = td->iterations;
        if (!a.planner.particles) a.planner.particles = td->particles;
        if (!a.planner.propagation) a.planner.propagation = "ts_inf";
    }
    if (!a.train_plain) {
        if (!a.epochs) a.epochs = td->epochs;
        if (!a.patience) a.patience = td->patience;
        if (!a.batch_size) a.batch_size = td->batch_size;
    }
    if (!a.model) a.model = a.task;

    sim_env *env;
    char err[512];
    sim_opts so = {a.model_dir, a.reset_noise, a.steps};
    if (sim_env_open(&env, a.task, &so, err, sizeof err)) {
        fprintf(stderr, "mbrl-sim: %s\n", err);
        return 1;
    }
    int T = env->max_steps, od = env->obs_dim, ad = env->act_dim;
    episode_buf eb = {
        malloc(sizeof(float) * (size_t)T * od), malloc(sizeof(float) * (size_t)T * ad),
        malloc(sizeof(float) * (size_t)T), malloc(sizeof(float) * (size_t)T * od),
        calloc((size_t)T, 1), calloc((size_t)T, 1)};
    episode_row *rows = calloc((size_t)a.episodes, sizeof *rows);
    mbrl_client *c = NULL;
    FILE *csv = NULL, *trace = NULL;
    int rc = 1;
    if (!eb.obs || !eb.act || !eb.rew || !eb.next || !eb.term || !eb.trunc || !rows) {
        fprintf(stderr, "mbrl-sim: out of memory\n");
        goto done;
    }

    mbrl_error e;
    mbrl_client_opts co = {.url = a.url, .token_file = a.token_file};
    if (mbrl_client_new(&c, &co, &e) != MBRL_OK) {
        print_error("client", &e);
        goto done;
    }
    if (mbrl_health(c, &e) != MBRL_OK) {
        print_error("daemon", &e);
        goto done;
    }
    mbrl_model_spec spec;
    mbrl_model_spec_init(&spec);
    spec.name = a.model;
    env->declare(env, a.reward_mode, &spec);
    spec.members = a.members;
    spec.n_hidden = a.n_hidden;
    memcpy(spec.hidden, a.hidden, sizeof spec.hidden);
    spec.activation = a.activation;
    spec.planner = a.planner;
    spec.seed = a.seed;
    spec.auto_train_every = a.auto_train;
    spec.learn_termination = a.learn_termination;
    spec.auto_train_epochs = a.auto_train ? a.epochs : 0;
    spec.extra_json = a.extra;
    if (a.replace) {
        mbrl_status s = mbrl_model_delete(c, a.model, &e);
        if (s != MBRL_OK && e.http_status != 404) {
            print_error("delete", &e);
            goto done;
        }
    }
    if (mbrl_model_create(c, &spec, &e) != MBRL_OK) {
        print_error("create model", &e);
        if (e.http_status == 409)
            fprintf(stderr, "mbrl-sim: add --replace to start model '%s' afresh, or --model NAME\n", a.model);
        goto done;
    }

    /* What the daemon made of the planner settings (a preset's values). */
    static char method_buf[16], prop_buf[16];
    {
        mbrl_model_info info;
        if (mbrl_model_get(c, a.model, &info, &e) == MBRL_OK) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(info.json, "planner");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, "method");
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(p, "propagation");
            if (cJSON_IsString(m)) snprintf(method_buf, sizeof method_buf, "%s", m->valuestring);
            if (cJSON_IsString(pr)) snprintf(prop_buf, sizeof prop_buf, "%s", pr->valuestring);
            if (method_buf[0]) a.planner.method = method_buf;
            if (prop_buf[0]) a.planner.propagation = prop_buf;
            const char *keys[] = {"horizon", "population", "elites", "iterations", "particles"};
            int *dst[] = {&a.planner.horizon, &a.planner.population, &a.planner.elites,
                          &a.planner.iterations, &a.planner.particles};
            for (int i = 0; i < 5; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
                if (cJSON_IsNumber(v)) *dst[i] = v->valueint;
            }
            mbrl_model_info_free(&info);
        }
        if (!a.planner.method) a.planner.method = a.planner.preset;
        if (!a.planner.propagation) a.planner.propagation = "";
    }

    char csv_path[1100], pic_path[1100];
    if (mkdir_p(a.out_dir)) {
        fprintf(stderr, "mbrl-sim: cannot create %s: %s\n", a.out_dir, strerror(errno));
        goto done;
    }
    snprintf(csv_path, sizeof csv_path, "%s", a.csv ? a.csv : "");
    if (!a.csv) snprintf(csv_path, sizeof csv_path, "%s/%s.csv", a.out_dir, a.task);
    int gp = !a.no_plot && have_gnuplot();
    if (a.picture) snprintf(pic_path, sizeof pic_path, "%s", a.picture);
    else snprintf(pic_path, sizeof pic_path, "%s/%s.%s", a.out_dir, a.task, gp ? "png" : "svg");
    if (a.picture && strlen(a.picture) > 4 && !strcmp(a.picture + strlen(a.picture) - 4, ".svg")) gp = 0;
    csv = fopen(csv_path, "w");
    if (!csv) {
        fprintf(stderr, "mbrl-sim: cannot write %s: %s\n", csv_path, strerror(errno));
        goto done;
    }
    fprintf(csv, "episode,policy,steps,return,terminated,holdout_loss,plan_ms,step_ms,train_s,buffer,version,wall_s,"
                 "predicted_reward\n");
    if (a.trace && !(trace = fopen(a.trace, "w"))) {
        fprintf(stderr, "mbrl-sim: cannot write %s: %s\n", a.trace, strerror(errno));
        goto done;
    }

    if (!a.quiet) {
        const char *url = a.url ? a.url : getenv("MBRLD_URL") ? getenv("MBRLD_URL") : "http://127.0.0.1:8080";
        printf("mbrl-sim: %s through mbrld at %s, model '%s'\n", a.task, url, a.model);
        printf("  ensemble %d x (", a.members);
        for (int i = 0; i < a.n_hidden; i++) printf(i ? "x%d" : "%d", a.hidden[i]);
        printf(" %s), reward %s; planner %s H=%d N=%d elites %d iters %d P=%d %s\n",
               a.activation, spec.learn_reward ? "learned" : "declared", a.planner.method,
               a.planner.horizon, a.planner.population, a.planner.elites, a.planner.iterations,
               a.planner.particles, a.planner.propagation);
        printf("  %d episodes (%d random) of up to %d steps, seed %ld\n\n", a.episodes,
               a.random_episodes, T, a.seed);
        printf("%-8s %-7s %5s %10s %12s %10s %9s %8s\n", "episode", "policy", "steps", "return",
               "holdout", "plan ms", "train s", "buffer");
        fflush(stdout);
    }

    sim_rng rng;
    sim_rng_seed(&rng, (uint64_t)a.seed * 7919u + 17u);
    char session[80];
    snprintf(session, sizeof session, "sim-%ld", (long)getpid());
    mbrl_act_opts ao = {.session = session};
    double t_start = now_s(), holdout = NAN, random_sum = 0;
    long version = 0, buffer = 0;
    int n_rows = 0, n_mpc = 0, tty = !a.quiet && isatty(STDOUT_FILENO);
    sim_progress prog = {0, 0, (long)a.episodes * T, now_s()};
    double pic_random_mean = NAN;
    for (int ep = 1; ep <= a.episodes; ep++) {
        int mpc = ep > a.random_episodes;
        double ret = 0, plan_sum = 0, step_sum = 0, pred_sum = 0;
        int t = 0, term = 0;
        env->reset(env, &rng, eb.obs);
        for (t = 0; t < T && !term; t++) {
            float *o = eb.obs + (size_t)t * od, *u = eb.act + (size_t)t * ad;
            if (mpc) {
                mbrl_act_result r;
                double t0 = now_s();
                if (mbrl_act(c, a.model, o, od, &ao, &r, &e) != MBRL_OK) {
                    print_error("act", &e);
                    goto done;
                }
                step_sum += (now_s() - t0) * 1e3;
                if (r.act_dim != ad) {
                    fprintf(stderr, "mbrl-sim: act answered %d actions, want %d\n", r.act_dim, ad);
                    goto done;
                }
                memcpy(u, r.action, sizeof(float) * (size_t)ad);
                if (isfinite(r.plan_ms)) plan_sum += r.plan_ms;
                if (isfinite(r.predicted_return) && a.planner.horizon > 0)
                    pred_sum += r.predicted_return / a.planner.horizon;
                if (r.version > version) version = r.version;
            } else {
                for (int i = 0; i < ad; i++)
                    u[i] = env->act_low[i] + (float)sim_rng_uniform(&rng) * (env->act_high[i] - env->act_low[i]);
            }
            int tm;
            env->step(env, u, eb.next + (size_t)t * od, &eb.rew[t], &tm);
            term = tm;
            if (trace) {
                fprintf(trace, "%d,%d", ep, t);
                for (int i = 0; i < od; i++) fprintf(trace, ",%.6g", (double)o[i]);
                for (int i = 0; i < ad; i++) fprintf(trace, ",%.6g", (double)u[i]);
                fprintf(trace, ",%.6g,%d\n", (double)eb.rew[t], tm);
            }
            eb.term[t] = (unsigned char)tm;
            eb.trunc[t] = (unsigned char)(!tm && t == T - 1);
            ret += eb.rew[t];
            if (t + 1 < T) memcpy(eb.obs + (size_t)(t + 1) * od, eb.next + (size_t)t * od, sizeof(float) * (size_t)od);
            prog.total_left--;
            if (mpc) {
                if (prog.t_mpc0 == 0) prog.t_mpc0 = now_s() - step_sum * 1e-3;
                prog.mpc_steps++;
                double tnow = now_s();
                if (tty ? tnow - prog.last_print >= 0.5
                        : !a.quiet && a.progress > 0 && tnow - prog.last_print >= a.progress)
                    progress_line(&prog, tty, ep, a.episodes, t + 1, T, ret, plan_sum / (t + 1), tnow);
            }
        }
        prog.total_left -= T - t; /* an episode that ended early */
        if (tty && mpc) printf("\r%110s\r", "");
        mbrl_batch b = {od, ad, (size_t)t, eb.obs, eb.act, eb.rew, eb.next, eb.term, eb.trunc};
        long accepted = 0;
        if (mbrl_transitions_post(c, a.model, &b, &accepted, &buffer, &e) != MBRL_OK) {
            print_error("post transitions", &e);
            goto done;
        }
        double train_s = 0;
        if (!a.auto_train && ep >= a.random_episodes && ep < a.episodes) {
            if (train_round(c, a.model, &a, &holdout, &version, &train_s)) goto done;
        } else if (a.auto_train) {
            /* The daemon retrains on its own; before the first version
             * exists every act would answer a random action, so wait for
             * it once (later versions arrive while we act). */
            double t0 = now_s();
            for (;;) {
                mbrl_model_info info;
                if (mbrl_model_get(c, a.model, &info, &e) != MBRL_OK) {
                    print_error("model status", &e);
                    goto done;
                }
                if (isfinite(info.holdout_loss)) holdout = info.holdout_loss;
                if (info.version > version) version = info.version;
                mbrl_model_info_free(&info);
                if (version > 0 || ep < a.random_episodes || ep == a.episodes || buffer < a.auto_train)
                    break;
                if (now_s() - t0 > 600) {
                    fprintf(stderr, "mbrl-sim: the daemon published no model 10 min after %ld rows (auto-train every %ld)\n",
                            buffer, a.auto_train);
                    goto done;
                }
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
            train_s = now_s() - t0;
        }
        episode_row *r = &rows[n_rows++];
        *r = (episode_row){.episode = ep, .policy = mpc ? "mpc" : "random", .steps = t,
                           .terminated = term, .ret = ret, .holdout = holdout,
                           .plan_ms = mpc ? plan_sum / t : NAN, .step_ms = mpc ? step_sum / t : NAN,
                           .train_s = train_s, .buffer = buffer, .version = version,
                           .pred_reward = mpc && t > 0 ? pred_sum / t : NAN};
        r->wall_s = now_s() - t_start;
        write_csv_row(csv, r);
        if (!mpc) random_sum += ret;
        if (!a.quiet) {
            printf("%-8d %-7s %5d %10.2f %12.5g %10.1f %9.1f %8ld\n", ep, r->policy, t, ret, holdout,
                   r->plan_ms, train_s, buffer);
            fflush(stdout);
        }
        if (mpc) n_mpc++;
        /* the picture as it goes, so a long run can be watched */
        if (!a.no_plot && ep < a.episodes) {
            if (!mpc) pic_random_mean = random_sum / ep;
            draw_picture(&a, csv_path, pic_path, gp, pic_random_mean, rows, n_rows);
        }
        if (mpc && isfinite(a.stop_at) && n_mpc >= a.stop_window) {
            double s = 0;
            for (int i = n_rows - a.stop_window; i < n_rows; i++) s += rows[i].ret;
            if (s / a.stop_window >= a.stop_at) {
                if (!a.quiet) printf("mean return of the last %d episodes %.2f >= %.2f: done\n", a.stop_window, s / a.stop_window, a.stop_at);
                break;
            }
        }
    }
    fclose(csv);
    csv = NULL;
    if (!a.quiet) printf("\nlearning curve: %s (%.0f s in all)\n", csv_path, now_s() - t_start);
    if (!a.no_plot) {
        int ok = draw_picture(&a, csv_path, pic_path, gp,
                              a.random_episodes ? random_sum / a.random_episodes : NAN, rows, n_rows);
        if (ok == 0 && !a.quiet) printf("picture:        %s\n", pic_path);
        if (ok != 0) fprintf(stderr, "mbrl-sim: could not draw %s\n", pic_path);
    }
    if (a.delete_after && mbrl_model_delete(c, a.model, &e) != MBRL_OK) print_error("delete", &e);
    rc = 0;
done:
    if (csv) fclose(csv);
    if (trace) fclose(trace);
    mbrl_client_free(c);
    free(eb.obs);
    free(eb.act);
    free(eb.rew);
    free(eb.next);
    free(eb.term);
    free(eb.trunc);
    free(rows);
    sim_env_free(env);
    return rc;
}
