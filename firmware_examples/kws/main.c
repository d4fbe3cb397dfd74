/* Keyword spotting application for the edgec example (firmware_examples/kws).
 *
 * A real device would compute 49 frames x 10 MFCC features from the microphone
 * and quantize them to int8 with the model's input scale and zero point
 * (KWS_INPUT0_SCALE, KWS_INPUT0_ZERO_POINT). This example has no microphone: it
 * classifies the test inputs that `edgec build --firmware` embedded
 * (test_vectors.c: random feature maps with the outputs edgec's reference
 * interpreter expects for them) and checks the firmware agrees.
 *
 * The board layer (UART, exit code, tick counter) is the bundle's
 * firmware/edgec_fw.h; the model's whole API is kws.h.
 */
#include <stdint.h>
#include <string.h>
#include "edgec_fw.h"
#include "kws.h"
#include "test_vectors.h"

/* The classes of the MLPerf Tiny KWS model (Speech Commands v2), in output order. */
static const char* const kws_labels[KWS_OUTPUT0_ELEMENTS] = {
  "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown"
};

static int8_t features[KWS_INPUT0_ELEMENTS];
static int8_t scores[KWS_OUTPUT0_ELEMENTS];

static int argmax(const int8_t* v, int n)
{
  int i, best = 0;
  for (i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

int main(void)
{
  int s, wrong = 0;
  fw_puts("kws: keyword spotting with an edgec-compiled DS-CNN, arena ");
  fw_put_u64(KWS_ARENA_SIZE);
  fw_puts(" bytes\n");
  for (s = 0; s < FW_NUM_SAMPLES; ++s) {
    const int8_t* want = &fw_test_out0[s * KWS_OUTPUT0_ELEMENTS];
    uint64_t t0, t1;
    int best, percent;
    memcpy(features, &fw_test_in0[s * KWS_INPUT0_ELEMENTS], sizeof(features));
    t0 = fw_ticks();
    if (kws_invoke(features, scores) != 0) {
      fw_puts("kws: invoke failed\n");
      return FW_EXIT_ERROR;
    }
    t1 = fw_ticks();
    best = argmax(scores, KWS_OUTPUT0_ELEMENTS);
    percent = (int)((float)(scores[best] - KWS_OUTPUT0_ZERO_POINT) * KWS_OUTPUT0_SCALE * 100.0f + 0.5f);
    fw_puts("test input ");
    fw_put_i32(s);
    fw_puts(": \"");
    fw_puts(kws_labels[best]);
    fw_puts("\" ");
    fw_put_i32(percent);
    fw_puts("%, ");
    fw_put_u64((t1 - t0) * 1000000000u / FW_TICK_HZ);
    fw_puts(" instructions");
    if (memcmp(scores, want, sizeof(scores)) != 0) {
      fw_puts("  <- differs from the expected output");
      ++wrong;
    }
    fw_puts("\n");
  }
  if (wrong) {
    fw_puts("kws: FAILED\n");
    return FW_EXIT_MISMATCH;
  }
  fw_puts("kws: all ");
  fw_put_i32(FW_NUM_SAMPLES);
  fw_puts(" test inputs classified as expected\n");
  fw_puts("EDGEC-RESULT PASS\n");
  return FW_EXIT_PASS;
}
