/* templates/runtime/qmath.c: TFLite's fixed-point requantization (gemmlowp's
 * SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, MultiplyByQuantizedMultiplier,
 * SaturatingRoundingMultiplyByPOT) against edgec.ir.qmath (numpy) on random and
 * edge values; vectors.h comes from tests/test_runtime_c.py. */
#include "rt_test.h"
#include "qmath.c"
#include "vectors.h"

int main(void)
{
  for (int i = 0; i < SRDHM_N; ++i)
    RT_EQ("srdhm", i, edgec_srdhm(srdhm_a[i], srdhm_b[i]), srdhm_want[i]);
  for (int i = 0; i < RDBYPOT_N; ++i)
    RT_EQ("rdbypot", i, edgec_rdbypot(rdbypot_x[i], rdbypot_e[i]), rdbypot_want[i]);
  for (int i = 0; i < MBQM_N; ++i)
    RT_EQ("mbqm", i, edgec_mbqm(mbqm_x[i], mbqm_m[i], mbqm_s[i]), mbqm_want[i]);
  for (int i = 0; i < SATSHL_N; ++i)
    RT_EQ("sat_shl", i, edgec_sat_shl(satshl_x[i], satshl_e[i]), satshl_want[i]);
  return rt_finish();
}
