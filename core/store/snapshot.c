/* snapshot.c: encoder (a piece list over the caller's arrays), decoder (a
 * pull reader that validates before it allocates), file and directory
 * handling. Format and contracts in snapshot.h.
 * Not for: the log (wal.c). */
#include "store/snapshot.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/fsutil.h"
#include "base/le.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapshots store floats in host order and assume a little-endian host"
#endif

static const unsigned char snap__magic[8] = {'M', 'B', 'R', 'L', 'S', 'N', 'A', 'P'};

#define SNAP__HDR 32
#define SNAP__SEC_HDR 16
#define SNAP__TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SNAP__META SNAP__TAG('M', 'E', 'T', 'A')
#define SNAP__ENSM SNAP__TAG('E', 'N', 'S', 'M')
#define SNAP__TERM SNAP__TAG('T', 'E', 'R', 'M')
#define SNAP__ADAM SNAP__TAG('A', 'D', 'A', 'M')
#define SNAP__BUFF SNAP__TAG('B', 'U', 'F', 'F')
#define SNAP__VERS SNAP__TAG('V', 'E', 'R', 'S')
#define SNAP__AGNT SNAP__TAG('A', 'G', 'N', 'T')
#define SNAP__END SNAP__TAG('E', 'N', 'D', '!')
#define SNAP__F_ENSM 1u
#define SNAP__F_ADAM 2u
#define SNAP__F_BUFF 4u
#define SNAP__F_VERS 8u
#define SNAP__VERS_PART_ENSM 1u /* a kept version's parts (VERS, snapshot.h) */
#define SNAP__VERS_PART_TERM 2u /* ... its termination head after the ensemble (as TERM) */
#define SNAP__VERS_ENTRY 16     /* number u64, parts u32, info_len u32 */
#define SNAP__F_AGNT 16u
#define SNAP__F_TERM 32u
#define SNAP__TERM_FIXED 16 /* in_dim, hidden (u32), n_params (u64) */
/* ENSM fixed part: members, obs, act, learn_reward, n_hidden, hidden[8],
 * activation (14 u32), weight_decay[9] (f32), n_params (u64). */
#define SNAP__ENSM_FIXED (14 * 4 + (MB_MAX_LAYERS + 1) * 4 + 8)
#define SNAP__ENSM_TAIL (4 + MB_MAX_MEMBERS * 4 + MB_MAX_MEMBERS * 4) /* n_elites, elites, holdout */
#define SNAP__ADAM_FIXED 32 /* lr, beta1, beta2, eps (f32), t (i64), n (u64) */
#define SNAP__BUFF_FIXED 56 /* obs, act (u32), capacity, size, head, total (u64), ratio (f32), 0, seed (u64) */
/* AGNT fixed part: obs, act, n_hidden, hidden[8], activation (12 u32),
 * act_low[64], act_high[64] (f32), log_alpha (f32), 0 (u32), updates (i64),
 * then the floats of the policy, the twin critics, their targets and the
 * value (u64 each), then per optimiser (policy, critics, value, alpha) an
 * ADAM-layout record (fixed part, m, v). */
#define SNAP__AGNT_FIXED (12 * 4 + 2 * MB_MAX_ACT_DIM * 4 + 8 + 8 + 4 * 8)

static const char *snap__tag_name(uint32_t tag) {
    switch (tag) {
    case SNAP__META: return "META";
    case SNAP__ENSM: return "ENSM (ensemble)";
    case SNAP__TERM: return "TERM (termination head)";
    case SNAP__ADAM: return "ADAM (optimiser)";
    case SNAP__BUFF: return "BUFF (replay buffer)";
    case SNAP__VERS: return "VERS (kept versions)";
    case SNAP__AGNT: return "AGNT (policy agent)";
    case SNAP__END: return "END";
    }
    return "unknown";
}

/* Bytes per buffer row on disk: obs, act, rew, next_obs (f32), two flags. */
static uint64_t snap__row_bytes(uint64_t od, uint64_t ad) { return 4 * (2 * od + ad + 1) + 2; }

/* ---- encoder ------------------------------------------------------------ */

/* The fixed layout needs under 64 pieces and 500 bytes; each kept version
 * adds up to 11 pieces and an entry header, ENSM's fixed part and tail and
 * a termination head's fixed part. */
#define SNAP__MAX_PIECES (96 + 12 * MB_SNAPSHOT_MAX_KEPT)
#define SNAP__ARENA (2048 + MB_SNAPSHOT_MAX_KEPT * (SNAP__VERS_ENTRY + SNAP__ENSM_FIXED + SNAP__ENSM_TAIL + \
                                                 SNAP__TERM_FIXED))

struct mb_snapshot_enc {
    int n;
    const unsigned char *p[SNAP__MAX_PIECES];
    uint64_t len[SNAP__MAX_PIECES];
    uint64_t off[SNAP__MAX_PIECES + 1]; /* off[i] = file offset of piece i; off[n] = size */
    unsigned char arena[SNAP__ARENA];   /* headers, small fields and CRCs */
    size_t used;
};

static unsigned char *enc__local(mb_snapshot_enc *e, size_t n) {
    /* The arena holds the small fields (sized for the most kept versions). */
    assert(e->used + n <= SNAP__ARENA);
    unsigned char *p = e->arena + e->used;
    e->used += n;
    memset(p, 0, n);
    return p;
}

static void enc__add(mb_snapshot_enc *e, const void *p, uint64_t n) {
    if (n == 0) return;
    assert(e->n < SNAP__MAX_PIECES);
    e->p[e->n] = p;
    e->len[e->n] = n;
    e->off[e->n + 1] = e->off[e->n] + n;
    e->n++;
}

/* Opens a section: returns its first piece index; hdr gets the length later. */
static int enc__sec_begin(mb_snapshot_enc *e, uint32_t tag, unsigned char **hdr) {
    int start = e->n;
    *hdr = enc__local(e, SNAP__SEC_HDR);
    mb_le_put32(*hdr, tag);
    enc__add(e, *hdr, SNAP__SEC_HDR);
    return start;
}

static void enc__sec_end(mb_snapshot_enc *e, int start, unsigned char *hdr) {
    uint64_t len = e->off[e->n] - e->off[start] - SNAP__SEC_HDR;
    mb_le_put64(hdr + 8, len);
    uint32_t crc = 0;
    for (int i = start; i < e->n; i++) crc = mb_crc32c(crc, e->p[i], (size_t)e->len[i]);
    unsigned char *c = enc__local(e, 4);
    mb_le_put32(c, crc);
    enc__add(e, c, 4);
}

/* An ensemble's data as ENSM lays it out (also a kept version's part). */
/* A termination head: in_dim, hidden, n_params, then the parameters (the
 * TERM section, and a kept version's TERM part). */
static void enc__term_body(mb_snapshot_enc *e, const mb_term_head *h) {
    unsigned char *f = enc__local(e, SNAP__TERM_FIXED);
    mb_le_put32(f, (uint32_t)h->in_dim);
    mb_le_put32(f + 4, (uint32_t)MB_TERM_HIDDEN);
    mb_le_put64(f + 8, h->n_params);
    enc__add(e, f, SNAP__TERM_FIXED);
    enc__add(e, h->params, h->n_params * sizeof(float));
}

