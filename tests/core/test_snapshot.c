/* test_snapshot.c: the snapshot / export file (core/store/snapshot.c).
 *
 * Round trips through a file, memory and the pull-style encoder in odd
 * chunk sizes: the restored ensemble (spec, parameter block, normaliser,
 * elites, holdout losses), Adam state and wrapped replay buffer are
 * bit-identical (memcmp) and mb_ensemble_forward gives identical outputs;
 * optional sections; every truncation and every single flipped byte is
 * MB_ECORRUPT; trailing bytes, a future version, inconsistent sources and
 * the allocation cap are refused; a snapshot directory keeps the newest two
 * and falls back past a damaged newest file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "tmpdir.h"
#include "base/crc32c.h"
#include "base/fsutil.h"
#include "base/rng.h"
#include "store/snapshot.h"

static char err[1024];

static void setup(void) { tmpdir_setup("snap"); }
static void teardown(void) { tmpdir_remove(); }

/* A trained-looking model: small ensemble with non-trivial normaliser,
 * elites and losses; Adam after 17 steps; a buffer that has wrapped. */
typedef struct {
    mb_ensemble ens;
    mb_adam adam;
    mb_buffer buf;
    const char *meta;
} model;

static void model_init(model *m, size_t capacity, size_t rows) {
    mb_ensemble_spec sp;
    mb_ensemble_spec_default(&sp);
    sp.members = 3;
    sp.obs_dim = 4;
    sp.act_dim = 2;
    sp.n_hidden = 2;
    sp.hidden[0] = sp.hidden[1] = 16;
    ck_assert_int_eq(mb_ensemble_init(&m->ens, &sp, 7, err, sizeof err), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 99);
    int in = mb_ensemble_in_dim(&sp), out = mb_ensemble_out_dim(&sp);
    mb_rng_fill_normal(&r, m->ens.params, m->ens.n_params, 0.0f, 0.3f);
    mb_rng_fill_normal(&r, m->ens.in_mean, (size_t)in, 0.0f, 2.0f);
    mb_rng_fill_uniform(&r, m->ens.in_std, (size_t)in, 0.5f, 3.0f);
    mb_rng_fill_normal(&r, m->ens.out_mean, (size_t)out, 0.0f, 2.0f);
    mb_rng_fill_uniform(&r, m->ens.out_std, (size_t)out, 0.5f, 3.0f);
    m->ens.n_elites = 2;
    m->ens.elites[0] = 2;
    m->ens.elites[1] = 0;
    for (int i = 0; i < 3; i++) m->ens.holdout_loss[i] = 0.125f * (float)(i + 1);
    ck_assert_int_eq(mb_adam_init(&m->adam, m->ens.n_params, 1e-3f, err, sizeof err), MB_OK);
    m->adam.t = 17;
    mb_rng_fill_normal(&r, m->adam.m, m->adam.n, 0.0f, 1e-3f);
    mb_rng_fill_uniform(&r, m->adam.v, m->adam.n, 0.0f, 1e-5f);
    ck_assert_int_eq(mb_buffer_init(&m->buf, 4, 2, capacity, 0.2f, 1234, err, sizeof err), MB_OK);
    for (size_t i = 0; i < rows; i++) {
        float o[4], a[2], rw, n[4];
        uint8_t te = (uint8_t)(i % 7 == 0), tr = (uint8_t)(i % 5 == 0);
        mb_rng_fill_normal(&r, o, 4, 0, 1);
        mb_rng_fill_uniform(&r, a, 2, -1, 1);
        mb_rng_fill_normal(&r, &rw, 1, 0, 1);
        mb_rng_fill_normal(&r, n, 4, 0, 1);
        mb_buffer_append(&m->buf, 1, o, a, &rw, n, &te, &tr);
    }
    m->meta = "{\"name\": \"pendulum\", \"obs_dim\": 4}";
}

static void model_free(model *m) {
    mb_ensemble_free(&m->ens);
    mb_adam_free(&m->adam);
    mb_buffer_free(&m->buf);
}

static mb_snapshot_src model_src(const model *m, int with_buffer) {
    mb_snapshot_src s = {.meta = m->meta, .meta_len = strlen(m->meta), .ens = &m->ens, .adam = &m->adam,
                         .buf = with_buffer ? &m->buf : NULL, .log_seq = 4242};
    return s;
}

