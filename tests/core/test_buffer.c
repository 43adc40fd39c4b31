/* test_buffer.c: the replay buffer (core/learn/buffer.c): argument checks,
 * wrap-around contents and global indices, sampling range and coverage,
 * bootstrap sets, holdout stability while the ring grows and wraps, deep copy.
 * Not for: training on the buffer (test_trainer.c, test_learning.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "learn/buffer.h"
#include "check_util.h"

enum { OD = 3, AD = 2 };

/* The row with global index g has recognisable contents in every field. */
static float row_obs(uint64_t g, int j) { return (float)g * 10.0f + (float)j; }
static float row_act(uint64_t g, int j) { return -(float)g - 0.25f * (float)j; }
static float row_rew(uint64_t g) { return 0.5f * (float)g; }
static float row_next(uint64_t g, int j) { return (float)g * 10.0f + (float)j + 1000.0f; }
static uint8_t row_term(uint64_t g) { return (uint8_t)(g % 3 == 0); }
static uint8_t row_trunc(uint64_t g) { return (uint8_t)(g % 5 == 1); }

/* Appends n rows with global indices total, total+1, ...; flags NULL when
 * with_flags is 0 (then they must read back as 0). */
static void append_rows(mb_buffer *b, size_t n, int with_flags) {
    float *obs = malloc(n * OD * sizeof(float)), *next = malloc(n * OD * sizeof(float));
    float *act = malloc(n * AD * sizeof(float)), *rew = malloc(n * sizeof(float));
    uint8_t *term = malloc(n), *trunc = malloc(n);
    ck_assert(obs && next && act && rew && term && trunc);
    for (size_t i = 0; i < n; i++) {
        uint64_t g = b->total + i;
        for (int j = 0; j < OD; j++) {
            obs[i * OD + j] = row_obs(g, j);
            next[i * OD + j] = row_next(g, j);
        }
        for (int j = 0; j < AD; j++) act[i * AD + j] = row_act(g, j);
        rew[i] = row_rew(g);
        term[i] = row_term(g);
        trunc[i] = row_trunc(g);
    }
    mb_buffer_append(b, n, obs, act, rew, next, with_flags ? term : NULL,
                     with_flags ? trunc : NULL);
    free(obs); free(next); free(act); free(rew); free(term); free(trunc);
}

/* Checks that the buffer holds exactly the newest min(total, capacity) rows,
 * oldest first, with the right contents and global indices. flags_from: the
 * first global index appended with flags (rows before it carry zeros). */
static void check_contents(const mb_buffer *b, uint64_t no_flags_lo, uint64_t no_flags_hi) {
    size_t want_size = b->total < b->capacity ? (size_t)b->total : b->capacity;
    ck_assert_uint_eq(b->size, want_size);
    ck_assert_uint_eq(b->head, (size_t)(b->total % b->capacity));
    for (size_t i = 0; i < b->size; i++) {
        size_t slot = mb_buffer_slot(b, i);
        ck_assert_uint_lt(slot, b->capacity);
        uint64_t g = b->total - b->size + i;
        ck_assert_msg(mb_buffer_global_index(b, slot) == g, "global index of slot %zu", slot);
        for (int j = 0; j < OD; j++) {
            ck_assert_msg(b->obs[slot * OD + j] == row_obs(g, j), "obs of row %llu",
                          (unsigned long long)g);
            ck_assert_msg(b->next_obs[slot * OD + j] == row_next(g, j), "next_obs of row %llu",
                          (unsigned long long)g);
        }
        for (int j = 0; j < AD; j++)
            ck_assert_msg(b->act[slot * AD + j] == row_act(g, j), "act of row %llu",
                          (unsigned long long)g);
        ck_assert(b->rew[slot] == row_rew(g));
        int flagged = !(g >= no_flags_lo && g < no_flags_hi);
        ck_assert_uint_eq(b->terminated[slot], flagged ? row_term(g) : 0);
        ck_assert_uint_eq(b->truncated[slot], flagged ? row_trunc(g) : 0);
    }
}

