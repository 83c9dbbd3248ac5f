package org.bmxnet;

import java.util.Arrays;

/**
 * A binarized model (the two files {@code model_converter} writes) compiled by the bmxnet runtime
 * for one input shape, with the working memory of one inference.
 *
 * <pre>{@code
 * try (BmxnetModel model = new BmxnetModel("binarized_mnist-symbol.json",
 *         "binarized_mnist-0001.params", new int[] {1, 1, 28, 28})) {
 *   float[] scores = model.run(pixels);          // 784 floats in, 10 scores out
 * }
 * }</pre>
 *
 * <p><b>Ownership.</b> The object owns one native model and one native predictor
 * ({@code bmx_model}, {@code bmx_predictor} of {@code bmxnet/runtime.h}); {@link #close()} frees
 * both (calling it again does nothing). There is no finalizer: close it, e.g. with
 * try-with-resources, or the native memory lives as long as the process. The byte arrays and
 * paths passed in are only read while the constructor runs.
 *
 * <p><b>Threads.</b> Like the C header's predictor, one model runs one inference at a time: every
 * method is {@code synchronized}, so threads may share a model and take turns. For inferences in
 * parallel, load one BmxnetModel per thread (or use {@code numThreads} to split each inference
 * over several cores).
 *
 * <p><b>Errors.</b> Failures inside the runtime throw {@link BmxnetException} with the C status
 * name and the runtime's message; wrong arguments throw {@link IllegalArgumentException}, use
 * after {@link #close()} {@link IllegalStateException}.
 *
 * <p>The model must have exactly one data input; {@link #run(float[])} returns output 0.
 */
public final class BmxnetModel implements AutoCloseable {
  static {
    System.loadLibrary("bmxnet_jni");
  }

  private long handle;
  private final String inputName;
  private final int[] inputShape;
  private final int inputCount;
  private final int numOutputs;
  private final String[] outputNames;
  private final int[][] outputShapes;
  private final int numThreads;

  /** Loads from files, input named "data", one thread, the best kernels this CPU has. */
  public BmxnetModel(String symbolPath, String paramsPath, int[] inputShape) {
    this(symbolPath, paramsPath, "data", inputShape, 1, "auto");
  }

  /**
   * Loads from files.
   *
   * @param inputName the model's data input (usually "data")
   * @param inputShape its shape, e.g. {1, 1, 28, 28} (the files do not record it)
   * @param numThreads threads per inference (1; {@code <= 0}: one per core)
   * @param kernelPath "auto", or "reference", "scalar", "avx2", "avx512", "neon"
   */
  public BmxnetModel(String symbolPath, String paramsPath, String inputName, int[] inputShape,
                     int numThreads, String kernelPath) {
    this(nativeLoadFiles(notNull(symbolPath, "symbolPath"), notNull(paramsPath, "paramsPath"),
                         notNull(inputName, "inputName"), checkShape(inputShape), numThreads,
                         notNull(kernelPath, "kernelPath")),
         numThreads);
  }

  /** Loads from memory (e.g. an Android asset), input named "data", one thread. */
  public static BmxnetModel fromBytes(byte[] symbolJson, byte[] params, int[] inputShape) {
    return fromBytes(symbolJson, params, "data", inputShape, 1, "auto");
  }

  /** Loads from memory: the contents of the symbol json and params files. */
  public static BmxnetModel fromBytes(byte[] symbolJson, byte[] params, String inputName,
                                      int[] inputShape, int numThreads, String kernelPath) {
    return new BmxnetModel(
        nativeLoadBuffers(notNull(symbolJson, "symbolJson"), notNull(params, "params"),
                          notNull(inputName, "inputName"), checkShape(inputShape), numThreads,
                          notNull(kernelPath, "kernelPath")),
        numThreads);
  }

