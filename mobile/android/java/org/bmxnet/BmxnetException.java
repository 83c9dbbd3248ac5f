package org.bmxnet;

/**
 * A failure reported by the bmxnet runtime: a model file it cannot read, a malformed or hostile
 * file, an operator it does not support, a kernel path this CPU lacks.
 *
 * <p>{@link #getStatus()} is the C status name ({@code "BMX_ERROR_FORMAT"},
 * {@code "BMX_ERROR_UNSUPPORTED"}, ...; see {@code bmxnet/runtime.h}) and
 * {@link #getRuntimeMessage()} the runtime's own message ({@code bmx_last_error()}), which names
 * the problem and the fix. Wrong Java arguments (an input of the wrong length, a closed model)
 * are {@link IllegalArgumentException} / {@link IllegalStateException} instead.
 */
public class BmxnetException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String status;
  private final String runtimeMessage;

  public BmxnetException(String status, String runtimeMessage) {
    super(status + ": " + runtimeMessage);
    this.status = status;
    this.runtimeMessage = runtimeMessage;
  }

  /** The C status name, e.g. {@code "BMX_ERROR_FORMAT"}. */
  public String getStatus() {
    return status;
  }

  /** The runtime's message ({@code bmx_last_error()}). */
  public String getRuntimeMessage() {
    return runtimeMessage;
  }
}
