/* Post transforms of the ai.onnx.ml classifiers and regressors, in float as onnxruntime computes them. */
static inline float edgec_ml_logistic(float x)
{
  const float v = 1.0f / (1.0f + expf(-fabsf(x)));
  return x < 0.0f ? 1.0f - v : v;
}

static inline float edgec_ml_probit(float p)
{
  /* sqrt(2) * erfinv(2p - 1), with the closed-form erfinv approximation (a = 0.147) */
  const float x = 2.0f * p - 1.0f;
  const float sgn = x < 0.0f ? -1.0f : 1.0f;
  const float w = (1.0f - x) * (1.0f + x);
  const float lg = logf(w);
  const float a = 2.0f / (3.14159265358979323846f * 0.147f) + 0.5f * lg;
  const float a2 = (1.0f / 0.147f) * lg;
  const float a3 = -a + sqrtf(a * a - a2);
  return 1.41421356237309504880f * (sgn * sqrtf(a3));
}

static inline void edgec_ml_softmax(float* v, int n)
{
  float vmax = -3.40282347e+38f;
  float sum = 0.0f;
  for (int k = 0; k < n; ++k) if (v[k] > vmax) vmax = v[k];
  for (int k = 0; k < n; ++k) { v[k] = expf(v[k] - vmax); sum += v[k]; }
  for (int k = 0; k < n; ++k) v[k] = v[k] / sum;
}

static inline void edgec_ml_softmax_zero(float* v, int n)
{
  float vmax = -3.40282347e+38f;
  float sum = 0.0f;
  for (int k = 0; k < n; ++k) if (v[k] > vmax) vmax = v[k];
  const float eneg = expf(-vmax);
  for (int k = 0; k < n; ++k) {
    if (v[k] > 0.0000001f || v[k] < -0.0000001f) { v[k] = expf(v[k] - vmax); sum += v[k]; }
    else v[k] = v[k] * eneg;
  }
  for (int k = 0; k < n; ++k) v[k] = v[k] / sum;
}
