/* The small runtime helpers: bnn.c (popcount, int8 rounding of binarized layers),
 * sparse.c (count trailing zeros), fmod_floor.c (floored remainder), against Python's
 * int.bit_count, numpy's round-half-away-and-clip and numpy's mod (float64 and
 * float32), bit for bit. */
#include "rt_test.h"
#include "bnn.c"
#include "sparse.c"
#include "fmod_floor.c"
#include "vectors.h"

static float rt_f32(uint32_t u)
{
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static double rt_f64(uint64_t u)
{
  double d;
  memcpy(&d, &u, 8);
  return d;
}

int main(void)
{
  for (int i = 0; i < POPCOUNT_N; ++i)
    RT_EQ("popcount32", i, edgec_popcount32(popcount_x[i]), popcount_want[i]);
  for (int i = 0; i < CTZ_N; ++i) RT_EQ("ctz32", i, edgec_ctz32(ctz_x[i]), ctz_want[i]);
  for (int i = 0; i < ROUND8_N; ++i)
    RT_EQ("bnn_round_sat8", i, edgec_bnn_round_sat8(rt_f32(round8_x[i])), round8_want[i]);
  for (int i = 0; i < FMOD_N; ++i)
    RT_EQ("fmod_floor", i, rt_bits_d(edgec_fmod_floor(rt_f64(fmod_a[i]), rt_f64(fmod_b[i]))),
          rt_bits_d(rt_f64(fmod_want[i])));
  for (int i = 0; i < FMODF_N; ++i)
    RT_EQ("fmod_floorf", i, rt_bits_f(edgec_fmod_floorf(rt_f32(fmodf_a[i]), rt_f32(fmodf_b[i]))),
          rt_bits_f(rt_f32(fmodf_want[i])));
  return rt_finish();
}
