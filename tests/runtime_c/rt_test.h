/* rt_test.h: what a C unit test of templates/runtime/ needs, on the host and in
 * firmware (tests/test_runtime_c.py compiles and runs the tests/runtime_c/test_*.c).
 *
 * 1. rt_runtime.h: what templates/model.c.j2 defines before it inserts the runtime.
 * 2. Checks that count and report failures: RT_EQ(what, index, got, want) compares
 *    integers (floats bit for bit through rt_bits_f / rt_bits_d).  rt_finish() prints
 *    "EDGEC-RESULT PASS checks=N" or "EDGEC-RESULT FAIL failures=F checks=N" (the
 *    firmware harness's console convention) and returns main's exit code.
 *    -DRT_FIRMWARE prints through edgec's firmware harness (edgec_fw.h), else stdio.
 * 3. rt_rand(): a small deterministic generator (xorshift32) for inputs the test
 *    makes itself (comparing two forms of one kernel with each other). */
#ifndef RT_TEST_H
#define RT_TEST_H

#include "rt_runtime.h"

#ifdef RT_FIRMWARE
#include "edgec_fw.h"
static inline void rt_puts(const char* s) { fw_puts(s); }
static inline void rt_put_i64(int64_t v)
{
  if (v < 0) {
    fw_putc('-');
    fw_put_u64((uint64_t)0 - (uint64_t)v);
  } else {
    fw_put_u64((uint64_t)v);
  }
}
#else
#include <stdio.h>
static inline void rt_puts(const char* s) { fputs(s, stdout); }
static inline void rt_put_i64(int64_t v) { printf("%lld", (long long)v); }
#endif

static long rt_checks;
static long rt_failures;

static inline int rt_eq(const char* what, long i, int64_t got, int64_t want)
{
  ++rt_checks;
  if (got == want) return 1;
  if (rt_failures < 20) {
    rt_puts("FAIL ");
    rt_puts(what);
    rt_puts("[");
    rt_put_i64(i);
    rt_puts("]: got ");
    rt_put_i64(got);
    rt_puts(", want ");
    rt_put_i64(want);
    rt_puts("\n");
  }
  ++rt_failures;
  return 0;
}

#define RT_EQ(what, i, got, want) rt_eq((what), (long)(i), (int64_t)(got), (int64_t)(want))

/* float and double results compared bit for bit (the sign of a zero counts) */
static inline int64_t rt_bits_f(float v)
{
  uint32_t u;
  memcpy(&u, &v, 4);
  return (int64_t)u;
}
static inline int64_t rt_bits_d(double v)
{
  int64_t u;
  memcpy(&u, &v, 8);
  return u;
}

static inline int rt_finish(void)
{
  rt_puts(rt_failures ? "EDGEC-RESULT FAIL failures=" : "EDGEC-RESULT PASS");
  if (rt_failures) rt_put_i64(rt_failures);
  rt_puts(" checks=");
  rt_put_i64(rt_checks);
  rt_puts("\n");
  return rt_failures ? 1 : 0;
}

static uint32_t rt_state = 2463534242u;
static inline uint32_t rt_rand(void)
{
  rt_state ^= rt_state << 13;
  rt_state ^= rt_state >> 17;
  rt_state ^= rt_state << 5;
  return rt_state;
}

#endif /* RT_TEST_H */
