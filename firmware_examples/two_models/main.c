/* Two models in one firmware (firmware_examples/two_models): keyword spotting (an int8
 * DS-CNN, bundle "kws") and a random forest on sonar returns (float, bundle "forest"),
 * both compiled by edgec, sharing one activation arena.
 *
 * Both bundles are compiled with KWS_EXTERNAL_ARENA and FOREST_EXTERNAL_ARENA: neither
 * model has an arena of its own, and each runs on `shared_arena` through
 * <name>_invoke_with_arena(). That is safe because they never run at the same time (one
 * inference at a time, nothing kept in the arena between calls), and it takes
 * max(KWS_ARENA_SIZE, FOREST_ARENA_SIZE) bytes of RAM instead of their sum.
 *
 * The inputs are known: the keyword-spotting test vectors `edgec build --firmware`
 * embedded in the kws bundle (test_vectors.c, with the outputs edgec's reference
 * interpreter expects) and held-out sonar rows with onnxruntime's label and
 * probabilities (forest_vectors.h, written by model/make_forest.py). The two models
 * run in turn, each on the arena the other one just used, and every output is checked.
 *
 * `make ARENAS=own` builds the same application without the two defines: each model
 * then runs on its own static arena (<name>_invoke()), for comparison.
 *
 * The application's own symbols do not begin with kws_ or forest_: `edgec size` counts
 * symbols named like a model's as that model's.
 */
#include <stdint.h>
#include <string.h>
#include "edgec_fw.h"
#include "kws.h"
#include "forest.h"
#include "test_vectors.h"
#include "forest_vectors.h"

#if defined(KWS_EXTERNAL_ARENA) && defined(FOREST_EXTERNAL_ARENA)
#define ARENA_BYTES (KWS_ARENA_SIZE > FOREST_ARENA_SIZE ? KWS_ARENA_SIZE : FOREST_ARENA_SIZE)
/* the one arena of both models (16-byte aligned, as <name>_invoke_with_arena() needs) */
static uint8_t shared_arena[ARENA_BYTES] __attribute__((aligned(16)));
#define KWS_RUN(in, out) kws_invoke_with_arena((in), (out), shared_arena)
#define FOREST_RUN(in, label, prob) forest_invoke_with_arena((in), (label), (prob), shared_arena)
#define ARENAS "one arena"
#else
/* `make ARENAS=own` (no <NAME>_EXTERNAL_ARENA): each model on its own static arena */
#define ARENA_BYTES (KWS_ARENA_SIZE + FOREST_ARENA_SIZE)
#define KWS_RUN(in, out) kws_invoke((in), (out))
#define FOREST_RUN(in, label, prob) forest_invoke((in), (label), (prob))
#define ARENAS "two arenas"
#endif

static int8_t features[KWS_INPUT0_ELEMENTS];
static int8_t scores[KWS_OUTPUT0_ELEMENTS];
static float sonar_in[FOREST_INPUT0_ELEMENTS];
static int64_t mine[FOREST_OUTPUT0_ELEMENTS];
static float proba[FOREST_OUTPUT1_ELEMENTS];

static int argmax(const int8_t* v, int n)
{
  int i, best = 0;
  for (i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

/* |a - b| <= 1e-5: the forest's probabilities are sums of float leaf values, which
 * onnxruntime adds in another order */
static int close_enough(float a, float b)
{
  float d = a > b ? a - b : b - a;
  return d <= 1e-5f;
}

/* runs keyword spotting on test input s; 0 when the scores are the expected ones */
static int run_kws(int s)
{
  memcpy(features, &fw_test_in0[s * KWS_INPUT0_ELEMENTS], sizeof(features));
  if (KWS_RUN(features, scores) != 0) {
    fw_puts("kws: invoke failed\n");
    return -1;
  }
  fw_puts("kws    input ");
  fw_put_i32(s);
  fw_puts(": class ");
  fw_put_i32(argmax(scores, KWS_OUTPUT0_ELEMENTS));
  if (memcmp(scores, &fw_test_out0[s * KWS_OUTPUT0_ELEMENTS], sizeof(scores)) != 0) {
    fw_puts("  <- differs from the expected scores\n");
    return 1;
  }
  fw_puts("  (as expected)\n");
  return 0;
}

/* runs the forest on sonar row r; 0 when label and probabilities are onnxruntime's */
static int run_forest(int r)
{
  int k, ok;
  memcpy(sonar_in, sonar_x[r], sizeof(sonar_in));
  if (FOREST_RUN(sonar_in, mine, proba) != 0) {
    fw_puts("forest: invoke failed\n");
    return -1;
  }
  ok = mine[0] == sonar_label[r];
  for (k = 0; k < FOREST_OUTPUT1_ELEMENTS; ++k) ok = ok && close_enough(proba[k], sonar_proba[r][k]);
  fw_puts("forest row   ");
  fw_put_i32(r);
  fw_puts(mine[0] ? ": mine, " : ": rock, ");
  fw_put_i32((int32_t)(proba[1] * 1000.0f + 0.5f));
  fw_puts(" per mille mine");
  fw_puts(mine[0] == sonar_truth[r] ? " (right)" : " (wrong: a real forest errs)");
  if (!ok) {
    fw_puts("  <- differs from onnxruntime\n");
    return 1;
  }
  fw_puts("\n");
  return 0;
}

int main(void)
{
  int i, n, wrong = 0;
  fw_puts("two models, " ARENAS " of ");
  fw_put_u64(ARENA_BYTES);
  fw_puts(" bytes (kws needs ");
  fw_put_u64(KWS_ARENA_SIZE);
  fw_puts(", forest ");
  fw_put_u64(FOREST_ARENA_SIZE);
  fw_puts(")\n");
  n = FW_NUM_SAMPLES > SONAR_ROWS ? FW_NUM_SAMPLES : SONAR_ROWS;
  for (i = 0; i < n; ++i) {
    int a = i < FW_NUM_SAMPLES ? run_kws(i) : 0;
    int b = i < SONAR_ROWS ? run_forest(i) : 0;
    if (a < 0 || b < 0) return FW_EXIT_ERROR;
    wrong += a + b;
  }
  if (wrong) {
    fw_puts("two_models: FAILED\n");
    return FW_EXIT_MISMATCH;
  }
  fw_puts("two_models: both models computed every expected output\n");
  fw_puts("EDGEC-RESULT PASS\n");
  return FW_EXIT_PASS;
}
