// Library entry point MXNet calls once from mx.library.load().
#include "common.h"

mxnet::ext::MXReturnValue initialize(int version) {
  if (version < 10900) {
    MX_ERROR_MSG << "bmxnet needs MXNet >= 1.9.0 (lib_api version 10900), found " << version;
    return mxnet::ext::MX_FAIL;
  }
  return mxnet::ext::MX_SUCCESS;
}
