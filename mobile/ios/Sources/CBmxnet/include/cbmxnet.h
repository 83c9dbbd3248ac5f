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

/* Side of the `make demo` model's input (1 x 1 x 28 x 28). */
#define CBMX_DIGIT_SIDE 28

/* A hand-drawn digit as the `make demo` model saw its training digits (scikit-learn's 8x8
 * digits, smd_hpi_examples/binary_mnist/mnist_data.py), from a grey drawing (`ink`: 0 = paper,
 * 255 = ink, `row_bytes` apart, any size up to 65535 x 65535):
 *   1. the bounding box of the ink (pixels >= 128), made square around its centre (the digit
 *      keeps its aspect ratio), is divided into 32 x 32 cells; a cell is on when the mean ink in
 *      it is >= 128 (the 32 x 32 bitmaps the digits were made from);
 *   2. the on cells of each 4 x 4 block are counted: an 8 x 8 image with values 0..16 (how the
 *      8 x 8 digits were made);
 *   3. / 16, bilinear (pixel centres aligned) to 20 x 20, clipped to [0, 1], centred in 28 x 28
 *      with a zero border (mnist_data.digits_to_28x28).
 * Writes CBMX_DIGIT_SIDE^2 floats to `out`. Returns 0, or -1 when there is no ink (out is then
 * all zeros) or an argument is invalid. Thread-safe (no state). */
int cbmx_digit_input(const uint8_t* ink, int width, int height, size_t row_bytes, float* out);

#ifdef __cplusplus
}
#endif

#endif /* CBMXNET_H_ */
