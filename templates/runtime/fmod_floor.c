/* Remainder with the sign of the divisor (ONNX Mod fmod=0 on floats, numpy's mod). */
static inline double edgec_fmod_floor(double a, double b)
{
  double r = fmod(a, b);
  if (r != 0) {
    if ((b < 0) != (r < 0)) r += b;
  } else {
    r = copysign(0.0, b);
  }
  return r;
}

static inline float edgec_fmod_floorf(float a, float b)
{
  float r = fmodf(a, b);
  if (r != 0) {
    if ((b < 0) != (r < 0)) r += b;
  } else {
    r = copysignf(0.0f, b);
  }
  return r;
}
