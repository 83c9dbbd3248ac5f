package org.bmxnet.sample;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * Desktop check of the sample app's image step (run by tests/test_mobile_apps.py):
 *
 * <pre>
 *   java -cp CLASSES org.bmxnet.sample.DigitImageTest SIZE OUT.f32 GOOD.pgm [BAD.pgm ...]
 * </pre>
 *
 * Writes DigitImage.fromPgm(GOOD).toModelInput(SIZE) as raw little-endian float32 (pytest
 * compares it with numpy), then expects every BAD file to be refused with an
 * IllegalArgumentException and prints "refused FILE: MESSAGE" for each. Exit status 1 when a
 * bad file is accepted or anything else is thrown.
 */
public final class DigitImageTest {
  public static void main(String[] args) throws Exception {
    int size = Integer.parseInt(args[0]);
    float[] input = DigitImage.fromPgm(Files.readAllBytes(Paths.get(args[2]))).toModelInput(size);
    ByteBuffer b = ByteBuffer.allocate(input.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(input);
    Files.write(Paths.get(args[1]), b.array());
    for (int i = 3; i < args.length; ++i) {
      try {
        DigitImage.fromPgm(Files.readAllBytes(Paths.get(args[i])));
        System.out.println("ACCEPTED " + args[i]);
        System.exit(1);
      } catch (IllegalArgumentException e) {
        System.out.println("refused " + args[i] + ": " + e.getMessage());
      }
    }
    System.out.println("DigitImageTest: OK");
  }
}
