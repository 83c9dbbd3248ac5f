package org.bmxnet.sample;

/**
 * A grey image read from a binary PGM (P5) file, and the input the {@code make demo} model
 * expects from it: resized (bilinear, pixel centres aligned) to size x size, pixels / 255, in
 * [0, 1], white digit on black like MNIST. The same steps as mobile/examples/classify.c with its
 * defaults. The reader is bounded: a header that does not parse, a side above {@link #MAX_SIDE}
 * or a truncated file is an IllegalArgumentException naming the problem.
 */
public final class DigitImage {
  public static final int MAX_SIDE = 4096;

  public final int width;
  public final int height;
  private final float[] grey;  // height * width, 0..255

  private DigitImage(int width, int height, float[] grey) {
    this.width = width;
    this.height = height;
    this.grey = grey;
  }

  /** Parses a binary PGM (P5), 8 or 16 bits per pixel. */
  public static DigitImage fromPgm(byte[] data) {
    if (data == null || data.length < 2 || data[0] != 'P' || data[1] != '5') {
      throw new IllegalArgumentException("not a binary PGM (P5) image; save the digit as P5, e.g. "
                                         + "`convert digit.png -depth 8 digit.pgm`");
    }
    int[] pos = {2};
    int width = headerNumber(data, pos, "width", MAX_SIDE);
    int height = headerNumber(data, pos, "height", MAX_SIDE);
    int maxval = headerNumber(data, pos, "maxval", 65535);
    int bytesPerPixel = maxval < 256 ? 1 : 2;
    long need = (long) width * height * bytesPerPixel;
    long have = data.length - pos[0];
    if (have < need) {
      throw new IllegalArgumentException("PGM truncated: its header says " + width + "x" + height
                                         + ", maxval " + maxval + ", which needs " + need
                                         + " bytes of pixels, but only " + have + " follow");
    }
    float[] grey = new float[width * height];
    for (int i = 0; i < grey.length; ++i) {
      int v = bytesPerPixel == 1
          ? data[pos[0] + i] & 0xff
          : ((data[pos[0] + 2 * i] & 0xff) << 8) | (data[pos[0] + 2 * i + 1] & 0xff);
      grey[i] = (float) (Math.min(v, maxval) * 255.0 / maxval);
    }
    return new DigitImage(width, height, grey);
  }

  private static boolean isSpace(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == '\f';
  }

  private static int headerNumber(byte[] data, int[] pos, String what, int max) {
    int p = pos[0];
    while (p < data.length && (isSpace(data[p]) || data[p] == '#')) {
      if (data[p] == '#') {
        while (p < data.length && data[p] != '\n' && data[p] != '\r') {
          ++p;
        }
      } else {
        ++p;
      }
    }
    long value = 0;
    int start = p;
    while (p < data.length && data[p] >= '0' && data[p] <= '9') {
      value = value * 10 + (data[p] - '0');
      if (value > max) {
        throw new IllegalArgumentException("PGM header: the " + what + " is larger than " + max);
      }
      ++p;
    }
    if (p == start) {
      throw new IllegalArgumentException("PGM header: the " + what
                                         + " is missing or not a number");
    }
    if (value < 1) {
      throw new IllegalArgumentException("PGM header: the " + what + " is 0");
    }
    if (p >= data.length || !isSpace(data[p])) {
      throw new IllegalArgumentException("PGM header: the " + what
                                         + " is not followed by whitespace");
    }
    pos[0] = p + 1;
    return (int) value;
  }

  private static double source(int i, int nIn, int nOut) {
    double s = (i + 0.5) * nIn / nOut - 0.5;
    return Math.max(0.0, Math.min(s, nIn - 1));
  }

  private double at(int y, int x) {
    return grey[y * width + x];
  }

  /** The model's input: size x size floats in [0, 1] (C order of a 1 x 1 x size x size tensor). */
  public float[] toModelInput(int size) {
    float[] out = new float[size * size];
    for (int y = 0; y < size; ++y) {
      double sy = source(y, height, size);
      int y0 = (int) sy;
      int y1 = Math.min(y0 + 1, height - 1);
      double fy = sy - y0;
      for (int x = 0; x < size; ++x) {
        double sx = source(x, width, size);
        int x0 = (int) sx;
        int x1 = Math.min(x0 + 1, width - 1);
        double fx = sx - x0;
        double top = (1.0 - fx) * at(y0, x0) + fx * at(y0, x1);
        double bottom = (1.0 - fx) * at(y1, x0) + fx * at(y1, x1);
        out[y * size + x] = (float) (((1.0 - fy) * top + fy * bottom) * (1.0 / 255.0));
      }
    }
    return out;
  }

  /** Opaque ARGB pixels, for android.graphics.Bitmap.createBitmap. */
  public int[] toArgb() {
    int[] out = new int[grey.length];
    for (int i = 0; i < grey.length; ++i) {
      int v = Math.round(grey[i]);
      out[i] = 0xff000000 | (v << 16) | (v << 8) | v;
    }
    return out;
  }
}