static void enc__ensm_body(mb_snapshot_enc *e, const mb_ensemble *ens) {
    const mb_ensemble_spec *sp = &ens->spec;
    unsigned char *f = enc__local(e, SNAP__ENSM_FIXED);
    int32_t v[14] = {sp->members, sp->obs_dim, sp->act_dim, sp->learn_reward, sp->n_hidden};
    for (int l = 0; l < MB_MAX_LAYERS; l++) v[5 + l] = sp->hidden[l];
    v[13] = (int32_t)sp->activation;
    for (int i = 0; i < 14; i++) mb_le_put32(f + 4 * i, (uint32_t)v[i]);
    for (int l = 0; l <= MB_MAX_LAYERS; l++) mb_le_putf32(f + 56 + 4 * l, sp->weight_decay[l]);
    mb_le_put64(f + SNAP__ENSM_FIXED - 8, ens->n_params);
    enc__add(e, f, SNAP__ENSM_FIXED);
    size_t in = (size_t)mb_ensemble_in_dim(sp), o = (size_t)mb_ensemble_out_dim(sp);
    enc__add(e, ens->params, ens->n_params * sizeof(float));
    enc__add(e, ens->in_mean, in * sizeof(float));
    enc__add(e, ens->in_std, in * sizeof(float));
    enc__add(e, ens->out_mean, o * sizeof(float));
    enc__add(e, ens->out_std, o * sizeof(float));
    unsigned char *t = enc__local(e, SNAP__ENSM_TAIL);
    mb_le_put32(t, (uint32_t)ens->n_elites);
    for (int m = 0; m < MB_MAX_MEMBERS; m++) {
        mb_le_put32(t + 4 + 4 * m, (uint32_t)ens->elites[m]);
        mb_le_putf32(t + 4 + 4 * MB_MAX_MEMBERS + 4 * m, ens->holdout_loss[m]);
    }
    enc__add(e, t, SNAP__ENSM_TAIL);
}

mb_status mb_snapshot_enc_new(mb_snapshot_enc **out, const mb_snapshot_src *src, char *err, size_t err_sz) {
    *out = NULL;
    const mb_ensemble *ens = src->ens;
    const mb_adam *adam = src->adam;
    const mb_buffer *buf = src->buf;
    if (src->meta_len > MB_SNAPSHOT_MAX_META || (src->meta_len && !src->meta))
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: meta blob of %zu bytes (limit %u)", src->meta_len,
                       MB_SNAPSHOT_MAX_META);
    if (ens && !ens->params) return mb_fail(err, err_sz, MB_EINVAL, "snapshot: ensemble not initialised");
    if (adam && (!adam->m || !adam->v || adam->n == 0))
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: optimiser not initialised");
    if (ens && adam && adam->n != ens->n_params)
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: optimiser has %zu floats, ensemble %zu", adam->n,
                       ens->n_params);
    if (src->agent && (!src->agent->pi.params || !src->agent->q.params || !src->agent->v.params ||
                       !src->agent->opt_pi.m || !src->agent->opt_q.m || !src->agent->opt_v.m ||
                       !src->agent->opt_alpha.m))
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: policy agent not initialised");
    if (buf && (!buf->obs || buf->size > buf->capacity))
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: buffer not initialised");
    if (ens && buf && (buf->obs_dim != ens->spec.obs_dim || buf->act_dim != ens->spec.act_dim))
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: buffer dims %d/%d differ from the ensemble's %d/%d",
                       buf->obs_dim, buf->act_dim, ens->spec.obs_dim, ens->spec.act_dim);
    if (src->n_kept < 0 || src->n_kept > MB_SNAPSHOT_MAX_KEPT || (src->n_kept && !src->kept))
        return mb_fail(err, err_sz, MB_EINVAL, "snapshot: %d kept versions (limit %d)", src->n_kept,
                       MB_SNAPSHOT_MAX_KEPT);
    for (int i = 0; i < src->n_kept; i++) {
        const mb_snapshot_kept_src *k = &src->kept[i];
        if (!k->ens || !k->ens->params || k->info_len > MB_SNAPSHOT_MAX_KEPT_INFO || (k->info_len && !k->info))
            return mb_fail(err, err_sz, MB_EINVAL, "snapshot: kept version %" PRIu64 " has no ensemble or an "
                           "info blob over %u bytes", k->number, MB_SNAPSHOT_MAX_KEPT_INFO);
    }
    mb_snapshot_enc *e = calloc(1, sizeof *e);
    if (!e) return mb_fail(err, err_sz, MB_ENOMEM, "snapshot: no memory for the encoder");

    unsigned char *h = enc__local(e, SNAP__HDR);
    memcpy(h, snap__magic, 8);
    mb_le_put32(h + 8, MB_SNAPSHOT_VERSION);
    const mb_sac *ag = src->agent;
    int term = ens && ens->term.params;
    mb_le_put32(h + 12, (ens ? SNAP__F_ENSM : 0) | (adam ? SNAP__F_ADAM : 0) | (buf ? SNAP__F_BUFF : 0) |
                            (ag ? SNAP__F_AGNT : 0) | (src->n_kept ? SNAP__F_VERS : 0) | (term ? SNAP__F_TERM : 0));
    mb_le_put64(h + 16, src->log_seq);
    mb_le_put32(h + 28, mb_crc32c(0, h, 28));
    enc__add(e, h, SNAP__HDR);
    uint32_t sections = 0;
    unsigned char *sh;
    int s;

    s = enc__sec_begin(e, SNAP__META, &sh);
    enc__add(e, src->meta, src->meta_len);
    enc__sec_end(e, s, sh);
    sections++;

    if (ens) {
        s = enc__sec_begin(e, SNAP__ENSM, &sh);
        enc__ensm_body(e, ens);
        enc__sec_end(e, s, sh);
        sections++;
    }
    if (term) { /* after ENSM; files without it load as before */
        s = enc__sec_begin(e, SNAP__TERM, &sh);
        enc__term_body(e, &ens->term);
        enc__sec_end(e, s, sh);
        sections++;
    }
    if (adam) {
        s = enc__sec_begin(e, SNAP__ADAM, &sh);
        unsigned char *f = enc__local(e, SNAP__ADAM_FIXED);
        mb_le_putf32(f, adam->lr);
        mb_le_putf32(f + 4, adam->beta1);
        mb_le_putf32(f + 8, adam->beta2);
        mb_le_putf32(f + 12, adam->eps);
        mb_le_put64(f + 16, (uint64_t)(int64_t)adam->t);
        mb_le_put64(f + 24, adam->n);
        enc__add(e, f, SNAP__ADAM_FIXED);
        enc__add(e, adam->m, adam->n * sizeof(float));
        enc__add(e, adam->v, adam->n * sizeof(float));
        enc__sec_end(e, s, sh);
        sections++;
    }
    if (ag) {
        s = enc__sec_begin(e, SNAP__AGNT, &sh);
        unsigned char *f = enc__local(e, SNAP__AGNT_FIXED);
        const mb_agent_spec *sp = &ag->spec;
        int32_t v[12] = {sp->obs_dim, sp->act_dim, sp->n_hidden};
        for (int l = 0; l < MB_MAX_LAYERS; l++) v[3 + l] = sp->hidden[l];
        v[11] = (int32_t)sp->activation;
        for (int i = 0; i < 12; i++) mb_le_put32(f + 4 * i, (uint32_t)v[i]);
        for (int j = 0; j < MB_MAX_ACT_DIM; j++) {
            mb_le_putf32(f + 48 + 4 * j, sp->act_low[j]);
            mb_le_putf32(f + 48 + 4 * MB_MAX_ACT_DIM + 4 * j, sp->act_high[j]);
        }
        unsigned char *g = f + 48 + 8 * MB_MAX_ACT_DIM;
        mb_le_putf32(g, ag->log_alpha);
        mb_le_put32(g + 4, 0);
        mb_le_put64(g + 8, (uint64_t)(int64_t)ag->updates);
        mb_le_put64(g + 16, ag->pi.n_params);
        mb_le_put64(g + 24, ag->q.n_params);
        mb_le_put64(g + 32, ag->q.n_params);
        mb_le_put64(g + 40, ag->v.n_params);
        enc__add(e, f, SNAP__AGNT_FIXED);
        enc__add(e, ag->pi.params, ag->pi.n_params * sizeof(float));
        enc__add(e, ag->q.params, ag->q.n_params * sizeof(float));
        enc__add(e, ag->q.target, ag->q.n_params * sizeof(float));
        enc__add(e, ag->v.params, ag->v.n_params * sizeof(float));
        const mb_adam *opts[4] = {&ag->opt_pi, &ag->opt_q, &ag->opt_v, &ag->opt_alpha};
        for (int k = 0; k < 4; k++) {
            unsigned char *a = enc__local(e, SNAP__ADAM_FIXED);
            mb_le_putf32(a, opts[k]->lr);
            mb_le_putf32(a + 4, opts[k]->beta1);
            mb_le_putf32(a + 8, opts[k]->beta2);
            mb_le_putf32(a + 12, opts[k]->eps);
            mb_le_put64(a + 16, (uint64_t)(int64_t)opts[k]->t);
            mb_le_put64(a + 24, opts[k]->n);
            enc__add(e, a, SNAP__ADAM_FIXED);
            enc__add(e, opts[k]->m, opts[k]->n * sizeof(float));
            enc__add(e, opts[k]->v, opts[k]->n * sizeof(float));
        }
        enc__sec_end(e, s, sh);
        sections++;
    }
    if (buf) {
        s = enc__sec_begin(e, SNAP__BUFF, &sh);
        unsigned char *f = enc__local(e, SNAP__BUFF_FIXED);
        mb_le_put32(f, (uint32_t)buf->obs_dim);
        mb_le_put32(f + 4, (uint32_t)buf->act_dim);
        mb_le_put64(f + 8, buf->capacity);
        mb_le_put64(f + 16, buf->size);
        mb_le_put64(f + 24, buf->head);
        mb_le_put64(f + 32, buf->total);
        mb_le_putf32(f + 40, buf->holdout_ratio);
        mb_le_put64(f + 48, buf->holdout_seed);
        enc__add(e, f, SNAP__BUFF_FIXED);
        /* Held rows, oldest first: at most two runs of slots per array. */
        size_t first = buf->size ? mb_buffer_slot(buf, 0) : 0;
        size_t run1 = buf->capacity - first < buf->size ? buf->capacity - first : buf->size;
        size_t run2 = buf->size - run1;
        size_t od = (size_t)buf->obs_dim, ad = (size_t)buf->act_dim;
        enc__add(e, buf->obs + first * od, run1 * od * 4);
        enc__add(e, buf->obs, run2 * od * 4);
        enc__add(e, buf->act + first * ad, run1 * ad * 4);
        enc__add(e, buf->act, run2 * ad * 4);
        enc__add(e, buf->rew + first, run1 * 4);
        enc__add(e, buf->rew, run2 * 4);
        enc__add(e, buf->next_obs + first * od, run1 * od * 4);
        enc__add(e, buf->next_obs, run2 * od * 4);
        enc__add(e, buf->terminated + first, run1);
        enc__add(e, buf->terminated, run2);
        enc__add(e, buf->truncated + first, run1);
        enc__add(e, buf->truncated, run2);
        enc__sec_end(e, s, sh);
        sections++;
    }
    if (src->n_kept) {
        s = enc__sec_begin(e, SNAP__VERS, &sh);
        unsigned char *c = enc__local(e, 4);
        mb_le_put32(c, (uint32_t)src->n_kept);
        enc__add(e, c, 4);
        for (int i = 0; i < src->n_kept; i++) {
            const mb_snapshot_kept_src *k = &src->kept[i];
            unsigned char *h2 = enc__local(e, SNAP__VERS_ENTRY);
            mb_le_put64(h2, k->number);
            int kterm = k->ens->term.params != NULL;
            mb_le_put32(h2 + 8, SNAP__VERS_PART_ENSM | (kterm ? SNAP__VERS_PART_TERM : 0));
            mb_le_put32(h2 + 12, (uint32_t)k->info_len);
            enc__add(e, h2, SNAP__VERS_ENTRY);
            enc__add(e, k->info, k->info_len);
            enc__ensm_body(e, k->ens);
            if (kterm) enc__term_body(e, &k->ens->term);
        }
        enc__sec_end(e, s, sh);
        sections++;
    }
    uint64_t before_end = e->off[e->n];
    s = enc__sec_begin(e, SNAP__END, &sh);
    unsigned char *f = enc__local(e, 12);
    mb_le_put64(f, before_end);
    mb_le_put32(f + 8, sections);
    enc__add(e, f, 12);
    enc__sec_end(e, s, sh);
    *out = e;
    return MB_OK;
}