START_TEST(test_init_rejects_bad_arguments) {
    mb_buffer b;
    char err[128];
    ck_assert_int_eq(mb_buffer_init(&b, 0, 1, 10, 0.1f, 1, err, sizeof err), MB_ERANGE);
    ck_assert_int_eq(mb_buffer_init(&b, 1, MB_MAX_ACT_DIM + 1, 10, 0.1f, 1, err, sizeof err), MB_ERANGE);
    ck_assert_int_eq(mb_buffer_init(&b, 1, 1, 0, 0.1f, 1, err, sizeof err), MB_ERANGE);
    ck_assert_int_eq(mb_buffer_init(&b, 1, 1, (size_t)MB_MAX_BUFFER_CAPACITY + 1, 0.1f, 1, err,
                                    sizeof err), MB_ERANGE);
    ck_assert_int_eq(mb_buffer_init(&b, 1, 1, 10, 0.95f, 1, err, sizeof err), MB_ERANGE);
    ck_assert_int_eq(mb_buffer_init(&b, 1, 1, 10, -0.1f, 1, err, sizeof err), MB_ERANGE);
    ck_assert_int_eq(mb_buffer_init(&b, 1, 1, 10, NAN, 1, err, sizeof err), MB_ERANGE);
    ck_assert_msg(strstr(err, "holdout") != NULL, "message names the field: %s", err);
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 10, 0.1f, 1, err, sizeof err), MB_OK);
    ck_assert_uint_eq(b.size, 0);
    ck_assert_uint_eq(b.total, 0);
    mb_buffer_free(&b);
    mb_buffer_free(&b); /* idempotent */
}
END_TEST

START_TEST(test_wraparound_contents_and_order) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 7, 0.0f, 1, NULL, 0), MB_OK);
    /* Batches that start and end everywhere in the ring, including one larger
     * than the capacity and an empty one; several full wraps. */
    static const size_t batches[] = {3, 5, 1, 0, 7, 10, 4, 6, 2, 13, 1, 1, 1, 8};
    uint64_t nf_lo = 0, nf_hi = 0;
    for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
        int with_flags = (k % 4 != 2);
        if (!with_flags) { nf_lo = b.total; nf_hi = b.total + batches[k]; }
        append_rows(&b, batches[k], with_flags);
        check_contents(&b, nf_lo, nf_hi);
    }
    ck_assert_uint_eq(b.total, 62);
    ck_assert_uint_eq(b.size, 7);
    /* The newest row sits right before head, the oldest at head. */
    ck_assert_uint_eq(mb_buffer_global_index(&b, (b.head + 6) % 7), 61);
    ck_assert_uint_eq(mb_buffer_global_index(&b, b.head), 55);
    mb_buffer_free(&b);
}
END_TEST

START_TEST(test_sampling_in_range_and_uniform) {
    mb_rng rng;
    mb_rng_seed(&rng, 42);
    mb_buffer b;
    enum { CAP = 20, M = 40000 };
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, CAP, 0.0f, 1, NULL, 0), MB_OK);
    size_t *out = malloc(M * sizeof(size_t));
    ck_assert_ptr_nonnull(out);
    /* Partly full: only slots 0..12 hold rows; then wrapped (all slots held,
     * oldest not at slot 0). */
    for (int phase = 0; phase < 2; phase++) {
        append_rows(&b, phase == 0 ? 13 : 31, 1);
        mb_buffer_sample(&b, out, M, &rng);
        unsigned counts[CAP] = {0};
        for (size_t i = 0; i < M; i++) {
            ck_assert_uint_lt(out[i], CAP);
            uint64_t g = mb_buffer_global_index(&b, out[i]);
            ck_assert_msg(g < b.total && g >= b.total - b.size, "sampled slot %zu not held",
                          out[i]);
            counts[out[i]]++;
        }
        /* Each held slot expects M/size draws; binomial std <= sqrt(M/size)
         * ~ 55 for size 13: a 25% band is > 8 sigma wide. */
        double want = (double)M / (double)b.size;
        for (size_t i = 0; i < b.size; i++) {
            size_t slot = mb_buffer_slot(&b, i);
            ck_assert_msg(fabs(counts[slot] - want) < 0.25 * want, "slot %zu drawn %u times, want ~%.0f",
                          slot, counts[slot], want);
        }
    }
    free(out);
    mb_buffer_free(&b);
}
END_TEST

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