static void check_same_ensemble(const mb_ensemble *a, const mb_ensemble *b) {
    ck_assert_int_eq(memcmp(&a->spec, &b->spec, sizeof a->spec), 0);
    ck_assert_uint_eq(a->n_params, b->n_params);
    ck_assert_msg(memcmp(a->params, b->params, a->n_params * 4) == 0, "params differ");
    int in = mb_ensemble_in_dim(&a->spec), out = mb_ensemble_out_dim(&a->spec);
    ck_assert_msg(memcmp(a->in_mean, b->in_mean, (size_t)in * 4) == 0, "in_mean differs");
    ck_assert_msg(memcmp(a->in_std, b->in_std, (size_t)in * 4) == 0, "in_std differs");
    ck_assert_msg(memcmp(a->out_mean, b->out_mean, (size_t)out * 4) == 0, "out_mean differs");
    ck_assert_msg(memcmp(a->out_std, b->out_std, (size_t)out * 4) == 0, "out_std differs");
    ck_assert_int_eq(a->n_elites, b->n_elites);
    ck_assert_int_eq(memcmp(a->elites, b->elites, sizeof a->elites), 0);
    ck_assert_int_eq(memcmp(a->holdout_loss, b->holdout_loss, sizeof a->holdout_loss), 0);
    /* Same predictions, bit for bit. */
    size_t n = 33;
    int k = a->spec.members;
    float *x = malloc((size_t)k * n * (size_t)in * 4);
    float *m1 = malloc((size_t)k * n * (size_t)out * 4), *s1 = malloc((size_t)k * n * (size_t)out * 4);
    float *m2 = malloc((size_t)k * n * (size_t)out * 4), *s2 = malloc((size_t)k * n * (size_t)out * 4);
    mb_rng r;
    mb_rng_seed(&r, 5);
    mb_rng_fill_normal(&r, x, (size_t)k * n * (size_t)in, 0, 1);
    mb_ens_ws *ws = mb_ens_ws_new(&a->spec, n);
    ck_assert_ptr_nonnull(ws);
    mb_ensemble_forward(a, ws, NULL, NULL, k, x, n, m1, s1);
    mb_ensemble_forward(b, ws, NULL, NULL, k, x, n, m2, s2);
    ck_assert_msg(memcmp(m1, m2, (size_t)k * n * (size_t)out * 4) == 0, "forward means differ");
    ck_assert_msg(memcmp(s1, s2, (size_t)k * n * (size_t)out * 4) == 0, "forward stds differ");
    mb_ens_ws_free(ws);
    free(x), free(m1), free(s1), free(m2), free(s2);
}

static void check_same_adam(const mb_adam *a, const mb_adam *b) {
    ck_assert(a->lr == b->lr && a->beta1 == b->beta1 && a->beta2 == b->beta2 && a->eps == b->eps);
    ck_assert_int_eq(a->t, b->t);
    ck_assert_uint_eq(a->n, b->n);
    ck_assert_msg(memcmp(a->m, b->m, a->n * 4) == 0, "adam m differs");
    ck_assert_msg(memcmp(a->v, b->v, a->n * 4) == 0, "adam v differs");
}

