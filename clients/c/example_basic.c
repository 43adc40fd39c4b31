/* example_basic.c: the C client library in one page. Creates a small model,
 * posts a few transitions of a made-up 2-D system, trains it, asks for
 * actions and predictions, and deletes it.
 *   build/mbrl-example [URL]      (default $MBRLD_URL or http://127.0.0.1:8080)
 * Not for: real learning (see mbrl-sim.c). */
#include <stdio.h>
#include <stdlib.h>

#include "lib/mbrl_client.h"

static int report(const char *what, const mbrl_error *e) {
    char buf[800];
    fprintf(stderr, "%s: %s\n", what, mbrl_error_str(e, buf, sizeof buf));
    return 1;
}

int main(int argc, char **argv) {
    mbrl_client *c;
    mbrl_error e;
    mbrl_client_opts o = {.url = argc > 1 ? argv[1] : NULL};
    if (mbrl_client_new(&c, &o, &e) != MBRL_OK) return report("client", &e);

    /* a point mass on a line: obs (x, v), act (force); reward -x^2 */
    float low[1] = {-1}, high[1] = {1};
    mbrl_model_spec spec;
    mbrl_model_spec_init(&spec);
    spec.name = "example";
    spec.obs_dim = 2;
    spec.act_dim = 1;
    spec.act_low = low;
    spec.act_high = high;
    spec.members = 3;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 32;
    spec.learn_reward = 1;
    spec.planner = (mbrl_planner){.method = "cem", .horizon = 10, .population = 64, .elites = 8,
                                  .iterations = 2, .particles = 3};
    mbrl_model_delete(c, "example", NULL); /* left over from an earlier run? */
    if (mbrl_model_create(c, &spec, &e) != MBRL_OK) return report("create", &e);

    enum { N = 256 };
    static float obs[N][2], act[N][1], rew[N], next[N][2];
    float x = 0.5f, v = 0;
    for (int i = 0; i < N; i++) {
        float u = (float)((i * 37) % 19) / 9.0f - 1.0f;
        obs[i][0] = x, obs[i][1] = v, act[i][0] = u;
        v += 0.1f * u;
        x += 0.1f * v;
        next[i][0] = x, next[i][1] = v;
        rew[i] = -x * x;
    }
    mbrl_batch b = {2, 1, N, &obs[0][0], &act[0][0], rew, &next[0][0], NULL, NULL};
    long accepted, size;
    if (mbrl_transitions_post(c, "example", &b, &accepted, &size, &e) != MBRL_OK) return report("post", &e);
    printf("posted %ld transitions, buffer holds %ld\n", accepted, size);

    mbrl_job job;
    mbrl_train_opts to = {.max_epochs = 20, .patience = 5};
    if (mbrl_train_start(c, "example", &to, &job, &e) != MBRL_OK) return report("train", &e);
    char id[64];
    snprintf(id, sizeof id, "%s", job.id);
    mbrl_job_free(&job);
    if (mbrl_train_wait(c, "example", id, 100, 120000, &job, &e) != MBRL_OK) return report("wait", &e);
    printf("job %s %s after %d epochs, holdout loss %.4g\n", job.id, job.state, job.epochs, job.holdout_loss);
    mbrl_job_free(&job);

    float s[2] = {0.5f, 0};
    mbrl_act_opts ao = {.session = "example-robot"};
    for (int t = 0; t < 3; t++) {
        mbrl_act_result r;
        if (mbrl_act(c, "example", s, 2, &ao, &r, &e) != MBRL_OK) return report("act", &e);
        printf("act: u = %+.3f (%s, model v%ld, predicted return %.3f +- %.3f, %.1f ms)\n",
               r.action[0], r.source, r.version, r.predicted_return, r.return_std, r.plan_ms);
        s[1] += 0.1f * r.action[0];
        s[0] += 0.1f * s[1];
    }
    float plan[3] = {1, 0, -1}, mean[3 * 2], sd[3 * 2];
    if (mbrl_predict(c, "example", s, 2, plan, 3, 1, mean, sd, NULL, &e) != MBRL_OK) return report("predict", &e);
    printf("predict: after 3 steps x = %.3f +- %.3f\n", mean[4], sd[4]);

    if (mbrl_model_delete(c, "example", &e) != MBRL_OK) return report("delete", &e);
    mbrl_client_free(c);
    return 0;
}