uint64_t mb_snapshot_enc_size(const mb_snapshot_enc *e) { return e->off[e->n]; }

size_t mb_snapshot_enc_read(const mb_snapshot_enc *e, uint64_t pos, void *dst, size_t max) {
    size_t done = 0;
    int i = 0;
    while (i < e->n && e->off[i + 1] <= pos) i++;
    for (; i < e->n && done < max; i++) {
        uint64_t in = pos - e->off[i];
        uint64_t take = e->len[i] - in;
        if (take > max - done) take = max - done;
        memcpy((unsigned char *)dst + done, e->p[i] + in, (size_t)take);
        done += (size_t)take;
        pos += take;
    }
    return done;
}

void mb_snapshot_enc_free(mb_snapshot_enc *e) { free(e); }

mb_status mb_snapshot_encode(const mb_snapshot_src *src, mb_snapshot_write_fn fn, void *ctx,
                             char *err, size_t err_sz) {
    mb_snapshot_enc *e;
    mb_status st = mb_snapshot_enc_new(&e, src, err, err_sz);
    if (st != MB_OK) return st;
    for (int i = 0; i < e->n && st == MB_OK; i++) st = fn(ctx, e->p[i], (size_t)e->len[i], err, err_sz);
    mb_snapshot_enc_free(e);
    return st;
}

mb_status mb_snapshot_encode_mem(const mb_snapshot_src *src, void **data, size_t *n, char *err, size_t err_sz) {
    mb_snapshot_enc *e;
    *data = NULL;
    *n = 0;
    mb_status st = mb_snapshot_enc_new(&e, src, err, err_sz);
    if (st != MB_OK) return st;
    size_t size = (size_t)mb_snapshot_enc_size(e);
    void *p = malloc(size);
    if (!p) {
        mb_snapshot_enc_free(e);
        return mb_fail(err, err_sz, MB_ENOMEM, "snapshot: no memory for %zu bytes", size);
    }
    mb_snapshot_enc_read(e, 0, p, size);
    mb_snapshot_enc_free(e);
    *data = p;
    *n = size;
    return MB_OK;
}

static mb_status snap__atomic_write(void *ctx, const void *data, size_t n, char *err, size_t err_sz) {
    return mb_fs_atomic_write(ctx, data, n, err, err_sz);
}

mb_status mb_snapshot_write_file(const char *path, const mb_snapshot_src *src, char *err, size_t err_sz) {
    mb_fs_atomic a;
    mb_status st = mb_fs_atomic_open(&a, path, err, err_sz);
    if (st != MB_OK) return st;
    st = mb_snapshot_encode(src, snap__atomic_write, &a, err, err_sz);
    if (st == MB_OK) st = mb_fs_atomic_commit(&a, err, err_sz);
    else mb_fs_atomic_abort(&a);
    return st;
}

