/* CBmxnet: see include/cbmxnet.h. */
#include "cbmxnet.h"

#include <math.h>

bmx_status cbmx_run(bmx_predictor* predictor, const float* input, size_t input_count,
                    float* output, size_t output_count) {
  bmx_status status = bmx_predictor_set_input(predictor, 0, input, input_count);
  if (status == BMX_OK) status = bmx_predictor_forward(predictor);
  if (status == BMX_OK) status = bmx_predictor_get_output(predictor, 0, output, output_count);
  return status;
}

/* Bilinear weights from n_in to n_out samples, pixel centres aligned (like mnist_data.py's
 * _bilinear_matrix): output i reads inputs lo[i] and hi[i] with weight 1 - frac[i], frac[i]. */
static void bilinear_taps(int n_in, int n_out, int* lo, int* hi, double* frac) {
  int i;
  for (i = 0; i < n_out; ++i) {
    double s = ((double)i + 0.5) * (double)n_in / (double)n_out - 0.5;
    if (s < 0.0) s = 0.0;
    if (s > (double)(n_in - 1)) s = (double)(n_in - 1);
    lo[i] = (int)s;
    hi[i] = lo[i] + 1 < n_in ? lo[i] + 1 : lo[i];
    frac[i] = s - (double)lo[i];
  }
}

int cbmx_digit_input(const uint8_t* ink, int width, int height, size_t row_bytes, float* out) {
  enum { CELLS = 32, SMALL = 8, INNER = 20 };
  int x, y, i, j, min_x, min_y, max_x, max_y;
  double side, origin_x, origin_y;
  unsigned char on[CELLS][CELLS];
  double small[SMALL][SMALL];
  int lo[INNER], hi[INNER];
  double frac[INNER];
  if (!out) return -1;
  for (i = 0; i < CBMX_DIGIT_SIDE * CBMX_DIGIT_SIDE; ++i) out[i] = 0.0f;
  if (!ink || width < 1 || height < 1 || width > 65535 || height > 65535 ||
      row_bytes < (size_t)width)
    return -1;

  /* 1. bounding box of the ink, made square around its centre; 32 x 32 cells */
  min_x = width;
  min_y = height;
  max_x = max_y = -1;
  for (y = 0; y < height; ++y) {
    const uint8_t* row = ink + (size_t)y * row_bytes;
    for (x = 0; x < width; ++x) {
      if (row[x] >= 128) {
        if (x < min_x) min_x = x;
        if (x > max_x) max_x = x;
        if (y < min_y) min_y = y;
        if (y > max_y) max_y = y;
      }
    }
  }
  if (max_x < 0) return -1;
  side = (double)(max_x - min_x + 1 > max_y - min_y + 1 ? max_x - min_x + 1 : max_y - min_y + 1);
  origin_x = 0.5 * (double)(min_x + max_x + 1) - 0.5 * side;
  origin_y = 0.5 * (double)(min_y + max_y + 1) - 0.5 * side;
  for (i = 0; i < CELLS; ++i) {
    /* source pixels whose centres fall inside cell row i / column j (at least one) */
    int y0 = (int)ceil(origin_y + side * i / CELLS - 0.5);
    int y1 = (int)ceil(origin_y + side * (i + 1) / CELLS - 0.5);
    if (y1 <= y0) y1 = y0 + 1;
    for (j = 0; j < CELLS; ++j) {
      int x0 = (int)ceil(origin_x + side * j / CELLS - 0.5);
      int x1 = (int)ceil(origin_x + side * (j + 1) / CELLS - 0.5);
      double sum = 0.0;
      if (x1 <= x0) x1 = x0 + 1;
      for (y = y0; y < y1; ++y)
        for (x = x0; x < x1; ++x)
          if (y >= 0 && y < height && x >= 0 && x < width) sum += ink[(size_t)y * row_bytes + x];
      on[i][j] = sum >= 128.0 * (double)(y1 - y0) * (double)(x1 - x0);
    }
  }

  /* 2. on cells per 4 x 4 block: 0..16 */
  for (i = 0; i < SMALL; ++i)
    for (j = 0; j < SMALL; ++j) {
      int count = 0;
      for (y = 0; y < 4; ++y)
        for (x = 0; x < 4; ++x) count += on[4 * i + y][4 * j + x];
      small[i][j] = count / 16.0;
    }

  /* 3. bilinear 8 -> 20, clipped, centred in 28 x 28 */
  bilinear_taps(SMALL, INNER, lo, hi, frac);
  for (i = 0; i < INNER; ++i)
    for (j = 0; j < INNER; ++j) {
      double top = (1.0 - frac[j]) * small[lo[i]][lo[j]] + frac[j] * small[lo[i]][hi[j]];
      double bottom = (1.0 - frac[j]) * small[hi[i]][lo[j]] + frac[j] * small[hi[i]][hi[j]];
      double v = (1.0 - frac[i]) * top + frac[i] * bottom;
      v = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
      out[(i + (CBMX_DIGIT_SIDE - INNER) / 2) * CBMX_DIGIT_SIDE + j + (CBMX_DIGIT_SIDE - INNER) / 2] =
          (float)v;
    }
  return 0;
}
