/* classify: one image through a binarized model on the runtime's C API; prints the top classes
 * and the latency.
 *
 *   classify SYMBOL_JSON PARAMS IMAGE.pgm|IMAGE.ppm [options]
 *
 *   --shape N,C,H,W     the model's input shape (default 1,1,28,28: the `make demo` model).
 *                       N must be 1; C is 1 (grey) or 3 (RGB); H x W is what the image is
 *                       resized to.
 *   --input NAME        the model's data input (default "data")
 *   --resize bilinear|nearest   (default bilinear; pixel centres aligned, no antialiasing)
 *   --scale S           pixel values (0..255 whatever the file's maxval) are multiplied by S
 *                       (default 1/255: [0, 1], what the `make demo` model was trained on)
 *   --mean M[,M,M]      then M (per channel, or one value for all) is subtracted (default 0)
 *   --std S[,S,S]       and the result divided by S (default 1)
 *   --top K             classes printed (default 5)
 *   --runs R            timed inferences; the median is printed (default 10)
 *   --threads T         threads per inference (default 1; 0: one per core)
 *   --kernel-path P     auto (default), reference, scalar, avx2, avx512, neon
 *
 * Input tensor: NCHW float32, x[c][y][x] = (pixel * scale - mean[c]) / std[c]. A grey image fed
 * to a 3-channel model is replicated; an RGB image fed to a 1-channel model becomes its luma
 * (0.299 R + 0.587 G + 0.114 B). The scores are output 0's elements as the model computes them
 * (logits or probabilities, whatever its last layer is).
 *
 * Output (one line each): the model, the image, then "top-K:" and lines
 * "  RANK. class INDEX  score VALUE" (VALUE with 9 significant digits), then
 * "latency: median X ms over R runs (min Y ms, max Z ms), T thread(s)".
 *
 * Exit status: 0 on success; 1 when the runtime refuses the model or a run fails (its status
 * and message are printed); 2 on a usage error or an image that cannot be read.
 *
 * The image reader accepts binary PGM (P5) and PPM (P6) with maxval 1..65535 and at most
 * 16384 pixels a side; anything else (ASCII P2/P3, PAM, a truncated or oversized file, a
 * header that does not parse) is refused with a message that names the problem.
 *
 * Plain C99 on the public header bmxnet/runtime.h (and POSIX clock_gettime for the timing).
 */
#define _POSIX_C_SOURCE 199309L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmxnet/runtime.h"

#define MAX_SIDE 16384
#define MAX_CHANNELS 3

typedef struct {
  int width, height, channels; /* channels: 1 (P5) or 3 (P6) */
  float* pixels;               /* height * width * channels, interleaved, in [0, 255] */
} image;

/* ------------------------------------------------------------------------------------------ */
/* Binary PGM / PPM reader, bounded.                                                           */
/* ------------------------------------------------------------------------------------------ */

/* Skips whitespace and '#' comments; returns the next character (or EOF). */
static int skip_space(FILE* f) {
  int c = getc(f);
  for (;;) {
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') c = getc(f);
    if (c != '#') return c;
    while (c != '\n' && c != '\r' && c != EOF) c = getc(f);
  }
}

/* Reads one decimal header number in [1, max]; returns 0 and sets *out, or -1 (message printed). */
static int read_header_number(FILE* f, const char* path, const char* what, long max, long* out) {
  long value = 0;
  int digits = 0;
  int c = skip_space(f);
  while (c >= '0' && c <= '9') {
    value = value * 10 + (c - '0'); /* <= max * 10 + 9: checked right below */
    if (value > max) {
      fprintf(stderr, "classify: %s: the header's %s is larger than %ld; the image is too "
              "large or the header is corrupt\n", path, what, max);
      return -1;
    }
    ++digits;
    c = getc(f);
  }
  if (digits == 0) {
    fprintf(stderr, "classify: %s: the header's %s is missing or not a number (found %s); the "
            "file is not a valid binary PGM/PPM\n", path, what,
            c == EOF ? "the end of the file" : "another character");
    return -1;
  }
  if (value < 1) {
    fprintf(stderr, "classify: %s: the header's %s is 0, must be in 1..%ld\n", path, what, max);
    return -1;
  }
  /* exactly one whitespace character ends the number (after maxval: before the pixels) */
  if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f') {
    fprintf(stderr, "classify: %s: the header's %s is not followed by whitespace; the file is not "
            "a valid binary PGM/PPM\n", path, what);
    return -1;
  }
  *out = value;
  return 0;
}