/* ---- decoder ------------------------------------------------------------ */

typedef struct {
    mb_snapshot_read_fn rd;
    void *ctx;
    uint64_t pos;
    uint32_t crc; /* of the current section so far */
    const char *what;
} snap__in;

static mb_status snap__read(snap__in *d, void *dst, size_t n, char *err, size_t err_sz) {
    if (n == 0) return MB_OK;
    mb_status st = d->rd(d->ctx, dst, n, err, err_sz);
    if (st != MB_OK) return st;
    d->crc = mb_crc32c(d->crc, dst, n);
    d->pos += n;
    return MB_OK;
}

/* Reads and checks the CRC that closes a section. */
static mb_status snap__sec_close(snap__in *d, uint32_t tag, uint64_t sec_off, char *err, size_t err_sz) {
    unsigned char c[4];
    uint32_t want = d->crc;
    mb_status st = snap__read(d, c, 4, err, err_sz);
    if (st != MB_OK) return st;
    if (mb_le_get32(c) != want)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: section %s at offset %" PRIu64 ": checksum mismatch "
                       "(stored 0x%08x, computed 0x%08x)", d->what, snap__tag_name(tag), sec_off, mb_le_get32(c), want);
    return MB_OK;
}

static mb_status snap__corrupt_len(snap__in *d, uint32_t tag, uint64_t sec_off, uint64_t got, uint64_t want,
                                   char *err, size_t err_sz) {
    return mb_fail(err, err_sz, MB_ECORRUPT, "%s: section %s at offset %" PRIu64 ": length %" PRIu64
                   " does not match its contents (%" PRIu64 ")", d->what, snap__tag_name(tag), sec_off, got, want);
}

static mb_status snap__alloc_ok(snap__in *d, const mb_snapshot_opts *o, uint64_t *used, uint64_t more,
                                const char *what, char *err, size_t err_sz) {
    *used += more;
    if (o->max_alloc && *used > o->max_alloc)
        return mb_fail(err, err_sz, MB_ERANGE, "%s: the %s would need %" PRIu64 " bytes, more than the limit %zu",
                       d->what, what, *used, o->max_alloc);
    return MB_OK;
}

/* An ensemble laid out as ENSM's data (section tag, at most avail bytes of
 * it; exact: all of them). *size gets the bytes it took. On failure e is
 * left freed (zeroed). */
static mb_status snap__ensm_body(snap__in *d, uint32_t tag, uint64_t avail, int exact, uint64_t sec_off,
                                 const mb_snapshot_opts *o, uint64_t *used, mb_ensemble *e, uint64_t *size,
                                 char *err, size_t err_sz) {
    unsigned char f[SNAP__ENSM_FIXED];
    memset(e, 0, sizeof *e);
    if (avail < SNAP__ENSM_FIXED) return snap__corrupt_len(d, tag, sec_off, avail, SNAP__ENSM_FIXED, err, err_sz);
    mb_status st = snap__read(d, f, sizeof f, err, err_sz);
    if (st != MB_OK) return st;
    mb_ensemble_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.members = (int32_t)mb_le_get32(f);
    sp.obs_dim = (int32_t)mb_le_get32(f + 4);
    sp.act_dim = (int32_t)mb_le_get32(f + 8);
    sp.learn_reward = (int32_t)mb_le_get32(f + 12);
    sp.n_hidden = (int32_t)mb_le_get32(f + 16);
    for (int l = 0; l < MB_MAX_LAYERS; l++) sp.hidden[l] = (int32_t)mb_le_get32(f + 20 + 4 * l);
    uint32_t act = mb_le_get32(f + 52);
    for (int l = 0; l <= MB_MAX_LAYERS; l++) sp.weight_decay[l] = mb_le_getf32(f + 56 + 4 * l);
    uint64_t n_params = mb_le_get64(f + SNAP__ENSM_FIXED - 8);
    if (act > (uint32_t)MB_ACT_TANH)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: ensemble activation %u unknown", d->what, act);
    sp.activation = (mb_activation)act;
    char e2[256];
    if (mb_ensemble_spec_check(&sp, e2, sizeof e2) != MB_OK)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: ensemble spec invalid: %s", d->what, e2);
    uint64_t want_np = (uint64_t)sp.members * mb_ensemble_member_size(&sp);
    if (n_params != want_np)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: ensemble has %" PRIu64 " parameters, its spec %" PRIu64,
                       d->what, n_params, want_np);
    uint64_t in = (uint64_t)mb_ensemble_in_dim(&sp), od = (uint64_t)mb_ensemble_out_dim(&sp);
    uint64_t want = SNAP__ENSM_FIXED + 4 * (n_params + 2 * in + 2 * od) + SNAP__ENSM_TAIL;
    if (exact ? avail != want : avail < want) return snap__corrupt_len(d, tag, sec_off, avail, want, err, err_sz);
    *size = want;
    st = snap__alloc_ok(d, o, used, 4 * (n_params + 2 * in + 2 * od), "ensemble", err, err_sz);
    if (st != MB_OK) return st;
    st = mb_ensemble_init(e, &sp, 0, err, err_sz);
    if (st != MB_OK) return st;
    unsigned char t[SNAP__ENSM_TAIL];
    if ((st = snap__read(d, e->params, e->n_params * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, e->in_mean, in * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, e->in_std, in * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, e->out_mean, od * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, e->out_std, od * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, t, sizeof t, err, err_sz)) != MB_OK)
        goto fail;
    uint32_t ne = mb_le_get32(t);
    if (ne > (uint32_t)sp.members) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "%s: %u elites for %d members", d->what, ne, sp.members);
        goto fail;
    }
    e->n_elites = (int)ne;
    for (int m = 0; m < MB_MAX_MEMBERS; m++) {
        uint32_t el = mb_le_get32(t + 4 + 4 * m);
        if (m < (int)ne && el >= (uint32_t)sp.members) {
            st = mb_fail(err, err_sz, MB_ECORRUPT, "%s: elite %u out of range", d->what, el);
            goto fail;
        }
        e->elites[m] = (int)el;
        e->holdout_loss[m] = mb_le_getf32(t + 4 + 4 * MB_MAX_MEMBERS + 4 * m);
    }
    return MB_OK;
fail:
    mb_ensemble_free(e);
    memset(e, 0, sizeof *e);
    return st;
}

static mb_status snap__ensm(snap__in *d, uint64_t len, uint64_t sec_off, const mb_snapshot_opts *o,
                            uint64_t *used, mb_snapshot *out, char *err, size_t err_sz) {
    uint64_t size;
    mb_status st = snap__ensm_body(d, SNAP__ENSM, len, 1, sec_off, o, used, &out->ens, &size, err, err_sz);
    if (st == MB_OK) out->has_ensemble = 1;
    return st;
}

/* VERS: the kept older versions (snapshot.h). Each must match the current
 * ensemble's shape when there is one. */
static mb_status snap__term_body(snap__in *d, uint32_t tag, uint64_t len, int exact, uint64_t sec_off,
                                 const mb_snapshot_opts *o, uint64_t *used, mb_ensemble *ens,
                                 uint64_t *size, char *err, size_t err_sz);

