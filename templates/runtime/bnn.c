/* Binarized layers: population count of a 32-bit word (portable SWAR, no
 * libgcc call) and the int8 output rounding (half away from zero, saturated). */
static inline int32_t edgec_popcount32(uint32_t v)
{
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0F0F0F0Fu;
  return (int32_t)((v * 0x01010101u) >> 24);
}

static inline int8_t edgec_bnn_round_sat8(float y)
{
  int32_t r;
  float f;
  if (y != y) return 0;
  if (y >= 127.0f) return 127;
  if (y <= -128.0f) return -128;
  r = (int32_t)y;
  f = y - (float)r;
  if (f >= 0.5f) ++r;
  else if (f <= -0.5f) --r;
  return (int8_t)(r > 127 ? 127 : (r < -128 ? -128 : r));
}
