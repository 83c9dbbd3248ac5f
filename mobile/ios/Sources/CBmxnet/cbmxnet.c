/* CBmxnet: see include/cbmxnet.h. */
#include "cbmxnet.h"

bmx_status cbmx_run(bmx_predictor* predictor, const float* input, size_t input_count,
                    float* output, size_t output_count) {
  bmx_status status = bmx_predictor_set_input(predictor, 0, input, input_count);
  if (status == BMX_OK) status = bmx_predictor_forward(predictor);
  if (status == BMX_OK) status = bmx_predictor_get_output(predictor, 0, output, output_count);
  return status;
}