static void check_same_buffer(const mb_buffer *a, const mb_buffer *b) {
    ck_assert_int_eq(a->obs_dim, b->obs_dim);
    ck_assert_int_eq(a->act_dim, b->act_dim);
    ck_assert_uint_eq(a->capacity, b->capacity);
    ck_assert_uint_eq(a->size, b->size);
    ck_assert_uint_eq(a->head, b->head);
    ck_assert_uint_eq(a->total, b->total);
    ck_assert(a->holdout_ratio == b->holdout_ratio);
    ck_assert_uint_eq(a->holdout_seed, b->holdout_seed);
    size_t c = a->capacity, od = (size_t)a->obs_dim, ad = (size_t)a->act_dim;
    /* Whole arrays: held slots equal, never-written slots zero in both. */
    ck_assert_msg(memcmp(a->obs, b->obs, c * od * 4) == 0, "buffer obs differ");
    ck_assert_msg(memcmp(a->act, b->act, c * ad * 4) == 0, "buffer act differ");
    ck_assert_msg(memcmp(a->rew, b->rew, c * 4) == 0, "buffer rew differ");
    ck_assert_msg(memcmp(a->next_obs, b->next_obs, c * od * 4) == 0, "buffer next_obs differ");
    ck_assert_msg(memcmp(a->terminated, b->terminated, c) == 0, "buffer terminated differ");
    ck_assert_msg(memcmp(a->truncated, b->truncated, c) == 0, "buffer truncated differ");
    for (size_t i = 0; i < a->size; i++) ck_assert_uint_eq(mb_buffer_slot(a, i), mb_buffer_slot(b, i));
}

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_round_trip_file_bit_identical) {
    model m;
    model_init(&m, 50, 73); /* wrapped: rows 23..72 held, head 23 */
    char path[512];
    snprintf(path, sizeof path, "%s/s.mbs", tmpdir);
    mb_snapshot_src src = model_src(&m, 1);
    ck_assert_int_eq(mb_snapshot_write_file(path, &src, err, sizeof err), MB_OK);
    mb_snapshot s;
    ck_assert_msg(mb_snapshot_read_file(path, NULL, &s, err, sizeof err) == MB_OK, "read: %s", err);
    ck_assert_uint_eq(s.version, MB_SNAPSHOT_VERSION);
    ck_assert_uint_eq(s.log_seq, 4242);
    ck_assert_uint_eq(s.meta_len, strlen(m.meta));
    ck_assert_str_eq(s.meta, m.meta);
    ck_assert(s.has_ensemble && s.has_adam && s.has_buffer && !s.buffer_skipped);
    check_same_ensemble(&m.ens, &s.ens);
    check_same_adam(&m.adam, &s.adam);
    check_same_buffer(&m.buf, &s.buf);
    mb_snapshot_free(&s);
    /* Not wrapped, partly filled. */
    model m2;
    model_init(&m2, 50, 20);
    src = model_src(&m2, 1);
    ck_assert_int_eq(mb_snapshot_write_file(path, &src, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_snapshot_read_file(path, NULL, &s, err, sizeof err), MB_OK);
    check_same_buffer(&m2.buf, &s.buf);
    mb_snapshot_free(&s);
    model_free(&m2);
    model_free(&m);
}
END_TEST

START_TEST(test_round_trip_memory_and_pull_encoder) {
    model m;
    model_init(&m, 64, 100);
    mb_snapshot_src src = model_src(&m, 1);
    void *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    /* The pull encoder, in odd chunk sizes and from odd positions, gives the
     * same bytes. */
    mb_snapshot_enc *e;
    ck_assert_int_eq(mb_snapshot_enc_new(&e, &src, err, sizeof err), MB_OK);
    ck_assert_uint_eq(mb_snapshot_enc_size(e), n);
    unsigned char *again = malloc(n);
    size_t chunks[4] = {1, 7, 4096, 100000};
    for (int c = 0; c < 4; c++) {
        memset(again, 0xAB, n);
        uint64_t pos = 0;
        size_t got;
        while ((got = mb_snapshot_enc_read(e, pos, again + pos, chunks[c] < n - pos ? chunks[c] : n - pos)) > 0)
            pos += got;
        ck_assert_uint_eq(pos, n);
        ck_assert_msg(memcmp(again, data, n) == 0, "pull encoder with chunk %zu differs", chunks[c]);
    }
    ck_assert_uint_eq(mb_snapshot_enc_read(e, n, again, 10), 0);
    mb_snapshot_enc_free(e);
    free(again);

    mb_snapshot s;
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_OK);
    check_same_ensemble(&m.ens, &s.ens);
    check_same_adam(&m.adam, &s.adam);
    check_same_buffer(&m.buf, &s.buf);
    mb_snapshot_free(&s);
    /* Import without the buffer: verified, not kept. */
    mb_snapshot_opts o = {.skip_buffer = 1};
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, &o, &s, err, sizeof err), MB_OK);
    ck_assert(s.has_ensemble && !s.has_buffer && s.buffer_skipped);
    mb_snapshot_free(&s);
    free(data);
    model_free(&m);
}
END_TEST

