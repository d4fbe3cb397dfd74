/* TFLite int8 fixed-point arithmetic (gemmlowp rounding), as TFLite Micro. */
static inline int32_t edgec_srdhm(int32_t a, int32_t b)
{
  int64_t ab;
  int64_t nudge;
  if (a == b && a == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static inline int32_t edgec_rdbypot(int32_t x, int exponent)
{
  /* |x| / 2^32 and beyond rounds to 0 (-2^31 / 2^32 = -0.5 rounds away to -1); shifting
     an int32_t by 32 would be undefined (int8 softmax over rows of 512+ near-equal
     values gets there: TFLite Micro's reference aborts on its DCHECK) */
  if (exponent > 31) return (exponent == 32 && x == INT32_MIN) ? -1 : 0;
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t edgec_mbqm(int32_t x, int32_t multiplier, int shift)
{
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return edgec_rdbypot(edgec_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t edgec_sat_shl(int32_t x, int exponent)
{
  const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}
