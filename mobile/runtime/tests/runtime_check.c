/* runtime_check: runs a converted model through the runtime's C API and compares its output with
 * MXNet's (written beforehand by make_reference_outputs.py on x86).
 *
 *   runtime_check SYMBOL_JSON PARAMS N,C,H,W INPUT.f32 REFERENCE.f32 [--threads T]
 *                 [--path KERNEL_PATH] [--rtol R]
 *
 * Prints the largest absolute difference, the tolerance and whether the argmax of every row
 * (batch item) agrees; exit status 0 only when the difference is within the tolerance and every
 * argmax agrees, 1 otherwise, 2 on a usage or file error, 3 when --path names a kernel path
 * this build or CPU does not have (skipped).
 *
 * Tolerance: rtol * max(1, max |reference|), rtol 1e-4 by default. The binary layers are exact;
 * the float layers (first convolution, BatchNorm, dense, pooling) may sum in another order, with
 * or without FMA, than MXNet's MKL-DNN kernels; float32 keeps about 7 digits, and 18 layers of
 * such rounding stay far below 1e-4 of the output scale. A sign flip of a binary layer's input
 * (a pre-activation within rounding of 0) would show up as a difference far above it.
 *
 * Plain C99 against the public header: compiling it as C proves the header is valid C.
 */
#ifdef __cplusplus
#error "runtime_check.c is compiled as C, to check that bmxnet/runtime.h is valid C"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmxnet/runtime.h"

static int fail_status(const char* what, bmx_status status) {
  fprintf(stderr, "runtime_check: %s: %s: %s\n", what, bmx_status_name(status), bmx_last_error());
  return 2;
}

/* Reads a whole raw float32 file; returns the number of floats or -1. */
static long read_floats(const char* path, float** out) {
  FILE* f = fopen(path, "rb");
  long n;
  if (!f) {
    fprintf(stderr, "runtime_check: cannot open %s\n", path);
    return -1;
  }
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
      n % 4 != 0) {
    fprintf(stderr, "runtime_check: %s is not a raw float32 file\n", path);
    fclose(f);
    return -1;
  }
  *out = (float*)malloc((size_t)n + 4);
  if (!*out || fread(*out, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "runtime_check: cannot read %s\n", path);
    fclose(f);
    return -1;
  }
  fclose(f);
  return n / 4;
}

static int parse_shape(const char* text, int64_t* dims, int max_dims) {
  int ndim = 0;
  const char* p = text;
  while (*p) {
    char* end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v <= 0 || ndim == max_dims) return -1;
    dims[ndim++] = (int64_t)v;
    p = end;
    if (*p == ',') ++p;
    else if (*p) return -1;
  }
  return ndim;
}