START_TEST(test_optional_sections) {
    model m;
    model_init(&m, 10, 3);
    mb_snapshot_src src = {.meta = NULL};
    void *data;
    size_t n;
    mb_snapshot s;
    /* Meta only, empty. */
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_OK);
    ck_assert(!s.has_ensemble && !s.has_adam && !s.has_buffer);
    ck_assert_uint_eq(s.meta_len, 0);
    ck_assert_str_eq(s.meta, "");
    mb_snapshot_free(&s);
    free(data);
    /* Export without optimiser and buffer. */
    src = (mb_snapshot_src){.meta = m.meta, .meta_len = strlen(m.meta), .ens = &m.ens, .log_seq = 9};
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_OK);
    ck_assert(s.has_ensemble && !s.has_adam && !s.has_buffer);
    check_same_ensemble(&m.ens, &s.ens);
    mb_snapshot_free(&s);
    free(data);
    /* Buffer only. */
    src = (mb_snapshot_src){.buf = &m.buf, .log_seq = 9};
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_OK);
    ck_assert(!s.has_ensemble && s.has_buffer);
    check_same_buffer(&m.buf, &s.buf);
    mb_snapshot_free(&s);
    free(data);
    model_free(&m);
}
END_TEST

START_TEST(test_inconsistent_source_refused) {
    model m;
    model_init(&m, 10, 3);
    mb_adam small;
    ck_assert_int_eq(mb_adam_init(&small, 10, 1e-3f, err, sizeof err), MB_OK);
    mb_snapshot_src src = {.ens = &m.ens, .adam = &small};
    void *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "optimiser"));
    mb_buffer other;
    ck_assert_int_eq(mb_buffer_init(&other, 5, 2, 10, 0.1f, 1, err, sizeof err), MB_OK);
    src = (mb_snapshot_src){.ens = &m.ens, .buf = &other};
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_EINVAL);
    mb_buffer_free(&other);
    mb_adam_free(&small);
    model_free(&m);
}
END_TEST

/* ---- kept versions (VERS) ------------------------------------------------ */

/* Two older versions beside the current one: they come back bit for bit,
 * in order, with their info blobs; a file without them reads n_kept 0; every
 * cut and every flipped byte of the section is corrupt; the allocation cap
 * counts them. */
