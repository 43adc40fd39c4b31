/* cpu.c: the run-time instruction-set level (cpu.h): CPU detection with
 * GCC's __builtin_cpu_supports (which also checks that the OS saves the
 * AVX-512 state), lowered by MBRLD_ISA, cached in one atomic.
 * Not for: the kernels themselves (nn/, base/rng_vec.c). */
#include "base/cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#ifdef MB_X86
#include <cpuid.h>
#endif
#include <string.h>
#ifdef MB_X86
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* -1: not yet decided; else an mb_isa. */
static atomic_int cpu__level = -1;
static atomic_int cpu__bf16 = -1;
static _Atomic(const char *) cpu__note; /* about MBRLD_ISA, or NULL */

static const char *const cpu__names[] = {"scalar", "avx2", "avx512"};

const char *mb_isa_name(mb_isa isa) {
    return (int)isa >= 0 && (int)isa <= MB_ISA_AVX512 ? cpu__names[isa] : "unknown";
}

int mb_isa_parse(const char *name, mb_isa *out) {
    if (!name) return -1;
    for (int i = 0; i <= MB_ISA_AVX512; i++)
        if (!strcmp(name, cpu__names[i])) {
            *out = (mb_isa)i;
            return 0;
        }
    return -1;
}

mb_isa mb_cpu_isa_max(void) {
#ifdef MB_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma"))
        return MB_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MB_ISA_AVX2;
#endif
    return MB_ISA_SCALAR;
}

static int cpu__bf16_hw(void) {
#ifdef MB_X86
    __builtin_cpu_init();
    return mb_cpu_isa_max() == MB_ISA_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static mb_isa cpu__decide(void) {
    mb_isa max = mb_cpu_isa_max(), want = max;
    const char *env = getenv("MBRLD_ISA");
    if (env && *env) {
        mb_isa asked;
        if (mb_isa_parse(env, &asked) != 0)
            atomic_store(&cpu__note, "MBRLD_ISA: unknown value (avx512, avx2 or scalar); using the CPU's widest");
        else if (asked > max)
            atomic_store(&cpu__note, "MBRLD_ISA asks for more than this CPU has; using the CPU's widest");
        else
            want = asked;
    }
    return want;
}

mb_isa mb_cpu_isa(void) {
    int v = atomic_load_explicit(&cpu__level, memory_order_acquire);
    if (v >= 0) return (mb_isa)v;
    /* Racing first callers compute the same answer; one store wins. */
    int expected = -1;
    atomic_compare_exchange_strong(&cpu__level, &expected, (int)cpu__decide());
    return (mb_isa)atomic_load_explicit(&cpu__level, memory_order_acquire);
}

int mb_cpu_has_bf16(void) {
    int hw = atomic_load_explicit(&cpu__bf16, memory_order_relaxed);
    if (hw < 0) {
        hw = cpu__bf16_hw();
        atomic_store_explicit(&cpu__bf16, hw, memory_order_relaxed);
    }
    return hw && mb_cpu_isa() == MB_ISA_AVX512;
}

/* -1 unknown, 0/1: what the CPU and the kernel allow (asked once). */
static atomic_int cpu__amx_hw = -1;
static atomic_int cpu__amx_off;

static int cpu__amx_probe(void) {
#ifdef MB_X86
    /* CPUID leaf 7 EDX: bit 22 AMX-BF16, bit 24 AMX-TILE (read directly:
     * older compilers' __builtin_cpu_supports does not know the AMX names) */
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!cpu__bf16_hw() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24)))
        return 0;
    const char *env = getenv("MBRLD_AMX");
    if (env && !strcmp(env, "0")) return 0;
    /* Linux >= 5.16: the tile data state must be asked for (XFEATURE 18) */
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0;
#else
    return 0;
#endif
}

int mb_cpu_has_amx(void) {
    if (!mb_cpu_has_bf16() || atomic_load_explicit(&cpu__amx_off, memory_order_relaxed)) return 0;
    int hw = atomic_load_explicit(&cpu__amx_hw, memory_order_acquire);
    if (hw < 0) {
        int expected = -1;
        atomic_compare_exchange_strong(&cpu__amx_hw, &expected, cpu__amx_probe());
        hw = atomic_load_explicit(&cpu__amx_hw, memory_order_acquire);
    }
    return hw;
}

void mb_cpu_amx_force(int on) { atomic_store(&cpu__amx_off, !on); }

mb_isa mb_cpu_isa_force(mb_isa isa) {
    mb_isa max = mb_cpu_isa_max();
    if (isa > max) isa = max;
    if (isa < MB_ISA_SCALAR) isa = MB_ISA_SCALAR;
    atomic_store_explicit(&cpu__level, (int)isa, memory_order_release);
    return isa;
}

const char *mb_cpu_isa_env_note(void) {
    (void)mb_cpu_isa();
    return atomic_load(&cpu__note);
}