int main(int argc, char** argv) {
  const char* kernel_path = NULL;
  int threads = 1;
  double rtol = 1e-4;
  int64_t dims[8];
  int ndim, i;
  float *input = NULL, *reference = NULL, *output;
  long n_input, n_reference;
  size_t count = 1, out_count = 1;
  bmx_options* options = NULL;
  bmx_model* model = NULL;
  bmx_predictor* predictor = NULL;
  bmx_status s;
  int out_ndim;
  const int64_t* out_dims;
  double max_diff = 0, max_ref = 0, tolerance;
  int rows, cols, r, argmax_equal = 1;

  if (argc < 6) {
    fprintf(stderr, "usage: %s SYMBOL_JSON PARAMS N,C,H,W INPUT.f32 REFERENCE.f32 "
                    "[--threads T] [--path KERNEL_PATH] [--rtol R]\n", argv[0]);
    return 2;
  }
  for (i = 6; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--path") == 0) kernel_path = argv[i + 1];
    else if (strcmp(argv[i], "--rtol") == 0) rtol = atof(argv[i + 1]);
    else break;
  }
  if (i != argc) {
    fprintf(stderr, "runtime_check: unknown option %s\n", argv[i]);
    return 2;
  }
  ndim = parse_shape(argv[3], dims, 8);
  if (ndim < 1) {
    fprintf(stderr, "runtime_check: bad shape %s (want e.g. 1,3,32,32)\n", argv[3]);
    return 2;
  }
  for (i = 0; i < ndim; ++i) count *= (size_t)dims[i];
  n_input = read_floats(argv[4], &input);
  n_reference = read_floats(argv[5], &reference);
  if (n_input < 0 || n_reference < 0) return 2;
  if ((size_t)n_input != count) {
    fprintf(stderr, "runtime_check: %s has %ld floats, the shape %s needs %zu\n", argv[4],
            n_input, argv[3], count);
    return 2;
  }

  printf("runtime %s, model %s, input %s", bmx_version(), argv[1], argv[3]);
  if ((s = bmx_options_create(&options)) != BMX_OK) return fail_status("options", s);
  if ((s = bmx_options_set_input_shape(options, "data", ndim, dims)) != BMX_OK ||
      (s = bmx_options_set_num_threads(options, threads)) != BMX_OK ||
      (kernel_path && (s = bmx_options_set_kernel_path(options, kernel_path)) != BMX_OK)) {
    return fail_status("options", s);
  }
  s = bmx_model_load_files(argv[1], argv[2], options, &model);
  bmx_options_free(options);
  if (s == BMX_ERROR_UNSUPPORTED && kernel_path && strstr(bmx_last_error(), "kernel path")) {
    printf("\nruntime_check: skipped: %s\n", bmx_last_error());
    return 3;
  }
  if (s != BMX_OK) return fail_status("bmx_model_load_files", s);
  if ((s = bmx_predictor_create(model, &predictor)) != BMX_OK) {
    return fail_status("bmx_predictor_create", s);
  }
  if ((s = bmx_predictor_set_input(predictor, 0, input, count)) != BMX_OK) {
    return fail_status("bmx_predictor_set_input", s);
  }
  if ((s = bmx_predictor_forward(predictor)) != BMX_OK) {
    return fail_status("bmx_predictor_forward", s);
  }
  if ((s = bmx_model_output_shape(model, 0, &out_ndim, &out_dims)) != BMX_OK) {
    return fail_status("bmx_model_output_shape", s);
  }
  for (i = 0; i < out_ndim; ++i) out_count *= (size_t)out_dims[i];
  if ((size_t)n_reference != out_count) {
    fprintf(stderr, "\nruntime_check: the model's output has %zu values, the reference %ld\n",
            out_count, n_reference);
    return 1;
  }
  output = (float*)malloc(out_count * sizeof(float) + 4);
  if (!output) return 2;
  if ((s = bmx_predictor_get_output(predictor, 0, output, out_count)) != BMX_OK) {
    return fail_status("bmx_predictor_get_output", s);
  }

  for (i = 0; i < (int)out_count; ++i) {
    double d = fabs((double)output[i] - (double)reference[i]);
    if (!(d <= max_diff)) max_diff = d; /* NaN counts as a difference */
    if (fabs((double)reference[i]) > max_ref) max_ref = fabs((double)reference[i]);
  }
  /* Rows: the first output dimension is the batch; argmax over the rest of each row. */
  rows = out_ndim > 1 ? (int)out_dims[0] : 1;
  cols = (int)(out_count / (size_t)rows);
  for (r = 0; r < rows; ++r) {
    int a = 0, b = 0, c;
    for (c = 1; c < cols; ++c) {
      if (output[r * cols + c] > output[r * cols + a]) a = c;
      if (reference[r * cols + c] > reference[r * cols + b]) b = c;
    }
    if (a != b) argmax_equal = 0;
  }
  tolerance = rtol * (max_ref > 1 ? max_ref : 1);
  {
    /* The path "auto" chose, as the compiled plan states it ("path=neon"). */
    const char* plan = bmx_model_describe(model);
    const char* chosen = plan ? strstr(plan, "path=") : NULL;
    int len = 0;
    if (chosen) {
      chosen += 5;
      while (chosen[len] && chosen[len] != ' ' && chosen[len] != '\n') ++len;
    }
    printf(", kernel path %s (%.*s), %d thread(s)\n", kernel_path ? kernel_path : "auto", len,
           chosen ? chosen : "", threads);
  }
  printf("max_abs_diff=%.3g tolerance=%.3g max_abs_reference=%.4g argmax_equal=%s -> %s\n",
         max_diff, tolerance, max_ref, argmax_equal ? "yes" : "no",
         max_diff <= tolerance && argmax_equal ? "OK" : "FAIL");

  bmx_predictor_free(predictor);
  bmx_model_free(model);
  free(output);
  free(input);
  free(reference);
  return max_diff <= tolerance && argmax_equal ? 0 : 1;
}