START_TEST(test_kept_versions) {
    model m;
    model_init(&m, 8, 5);
    mb_ensemble old[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(mb_ensemble_copy(&old[i], &m.ens, err, sizeof err), MB_OK);
        for (size_t k = 0; k < old[i].n_params; k++) old[i].params[k] += 0.5f * (float)(i + 1);
        old[i].holdout_loss[0] = 0.25f * (float)(i + 1);
    }
    const char *info[2] = {"{\"train_loss\": [1, 2, 3]}", ""};
    mb_snapshot_kept_src kept[2] = {{3, info[0], strlen(info[0]), &old[0]}, {5, NULL, 0, &old[1]}};
    mb_snapshot_src src = model_src(&m, 1);
    src.kept = kept;
    src.n_kept = 2;
    unsigned char *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, (void **)&data, &n, err, sizeof err), MB_OK);
    mb_snapshot s;
    ck_assert_msg(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_int_eq(s.n_kept, 2);
    ck_assert_uint_eq(s.kept[0].number, 3);
    ck_assert_uint_eq(s.kept[1].number, 5);
    ck_assert_str_eq(s.kept[0].info, info[0]);
    ck_assert_uint_eq(s.kept[1].info_len, 0);
    ck_assert_str_eq(s.kept[1].info, "");
    check_same_ensemble(&s.kept[0].ens, &old[0]);
    check_same_ensemble(&s.kept[1].ens, &old[1]);
    check_same_ensemble(&s.ens, &m.ens);
    check_same_buffer(&s.buf, &m.buf);
    mb_snapshot_free(&s);

    /* the same state without kept versions: an older file's layout */
    mb_snapshot_src plain = model_src(&m, 1);
    void *pd;
    size_t pn;
    ck_assert_int_eq(mb_snapshot_encode_mem(&plain, &pd, &pn, err, sizeof err), MB_OK);
    ck_assert_uint_lt(pn, n);
    ck_assert_int_eq(memcmp(pd, data, 12), 0); /* same magic and format version */
    ck_assert_int_eq(mb_snapshot_decode_mem(pd, pn, NULL, &s, err, sizeof err), MB_OK);
    ck_assert_int_eq(s.n_kept, 0);
    ck_assert_ptr_null(s.kept);
    mb_snapshot_free(&s);
    /* the cap counts the kept ensembles: room for the current state only */
    size_t one = 4 * (m.ens.n_params + 2 * 6 + 2 * 5);
    mb_snapshot_opts o = {0, 8 * (4 * (2 * 4 + 2 + 1) + 2) + 8 * m.ens.n_params + one + one / 2};
    ck_assert_msg(mb_snapshot_decode_mem(pd, pn, &o, &s, err, sizeof err) == MB_OK, "%s", err);
    mb_snapshot_free(&s);
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, &o, &s, err, sizeof err), MB_ERANGE);
    free(pd);

    /* damage inside VERS (it starts where the plain file's END would) */
    size_t vers_at = pn - (16 + 12 + 4);
    size_t step = mb_test_sanitized() ? 13 : 3;
    for (size_t len = vers_at; len < n; len += step) {
        mb_status st = mb_snapshot_decode_mem(data, len, NULL, &s, err, sizeof err);
        ck_assert_msg(st == MB_ECORRUPT, "cut at %zu of %zu: %s", len, n, mb_status_name(st));
        ck_assert(s.n_kept == 0 && !s.kept && !s.has_ensemble);
    }
    for (size_t i = vers_at; i < n; i += step) {
        data[i] ^= 0x40;
        mb_status st = mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err);
        ck_assert_msg(st == MB_ECORRUPT, "flip at %zu of %zu: %s (%s)", i, n, mb_status_name(st), err);
        data[i] ^= 0x40;
    }
    /* more than the limit, or a kept version without an ensemble, is refused */
    src.n_kept = MB_SNAPSHOT_MAX_KEPT + 1;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &pd, &pn, err, sizeof err), MB_EINVAL);
    kept[1].ens = NULL;
    src.n_kept = 2;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &pd, &pn, err, sizeof err), MB_EINVAL);
    free(data);
    mb_ensemble_free(&old[0]);
    mb_ensemble_free(&old[1]);
    model_free(&m);
}
END_TEST

/* Kept versions of a model with a learned termination head: each comes
 * back with its own head (VERS part bit 1). Before, the kept ensembles were
 * written without it and the file was refused on reading ("another
 * ensemble shape"): a model with learn_termination and --keep-versions > 1
 * could not be recovered. */
START_TEST(test_kept_versions_with_termination_heads) {
    mb_ensemble_spec sp;
    mb_ensemble_spec_default(&sp);
    sp.members = 2;
    sp.obs_dim = 3;
    sp.act_dim = 1;
    sp.n_hidden = 1;
    sp.hidden[0] = 8;
    sp.learn_termination = 1;
    mb_ensemble cur, old[2];
    ck_assert_int_eq(mb_ensemble_init(&cur, &sp, 5, err, sizeof err), MB_OK);
    ck_assert_ptr_nonnull(cur.term.params);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(mb_ensemble_copy(&old[i], &cur, err, sizeof err), MB_OK);
        for (size_t k = 0; k < old[i].term.n_params; k++) old[i].term.params[k] += 0.25f * (float)(i + 1);
        for (size_t k = 0; k < old[i].n_params; k++) old[i].params[k] -= 0.5f * (float)(i + 1);
    }
    mb_snapshot_kept_src kept[2] = {{1, NULL, 0, &old[0]}, {2, "{}", 2, &old[1]}};
    mb_snapshot_src src = {.meta = "{}", .meta_len = 2, .ens = &cur, .kept = kept, .n_kept = 2};
    void *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    mb_snapshot s;
    ck_assert_msg(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_int_eq(s.n_kept, 2);
    const mb_ensemble *want[3] = {&cur, &old[0], &old[1]};
    const mb_ensemble *got[3] = {&s.ens, &s.kept[0].ens, &s.kept[1].ens};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(got[i]->spec.learn_termination, 1);
        ck_assert_ptr_nonnull(got[i]->term.params);
        ck_assert_uint_eq(got[i]->term.n_params, want[i]->term.n_params);
        ck_assert_msg(memcmp(got[i]->term.params, want[i]->term.params, want[i]->term.n_params * 4) == 0,
                      "termination head %d differs", i);
        ck_assert_msg(memcmp(got[i]->params, want[i]->params, want[i]->n_params * 4) == 0, "ensemble %d differs", i);
    }
    mb_snapshot_free(&s);
    /* every cut of the file is corrupt, never a partial read */
    for (size_t len = 0; len < n; len += mb_test_sanitized() ? 29 : 7) {
        mb_status st = mb_snapshot_decode_mem(data, len, NULL, &s, err, sizeof err);
        ck_assert_msg(st == MB_ECORRUPT, "cut at %zu of %zu: %s", len, n, mb_status_name(st));
    }
    free(data);
    for (int i = 0; i < 2; i++) mb_ensemble_free(&old[i]);
    mb_ensemble_free(&cur);
}
END_TEST