static mb_status snap__vers(snap__in *d, uint64_t len, uint64_t sec_off, const mb_snapshot_opts *o,
                            uint64_t *used, mb_snapshot *out, char *err, size_t err_sz) {
    unsigned char c[4];
    if (len < 4) return snap__corrupt_len(d, SNAP__VERS, sec_off, len, 4, err, err_sz);
    mb_status st = snap__read(d, c, 4, err, err_sz);
    if (st != MB_OK) return st;
    uint32_t n = mb_le_get32(c);
    if (n < 1 || n > MB_SNAPSHOT_MAX_KEPT)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: %u kept versions (1..%d allowed)", d->what, n,
                       MB_SNAPSHOT_MAX_KEPT);
    out->kept = calloc(n, sizeof *out->kept);
    if (!out->kept) return mb_fail(err, err_sz, MB_ENOMEM, "%s: no memory for the kept versions", d->what);
    uint64_t left = len - 4;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char h[SNAP__VERS_ENTRY];
        if (left < SNAP__VERS_ENTRY) return snap__corrupt_len(d, SNAP__VERS, sec_off, len, len + SNAP__VERS_ENTRY - left, err, err_sz);
        if ((st = snap__read(d, h, sizeof h, err, err_sz)) != MB_OK) return st;
        left -= SNAP__VERS_ENTRY;
        mb_snapshot_kept *k = &out->kept[out->n_kept];
        uint64_t number = mb_le_get64(h);
        uint32_t parts = mb_le_get32(h + 8), info_len = mb_le_get32(h + 12);
        if ((parts != SNAP__VERS_PART_ENSM && parts != (SNAP__VERS_PART_ENSM | SNAP__VERS_PART_TERM)) || info_len > MB_SNAPSHOT_MAX_KEPT_INFO || info_len > left)
            return mb_fail(err, err_sz, MB_ECORRUPT, "%s: kept version %" PRIu64 ": parts 0x%x or info of %u bytes "
                           "not readable", d->what, number, parts, info_len);
        k->info = malloc((size_t)info_len + 1);
        if (!k->info) return mb_fail(err, err_sz, MB_ENOMEM, "%s: no memory for a kept version", d->what);
        if ((st = snap__read(d, k->info, info_len, err, err_sz)) != MB_OK) {
            free(k->info);
            k->info = NULL;
            return st;
        }
        k->info[info_len] = '\0';
        k->info_len = info_len;
        k->number = number;
        left -= info_len;
        uint64_t size = 0;
        st = snap__ensm_body(d, SNAP__VERS, left, 0, sec_off, o, used, &k->ens, &size, err, err_sz);
        if (st == MB_OK && (parts & SNAP__VERS_PART_TERM)) { /* its termination head, as TERM's */
            uint64_t tsize = 0;
            st = snap__term_body(d, SNAP__VERS, left - size, 0, sec_off, o, used, &k->ens, &tsize, err, err_sz);
            if (st != MB_OK) mb_ensemble_free(&k->ens);
            size += tsize;
        }
        if (st == MB_OK && out->has_ensemble && memcmp(&k->ens.spec, &out->ens.spec, sizeof k->ens.spec) != 0) {
            mb_ensemble_free(&k->ens);
            st = mb_fail(err, err_sz, MB_ECORRUPT, "%s: kept version %" PRIu64 " has another ensemble shape",
                         d->what, number);
        }
        if (st != MB_OK) {
            free(k->info);
            k->info = NULL;
            return st;
        }
        out->n_kept++;
        left -= size;
    }
    if (left != 0) return snap__corrupt_len(d, SNAP__VERS, sec_off, len, len - left, err, err_sz);
    return MB_OK;
}

/* A termination head for ens (enc__term_body's layout) from at most len
 * bytes of section tag: *size its bytes. exact: len must be its size. */
static mb_status snap__term_body(snap__in *d, uint32_t tag, uint64_t len, int exact, uint64_t sec_off,
                                 const mb_snapshot_opts *o, uint64_t *used, mb_ensemble *ens,
                                 uint64_t *size, char *err, size_t err_sz) {
    unsigned char f[SNAP__TERM_FIXED];
    if (len < SNAP__TERM_FIXED) return snap__corrupt_len(d, tag, sec_off, len, SNAP__TERM_FIXED, err, err_sz);
    mb_status st = snap__read(d, f, sizeof f, err, err_sz);
    if (st != MB_OK) return st;
    uint32_t in = mb_le_get32(f), hid = mb_le_get32(f + 4);
    uint64_t n = mb_le_get64(f + 8);
    if (in != (uint32_t)ens->spec.obs_dim || hid != MB_TERM_HIDDEN || n != mb_term_head_size(ens->spec.obs_dim))
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: termination head of %u inputs, %u units, %" PRIu64
                       " parameters does not fit the ensemble", d->what, in, hid, n);
    *size = SNAP__TERM_FIXED + 4 * n;
    if (exact ? len != *size : len < *size) return snap__corrupt_len(d, tag, sec_off, len, *size, err, err_sz);
    st = snap__alloc_ok(d, o, used, 4 * n, "termination head", err, err_sz);
    if (st != MB_OK) return st;
    st = mb_term_head_init(&ens->term, (int)in, 0, err, err_sz);
    if (st != MB_OK) return st;
    ens->spec.learn_termination = 1;
    return snap__read(d, ens->term.params, (size_t)n * 4, err, err_sz);
}

static mb_status snap__term(snap__in *d, uint64_t len, uint64_t sec_off, const mb_snapshot_opts *o,
                            uint64_t *used, mb_snapshot *out, char *err, size_t err_sz) {
    if (!out->has_ensemble)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: a termination head without an ensemble", d->what);
    uint64_t size = 0;
    return snap__term_body(d, SNAP__TERM, len, 1, sec_off, o, used, &out->ens, &size, err, err_sz);
}

static mb_status snap__adam(snap__in *d, uint64_t len, uint64_t sec_off, const mb_snapshot_opts *o,
                            uint64_t *used, mb_snapshot *out, char *err, size_t err_sz) {
    unsigned char f[SNAP__ADAM_FIXED];
    if (len < SNAP__ADAM_FIXED) return snap__corrupt_len(d, SNAP__ADAM, sec_off, len, SNAP__ADAM_FIXED, err, err_sz);
    mb_status st = snap__read(d, f, sizeof f, err, err_sz);
    if (st != MB_OK) return st;
    float lr = mb_le_getf32(f), b1 = mb_le_getf32(f + 4), b2 = mb_le_getf32(f + 8), eps = mb_le_getf32(f + 12);
    int64_t t = (int64_t)mb_le_get64(f + 16);
    uint64_t n = mb_le_get64(f + 24);
    if (!(lr > 0 && isfinite(lr)) || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(eps >= 0 && isfinite(eps)) || t < 0)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: optimiser settings invalid", d->what);
    if (out->has_ensemble ? n != out->ens.n_params : (n == 0 || n > ((uint64_t)1 << 34)))
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: optimiser holds %" PRIu64 " floats for %zu parameters",
                       d->what, n, out->has_ensemble ? out->ens.n_params : (size_t)0);
    if (len != SNAP__ADAM_FIXED + 8 * n) return snap__corrupt_len(d, SNAP__ADAM, sec_off, len, SNAP__ADAM_FIXED + 8 * n, err, err_sz);
    st = snap__alloc_ok(d, o, used, 8 * n, "optimiser", err, err_sz);
    if (st != MB_OK) return st;
    st = mb_adam_init(&out->adam, (size_t)n, lr, err, err_sz);
    if (st != MB_OK) return st;
    out->has_adam = 1;
    out->adam.beta1 = b1;
    out->adam.beta2 = b2;
    out->adam.eps = eps;
    out->adam.t = (long)t;
    if ((st = snap__read(d, out->adam.m, n * 4, err, err_sz)) != MB_OK) return st;
    return snap__read(d, out->adam.v, n * 4, err, err_sz);
}

