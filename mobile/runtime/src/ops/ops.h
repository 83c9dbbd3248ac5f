// The operator table: each ops/*.cc registers the operators it compiles.
#ifndef BMXNET_RUNTIME_OPS_OPS_H_
#define BMXNET_RUNTIME_OPS_OPS_H_

#include <map>
#include <string>

#include "builder.h"

namespace bmxrt {

using OpTable = std::map<std::string, OpCompileFn>;
void register_convolution(OpTable* t);  // conv.cc: Convolution, QConvolution
void register_dense(OpTable* t);        // dense.cc: FullyConnected, QFullyConnected
void register_elementwise(OpTable* t);  // elementwise.cc
void register_pooling(OpTable* t);      // pooling.cc
void register_shape(OpTable* t);        // shape.cc: Reshape, Flatten, identities, Concat
void register_softmax(OpTable* t);      // softmax.cc

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_OPS_OPS_H_