/* ---- damage ------------------------------------------------------------- */

START_TEST(test_every_truncation_is_corrupt) {
    model m;
    model_init(&m, 16, 20);
    mb_snapshot_src src = model_src(&m, 1);
    void *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    size_t step = mb_test_sanitized() ? 7 : 1;
    for (size_t len = 0; len < n; len += step) {
        mb_snapshot s;
        mb_status st = mb_snapshot_decode_mem(data, len, NULL, &s, err, sizeof err);
        ck_assert_msg(st == MB_ECORRUPT, "cut at %zu of %zu: status %s", len, n, mb_status_name(st));
        ck_assert(!s.has_ensemble && !s.meta); /* nothing leaks out */
    }
    /* A truncated file names itself. */
    char path[512];
    snprintf(path, sizeof path, "%s/t.mbs", tmpdir);
    ck_assert_int_eq(mb_fs_write_file_atomic(path, data, n - 5, err, sizeof err), MB_OK);
    mb_snapshot s;
    ck_assert_int_eq(mb_snapshot_read_file(path, NULL, &s, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    free(data);
    model_free(&m);
}
END_TEST

START_TEST(test_every_flipped_byte_is_corrupt) {
    model m;
    model_init(&m, 8, 11);
    mb_snapshot_src src = model_src(&m, 1);
    unsigned char *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, (void **)&data, &n, err, sizeof err), MB_OK);
    size_t step = mb_test_sanitized() ? 5 : 1;
    for (size_t i = 0; i < n; i += step) {
        data[i] ^= 0x10;
        mb_snapshot s;
        mb_status st = mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err);
        ck_assert_msg(st == MB_ECORRUPT, "flip at %zu of %zu: status %s (%s)", i, n, mb_status_name(st), err);
        data[i] ^= 0x10;
    }
    /* A flip inside the parameters is named as the ensemble's checksum. */
    size_t params_at = 32 + 16 + strlen(m.meta) + 4 + 16 + 100 + 40;
    data[params_at] ^= 1;
    mb_snapshot s;
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_ECORRUPT);
    ck_assert_msg(strstr(err, "ENSM") && strstr(err, "checksum"), "message: %s", err);
    data[params_at] ^= 1;
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_OK);
    mb_snapshot_free(&s);
    free(data);
    model_free(&m);
}
END_TEST

START_TEST(test_trailing_bytes_version_and_cap) {
    model m;
    model_init(&m, 1000, 10);
    mb_snapshot_src src = model_src(&m, 1);
    unsigned char *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, (void **)&data, &n, err, sizeof err), MB_OK);
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, data, n);
    longer[n] = 0;
    mb_snapshot s;
    ck_assert_int_eq(mb_snapshot_decode_mem(longer, n + 1, NULL, &s, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "after the end"));
    free(longer);
    /* A future version, with a valid header checksum, is refused by name. */
    data[8] = 2;
    uint32_t c = mb_crc32c(0, data, 28);
    for (int i = 0; i < 4; i++) data[28 + i] = (unsigned char)(c >> (8 * i));
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "version 2"));
    data[8] = 1;
    c = mb_crc32c(0, data, 28);
    for (int i = 0; i < 4; i++) data[28 + i] = (unsigned char)(c >> (8 * i));
    /* The allocation cap: ensemble + Adam need about 21 kB, the 1000-row
     * ring 46 kB more. */
    mb_snapshot_opts o = {.max_alloc = 40000};
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, &o, &s, err, sizeof err), MB_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "replay buffer"));
    o.skip_buffer = 1;
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, &o, &s, err, sizeof err), MB_OK);
    mb_snapshot_free(&s);
    ck_assert_int_eq(mb_snapshot_decode_mem("garbage!", 8, NULL, &s, err, sizeof err), MB_ECORRUPT);
    free(data);
    model_free(&m);
}
END_TEST