/* Reads `bytes` of rows into dst or, when dst is NULL, through a scratch
 * buffer (verified, then dropped). */
static mb_status snap__rows(snap__in *d, void *dst, uint64_t bytes, char *err, size_t err_sz) {
    if (dst) return snap__read(d, dst, (size_t)bytes, err, err_sz);
    unsigned char tmp[16384];
    while (bytes > 0) {
        size_t k = bytes > sizeof tmp ? sizeof tmp : (size_t)bytes;
        mb_status st = snap__read(d, tmp, k, err, err_sz);
        if (st != MB_OK) return st;
        bytes -= k;
    }
    return MB_OK;
}

static mb_status snap__buff(snap__in *d, uint64_t len, uint64_t sec_off, const mb_snapshot_opts *o,
                            uint64_t *used, mb_snapshot *out, char *err, size_t err_sz) {
    unsigned char f[SNAP__BUFF_FIXED];
    if (len < SNAP__BUFF_FIXED) return snap__corrupt_len(d, SNAP__BUFF, sec_off, len, SNAP__BUFF_FIXED, err, err_sz);
    mb_status st = snap__read(d, f, sizeof f, err, err_sz);
    if (st != MB_OK) return st;
    uint32_t od = mb_le_get32(f), ad = mb_le_get32(f + 4);
    uint64_t cap = mb_le_get64(f + 8), size = mb_le_get64(f + 16), head = mb_le_get64(f + 24), total = mb_le_get64(f + 32);
    float ratio = mb_le_getf32(f + 40);
    uint64_t seed = mb_le_get64(f + 48);
    if (od < 1 || od > MB_MAX_OBS_DIM || ad < 1 || ad > MB_MAX_ACT_DIM || cap < 1 || cap > MB_MAX_BUFFER_CAPACITY ||
        size > cap || total < size || head >= cap || head != total % cap || (size < cap && size != total) ||
        !(ratio >= 0.0f && ratio <= 0.9f))
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: buffer fields inconsistent (dims %u/%u, capacity %" PRIu64
                       ", size %" PRIu64 ", head %" PRIu64 ", total %" PRIu64 ")", d->what, od, ad, cap, size, head, total);
    if (out->has_ensemble && ((int)od != out->ens.spec.obs_dim || (int)ad != out->ens.spec.act_dim))
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: buffer dims %u/%u differ from the ensemble's", d->what, od, ad);
    uint64_t want = SNAP__BUFF_FIXED + size * snap__row_bytes(od, ad);
    if (len != want) return snap__corrupt_len(d, SNAP__BUFF, sec_off, len, want, err, err_sz);
    mb_buffer *b = NULL;
    size_t first = 0, run1 = 0, run2 = 0;
    if (!o->skip_buffer) {
        st = snap__alloc_ok(d, o, used, cap * snap__row_bytes(od, ad), "replay buffer", err, err_sz);
        if (st != MB_OK) return st;
        st = mb_buffer_init(&out->buf, (int)od, (int)ad, (size_t)cap, ratio, seed, err, err_sz);
        if (st != MB_OK) return st;
        out->has_buffer = 1;
        b = &out->buf;
        b->size = (size_t)size;
        b->head = (size_t)head;
        b->total = total;
        first = size ? mb_buffer_slot(b, 0) : 0;
        run1 = cap - first < size ? (size_t)(cap - first) : (size_t)size;
        run2 = (size_t)size - run1;
    } else {
        out->buffer_skipped = 1;
    }
    /* Same order as the encoder: per array, the run from `first`, then the
     * wrapped run from slot 0. */
    size_t dims[6] = {od, ad, 1, od, 1, 1}, esz[6] = {4, 4, 4, 4, 1, 1};
    for (int a = 0; a < 6; a++) {
        unsigned char *base = NULL;
        if (b) {
            base = a == 0 ? (unsigned char *)b->obs : a == 1 ? (unsigned char *)b->act : a == 2 ? (unsigned char *)b->rew
                 : a == 3 ? (unsigned char *)b->next_obs : a == 4 ? b->terminated : b->truncated;
            st = snap__rows(d, base + first * dims[a] * esz[a], (uint64_t)run1 * dims[a] * esz[a], err, err_sz);
            if (st == MB_OK) st = snap__rows(d, base, (uint64_t)run2 * dims[a] * esz[a], err, err_sz);
        } else {
            st = snap__rows(d, NULL, size * dims[a] * esz[a], err, err_sz);
        }
        if (st != MB_OK) return st;
    }
    return MB_OK;
}

/* One ADAM-layout record of n floats into a (initialised for n). */
static mb_status snap__adam_rec(snap__in *d, mb_adam *a, uint64_t n, char *err, size_t err_sz) {
    unsigned char f[SNAP__ADAM_FIXED];
    mb_status st = snap__read(d, f, sizeof f, err, err_sz);
    if (st != MB_OK) return st;
    float lr = mb_le_getf32(f), b1 = mb_le_getf32(f + 4), b2 = mb_le_getf32(f + 8), eps = mb_le_getf32(f + 12);
    int64_t t = (int64_t)mb_le_get64(f + 16);
    if (!(lr > 0 && isfinite(lr)) || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(eps >= 0 && isfinite(eps)) ||
        t < 0 || mb_le_get64(f + 24) != n)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: policy optimiser settings invalid", d->what);
    a->lr = lr;
    a->beta1 = b1;
    a->beta2 = b2;
    a->eps = eps;
    a->t = (long)t;
    if ((st = snap__read(d, a->m, n * 4, err, err_sz)) != MB_OK) return st;
    return snap__read(d, a->v, n * 4, err, err_sz);
}