  private BmxnetModel(long handle, int numThreads) {
    this.handle = handle;
    this.numThreads = numThreads;
    try {
      inputName = nativeName(handle, false, 0);
      inputShape = nativeShape(handle, false, 0);
      numOutputs = nativeNumOutputs(handle);
      outputNames = new String[numOutputs];
      outputShapes = new int[numOutputs][];
      for (int i = 0; i < numOutputs; ++i) {
        outputNames[i] = nativeName(handle, true, i);
        outputShapes[i] = nativeShape(handle, true, i);
      }
    } catch (RuntimeException | Error e) {
      nativeFree(handle);
      this.handle = 0;
      throw e;
    }
    inputCount = count(inputShape);
  }

  /**
   * One inference: {@code input} (C order, {@link #inputElementCount()} floats) in, output 0's
   * values out (a new array, {@link #outputShape()} in C order).
   */
  public synchronized float[] run(float[] input) {
    requireOpen();
    if (input == null) {
      throw new IllegalArgumentException("BmxnetModel.run: input is null");
    }
    if (input.length != inputCount) {
      throw new IllegalArgumentException(
          "BmxnetModel.run: input has " + input.length + " floats, the model's input '"
          + inputName + "' of shape " + Arrays.toString(inputShape) + " needs " + inputCount);
    }
    return nativeRun(handle, input);
  }

  /** Frees the native model and predictor; later calls do nothing. */
  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeFree(handle);
      handle = 0;
    }
  }

  public synchronized boolean isClosed() {
    return handle == 0;
  }

  public String inputName() {
    return inputName;
  }

  /** The input shape the model was compiled for (a copy). */
  public int[] inputShape() {
    return inputShape.clone();
  }

  public int inputElementCount() {
    return inputCount;
  }

  public int numOutputs() {
    return numOutputs;
  }

  public String outputName(int index) {
    return outputNames[index];
  }

  /** Shape of output 0, what {@link #run(float[])} returns (a copy). */
  public int[] outputShape() {
    return outputShape(0);
  }

  public int[] outputShape(int index) {
    return outputShapes[index].clone();
  }

  public int numThreads() {
    return numThreads;
  }

  /** "MAJOR.MINOR.PATCH" of the native runtime. */
  public static String runtimeVersion() {
    return nativeVersion();
  }

  private void requireOpen() {
    if (handle == 0) {
      throw new IllegalStateException("BmxnetModel is closed; load the model again");
    }
  }

  private static <T> T notNull(T value, String name) {
    if (value == null) {
      throw new IllegalArgumentException("BmxnetModel: " + name + " is null");
    }
    return value;
  }

  private static int[] checkShape(int[] shape) {
    notNull(shape, "inputShape");
    if (shape.length == 0) {
      throw new IllegalArgumentException("BmxnetModel: inputShape is empty; give e.g. "
                                         + "{1, 1, 28, 28}");
    }
    long n = 1;
    for (int d : shape) {
      if (d <= 0) {
        throw new IllegalArgumentException("BmxnetModel: inputShape " + Arrays.toString(shape)
                                           + " has a dimension <= 0");
      }
      n *= d;
      if (n > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("BmxnetModel: inputShape " + Arrays.toString(shape)
                                           + " has more elements than a Java array can hold");
      }
    }
    return shape;
  }

  private static int count(int[] shape) {
    long n = 1;
    for (int d : shape) {
      n *= d;
    }
    return (int) n;
  }

  private static native String nativeVersion();

  private static native long nativeLoadFiles(String symbolPath, String paramsPath,
                                             String inputName, int[] shape, int numThreads,
                                             String kernelPath);

  private static native long nativeLoadBuffers(byte[] symbolJson, byte[] params,
                                               String inputName, int[] shape, int numThreads,
                                               String kernelPath);

  private static native void nativeFree(long handle);

  private static native int[] nativeShape(long handle, boolean output, int index);

  private static native int nativeNumOutputs(long handle);

  private static native String nativeName(long handle, boolean output, int index);

  private static native float[] nativeRun(long handle, float[] input);
}