/* ---- directory ---------------------------------------------------------- */

static int count_snapshots(const char *dir) {
    int n = 0;
    char p[600];
    for (uint64_t seq = 0; seq <= 100; seq++) {
        snprintf(p, sizeof p, "%s/snap-%020llu.mbs", dir, (unsigned long long)seq);
        n += access(p, F_OK) == 0;
    }
    return n;
}

START_TEST(test_directory_keep_two_and_fallback) {
    model m;
    model_init(&m, 10, 5);
    char dir[512], path[600], warn[1024];
    snprintf(dir, sizeof dir, "%s/models/p/snap", tmpdir);
    mb_snapshot s;
    ck_assert_int_eq(mb_snapshot_load_latest(dir, NULL, &s, NULL, 0, warn, sizeof warn, err, sizeof err), MB_ENOTFOUND);
    uint64_t oldest = 0;
    for (uint64_t seq = 10; seq <= 30; seq += 10) {
        mb_snapshot_src src = model_src(&m, 1);
        src.log_seq = seq;
        m.ens.holdout_loss[0] = (float)seq; /* tell the versions apart */
        ck_assert_int_eq(mb_snapshot_save(dir, &src, 2, path, sizeof path, &oldest, err, sizeof err), MB_OK);
    }
    ck_assert_int_eq(count_snapshots(dir), 2);
    ck_assert_uint_eq(oldest, 20);
    ck_assert_ptr_nonnull(strstr(path, "snap-00000000000000000030.mbs"));
    ck_assert_int_eq(mb_snapshot_load_latest(dir, NULL, &s, path, sizeof path, warn, sizeof warn, err, sizeof err), MB_OK);
    ck_assert_uint_eq(s.log_seq, 30);
    ck_assert(s.ens.holdout_loss[0] == 30.0f);
    ck_assert_str_eq(warn, "");
    mb_snapshot_free(&s);
    /* Damage the newest: the older one is loaded, with a warning. */
    char p30[600], p20[600];
    snprintf(p30, sizeof p30, "%s/snap-%020d.mbs", dir, 30);
    snprintf(p20, sizeof p20, "%s/snap-%020d.mbs", dir, 20);
    int fd = open(p30, O_WRONLY);
    ck_assert_int_eq(pwrite(fd, "X", 1, 200), 1);
    close(fd);
    ck_assert_int_eq(mb_snapshot_load_latest(dir, NULL, &s, path, sizeof path, warn, sizeof warn, err, sizeof err), MB_OK);
    ck_assert_uint_eq(s.log_seq, 20);
    ck_assert(s.ens.holdout_loss[0] == 20.0f);
    ck_assert_ptr_nonnull(strstr(warn, "snap-00000000000000000030.mbs"));
    ck_assert_str_eq(path, p20);
    mb_snapshot_free(&s);
    /* Both damaged: refused. */
    ck_assert_int_eq(truncate(p20, 100), 0);
    ck_assert_int_eq(mb_snapshot_load_latest(dir, NULL, &s, NULL, 0, warn, sizeof warn, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "damaged"));
    model_free(&m);
}
END_TEST

/* The policy agent section (AGNT): a trained agent round-trips bit for
 * bit (networks, targets, entropy coefficient, update count, all four
 * optimisers); a file without it (every file written before policies)
 * loads with has_agent 0; damage inside it is corrupt; the allocation cap
 * counts it. */
