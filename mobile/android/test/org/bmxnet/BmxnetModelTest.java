package org.bmxnet;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;

/**
 * Desktop-JVM test of BmxnetModel and libbmxnet_jni (run by tests/test_mobile_apps.py, which
 * writes the model and compares the outputs written here with the Python binding's and MXNet's).
 *
 * <pre>
 *   java -Djava.library.path=DIR -cp CLASSES org.bmxnet.BmxnetModelTest \
 *        SYMBOL PARAMS C,H,W INPUTS.f32 OUTPUTS.f32 BAD_FILE
 * </pre>
 *
 * INPUTS.f32: images one after the other, raw little-endian float32; OUTPUTS.f32 gets the
 * model's outputs for them the same way. BAD_FILE: a params file the runtime must refuse. Every
 * check here is about the binding itself (loading from bytes = from files, threads, close,
 * errors); the numbers are judged by pytest. Exit status 0 only when every check passes.
 */
public final class BmxnetModelTest {
  private static int checks = 0;

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new AssertionError("FAILED: " + what);
    }
    ++checks;
  }

  private interface Body {
    void run() throws Exception;
  }

  private static <T extends Throwable> T expect(Class<T> type, Body body, String what)
      throws Exception {
    try {
      body.run();
    } catch (Throwable t) {
      if (type.isInstance(t)) {
        ++checks;
        return type.cast(t);
      }
      throw new AssertionError("FAILED: " + what + ": expected " + type.getSimpleName()
                               + ", got " + t, t);
    }
    throw new AssertionError("FAILED: " + what + ": expected " + type.getSimpleName()
                             + ", nothing thrown");
  }

  private static float[] readFloats(Path path) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[b.remaining() / 4];
    b.asFloatBuffer().get(out);
    return out;
  }

  private static void writeFloats(Path path, float[] values) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    Files.write(path, b.array());
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: BmxnetModelTest SYMBOL PARAMS C,H,W INPUTS.f32 OUTPUTS.f32 "
                         + "BAD_FILE");
      System.exit(2);
    }
    final String symbol = args[0];
    final String params = args[1];
    String[] chw = args[2].split(",");
    final int[] shape = {1, Integer.parseInt(chw[0]), Integer.parseInt(chw[1]),
                         Integer.parseInt(chw[2])};
    final float[] all = readFloats(Paths.get(args[3]));
    final int per = shape[1] * shape[2] * shape[3];
    final int n = all.length / per;
    check(n > 0 && n * per == all.length, "inputs file holds whole images");

    check(BmxnetModel.runtimeVersion().matches("\\d+\\.\\d+\\.\\d+"), "runtimeVersion");

    // 1. from files: shapes, then every image
    final BmxnetModel model = new BmxnetModel(symbol, params, shape);
    check(model.inputName().equals("data"), "input name");
    check(Arrays.equals(model.inputShape(), shape), "input shape " + Arrays.toString(shape));
    check(model.inputElementCount() == per, "input element count");
    check(model.numOutputs() == 1, "one output");
    final int[] outShape = model.outputShape();
    final int outPer = Arrays.stream(outShape).reduce(1, (a, b) -> a * b);
    check(outShape.length == 2 && outShape[0] == 1, "output shape " + Arrays.toString(outShape));
    model.inputShape()[0] = 99;  // a copy: the model's own shape is unchanged
    check(model.inputShape()[0] == 1, "inputShape() returns a copy");
    float[] outputs = new float[n * outPer];
    for (int i = 0; i < n; ++i) {
      float[] y = model.run(Arrays.copyOfRange(all, i * per, (i + 1) * per));
      check(y.length == outPer, "output length");
      System.arraycopy(y, 0, outputs, i * outPer, outPer);
    }
    writeFloats(Paths.get(args[4]), outputs);

    // 2. from bytes (an Android asset): the same numbers, bit for bit
    try (BmxnetModel fromBytes = BmxnetModel.fromBytes(Files.readAllBytes(Paths.get(symbol)),
                                                       Files.readAllBytes(Paths.get(params)),
                                                       shape)) {
      for (int i = 0; i < n; ++i) {
        float[] y = fromBytes.run(Arrays.copyOfRange(all, i * per, (i + 1) * per));
        check(Arrays.equals(y, Arrays.copyOfRange(outputs, i * outPer, (i + 1) * outPer)),
              "fromBytes gives the outputs of the file-loaded model, image " + i);
      }
    }

    // 3. one model shared by 4 threads (synchronized): every result as when run alone
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<Boolean>> results = new ArrayList<>();
    for (int t = 0; t < 4; ++t) {
      results.add(pool.submit(() -> {
        boolean same = true;
        for (int round = 0; round < 5; ++round) {
          for (int i = 0; i < n; ++i) {
            float[] y = model.run(Arrays.copyOfRange(all, i * per, (i + 1) * per));
            same &= Arrays.equals(y, Arrays.copyOfRange(outputs, i * outPer, (i + 1) * outPer));
          }
        }
        return same;
      }));
    }
    for (Future<Boolean> f : results) {
      check(f.get(), "a model shared by 4 threads gives the single-thread outputs");
    }
    pool.shutdown();

    // 4. two threads per inference: the same top class
    try (BmxnetModel two = new BmxnetModel(symbol, params, "data", shape, 2, "auto")) {
      check(two.numThreads() == 2, "numThreads");
      for (int i = 0; i < n; ++i) {
        float[] y = two.run(Arrays.copyOfRange(all, i * per, (i + 1) * per));
        check(argmax(y) == argmax(Arrays.copyOfRange(outputs, i * outPer, (i + 1) * outPer)),
              "numThreads=2: same top class, image " + i);
      }
    }

    // 5. wrong Java arguments, then the runtime's errors
    expect(IllegalArgumentException.class, () -> model.run(new float[per - 1]),
           "input one float short");
    expect(IllegalArgumentException.class, () -> model.run(null), "null input");
    expect(IllegalArgumentException.class,
           () -> new BmxnetModel(symbol, params, new int[] {1, 0, 28, 28}), "zero dimension");
    BmxnetException io = expect(BmxnetException.class,
                                () -> new BmxnetModel(symbol + ".missing", params, shape),
                                "missing file");
    check(io.getStatus().equals("BMX_ERROR_IO") && io.getRuntimeMessage().contains(".missing"),
          "missing file: BMX_ERROR_IO naming the file, got " + io.getMessage());
    BmxnetException bad = expect(BmxnetException.class,
                                 () -> new BmxnetModel(symbol, args[5], shape),
                                 "corrupt params file");
    check(bad.getStatus().equals("BMX_ERROR_FORMAT") && !bad.getRuntimeMessage().isEmpty(),
          "corrupt params: BMX_ERROR_FORMAT with a message, got " + bad.getMessage());
    BmxnetException bytes = expect(BmxnetException.class,
                                   () -> BmxnetModel.fromBytes(new byte[] {'{'}, new byte[3],
                                                               shape),
                                   "garbage bytes");
    check(bytes.getStatus().equals("BMX_ERROR_FORMAT"), "garbage bytes: BMX_ERROR_FORMAT");
    BmxnetException name = expect(BmxnetException.class,
                                  () -> new BmxnetModel(symbol, params, "image", shape, 1,
                                                        "auto"),
                                  "wrong input name");
    check(name.getStatus().equals("BMX_ERROR_INVALID_ARGUMENT")
              && name.getRuntimeMessage().contains("data"),
          "wrong input name: the message lists the model's inputs, got " + name.getMessage());
    BmxnetException path = expect(BmxnetException.class,
                                  () -> new BmxnetModel(symbol, params, "data", shape, 1,
                                                        "no-such-path"),
                                  "unknown kernel path");
    check(path.getStatus().equals("BMX_ERROR_INVALID_ARGUMENT")
              || path.getStatus().equals("BMX_ERROR_UNSUPPORTED"),
          "unknown kernel path: " + path.getMessage());

    // 6. close: idempotent, then use is refused
    model.close();
    model.close();
    check(model.isClosed(), "isClosed after close");
    expect(IllegalStateException.class, () -> model.run(new float[per]), "run after close");
    check(Arrays.equals(model.inputShape(), shape), "shapes stay readable after close");

    System.out.println("BmxnetModelTest: OK, " + checks + " checks, " + n + " images");
  }

  private static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; ++i) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }
}
