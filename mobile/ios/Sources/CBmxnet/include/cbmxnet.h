/* CBmxnet: the runtime's C API for Swift (module map beside this file), plus one convenience
 * call. Swift sees bmx_options, bmx_model, bmx_predictor and every bmx_* function of
 * mobile/runtime/include/bmxnet/runtime.h unchanged, with its ownership and thread rules. */
#ifndef CBMXNET_H_
#define CBMXNET_H_

#include "../../../../runtime/include/bmxnet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One inference of a single-input, single-output model: input 0 in, forward, output 0 out
 * (bmx_predictor_set_input, _forward, _get_output); the first failing call's status is returned
 * and bmx_last_error() holds its message. Same thread rules as the predictor: one call at a
 * time per predictor. */
bmx_status cbmx_run(bmx_predictor* predictor, const float* input, size_t input_count,
                    float* output, size_t output_count);

#ifdef __cplusplus
}
#endif

#endif /* CBMXNET_H_ */