START_TEST(test_agent_section) {
    model m;
    model_init(&m, 100, 40);
    mb_agent_spec sp;
    mb_agent_spec_default(&sp);
    sp.obs_dim = 4;
    sp.act_dim = 2;
    sp.hidden[0] = 9;
    sp.hidden[1] = 7;
    sp.act_low[1] = -3;
    sp.act_high[1] = 0.5f;
    mb_sac_cfg cfg;
    mb_sac_cfg_default(&cfg);
    cfg.batch_size = 8;
    mb_sac ag;
    char err[256];
    ck_assert_int_eq(mb_sac_init(&ag, &sp, &cfg, 9, err, sizeof err), MB_OK);
    mb_sac_ws *ws = mb_sac_ws_new(&ag, &cfg, 1);
    mb_sac_batch *b = mb_sac_ws_batch(ws);
    mb_rng r;
    mb_rng_seed(&r, 4);
    for (int u = 0; u < 3; u++) {
        mb_rng_fill_normal(&r, b->obs, 8 * 4, 0, 1);
        mb_rng_fill_normal(&r, b->next_obs, 8 * 4, 0, 1);
        mb_rng_fill_uniform(&r, b->act, 8 * 2, -1, 0.5f);
        mb_rng_fill_normal(&r, b->rew, 8, 0, 1);
        for (int i = 0; i < 8; i++) b->done[i] = (float)(i % 3 == 0);
        ck_assert_int_eq(mb_sac_update(&ag, &cfg, ws, &r, NULL, NULL, err, sizeof err), MB_OK);
    }
    mb_sac_ws_free(ws);
    mb_snapshot_src src = model_src(&m, 1);
    src.agent = &ag;
    void *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    mb_snapshot out;
    ck_assert_msg(mb_snapshot_decode_mem(data, n, NULL, &out, err, sizeof err) == MB_OK, "%s", err);
    ck_assert(out.has_agent && out.has_ensemble && out.has_buffer);
    const mb_sac *a = &out.agent;
    ck_assert_int_eq(memcmp(&a->spec, &ag.spec, sizeof ag.spec), 0);
    ck_assert_int_eq(memcmp(a->pi.params, ag.pi.params, ag.pi.n_params * 4), 0);
    ck_assert_int_eq(memcmp(a->q.params, ag.q.params, ag.q.n_params * 4), 0);
    ck_assert_int_eq(memcmp(a->q.target, ag.q.target, ag.q.n_params * 4), 0);
    ck_assert_int_eq(memcmp(a->v.params, ag.v.params, ag.v.n_params * 4), 0);
    ck_assert(a->log_alpha == ag.log_alpha);
    ck_assert_int_eq(a->updates, 3);
    check_same_adam(&a->opt_pi, &ag.opt_pi);
    check_same_adam(&a->opt_q, &ag.opt_q);
    check_same_adam(&a->opt_v, &ag.opt_v);
    check_same_adam(&a->opt_alpha, &ag.opt_alpha);
    mb_snapshot_free(&out);
    unsigned char *bytes = data;
    size_t mid = n / 2;
    bytes[mid] ^= 0x40;
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &out, err, sizeof err), MB_ECORRUPT);
    bytes[mid] ^= 0x40;
    mb_snapshot_opts o = {.max_alloc = 1000};
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, &o, &out, err, sizeof err), MB_ERANGE);
    free(data);
    src.agent = NULL;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &out, err, sizeof err), MB_OK);
    ck_assert_int_eq(out.has_agent, 0);
    mb_snapshot_free(&out);
    free(data);
    mb_sac_free(&ag);
    model_free(&m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_round_trip_file_bit_identical);
    tcase_add_test(tc, test_round_trip_memory_and_pull_encoder);
    tcase_add_test(tc, test_optional_sections);
    tcase_add_test(tc, test_kept_versions);
    tcase_add_test(tc, test_kept_versions_with_termination_heads);
    tcase_add_test(tc, test_inconsistent_source_refused);
    tcase_add_test(tc, test_every_truncation_is_corrupt);
    tcase_add_test(tc, test_every_flipped_byte_is_corrupt);
    tcase_add_test(tc, test_trailing_bytes_version_and_cap);
    tcase_add_test(tc, test_directory_keep_two_and_fallback);
    tcase_add_test(tc, test_agent_section);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
