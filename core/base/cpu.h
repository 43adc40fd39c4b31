/* cpu.h: which instruction set the kernels use, chosen at run time.
 *
 * One build (the x86-64-v3 baseline of the Makefile, the container and
 * distribution packages) carries every kernel: AVX2+FMA (8 lanes) and
 * AVX-512 (16 lanes; F, VL, BW, DQ) compiled with target attributes
 * (MB_TARGET_*), and AVX512_BF16 / AMX-BF16 for the opt-in bf16 planning
 * products.
 * mb_cpu_isa() picks the widest the CPU and the OS support, once per
 * process; the environment variable
 *     MBRLD_ISA=avx512 | avx2 | scalar
 * lowers it (never raises it above what the CPU has; an unknown value is
 * ignored and mb_cpu_isa_env_note says so). -march=native builds dispatch
 * the same way (the attributes add nothing there).
 *
 * Results: the fp32 kernels at avx2 and avx512 give the same bits (same
 * operations in the same order per element; tests/core/test_dispatch.c);
 * scalar (CPUs without AVX2, non-x86 builds) is the same formulas without
 * fused multiply-adds in places, within the tolerances its tests state.
 *
 * The level is process-wide, read with relaxed atomics: kernels call
 * mb_cpu_isa() per call (one load). mb_cpu_isa_force is for tests and
 * benchmarks, before other threads run kernels.
 * Not for: anything but choosing kernels. */
#ifndef MB_CPU_H
#define MB_CPU_H

typedef enum { MB_ISA_SCALAR = 0, MB_ISA_AVX2 = 1, MB_ISA_AVX512 = 2 } mb_isa;

/* The level the kernels use: min(what the CPU has, MBRLD_ISA). */
mb_isa mb_cpu_isa(void);
/* The widest level this CPU and OS support, whatever MBRLD_ISA says. */
mb_isa mb_cpu_isa_max(void);
/* 1 when the bf16 dot-product kernels may run: the level in use is avx512
 * and the CPU has AVX512_BF16 (MBRLD_ISA=avx2 turns bf16 off too). */
int mb_cpu_has_bf16(void);
/* 1 when the bf16 products may use AMX tiles (TDPBF16PS) instead of
 * vdpbf16ps: mb_cpu_has_bf16(), the CPU has AMX-TILE and AMX-BF16, the
 * kernel granted the tile state (arch_prctl ARCH_REQ_XCOMP_PERM, asked
 * once per process), and MBRLD_AMX is not "0". */
int mb_cpu_has_amx(void);
/* Tests and benchmarks: 0 turns AMX off, 1 back to what the CPU allows. */
void mb_cpu_amx_force(int on);
/* "scalar", "avx2", "avx512". */
const char *mb_isa_name(mb_isa isa);
/* "avx2" etc. -> 0 and *out; -1 if unknown. */
int mb_isa_parse(const char *name, mb_isa *out);
/* Sets the level (clamped to mb_cpu_isa_max) and returns the one in
 * effect. Tests and benchmarks only. */
mb_isa mb_cpu_isa_force(mb_isa isa);
/* NULL, or a one-line note about MBRLD_ISA (unknown value, or a level the
 * CPU lacks) for the daemon's start-up log. */
const char *mb_cpu_isa_env_note(void);

#if defined(__x86_64__) && defined(__GNUC__)
#define MB_X86 1
/* Kernels compiled for a level whatever -march says; run only when
 * mb_cpu_isa() allows. */
#define MB_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MB_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define MB_TARGET_BF16 \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma")))
#define MB_TARGET_AMX \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma,amx-tile,amx-bf16")))
#endif

#endif