static int read_pnm(const char* path, image* img) {
  FILE* f = fopen(path, "rb");
  int m0, m1;
  long width, height, maxval;
  size_t count, bytes_per_sample, nbytes, got, i;
  unsigned char* raw;
  if (!f) {
    fprintf(stderr, "classify: cannot open image %s: %s\n", path, strerror(errno));
    return -1;
  }
  m0 = getc(f);
  m1 = getc(f);
  if (m0 != 'P' || (m1 != '5' && m1 != '6')) {
    fprintf(stderr, "classify: %s is not a binary PGM (P5) or PPM (P6) image; convert it first, "
            "e.g. `convert photo.jpg -depth 8 photo.ppm` (ImageMagick) or "
            "`python -c \"from PIL import Image; Image.open('photo.jpg').convert('RGB')"
            ".save('photo.ppm')\"`\n", path);
    fclose(f);
    return -1;
  }
  img->channels = m1 == '5' ? 1 : 3;
  if (read_header_number(f, path, "width", MAX_SIDE, &width) != 0 ||
      read_header_number(f, path, "height", MAX_SIDE, &height) != 0 ||
      read_header_number(f, path, "maxval", 65535, &maxval) != 0) {
    fclose(f);
    return -1;
  }
  img->width = (int)width;
  img->height = (int)height;
  count = (size_t)width * (size_t)height * (size_t)img->channels; /* <= 16384^2 * 3 */
  bytes_per_sample = maxval < 256 ? 1 : 2;
  nbytes = count * bytes_per_sample;
  raw = (unsigned char*)malloc(nbytes);
  img->pixels = (float*)malloc(count * sizeof(float));
  if (!raw || !img->pixels) {
    fprintf(stderr, "classify: %s: out of memory for a %ldx%ld image\n", path, width, height);
    free(raw);
    free(img->pixels);
    img->pixels = NULL;
    fclose(f);
    return -1;
  }
  got = fread(raw, 1, nbytes, f);
  fclose(f);
  if (got != nbytes) {
    fprintf(stderr, "classify: %s is truncated: its header says %ldx%ld, %s, maxval %ld, which "
            "needs %lu bytes of pixels, but only %lu follow the header\n", path, width, height,
            img->channels == 1 ? "grey" : "RGB", maxval, (unsigned long)nbytes,
            (unsigned long)got);
    free(raw);
    free(img->pixels);
    img->pixels = NULL;
    return -1;
  }
  for (i = 0; i < count; ++i) {
    long v = bytes_per_sample == 1 ? raw[i] : ((long)raw[2 * i] << 8) | raw[2 * i + 1];
    if (v > maxval) v = maxval; /* out-of-range samples are clamped to white */
    img->pixels[i] = (float)((double)v * 255.0 / (double)maxval);
  }
  free(raw);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Resizing and preprocessing.                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Source coordinate of output pixel i (pixel centres aligned), clamped to [0, n_in - 1]. */
static double source_coord(int i, int n_in, int n_out) {
  double s = ((double)i + 0.5) * (double)n_in / (double)n_out - 0.5;
  if (s < 0.0) s = 0.0;
  if (s > (double)(n_in - 1)) s = (double)(n_in - 1);
  return s;
}

static int nearest_index(int i, int n_in, int n_out) {
  long s = (long)floor(((double)i + 0.5) * (double)n_in / (double)n_out);
  return s >= n_in ? n_in - 1 : (int)s;
}

/* One pixel of channel `c` of the image as the model sees it: grey from RGB by luma, grey
 * replicated into RGB. */
static double sample(const image* img, int y, int x, int c, int model_channels) {
  const float* p = img->pixels + ((size_t)y * (size_t)img->width + (size_t)x) * img->channels;
  if (img->channels == model_channels) return p[c];
  if (img->channels == 1) return p[0];
  return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
}

static void preprocess(const image* img, int channels, int height, int width, int bilinear,
                       double scale, const double* mean, const double* std, float* out) {
  int c, y, x;
  for (c = 0; c < channels; ++c) {
    for (y = 0; y < height; ++y) {
      for (x = 0; x < width; ++x) {
        double v;
        if (bilinear) {
          double sy = source_coord(y, img->height, height);
          double sx = source_coord(x, img->width, width);
          int y0 = (int)sy, x0 = (int)sx;
          int y1 = y0 + 1 < img->height ? y0 + 1 : y0;
          int x1 = x0 + 1 < img->width ? x0 + 1 : x0;
          double fy = sy - y0, fx = sx - x0;
          double top = (1.0 - fx) * sample(img, y0, x0, c, channels) +
                       fx * sample(img, y0, x1, c, channels);
          double bottom = (1.0 - fx) * sample(img, y1, x0, c, channels) +
                          fx * sample(img, y1, x1, c, channels);
          v = (1.0 - fy) * top + fy * bottom;
        } else {
          v = sample(img, nearest_index(y, img->height, height),
                     nearest_index(x, img->width, width), c, channels);
        }
        out[((size_t)c * height + y) * width + x] = (float)((v * scale - mean[c]) / std[c]);
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Command line.                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: classify SYMBOL_JSON PARAMS IMAGE.pgm|IMAGE.ppm [--shape N,C,H,W] "
          "[--input NAME]\n"
          "                [--resize bilinear|nearest] [--scale S] [--mean M[,M,M]] "
          "[--std S[,S,S]]\n"
          "                [--top K] [--runs R] [--threads T] [--kernel-path PATH]\n"
          "(see the comment at the top of mobile/examples/classify.c)\n");
}

/* Comma-separated numbers: 1..max_count doubles (finite); returns the count or -1. */
static int parse_doubles(const char* text, double* out, int max_count) {
  int n = 0;
  const char* p = text;
  while (*p) {
    char* end;
    double v;
    if (n == max_count) return -1;
    errno = 0;
    v = strtod(p, &end);
    if (end == p || errno != 0 || !(v == v) || v > 1e30 || v < -1e30) return -1;
    out[n++] = v;
    p = end;
    if (*p == ',' && p[1]) ++p;
    else if (*p) return -1;
  }
  return n;
}

static int parse_int(const char* text, long lo, long hi, long* out) {
  char* end;
  long v;
  errno = 0;
  v = strtol(text, &end, 10);
  if (end == text || *end || errno != 0 || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_shape(const char* text, int64_t* dims) {
  int n = 0;
  const char* p = text;
  while (*p) {
    char* end;
    long v;
    if (n == 4) return -1;
    errno = 0;
    v = strtol(p, &end, 10);
    if (end == p || errno != 0 || v < 1 || v > MAX_SIDE) return -1;
    dims[n++] = v;
    p = end;
    if (*p == ',' && p[1]) ++p;
    else if (*p) return -1;
  }
  return n == 4 ? 0 : -1;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int compare_doubles(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static int runtime_failed(const char* what, bmx_status status) {
  fprintf(stderr, "classify: %s: %s: %s\n", what, bmx_status_name(status), bmx_last_error());
  return 1;
}

int main(int argc, char** argv) {
  const char *symbol_path, *params_path, *image_path;
  const char* input_name = "data";
  const char* kernel_path = "auto";
  int64_t dims[4] = {1, 1, 28, 28};
  double scale = 1.0 / 255.0;
  double mean[MAX_CHANNELS] = {0.0, 0.0, 0.0}, std[MAX_CHANNELS] = {1.0, 1.0, 1.0};
  int n_mean = 1, n_std = 1, bilinear = 1;
  long top = 5, runs = 10, threads = 1;
  int i, c, channels, rc = 0;
  size_t in_count, out_count;
  image img = {0, 0, 0, NULL};
  float *input = NULL, *scores = NULL;
  double* times = NULL;
  bmx_options* options = NULL;
  bmx_model* model = NULL;
  bmx_predictor* predictor = NULL;
  bmx_status st;
  int out_ndim;
  const int64_t* out_dims;
  int* order = NULL;

  if (argc < 4) {
    usage();
    return 2;
  }
  symbol_path = argv[1];
  params_path = argv[2];
  image_path = argv[3];
  for (i = 4; i < argc; ++i) {
    const char* flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!value) {
      fprintf(stderr, "classify: %s needs a value\n", flag);
      usage();
      return 2;
    }
    if (strcmp(flag, "--shape") == 0) {
      bad = parse_shape(value, dims) != 0 || dims[0] != 1 || (dims[1] != 1 && dims[1] != 3);
      if (bad)
        fprintf(stderr, "classify: --shape %s: expected N,C,H,W with N = 1, C = 1 or 3 and H, W in "
                "1..%d, e.g. 1,3,224,224\n", value, MAX_SIDE);
    } else if (strcmp(flag, "--input") == 0) {
      input_name = value;
    } else if (strcmp(flag, "--kernel-path") == 0) {
      kernel_path = value;
    } else if (strcmp(flag, "--resize") == 0) {
      bilinear = strcmp(value, "bilinear") == 0;
      bad = !bilinear && strcmp(value, "nearest") != 0;
      if (bad) fprintf(stderr, "classify: --resize %s: use bilinear or nearest\n", value);
    } else if (strcmp(flag, "--scale") == 0) {
      bad = parse_doubles(value, &scale, 1) != 1;
      if (bad) fprintf(stderr, "classify: --scale %s: expected one number, e.g. 0.00392157\n",
                       value);
    } else if (strcmp(flag, "--mean") == 0 || strcmp(flag, "--std") == 0) {
      int is_mean = flag[2] == 'm';
      int n = parse_doubles(value, is_mean ? mean : std, MAX_CHANNELS);
      bad = n != 1 && n != 3;
      if (!bad && !is_mean)
        for (c = 0; c < n; ++c) bad |= !(std[c] > 0.0 || std[c] < 0.0);
      if (bad)
        fprintf(stderr, "classify: %s %s: expected one number or three separated by commas%s, "
                "e.g. %s\n", flag, value, is_mean ? "" : " (none zero)",
                is_mean ? "0.485,0.456,0.406" : "0.229,0.224,0.225");
      else if (is_mean) n_mean = n;
      else n_std = n;
    } else if (strcmp(flag, "--top") == 0) {
      bad = parse_int(value, 1, 1000000, &top) != 0;
      if (bad) fprintf(stderr, "classify: --top %s: expected a count >= 1\n", value);
    } else if (strcmp(flag, "--runs") == 0) {
      bad = parse_int(value, 1, 1000000, &runs) != 0;
      if (bad) fprintf(stderr, "classify: --runs %s: expected a count in 1..1000000\n", value);
    } else if (strcmp(flag, "--threads") == 0) {
      bad = parse_int(value, 0, 1024, &threads) != 0;
      if (bad) fprintf(stderr, "classify: --threads %s: expected 0 (one per core) .. 1024\n",
                       value);
    } else {
      fprintf(stderr, "classify: unknown option %s\n", flag);
      usage();
      return 2;
    }
    if (bad) return 2;
    ++i;
  }
  channels = (int)dims[1];
  if ((n_mean == 3 || n_std == 3) && channels != 3) {
    fprintf(stderr, "classify: --mean/--std give 3 channels but the input shape has %d; give one "
            "value, or --shape 1,3,H,W\n", channels);
    return 2;
  }
  for (c = 1; c < channels; ++c) {
    if (n_mean == 1) mean[c] = mean[0];
    if (n_std == 1) std[c] = std[0];
  }

  if (read_pnm(image_path, &img) != 0) return 2;

  /* the model, compiled for this input shape */
  if ((st = bmx_options_create(&options)) != BMX_OK) {
    rc = runtime_failed("options", st);
    goto done;
  }
  if ((st = bmx_options_set_input_shape(options, input_name, 4, dims)) != BMX_OK ||
      (st = bmx_options_set_num_threads(options, (int)threads)) != BMX_OK ||
      (st = bmx_options_set_kernel_path(options, kernel_path)) != BMX_OK) {
    rc = runtime_failed("options", st);
    goto done;
  }
  if ((st = bmx_model_load_files(symbol_path, params_path, options, &model)) != BMX_OK) {
    rc = runtime_failed("loading the model", st);
    goto done;
  }
  if (bmx_model_num_inputs(model) != 1) {
    fprintf(stderr, "classify: the model has %d data inputs; classify feeds exactly one image\n",
            bmx_model_num_inputs(model));
    rc = 2;
    goto done;
  }
  if ((st = bmx_model_output_shape(model, 0, &out_ndim, &out_dims)) != BMX_OK) {
    rc = runtime_failed("output shape", st);
    goto done;
  }
  out_count = 1;
  for (i = 0; i < out_ndim; ++i) out_count *= (size_t)out_dims[i];
  if ((st = bmx_predictor_create(model, &predictor)) != BMX_OK) {
    rc = runtime_failed("predictor", st);
    goto done;
  }

  /* the input tensor */
  in_count = (size_t)channels * (size_t)dims[2] * (size_t)dims[3];
  input = (float*)malloc(in_count * sizeof(float));
  scores = (float*)malloc((out_count ? out_count : 1) * sizeof(float));
  times = (double*)malloc((size_t)runs * sizeof(double));
  order = (int*)malloc((out_count ? out_count : 1) * sizeof(int));
  if (!input || !scores || !times || !order) {
    fprintf(stderr, "classify: out of memory\n");
    rc = 1;
    goto done;
  }
  preprocess(&img, channels, (int)dims[2], (int)dims[3], bilinear, scale, mean, std, input);

  /* timed runs: input in, forward, output out */
  for (i = 0; i < runs; ++i) {
    double t0 = now_ms();
    if ((st = bmx_predictor_set_input(predictor, 0, input, in_count)) != BMX_OK ||
        (st = bmx_predictor_forward(predictor)) != BMX_OK ||
        (st = bmx_predictor_get_output(predictor, 0, scores, out_count)) != BMX_OK) {
      rc = runtime_failed("inference", st);
      goto done;
    }
    times[i] = now_ms() - t0;
  }
  qsort(times, (size_t)runs, sizeof(double), compare_doubles);

  printf("model: %s (input '%s' %ldx%ldx%ldx%ld, %lu scores), kernel path %s\n", symbol_path,
         input_name, (long)dims[0], (long)dims[1], (long)dims[2], (long)dims[3],
         (unsigned long)out_count, kernel_path);
  printf("image: %s, %dx%d %s, %s-resized to %ldx%ld\n", image_path, img.width, img.height,
         img.channels == 1 ? "grey" : "RGB", bilinear ? "bilinear" : "nearest", (long)dims[3],
         (long)dims[2]);
  /* top-K by partial selection; equal scores keep the lower class index first */
  if ((size_t)top > out_count) top = (long)out_count;
  for (i = 0; i < (int)out_count; ++i) order[i] = i;
  printf("top-%ld:\n", top);
  for (i = 0; i < top; ++i) {
    int best = i, j;
    for (j = i + 1; j < (int)out_count; ++j)
      if (scores[order[j]] > scores[order[best]] ||
          (scores[order[j]] == scores[order[best]] && order[j] < order[best]))
        best = j;
    j = order[i];
    order[i] = order[best];
    order[best] = j;
    printf("  %d. class %d  score %.9g\n", i + 1, order[i], scores[order[i]]);
  }
  printf("latency: median %.3f ms over %ld runs (min %.3f ms, max %.3f ms), %ld thread(s)\n",
         runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]), runs,
         times[0], times[runs - 1], threads);

done:
  bmx_predictor_free(predictor);
  bmx_model_free(model);
  bmx_options_free(options);
  free(img.pixels);
  free(input);
  free(scores);
  free(times);
  free(order);
  return rc;
}