START_TEST(test_bootstrap_sets) {
    enum { N = 2000 };
    size_t *src = malloc(N * sizeof(size_t)), *a = malloc(N * sizeof(size_t));
    size_t *bb = malloc(N * sizeof(size_t)), *a2 = malloc(N * sizeof(size_t));
    ck_assert(src && a && bb && a2);
    /* Source values are sparse (3i + 7) so "in range" means "drawn from src". */
    for (size_t i = 0; i < N; i++) src[i] = 3 * i + 7;
    mb_rng root, r0, r1, r0b;
    mb_rng_seed(&root, 9);
    mb_rng_split(&root, 0, &r0);
    mb_rng_split(&root, 1, &r1);
    mb_rng_split(&root, 0, &r0b);
    mb_buffer_bootstrap(src, N, a, N, &r0);
    mb_buffer_bootstrap(src, N, bb, N, &r1);
    mb_buffer_bootstrap(src, N, a2, N, &r0b);
    ck_assert_msg(memcmp(a, a2, N * sizeof(size_t)) == 0, "same member seed, same set");
    size_t differ = 0;
    for (size_t i = 0; i < N; i++) {
        ck_assert_msg(a[i] >= 7 && (a[i] - 7) % 3 == 0 && (a[i] - 7) / 3 < N,
                      "bootstrap draw %zu not from the source", a[i]);
        differ += a[i] != bb[i];
    }
    /* Two independent sets agree at a position with probability 1/N. */
    ck_assert_msg(differ > N * 9 / 10, "member sets differ at only %zu of %d positions", differ, N);
    /* With replacement: the expected fraction of distinct values is
     * 1 - (1 - 1/N)^N ~ 0.632, std ~ 0.008 at N = 2000; [0.6, 0.665] is a
     * 4-sigma band, and a draw without replacement would give 1.0. */
    qsort(a, N, sizeof(size_t), cmp_size);
    size_t distinct = 1;
    for (size_t i = 1; i < N; i++) distinct += a[i] != a[i - 1];
    double frac = (double)distinct / N;
    ck_assert_msg(frac > 0.6 && frac < 0.665, "distinct fraction %.3f", frac);
    /* A smaller m: only m entries written. */
    size_t guard[6] = {0, 0, 0, 0, 0, 12345};
    mb_buffer_bootstrap(src, N, guard, 5, &r0);
    ck_assert_uint_eq(guard[5], 12345);
    free(src); free(a); free(bb); free(a2);
}
END_TEST