static mb_status snap__agnt(snap__in *d, uint64_t len, uint64_t sec_off, const mb_snapshot_opts *o,
                            uint64_t *used, mb_snapshot *out, char *err, size_t err_sz) {
    unsigned char f[SNAP__AGNT_FIXED];
    if (len < SNAP__AGNT_FIXED) return snap__corrupt_len(d, SNAP__AGNT, sec_off, len, SNAP__AGNT_FIXED, err, err_sz);
    mb_status st = snap__read(d, f, sizeof f, err, err_sz);
    if (st != MB_OK) return st;
    mb_agent_spec sp;
    mb_agent_spec_default(&sp);
    sp.obs_dim = (int32_t)mb_le_get32(f);
    sp.act_dim = (int32_t)mb_le_get32(f + 4);
    sp.n_hidden = (int32_t)mb_le_get32(f + 8);
    for (int l = 0; l < MB_MAX_LAYERS; l++) sp.hidden[l] = (int32_t)mb_le_get32(f + 12 + 4 * l);
    uint32_t act = mb_le_get32(f + 44);
    if (act > (uint32_t)MB_ACT_TANH)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: policy activation %u unknown", d->what, act);
    sp.activation = (mb_activation)act;
    for (int j = 0; j < MB_MAX_ACT_DIM; j++) {
        sp.act_low[j] = mb_le_getf32(f + 48 + 4 * j);
        sp.act_high[j] = mb_le_getf32(f + 48 + 4 * MB_MAX_ACT_DIM + 4 * j);
    }
    const unsigned char *g = f + 48 + 8 * MB_MAX_ACT_DIM;
    char e2[256];
    if (mb_agent_spec_check(&sp, e2, sizeof e2) != MB_OK)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: policy spec invalid: %s", d->what, e2);
    float log_alpha = mb_le_getf32(g);
    int64_t updates = (int64_t)mb_le_get64(g + 8);
    uint64_t np = mb_le_get64(g + 16), nq = mb_le_get64(g + 24), nt = mb_le_get64(g + 32), nv = mb_le_get64(g + 40);
    if (!isfinite(log_alpha) || updates < 0)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: policy entropy coefficient or update count invalid", d->what);
    mb_policy_spec ps;
    mb_qnet_spec qs;
    mb_vnet_spec vs;
    mb_mlp_spec m;
    mb_agent_policy_spec(&sp, &ps);
    mb_agent_qnet_spec(&sp, &qs);
    mb_agent_vnet_spec(&sp, &vs);
    mb_policy_mlp_spec(&ps, &m);
    uint64_t want_p = mb_mlp_size(&m);
    mb_qnet_mlp_spec(&qs, &m);
    uint64_t want_q = 2 * (uint64_t)mb_mlp_size(&m);
    mb_vnet_mlp_spec(&vs, &m);
    uint64_t want_v = mb_mlp_size(&m);
    if (np != want_p || nq != want_q || nt != want_q || nv != want_v)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: policy network sizes differ from its spec", d->what);
    uint64_t floats = np + 2 * nq + nv, opt_floats = 2 * (np + nq + nv + 1);
    uint64_t want = SNAP__AGNT_FIXED + 4 * floats + 4 * SNAP__ADAM_FIXED + 4 * opt_floats;
    if (len != want) return snap__corrupt_len(d, SNAP__AGNT, sec_off, len, want, err, err_sz);
    st = snap__alloc_ok(d, o, used, 4 * (floats + opt_floats), "policy agent", err, err_sz);
    if (st != MB_OK) return st;
    mb_sac_cfg cfg;
    mb_sac_cfg_default(&cfg);
    st = mb_sac_init(&out->agent, &sp, &cfg, 0, err, err_sz);
    if (st != MB_OK) return st;
    out->has_agent = 1;
    mb_sac *a = &out->agent;
    a->log_alpha = log_alpha;
    a->updates = (long)updates;
    a->last.alpha = expf(log_alpha);
    if ((st = snap__read(d, a->pi.params, np * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, a->q.params, nq * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, a->q.target, nt * 4, err, err_sz)) != MB_OK ||
        (st = snap__read(d, a->v.params, nv * 4, err, err_sz)) != MB_OK ||
        (st = snap__adam_rec(d, &a->opt_pi, np, err, err_sz)) != MB_OK ||
        (st = snap__adam_rec(d, &a->opt_q, nq, err, err_sz)) != MB_OK ||
        (st = snap__adam_rec(d, &a->opt_v, nv, err, err_sz)) != MB_OK)
        return st;
    return snap__adam_rec(d, &a->opt_alpha, 1, err, err_sz);
}

mb_status mb_snapshot_decode(mb_snapshot_read_fn rd, void *ctx, const mb_snapshot_opts *opts,
                             mb_snapshot *out, char *err, size_t err_sz) {
    mb_snapshot_opts o = {0};
    if (opts) o = *opts;
    memset(out, 0, sizeof *out);
    snap__in d = {rd, ctx, 0, 0, "snapshot"};
    uint64_t used = 0;
    unsigned char h[SNAP__HDR];
    mb_status st = snap__read(&d, h, sizeof h, err, err_sz);
    if (st != MB_OK) goto fail;
    if (memcmp(h, snap__magic, 8) != 0) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "not an mbrld snapshot (bad magic)");
        goto fail;
    }
    if (mb_le_get32(h + 28) != mb_crc32c(0, h, 28)) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot header checksum mismatch");
        goto fail;
    }
    out->version = mb_le_get32(h + 8);
    if (out->version != MB_SNAPSHOT_VERSION) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot format version %u; this build reads version %d",
                     out->version, MB_SNAPSHOT_VERSION);
        goto fail;
    }
    uint32_t flags = mb_le_get32(h + 12);
    if (flags & ~(SNAP__F_ENSM | SNAP__F_ADAM | SNAP__F_BUFF | SNAP__F_VERS | SNAP__F_AGNT | SNAP__F_TERM)) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot header has unknown flags 0x%x", flags);
        goto fail;
    }
    out->log_seq = mb_le_get64(h + 16);
    /* Sections in their fixed order; `next` is the lowest order allowed. */
    static const uint32_t order[] = {SNAP__META, SNAP__ENSM, SNAP__TERM, SNAP__ADAM, SNAP__AGNT,
                                     SNAP__BUFF, SNAP__VERS, SNAP__END};
    const int n_order = (int)(sizeof order / sizeof order[0]);
    int next = 0, sections = 0;
    uint32_t seen = 0;
    for (;;) {
        uint64_t sec_off = d.pos;
        unsigned char sh[SNAP__SEC_HDR];
        d.crc = 0;
        st = snap__read(&d, sh, sizeof sh, err, err_sz);
        if (st != MB_OK) goto fail;
        uint32_t tag = mb_le_get32(sh);
        uint64_t len = mb_le_get64(sh + 8);
        int k = 0;
        while (k < n_order && order[k] != tag) k++;
        if (k == n_order || k < next || mb_le_get32(sh + 4) != 0 || (k == 0) != (sections == 0)) {
            st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot: unexpected section 0x%08x at offset %" PRIu64, tag, sec_off);
            goto fail;
        }
        next = k + 1;
        switch (tag) {
        case SNAP__META:
            if (len > MB_SNAPSHOT_MAX_META) {
                st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot: meta section of %" PRIu64 " bytes", len);
                goto fail;
            }
            out->meta = malloc((size_t)len + 1);
            if (!out->meta) {
                st = mb_fail(err, err_sz, MB_ENOMEM, "snapshot: no memory for the meta blob");
                goto fail;
            }
            st = snap__read(&d, out->meta, (size_t)len, err, err_sz);
            out->meta[len] = '\0';
            out->meta_len = (size_t)len;
            break;
        case SNAP__ENSM:
            st = snap__ensm(&d, len, sec_off, &o, &used, out, err, err_sz);
            seen |= SNAP__F_ENSM;
            break;
        case SNAP__TERM:
            st = snap__term(&d, len, sec_off, &o, &used, out, err, err_sz);
            seen |= SNAP__F_TERM;
            break;
        case SNAP__ADAM:
            st = snap__adam(&d, len, sec_off, &o, &used, out, err, err_sz);
            seen |= SNAP__F_ADAM;
            break;
        case SNAP__BUFF:
            st = snap__buff(&d, len, sec_off, &o, &used, out, err, err_sz);
            seen |= SNAP__F_BUFF;
            break;
        case SNAP__VERS:
            st = snap__vers(&d, len, sec_off, &o, &used, out, err, err_sz);
            seen |= SNAP__F_VERS;
            break;
        case SNAP__AGNT:
            st = snap__agnt(&d, len, sec_off, &o, &used, out, err, err_sz);
            seen |= SNAP__F_AGNT;
            break;
        case SNAP__END: {
            unsigned char f[12];
            if (len != 12) {
                st = snap__corrupt_len(&d, tag, sec_off, len, 12, err, err_sz);
                goto fail;
            }
            st = snap__read(&d, f, sizeof f, err, err_sz);
            if (st == MB_OK && (mb_le_get64(f) != sec_off || mb_le_get32(f + 8) != (uint32_t)sections)) {
                st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot: end marker says %" PRIu64 " bytes in %u sections, "
                             "found %" PRIu64 " in %d", mb_le_get64(f), mb_le_get32(f + 8), sec_off, sections);
            }
            break;
        }
        }
        if (st != MB_OK) goto fail;
        st = snap__sec_close(&d, tag, sec_off, err, err_sz);
        if (st != MB_OK) goto fail;
        if (tag == SNAP__END) break;
        sections++;
    }
    if (seen != flags) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot: header promises sections 0x%x, file has 0x%x", flags, seen);
        goto fail;
    }
    return MB_OK;
