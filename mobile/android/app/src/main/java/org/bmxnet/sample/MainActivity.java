package org.bmxnet.sample;

import android.app.Activity;
import android.graphics.Bitmap;
import android.os.Build;
import android.os.Bundle;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.TextView;

import org.bmxnet.BmxnetException;
import org.bmxnet.BmxnetModel;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Loads the {@code make demo} model (binary LeNet, 28 x 28 digits) from the app's assets,
 * classifies the bundled digit and shows the three most likely digits and the median time of
 * {@link #RUNS} inferences. The model is used on one worker thread only (it runs one inference
 * at a time; see BmxnetModel); the UI thread only shows results.
 */
public class MainActivity extends Activity {
  private static final String SYMBOL = "binarized_mnist-symbol.json";
  private static final String PARAMS = "binarized_mnist-0001.params";
  private static final String DIGIT = "digit.pgm";
  private static final int SIDE = 28;
  private static final int RUNS = 20;

  private final ExecutorService worker = Executors.newSingleThreadExecutor();
  private BmxnetModel model;  // touched on the worker thread only
  private float[] input;
  private TextView result;
  private Button classify;

  @Override
  protected void onCreate(Bundle savedInstanceState) {
    super.onCreate(savedInstanceState);
    setContentView(R.layout.activity_main);
    result = findViewById(R.id.result);
    classify = findViewById(R.id.classify);
    final ImageView digitView = findViewById(R.id.digit);
    classify.setOnClickListener(v -> worker.execute(this::classify));
    worker.execute(() -> {
      try {
        model = BmxnetModel.fromBytes(readAsset(SYMBOL), readAsset(PARAMS),
                                      new int[] {1, 1, SIDE, SIDE});
        DigitImage digit = DigitImage.fromPgm(readAsset(DIGIT));
        input = digit.toModelInput(SIDE);
        Bitmap small = Bitmap.createBitmap(digit.toArgb(), digit.width, digit.height,
                                           Bitmap.Config.ARGB_8888);
        Bitmap big = Bitmap.createScaledBitmap(small, digit.width * 8, digit.height * 8, false);
        runOnUiThread(() -> {
          digitView.setImageBitmap(big);
          classify.setEnabled(true);
        });
        classify();
      } catch (IOException | BmxnetException | IllegalArgumentException e) {
        show("Cannot load the model or the digit:\n" + e.getMessage());
      }
    });
  }

  /** Runs the model RUNS times on the digit; shows the top 3 and the median time. */
  private void classify() {
    float[] scores = null;
    long[] nanos = new long[RUNS];
    try {
      for (int i = 0; i < RUNS; ++i) {
        long t0 = System.nanoTime();
        scores = model.run(input);
        nanos[i] = System.nanoTime() - t0;
      }
    } catch (BmxnetException e) {
      show("Inference failed:\n" + e.getMessage());
      return;
    }
    Arrays.sort(nanos);
    double medianMs = (nanos[RUNS / 2 - 1] + nanos[RUNS / 2]) / 2e6;
    // softmax of the logits, for display
    double max = Double.NEGATIVE_INFINITY;
    for (float s : scores) {
      max = Math.max(max, s);
    }
    double[] p = new double[scores.length];
    double sum = 0;
    for (int i = 0; i < scores.length; ++i) {
      p[i] = Math.exp(scores[i] - max);
      sum += p[i];
    }
    Integer[] order = new Integer[scores.length];
    for (int i = 0; i < order.length; ++i) {
      order[i] = i;
    }
    final float[] s = scores;
    Arrays.sort(order, (a, b) -> Float.compare(s[b], s[a]));
    StringBuilder text = new StringBuilder();
    for (int rank = 0; rank < Math.min(3, order.length); ++rank) {
      int c = order[rank];
      text.append(String.format(Locale.ROOT, "%d. digit %d   %5.1f %%   (logit %.3f)\n",
                                rank + 1, c, 100.0 * p[c] / sum, scores[c]));
    }
    text.append(String.format(Locale.ROOT, "\n%.3f ms per image (median of %d, %s, runtime %s)",
                              medianMs, RUNS, Build.SUPPORTED_ABIS[0],
                              BmxnetModel.runtimeVersion()));
    show(text.toString());
  }

  private void show(final String text) {
    runOnUiThread(() -> result.setText(text));
  }

  private byte[] readAsset(String name) throws IOException {
    try (InputStream in = getAssets().open(name)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[1 << 16];
      for (int n; (n = in.read(buffer)) > 0; ) {
        out.write(buffer, 0, n);
      }
      return out.toByteArray();
    }
  }

  @Override
  protected void onDestroy() {
    super.onDestroy();
    worker.execute(() -> {
      if (model != null) {
        model.close();
      }
    });
    worker.shutdown();
  }
}