START_TEST(test_holdout_stable_while_growing) {
    enum { CAP = 50, MAXG = 400 };
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, CAP, 0.2f, 77, NULL, 0), MB_OK);
    /* decision[g]: -1 unseen, else the holdout bit the first time row g was
     * held; it must never change afterwards, through growth and wraps. */
    int decision[MAXG];
    for (int g = 0; g < MAXG; g++) decision[g] = -1;
    size_t train[CAP], hold[CAP], nt, nh;
    static const size_t batches[] = {1, 4, 9, 20, 3, 50, 17, 60, 1, 33, 80, 40, 45, 37};
    for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
        append_rows(&b, batches[k], 1);
        ck_assert_uint_le(b.total, MAXG);
        mb_buffer_split(&b, train, &nt, hold, &nh);
        ck_assert_uint_eq(nt + nh, b.size);
        /* Both lists are oldest first and partition the held slots. */
        uint64_t prev = 0;
        int first = 1;
        for (size_t i = 0, ti = 0, hi = 0; i < b.size; i++) {
            size_t slot = mb_buffer_slot(&b, i);
            uint64_t g = mb_buffer_global_index(&b, slot);
            int is_h = (hi < nh && hold[hi] == slot);
            if (is_h) hi++;
            else {
                ck_assert_msg(ti < nt && train[ti] == slot, "slot %zu in neither list", slot);
                ti++;
            }
            ck_assert_int_eq(is_h, mb_buffer_is_holdout(&b, g));
            if (decision[g] < 0) decision[g] = is_h;
            ck_assert_msg(decision[g] == is_h, "holdout bit of row %llu changed",
                          (unsigned long long)g);
            ck_assert(first || g > prev);
            prev = g;
            first = 0;
        }
    }
    ck_assert_uint_eq(b.total, MAXG);
    mb_buffer_free(&b);

    /* The fraction matches the ratio: over 100,000 indices the binomial std
     * is sqrt(0.2 * 0.8 / 1e5) = 0.0013; 0.01 is a ~8-sigma band. Another
     * seed gives a different split; ratio 0 holds nothing out. */
    mb_buffer b2, b3;
    ck_assert_int_eq(mb_buffer_init(&b, 1, 1, 1, 0.2f, 77, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_buffer_init(&b2, 1, 1, 1, 0.2f, 78, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_buffer_init(&b3, 1, 1, 1, 0.0f, 77, NULL, 0), MB_OK);
    size_t held = 0, differ = 0, held0 = 0;
    for (uint64_t g = 0; g < 100000; g++) {
        held += (size_t)mb_buffer_is_holdout(&b, g);
        differ += mb_buffer_is_holdout(&b, g) != mb_buffer_is_holdout(&b2, g);
        held0 += (size_t)mb_buffer_is_holdout(&b3, g);
    }
    MB_ASSERT_CLOSE("holdout fraction", held / 1e5, 0.2, 0.01);
    /* independent splits disagree on 2 * 0.2 * 0.8 = 32% of rows */
    MB_ASSERT_CLOSE("seed-to-seed disagreement", differ / 1e5, 0.32, 0.02);
    ck_assert_uint_eq(held0, 0);
    mb_buffer_free(&b);
    mb_buffer_free(&b2);
    mb_buffer_free(&b3);
}
END_TEST

START_TEST(test_copy_is_deep) {
    mb_buffer a, c;
    char err[128];
    ck_assert_int_eq(mb_buffer_init(&a, OD, AD, 11, 0.3f, 5, NULL, 0), MB_OK);
    append_rows(&a, 8, 1);
    append_rows(&a, 9, 1); /* wrapped: oldest row not in slot 0 */
    ck_assert_int_eq(mb_buffer_copy(&c, &a, err, sizeof err), MB_OK);
    ck_assert_ptr_ne(c.obs, a.obs);
    ck_assert_ptr_ne(c.terminated, a.terminated);
    ck_assert_uint_eq(c.size, a.size);
    ck_assert_uint_eq(c.head, a.head);
    ck_assert_uint_eq(c.total, a.total);
    ck_assert_uint_eq(c.holdout_seed, a.holdout_seed);
    ck_assert(c.holdout_ratio == a.holdout_ratio);
    check_contents(&c, 0, 0);
    /* Writing either one leaves the other alone. */
    append_rows(&a, 5, 1);
    check_contents(&c, 0, 0);
    ck_assert_uint_eq(c.total, 17);
    c.obs[0] = -1e9f;
    c.rew[3] = -1e9f;
    check_contents(&a, 0, 0);
    mb_buffer_free(&c);
    /* A partly filled copy holds the same rows and splits identically. */
    mb_buffer p, q;
    ck_assert_int_eq(mb_buffer_init(&p, OD, AD, 100, 0.3f, 5, NULL, 0), MB_OK);
    append_rows(&p, 30, 1);
    ck_assert_int_eq(mb_buffer_copy(&q, &p, err, sizeof err), MB_OK);
    check_contents(&q, 0, 0);
    size_t t1[100], h1[100], t2[100], h2[100], nt1, nh1, nt2, nh2;
    mb_buffer_split(&p, t1, &nt1, h1, &nh1);
    mb_buffer_split(&q, t2, &nt2, h2, &nh2);
    ck_assert_uint_eq(nt1, nt2);
    ck_assert_uint_eq(nh1, nh2);
    ck_assert(memcmp(h1, h2, nh1 * sizeof(size_t)) == 0);
    mb_buffer_free(&p);
    mb_buffer_free(&q);
    mb_buffer_free(&a);
    /* An uninitialised source is an error, not a crash. */
    mb_buffer z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(mb_buffer_copy(&c, &z, err, sizeof err), MB_EINVAL);
}
END_TEST

static Suite *buffer_suite(void) {
    Suite *s = suite_create("buffer");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_init_rejects_bad_arguments);
    tcase_add_test(tc, test_wraparound_contents_and_order);
    tcase_add_test(tc, test_sampling_in_range_and_uniform);
    tcase_add_test(tc, test_bootstrap_sets);
    tcase_add_test(tc, test_holdout_stable_while_growing);
    tcase_add_test(tc, test_copy_is_deep);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(buffer_suite()); }