fail:
    mb_snapshot_free(out);
    return st;
}

void mb_snapshot_free(mb_snapshot *s) {
    if (!s) return;
    free(s->meta);
    if (s->has_ensemble) mb_ensemble_free(&s->ens);
    if (s->has_adam) mb_adam_free(&s->adam);
    if (s->has_buffer) mb_buffer_free(&s->buf);
    for (int i = 0; i < s->n_kept; i++) {
        free(s->kept[i].info);
        mb_ensemble_free(&s->kept[i].ens);
    }
    free(s->kept);
    if (s->has_agent) mb_sac_free(&s->agent);
    memset(s, 0, sizeof *s);
}

/* ---- readers: memory and file ------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t n, pos;
} snap__mem;

static mb_status snap__mem_read(void *ctx, void *dst, size_t n, char *err, size_t err_sz) {
    snap__mem *m = ctx;
    if (n > m->n - m->pos)
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot truncated: needs more than its %zu bytes", m->n);
    memcpy(dst, m->p + m->pos, n);
    m->pos += n;
    return MB_OK;
}

mb_status mb_snapshot_decode_mem(const void *data, size_t n, const mb_snapshot_opts *opts,
                                 mb_snapshot *out, char *err, size_t err_sz) {
    snap__mem m = {data, n, 0};
    mb_status st = mb_snapshot_decode(snap__mem_read, &m, opts, out, err, err_sz);
    if (st == MB_OK && m.pos != n) {
        mb_snapshot_free(out);
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot: %zu bytes after the end marker", n - m.pos);
    }
    return st;
}

typedef struct {
    FILE *f;
    const char *path;
} snap__file;

static mb_status snap__file_read(void *ctx, void *dst, size_t n, char *err, size_t err_sz) {
    snap__file *s = ctx;
    if (fread(dst, 1, n, s->f) != n) {
        if (ferror(s->f)) return mb_fail(err, err_sz, MB_EIO, "read %s: %s", s->path, strerror(errno));
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s: truncated (file ends early)", s->path);
    }
    return MB_OK;
}

mb_status mb_snapshot_read_file(const char *path, const mb_snapshot_opts *opts, mb_snapshot *out,
                                char *err, size_t err_sz) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return mb_fail(err, err_sz, errno == ENOENT ? MB_ENOTFOUND : MB_EIO, "open %s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    snap__file s = {f, path};
    char e2[600];
    mb_status st = mb_snapshot_decode(snap__file_read, &s, opts, out, e2, sizeof e2);
    if (st == MB_OK && fgetc(f) != EOF) {
        mb_snapshot_free(out);
        st = mb_fail(e2, sizeof e2, MB_ECORRUPT, "bytes after the end marker");
    }
    fclose(f);
    if (st != MB_OK) {
        /* Name the file once, whatever layer wrote the reason. */
        if (strstr(e2, path)) mb_fail(err, err_sz, st, "%s", e2);
        else mb_fail(err, err_sz, st, "%s: %s", path, e2);
    }
    return st;
}

/* ---- a directory of snapshots ------------------------------------------- */

/* Log seqs of dir's snap-*.mbs, newest first. *n = 0 for a missing dir. */
static mb_status snap__list(const char *dir, uint64_t **seqs, int *n, char *err, size_t err_sz) {
    size_t k;
    char e2[4400];
    *n = 0;
    mb_status st = mb_fs_list_numbered(dir, "snap-", ".mbs", "snapshot directory", seqs, &k, e2, sizeof e2);
    if (st == MB_ENOTFOUND) return MB_OK;
    if (st != MB_OK) return mb_fail(err, err_sz, st, "%s", e2);
    if (k > (size_t)INT_MAX) {
        free(*seqs);
        *seqs = NULL;
        return mb_fail(err, err_sz, MB_ERANGE, "too many snapshots in %s", dir);
    }
    for (size_t i = 0; i < k / 2; i++) { /* ascending -> newest first */
        uint64_t t = (*seqs)[i];
        (*seqs)[i] = (*seqs)[k - 1 - i];
        (*seqs)[k - 1 - i] = t;
    }
    *n = (int)k;
    return MB_OK;
}

static void snap__path(char *out, size_t sz, const char *dir, uint64_t seq) {
    snprintf(out, sz, "%s/snap-%020" PRIu64 ".mbs", dir, seq);
}

mb_status mb_snapshot_save(const char *dir, const mb_snapshot_src *src, int keep, char *path_out,
                           size_t path_sz, uint64_t *oldest_kept, char *err, size_t err_sz) {
    char path[4200];
    if (keep < 1) keep = 1;
    if (strlen(dir) > 4000) return mb_fail(err, err_sz, MB_EINVAL, "snapshot directory path too long");
    mb_status st = mb_fs_mkdir_p(dir, 0755, err, err_sz);
    if (st != MB_OK) return st;
    snap__path(path, sizeof path, dir, src->log_seq);
    st = mb_snapshot_write_file(path, src, err, err_sz);
    if (st != MB_OK) return st;
    if (path_out && path_sz) snprintf(path_out, path_sz, "%s", path);
    uint64_t *seqs;
    int n;
    st = snap__list(dir, &seqs, &n, err, err_sz);
    if (st != MB_OK) return st;
    int removed = 0;
    for (int i = keep; i < n; i++) {
        char p[4200];
        snap__path(p, sizeof p, dir, seqs[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
            st = mb_fail(err, err_sz, MB_EIO, "remove old snapshot %s: %s", p, strerror(errno));
            break;
        }
        removed++;
    }
    if (oldest_kept) *oldest_kept = n > 0 ? seqs[(n < keep ? n : keep) - 1] : src->log_seq;
    free(seqs);
    if (st == MB_OK && removed) st = mb_fs_fsync_dir(dir, err, err_sz);
    return st;
}

mb_status mb_snapshot_load_latest(const char *dir, const mb_snapshot_opts *opts, mb_snapshot *out,
                                  char *path_out, size_t path_sz, char *warning, size_t warning_sz,
                                  char *err, size_t err_sz) {
    memset(out, 0, sizeof *out);
    if (warning && warning_sz) warning[0] = '\0';
    uint64_t *seqs;
    int n;
    mb_status st = snap__list(dir, &seqs, &n, err, err_sz);
    if (st != MB_OK) return st;
    if (n == 0) {
        free(seqs);
        return mb_fail(err, err_sz, MB_ENOTFOUND, "no snapshot in %s", dir);
    }
    st = MB_ECORRUPT;
    for (int i = 0; i < n; i++) {
        char p[4200], e2[700];
        snap__path(p, sizeof p, dir, seqs[i]);
        st = mb_snapshot_read_file(p, opts, out, e2, sizeof e2);
        if (st == MB_OK) {
            if (path_out && path_sz) snprintf(path_out, path_sz, "%s", p);
            break;
        }
        if (st == MB_ENOMEM || st == MB_ERANGE) {
            mb_fail(err, err_sz, st, "%s", e2);
            break;
        }
        if (warning && warning_sz) {
            size_t used = strlen(warning);
            if (used + 3 < warning_sz)
                snprintf(warning + used, warning_sz - used, "%sskipped damaged snapshot: %s", used ? "; " : "", e2);
        }
        mb_fail(err, err_sz, MB_ECORRUPT, "every snapshot in %s is damaged; the oldest: %s", dir, e2);
        st = MB_ECORRUPT;
    }
    free(seqs);
    return st;
}
